package parquetio_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/records"
)

// Benchmark sizes: a file of 64 Ki rows of 48 features in batches of 4096,
// one row group; SetBytes counts the feature values (8 bytes each).
const benchRows, benchDim, benchBatch = 64 << 10, 48, 4096

func benchBatches(b *testing.B) []arrowio.Batch {
	var out []arrowio.Batch
	for i := 0; i < benchRows; i += benchBatch {
		out = append(out, makeFeatures(memory.DefaultAllocator, benchBatch, benchDim, t0.Add(time.Duration(i)*time.Second), time.Second, "sensors/0/"))
	}
	return out
}

func reportRows(b *testing.B, rows int) {
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkWriteFeatures(b *testing.B) {
	batches := benchBatches(b)
	b.ReportAllocs()
	b.SetBytes(benchRows * benchDim * 8)
	for b.Loop() {
		w, err := parquetio.NewFeatureWriter(io.Discard, parquetio.FeatureOptions{Dim: benchDim})
		if err != nil {
			b.Fatal(err)
		}
		for _, x := range batches {
			if err := w.Write(x); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	reportRows(b, benchRows)
}

func BenchmarkReadFeatures(b *testing.B) {
	data := writeFeatures(b, parquetio.FeatureOptions{Dim: benchDim}, benchBatches(b)...)
	b.ReportAllocs()
	b.SetBytes(benchRows * benchDim * 8)
	for b.Loop() {
		r, err := parquetio.NewFeatureReader(bytes.NewReader(data), int64(len(data)), "bench", parquetio.ReadOptions{Dim: benchDim})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		if err := r.Read(func(x arrowio.Batch) error {
			n += x.Rows()
			x.Record.Release()
			return nil
		}); err != nil || n != benchRows {
			b.Fatal(n, err)
		}
	}
	reportRows(b, benchRows)
	b.ReportMetric(float64(len(data))/benchRows, "file_bytes/row")
}

// Readings: 64 Ki readings of 3 values each; SetBytes counts the values.
func benchReadings() []records.Reading {
	rs := sampleReadings(16)
	out := make([]records.Reading, benchRows)
	for i := range out {
		r := rs[i%len(rs)]
		r.Time = t0.Add(time.Duration(i) * time.Millisecond)
		r.Values = rs[3].Values // 3 values
		r.Source.Offset = int64(i)
		out[i] = r
	}
	return out
}

func BenchmarkWriteReadings(b *testing.B) {
	rs := benchReadings()
	b.ReportAllocs()
	b.SetBytes(benchRows * 3 * 8)
	for b.Loop() {
		w, err := parquetio.NewReadingWriter(io.Discard, parquetio.ReadingOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < len(rs); i += benchBatch {
			if err := w.Write(rs[i : i+benchBatch]...); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	reportRows(b, benchRows)
}

func BenchmarkReadReadings(b *testing.B) {
	data := writeReadings(b, parquetio.ReadingOptions{}, benchReadings()...)
	b.ReportAllocs()
	b.SetBytes(benchRows * 3 * 8)
	for b.Loop() {
		r, err := parquetio.NewReadingReader(bytes.NewReader(data), int64(len(data)), "bench")
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		if err := r.Read(func(records.Reading) error { n++; return nil }); err != nil || n != benchRows {
			b.Fatal(n, err)
		}
	}
	reportRows(b, benchRows)
	b.ReportMetric(float64(len(data))/benchRows, "file_bytes/row")
}
