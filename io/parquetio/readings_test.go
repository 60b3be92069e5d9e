package parquetio_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/records"
)

// sampleReadings are n readings as decode makes them (UTC times, nil
// Values when there are none), covering the edges of the time range and
// values a round trip must keep.
func sampleReadings(n int) []records.Reading {
	times := []time.Time{
		t0.Add(123456789 * time.Nanosecond),      // RFC 3339 with nanoseconds
		time.UnixMilli(1714568400123).UTC(),      // epoch milliseconds
		time.Date(0, 1, 1, 0, 0, 0, 1, time.UTC), // the earliest ts decode accepts
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.UnixMilli(math.MaxInt64).UTC(), // a Kafka timestamp from a broken clock
		time.UnixMilli(math.MinInt64 + 1).UTC(),
		time.UnixMilli(-1).UTC(), // just before the epoch
		{},                       // the zero time
	}
	out := make([]records.Reading, n)
	for i := range out {
		r := records.Reading{
			Device: fmt.Sprintf("dev-%d", i%4),
			Time:   times[i%len(times)],
			Source: records.Source{Topic: "sensors", Partition: i % 3, Offset: int64(1e12) + int64(i)},
		}
		if i%4 == 1 {
			r.Source.Partition = math.MaxInt32
		}
		if i%3 != 0 {
			r.Label = "walk"
		}
		for j := 0; j < i%5; j++ {
			r.Values = append(r.Values, records.Value{Name: fmt.Sprintf("v%d", j), Value: special[(i+j)%len(special)]})
		}
		if i%7 == 6 {
			r.Values = append(r.Values, records.Value{Name: "", Value: -1.5}) // empty name
		}
		out[i] = r
	}
	return out
}

func writeReadings(t testing.TB, o parquetio.ReadingOptions, rs ...records.Reading) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := parquetio.NewReadingWriter(&buf, o)
	if err != nil {
		t.Fatal(err)
	}
	// In two writes, to exercise the writer's reused buffers.
	half := len(rs) / 2
	if err := w.Write(rs[:half]...); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rs[half:]...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readReadings(t *testing.T, data []byte) []records.Reading {
	t.Helper()
	r, err := parquetio.NewReadingReader(bytes.NewReader(data), int64(len(data)), "r.parquet")
	if err != nil {
		t.Fatal(err)
	}
	var out []records.Reading
	if err := r.Read(func(r records.Reading) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameReadings compares readings field by field, floats by their bits and
// times with ==, which also tells a UTC time from a local one.
func sameReadings(t *testing.T, want, got []records.Reading) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d readings, want %d", len(got), len(want))
	}
	bits := func(vs []records.Value) []string {
		var out []string
		for _, v := range vs {
			out = append(out, fmt.Sprintf("%s=%#x", v.Name, math.Float64bits(v.Value)))
		}
		return out
	}
	for i := range want {
		w, g := want[i], got[i]
		if !reflect.DeepEqual(bits(w.Values), bits(g.Values)) || (w.Values == nil) != (g.Values == nil) {
			t.Fatalf("reading %d values %v, want %v", i, bits(g.Values), bits(w.Values))
		}
		if w.Device != g.Device || w.Time != g.Time || w.Label != g.Label || w.Source != g.Source {
			t.Fatalf("reading %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestReadingsRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name      string
		n, groups int
	}{{"none", 0, 0}, {"one", 1, 0}, {"several", 50, 0}, {"row groups", 500, 64}} {
		t.Run(tt.name, func(t *testing.T) {
			want := sampleReadings(tt.n)
			got := readReadings(t, writeReadings(t, parquetio.ReadingOptions{RowGroupRows: tt.groups}, want...))
			sameReadings(t, want, got)
		})
	}
}

func TestReadingWriterRefuses(t *testing.T) {
	w, err := parquetio.NewReadingWriter(&bytes.Buffer{}, parquetio.ReadingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []records.Reading{
		{Device: "d", Time: time.Unix(math.MaxInt64/1000+1, 0)},
		{Device: "d", Time: time.Unix(math.MinInt64/1000-1, 0)},
		{Device: "d", Time: t0, Source: records.Source{Partition: math.MaxInt32 + 1}},
	} {
		if err := w.Write(r); err == nil {
			t.Errorf("%+v: no error", r)
		}
	}
	if _, err := parquetio.NewReadingWriter(&bytes.Buffer{}, parquetio.ReadingOptions{RowGroupRows: -1}); err == nil {
		t.Error("RowGroupRows -1: no error")
	}
}

func TestReadingReaderRefuses(t *testing.T) {
	good := writeReadings(t, parquetio.ReadingOptions{RowGroupRows: 8}, sampleReadings(30)...)
	features := writeFeatures(t, parquetio.FeatureOptions{Dim: 1})
	for _, tt := range []struct {
		name string
		data []byte
		want error
		says string
	}{
		{"features", features, parquetio.ErrNotArchive, `"muon.features.v1", want "muon.readings.v1"`},
		{"another program's file", otherFile(t), parquetio.ErrNotArchive, "no muon.format"},
		{"truncated", good[:len(good)-1], parquetio.ErrCorrupt, "truncated"},
		{"first half", append(good[:len(good)/2:len(good)/2], good[len(good)-8:]...), parquetio.ErrCorrupt, "corrupt"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parquetio.NewReadingReader(bytes.NewReader(tt.data), int64(len(tt.data)), "r.parquet")
			if err == nil {
				err = r.Read(func(records.Reading) error { return nil })
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), "r.parquet") {
				t.Fatalf("got %v, want %v saying %q and naming r.parquet", err, tt.want, tt.says)
			}
		})
	}
}
