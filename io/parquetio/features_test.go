package parquetio_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/parquet-go/parquet-go"
)

var t0 = time.Date(2024, 5, 1, 13, 0, 0, 0, time.UTC)

// special are float64s a round trip must keep bit for bit.
var special = []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), math.SmallestNonzeroFloat64, math.MaxFloat64, math.Float64frombits(0x7ff4000000000001)}

// featureBatch builds n rows of dim features with mem: every third row has
// a null label, every third an empty one, special values spread over the
// features, and times step seconds apart from start.
func featureBatch(t testing.TB, mem memory.Allocator, n, dim int, start time.Time, step time.Duration) arrowio.Batch {
	t.Helper()
	return makeFeatures(mem, n, dim, start, step, "sensors/1/")
}

// makeFeatures is featureBatch with ids that start with idPrefix.
func makeFeatures(mem memory.Allocator, n, dim int, start time.Time, step time.Duration, idPrefix string) arrowio.Batch {
	b := array.NewRecordBuilder(mem, arrowio.RowSchema(dim))
	defer b.Release()
	fl := b.Field(arrowio.FeaturesIndex).(*array.FixedSizeListBuilder)
	vals := fl.ValueBuilder().(*array.Float64Builder)
	for i := 0; i < n; i++ {
		b.Field(arrowio.KeyIndex).(*array.StringBuilder).Append("dev-" + string(rune('a'+i%5)))
		b.Field(arrowio.TimeIndex).(*array.TimestampBuilder).Append(arrow.Timestamp(start.Add(time.Duration(i) * step).UnixMilli()))
		fl.Append(true)
		for j := 0; j < dim; j++ {
			v := float64(i*dim+j) / 7
			if (i*dim+j)%11 == 3 {
				v = special[(i*dim+j)%len(special)]
			}
			vals.Append(v)
		}
		label := b.Field(arrowio.LabelIndex).(*array.StringBuilder)
		switch i % 3 {
		case 0:
			label.AppendNull()
		case 1:
			label.Append("")
		default:
			label.Append("walk")
		}
		b.Field(arrowio.IDIndex).(*array.StringBuilder).Append(idPrefix + strconv.Itoa(i))
		// Feature files do not keep the source columns: they read back null.
		for _, c := range []int{arrowio.SourceTopicIndex, arrowio.SourcePartitionIndex, arrowio.SourceOffsetIndex} {
			b.Field(c).AppendNull()
		}
	}
	return arrowio.Batch{Record: b.NewRecord()}
}

// sameBatches reports whether the rows of got equal those of want, every
// float compared by its bits.
func sameRows(t *testing.T, want, got []arrowio.Batch) {
	t.Helper()
	type row struct {
		key      string
		time     arrow.Timestamp
		features []uint64
		label    *string
		id       string
	}
	flatten := func(bs []arrowio.Batch) []row {
		var out []row
		for _, b := range bs {
			rec := b.Record
			vals, n, dim, err := arrowio.Features(rec)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				r := row{
					key:  rec.Column(arrowio.KeyIndex).(*array.String).Value(i),
					time: rec.Column(arrowio.TimeIndex).(*array.Timestamp).Value(i),
					id:   rec.Column(arrowio.IDIndex).(*array.String).Value(i),
				}
				for _, v := range vals[i*dim : (i+1)*dim] {
					r.features = append(r.features, math.Float64bits(v))
				}
				if l := rec.Column(arrowio.LabelIndex).(*array.String); l.IsValid(i) {
					s := l.Value(i)
					r.label = &s
				}
				out = append(out, r)
			}
		}
		return out
	}
	w, g := flatten(want), flatten(got)
	if len(w) != len(g) {
		t.Fatalf("%d rows, want %d", len(g), len(w))
	}
	for i := range w {
		if !reflect.DeepEqual(w[i], g[i]) {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, g[i], w[i])
		}
	}
}

func writeFeatures(t testing.TB, o parquetio.FeatureOptions, batches ...arrowio.Batch) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := parquetio.NewFeatureWriter(&buf, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readFeatures(t *testing.T, data []byte, o parquetio.ReadOptions) []arrowio.Batch {
	t.Helper()
	r, err := parquetio.NewFeatureReader(bytes.NewReader(data), int64(len(data)), "test.parquet", o)
	if err != nil {
		t.Fatal(err)
	}
	var out []arrowio.Batch
	if err := r.Read(func(b arrowio.Batch) error {
		out = append(out, b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func release(bs []arrowio.Batch) {
	for _, b := range bs {
		b.Record.Release()
	}
}

func TestFeaturesRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name                       string
		rows, dim, groupRows, read int
	}{
		{"empty", 0, 3, 0, 0},
		{"one row", 1, 1, 0, 0},
		{"small", 7, 3, 0, 0},
		{"row groups and batches", 1000, 48, 300, 128},
		{"batch of one", 10, 2, 4, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			b := featureBatch(t, mem, tt.rows, tt.dim, t0, 1500*time.Millisecond)
			defer b.Record.Release()
			// Written as a batch and two slices of it.
			half := int64(tt.rows / 2)
			s1, s2 := b.Record.NewSlice(0, half), b.Record.NewSlice(half, int64(tt.rows))
			defer s1.Release()
			defer s2.Release()
			data := writeFeatures(t, parquetio.FeatureOptions{Dim: tt.dim, RowGroupRows: tt.groupRows}, b, arrowio.Batch{Record: s1}, arrowio.Batch{Record: s2})
			got := readFeatures(t, data, parquetio.ReadOptions{Dim: tt.dim, BatchRows: tt.read, Mem: mem})
			defer release(got)
			sameRows(t, []arrowio.Batch{b, b}, got)
			max := tt.read
			if max == 0 {
				max = parquetio.DefaultBatchRows
			}
			for i, g := range got {
				if g.Rows() > max || g.Rows() == 0 {
					t.Errorf("batch %d has %d rows, want 1 to %d", i, g.Rows(), max)
				}
				if !g.Record.Schema().Equal(arrowio.RowSchema(tt.dim)) {
					t.Errorf("batch %d schema %s", i, g.Record.Schema())
				}
			}
		})
	}
}

func TestFeatureMetadata(t *testing.T) {
	names := []string{"ax", "ay", "az"}
	data := writeFeatures(t, parquetio.FeatureOptions{Dim: 3, Names: names, RowGroupRows: 2})
	r, err := parquetio.NewFeatureReader(bytes.NewReader(data), int64(len(data)), "x.parquet", parquetio.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Dim() != 3 || !reflect.DeepEqual(r.Names(), names) || r.Rows() != 0 || r.RowGroups() != 0 {
		t.Errorf("Dim %d, Names %q, Rows %d, RowGroups %d", r.Dim(), r.Names(), r.Rows(), r.RowGroups())
	}
	if f, _ := r.Metadata(parquetio.MetaFormat); f != parquetio.FormatFeatures {
		t.Errorf("format %q", f)
	}
}

func TestFeatureWriterRefuses(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, o := range []parquetio.FeatureOptions{{Dim: 0}, {Dim: 2, Names: []string{"a"}}, {Dim: 1, RowGroupRows: -1}} {
		if _, err := parquetio.NewFeatureWriter(&bytes.Buffer{}, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	w, err := parquetio.NewFeatureWriter(&bytes.Buffer{}, parquetio.FeatureOptions{Dim: 2})
	if err != nil {
		t.Fatal(err)
	}
	b := featureBatch(t, mem, 3, 4, t0, time.Second)
	defer b.Record.Release()
	if err := w.Write(b); !errors.Is(err, parquetio.ErrDim) {
		t.Errorf("writing 4 features to a file of 2: %v, want ErrDim", err)
	}
	// A null feature has no place in the file: refused, not written as 0.
	rb := array.NewRecordBuilder(mem, arrowio.RowSchema(2))
	defer rb.Release()
	rb.Field(arrowio.KeyIndex).(*array.StringBuilder).Append("k")
	rb.Field(arrowio.TimeIndex).(*array.TimestampBuilder).Append(0)
	fl := rb.Field(arrowio.FeaturesIndex).(*array.FixedSizeListBuilder)
	fl.Append(true)
	fl.ValueBuilder().(*array.Float64Builder).AppendValues([]float64{1, 2}, []bool{true, false})
	rb.Field(arrowio.LabelIndex).(*array.StringBuilder).AppendNull()
	rb.Field(arrowio.IDIndex).(*array.StringBuilder).Append("i")
	// Feature files do not keep the source columns: they read back null.
	for _, c := range []int{arrowio.SourceTopicIndex, arrowio.SourcePartitionIndex, arrowio.SourceOffsetIndex} {
		rb.Field(c).AppendNull()
	}
	rec := rb.NewRecord()
	defer rec.Release()
	if err := w.Write(arrowio.Batch{Record: rec}); err == nil || !strings.Contains(err.Error(), "null") {
		t.Errorf("writing a null feature: %v", err)
	}
}

// otherFile is a Parquet file another program might have written.
func otherFile(t *testing.T) []byte {
	type row struct {
		Key      string    `parquet:"key"`
		Features []float64 `parquet:"features,list"`
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, []row{{"a", []float64{1}}}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFeatureReaderRefuses(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := featureBatch(t, mem, 50, 4, t0, time.Second)
	good := writeFeatures(t, parquetio.FeatureOptions{Dim: 4, RowGroupRows: 16}, b)
	b.Record.Release()
	readings := writeReadings(t, parquetio.ReadingOptions{}, sampleReadings(3)...)
	for _, tt := range []struct {
		name string
		data []byte
		dim  int
		want error
		says string
	}{
		{"wrong dimension", good, 5, parquetio.ErrDim, "4 features per row, want 5"},
		{"another program's file", otherFile(t), 0, parquetio.ErrNotArchive, "no muon.format"},
		{"readings", readings, 0, parquetio.ErrNotArchive, `"muon.readings.v1", want "muon.features.v1"`},
		{"empty", nil, 0, parquetio.ErrCorrupt, "too short"},
		{"text", []byte("key,time\na,1\n"), 0, parquetio.ErrCorrupt, "no Parquet footer"},
		{"truncated footer", good[:len(good)-20], 0, parquetio.ErrCorrupt, "not a Parquet file, or truncated"},
		{"footer length too large", append(append([]byte(nil), good[:len(good)-8]...), 0xff, 0xff, 0xff, 0x7f, 'P', 'A', 'R', '1'), 0, parquetio.ErrCorrupt, "footer of"},
		{"first half", append(good[:len(good)/2:len(good)/2], good[len(good)-8:]...), 0, parquetio.ErrCorrupt, "corrupt"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := readAll(tt.data, tt.dim, mem)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want %v saying %q", err, tt.want, tt.says)
			}
			if !strings.Contains(err.Error(), "x.parquet") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// readAll reads every batch of data and releases it.
func readAll(data []byte, dim int, mem memory.Allocator) error {
	r, err := parquetio.NewFeatureReader(bytes.NewReader(data), int64(len(data)), "x.parquet", parquetio.ReadOptions{Dim: dim, BatchRows: 7, Mem: mem})
	if err != nil {
		return err
	}
	return r.Read(func(b arrowio.Batch) error {
		b.Record.Release()
		return nil
	})
}

// Damage anywhere in the data pages gives an error or the rows, and never
// leaks: flipping bytes of a valid file one at a time.
func TestFeatureReaderDamagedPages(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := featureBatch(t, mem, 40, 3, t0, time.Second)
	good := writeFeatures(t, parquetio.FeatureOptions{Dim: 3, RowGroupRows: 16}, b)
	b.Record.Release()
	failed := 0
	for i := 4; i < len(good)-8; i += 3 {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x5a
		if err := readAll(bad, 3, mem); err != nil {
			failed++
			if !errors.Is(err, parquetio.ErrCorrupt) && !errors.Is(err, parquetio.ErrNotArchive) && !errors.Is(err, parquetio.ErrDim) {
				t.Errorf("byte %d: %v does not wrap a sentinel error", i, err)
			}
		}
	}
	if failed == 0 {
		t.Error("no damaged file was refused")
	}
}

func TestOpenFeatures(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := featureBatch(t, mem, 5, 2, t0, time.Second)
	defer b.Record.Release()
	path := filepath.Join(t.TempDir(), "f.parquet")
	if err := os.WriteFile(path, writeFeatures(t, parquetio.FeatureOptions{Dim: 2}, b), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := parquetio.OpenFeatures(path, parquetio.ReadOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	var got []arrowio.Batch
	if err := r.ReadRowGroup(0, func(b arrowio.Batch) error { got = append(got, b); return nil }); err != nil {
		t.Fatal(err)
	}
	defer release(got)
	sameRows(t, []arrowio.Batch{b}, got)
	if err := r.ReadRowGroup(1, nil); err == nil {
		t.Error("row group 1 of 1: no error")
	}
	stop := errors.New("stop")
	if err := r.ReadRowGroup(0, func(b arrowio.Batch) error { b.Record.Release(); return stop }); err != stop {
		t.Errorf("emit's error: got %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := parquetio.OpenFeatures(filepath.Join(t.TempDir(), "none.parquet"), parquetio.ReadOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
