package arrowio_test

import (
	"errors"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/records"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// build makes a batch of n rows of dim features with mem.
func build(t testing.TB, mem memory.Allocator, n, dim int) arrowio.Batch {
	t.Helper()
	rb := arrowio.NewRowBuilder(mem, dim)
	defer rb.Release()
	f := make([]float64, dim)
	for i := 0; i < n; i++ {
		for j := range f {
			f[j] = float64(i*dim+j) / 7
		}
		label := ""
		if i%3 != 0 {
			label = "walk"
		}
		src := records.Source{Topic: "sensors", Partition: 1, Offset: int64(i)}
		if i%4 == 0 {
			src = records.Source{} // a window: null source
		}
		rb.Append("dev-"+string(rune('a'+i%5)), t0.Add(time.Duration(i)*time.Second), f, label, "sensors/1/"+string(rune('0'+i%10)), src)
	}
	if rb.Len() != n {
		t.Fatalf("builder holds %d rows, want %d", rb.Len(), n)
	}
	return rb.NewBatch()
}

func TestRoundTripReleasesEverything(t *testing.T) {
	for _, tt := range []struct{ n, dim int }{{0, 1}, {1, 1}, {7, 3}, {1000, 48}} {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		b := build(t, mem, tt.n, tt.dim)
		data, err := arrowio.EncodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := arrowio.DecodeBatchWith(mem, data)
		if err != nil {
			t.Fatalf("%d×%d: %v", tt.n, tt.dim, err)
		}
		if !array.RecordEqual(b.Record, got.Record) {
			t.Errorf("%d×%d: decoded batch differs", tt.n, tt.dim)
		}
		for i := 0; i < got.Rows(); i++ {
			want := records.Source{Topic: "sensors", Partition: 1, Offset: int64(i)}
			if i%4 == 0 {
				want = records.Source{}
			}
			if src := arrowio.SourceAt(got.Record, i); src != want {
				t.Errorf("%d×%d: row %d source %+v, want %+v", tt.n, tt.dim, i, src, want)
			}
		}
		if !got.Record.Schema().Equal(arrowio.RowSchema(tt.dim)) {
			t.Errorf("schema %s, want %s", got.Record.Schema(), arrowio.RowSchema(tt.dim))
		}
		b.Record.Release()
		got.Record.Release()
		mem.AssertSize(t, 0)
	}
}

func TestFeaturesIsTheValuesBuffer(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := build(t, mem, 5, 4)
	defer b.Record.Release()
	vals, rows, dim, err := arrowio.Features(b.Record)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 5 || dim != 4 || len(vals) != 20 {
		t.Fatalf("Features: %d×%d, %d values", rows, dim, len(vals))
	}
	for i, v := range vals {
		if v != float64(i)/7 {
			t.Fatalf("value %d = %v, want %v", i, v, float64(i)/7)
		}
	}
	under := b.Record.Column(arrowio.FeaturesIndex).(*array.FixedSizeList).ListValues().(*array.Float64).Float64Values()
	if &vals[0] != &under[0] {
		t.Error("Features copied the values instead of returning the buffer")
	}
	// A slice of a batch keeps its offset.
	s := b.Record.NewSlice(2, 4)
	defer s.Release()
	vals, rows, _, err = arrowio.Features(s)
	if err != nil || rows != 2 || vals[0] != 8.0/7 {
		t.Errorf("sliced Features: %v rows %d first %v", err, rows, vals[0])
	}
}

func TestDecodeRefusesCorruptBytes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	b := build(t, mem, 20, 3)
	good, err := arrowio.EncodeBatch(b)
	b.Record.Release()
	if err != nil {
		t.Fatal(err)
	}
	glued := append(append([]byte(nil), good[:len(good)-8]...), good...)
	for name, data := range map[string][]byte{
		"garbage":        []byte("not arrow at all, just bytes"),
		"truncated":      good[:len(good)/2],
		"schema only":    good[:200],
		"two streams":    glued,
		"one stray byte": append(append([]byte(nil), good...), 0),
	} {
		got, err := arrowio.DecodeBatchWith(mem, data)
		if err == nil {
			got.Record.Release()
			t.Errorf("%s: decoded without error", name)
			continue
		}
		if !errors.Is(err, arrowio.ErrCorrupt) {
			t.Errorf("%s: error %v does not wrap ErrCorrupt", name, err)
		}
	}
	// Every single-byte corruption either decodes to something valid or
	// fails cleanly.
	mem.AssertSize(t, 0)
	for i := range good {
		flipped := append([]byte(nil), good...)
		flipped[i] ^= 0xa5
		// A read that arrow-go's reader fails may leave its buffers to the
		// garbage collector; a batch that decodes must release fully.
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		if got, err := arrowio.DecodeBatchWith(mem, flipped); err == nil {
			got.Record.Release()
			mem.AssertSize(t, 0)
		} else if !errors.Is(err, arrowio.ErrCorrupt) {
			t.Errorf("byte %d flipped: error %v does not wrap ErrCorrupt", i, err)
		}
	}
}

func TestRowBuilderPanicsOnWrongWidth(t *testing.T) {
	rb := arrowio.NewRowBuilder(memory.NewGoAllocator(), 3)
	defer rb.Release()
	defer func() {
		if recover() == nil {
			t.Error("appending 2 features to a 3-feature builder did not panic")
		}
	}()
	rb.Append("k", t0, []float64{1, 2}, "", "id", records.Source{})
}

func TestEmptyBatch(t *testing.T) {
	data, err := arrowio.EncodeBatch(arrowio.Batch{})
	if err != nil || len(data) != 0 {
		t.Fatalf("empty batch encodes as %d bytes, %v", len(data), err)
	}
	b, err := arrowio.DecodeBatch(nil)
	if err != nil || b.Record != nil || b.Rows() != 0 {
		t.Errorf("decoding nothing: %+v, %v", b, err)
	}
}

func TestFeaturesOfAnotherSchema(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}}, nil)
	rb := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer rb.Release()
	rb.Field(0).(*array.Float64Builder).Append(math.Pi)
	rec := rb.NewRecord()
	defer rec.Release()
	if _, _, _, err := arrowio.Features(rec); err == nil {
		t.Error("Features of a batch without a features column succeeded")
	}
}

func FuzzDecodeBatch(f *testing.F) {
	b := build(f, memory.NewGoAllocator(), 4, 2)
	good, _ := arrowio.EncodeBatch(b)
	f.Add(good)
	f.Add(good[:len(good)/3])
	f.Add([]byte("ARROW1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		got, err := arrowio.DecodeBatchWith(mem, data)
		if err != nil {
			if !errors.Is(err, arrowio.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			if mem.CurrentAlloc() > 16*len(data)+1<<16 {
				t.Fatalf("a failed decode of %d bytes left %d bytes allocated", len(data), mem.CurrentAlloc())
			}
			return
		}
		if got.Record != nil {
			// A batch that decodes can be read and survives a round trip.
			for _, col := range got.Record.Columns() {
				_ = col.String()
			}
			again, err := arrowio.EncodeBatch(got)
			if err != nil {
				t.Fatalf("re-encoding a decoded batch: %v", err)
			}
			back, err := arrowio.DecodeBatchWith(mem, again)
			if err != nil {
				t.Fatalf("decoding a re-encoded batch: %v", err)
			}
			back.Record.Release()
			got.Record.Release()
		}
		mem.AssertSize(t, 0)
	})
}

func BenchmarkCoder(b *testing.B) {
	batch := build(b, memory.NewGoAllocator(), 4096, 48)
	data, _ := arrowio.EncodeBatch(batch)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		enc, err := arrowio.EncodeBatch(batch)
		if err != nil {
			b.Fatal(err)
		}
		dec, err := arrowio.DecodeBatch(enc)
		if err != nil {
			b.Fatal(err)
		}
		dec.Record.Release()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/4096, "ns/row")
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N)/4096, "allocs/row")
}

// A view copies rows whole, labels null or not, with new features when
// given; a batch of another schema has no view.
func TestRowView(t *testing.T) {
	rb := arrowio.NewRowBuilder(memory.DefaultAllocator, 2)
	rb.Append("a", t0, []float64{1, 2}, "x", "id0", records.Source{Topic: "t", Partition: 1, Offset: 5})
	rb.AppendBytes([]byte("b"), t0.UnixMilli()+1, []float64{3, 4}, nil, false, []byte("id1"), records.Source{})
	b := rb.NewBatch()
	rb.Release()
	v, err := arrowio.View(b)
	if err != nil || v.Rows() != 2 || v.Dim() != 2 || v.ID(1) != "id1" || v.Key(0) != "a" {
		t.Fatalf("view %+v, %v", v, err)
	}
	out := arrowio.NewRowBuilder(memory.DefaultAllocator, 3)
	defer out.Release()
	v.AppendTo(out, 1, []float64{7, 8, 9})
	v.AppendTo(out, 0, []float64{0, 0, 0})
	c := out.NewBatch()
	w, err := arrowio.View(c)
	if err != nil {
		t.Fatal(err)
	}
	labels := c.Record.Column(arrowio.LabelIndex)
	if w.ID(0) != "id1" || w.Features(0)[2] != 9 || !labels.IsNull(0) || labels.IsNull(1) || arrowio.SourceAt(c.Record, 1).Offset != 5 {
		t.Errorf("copied rows: ids %s %s, features %v, labels null %v %v", w.ID(0), w.ID(1), w.Features(0), labels.IsNull(0), labels.IsNull(1))
	}
	fields := c.Record.Schema().Fields()
	cols := c.Record.Columns()
	fields[arrowio.KeyIndex], cols[arrowio.KeyIndex] = fields[arrowio.TimeIndex], cols[arrowio.TimeIndex]
	bad := array.NewRecord(arrow.NewSchema(fields, nil), cols, c.Record.NumRows())
	defer bad.Release()
	if _, err := arrowio.View(arrowio.Batch{Record: bad}); err == nil {
		t.Error("a view of a batch whose key column is a timestamp")
	}
}
