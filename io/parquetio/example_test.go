package parquetio_test

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/records"
)

// A feature batch written to one Parquet file and read back.
func ExampleFeatureWriter() {
	rb := arrowio.NewRowBuilder(memory.DefaultAllocator, 2)
	defer rb.Release()
	rb.Append("dev-1", time.Date(2024, 5, 1, 13, 0, 0, 0, time.UTC), []float64{0.5, math.NaN()}, "walk", "sensors/0/41", records.Source{Topic: "sensors", Offset: 41})
	rb.Append("dev-2", time.Date(2024, 5, 1, 13, 0, 1, 0, time.UTC), []float64{-1, math.Inf(1)}, "", "sensors/0/42", records.Source{Topic: "sensors", Offset: 42})
	b := rb.NewBatch()
	defer b.Record.Release()

	var buf bytes.Buffer
	w, err := parquetio.NewFeatureWriter(&buf, parquetio.FeatureOptions{Dim: 2, Names: []string{"speed", "slope"}})
	if err != nil {
		panic(err)
	}
	if err := w.Write(b); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}

	r, err := parquetio.NewFeatureReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "example.parquet", parquetio.ReadOptions{Dim: 2})
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Names(), r.Rows(), "rows")
	err = r.Read(func(b arrowio.Batch) error {
		defer b.Record.Release()
		vals, _, _, _ := arrowio.Features(b.Record)
		fmt.Println(vals, b.Record.Column(arrowio.LabelIndex))
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// [speed slope] 2 rows
	// [0.5 NaN -1 +Inf] ["walk" (null)]
}

// Readings archived by the hour of their event time.
func ExampleReadingArchive() {
	root, err := os.MkdirTemp("", "archive")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)

	a, err := parquetio.NewReadingArchive(root, parquetio.ReadingOptions{}, parquetio.ArchiveOptions{})
	if err != nil {
		panic(err)
	}
	t := time.Date(2024, 5, 1, 13, 59, 59, 999_000_001, time.UTC)
	for i := range 3 {
		err := a.Write(records.Reading{
			Device: "dev-1",
			Time:   t.Add(time.Duration(i) * time.Millisecond),
			Values: []records.Value{{Name: "temp", Value: 21.5}},
			Source: records.Source{Topic: "sensors", Partition: 0, Offset: int64(i)},
		})
		if err != nil {
			panic(err)
		}
	}
	files, err := a.Close()
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, filepath.Dir(f.Path))
		fmt.Println(filepath.ToSlash(rel), f.Rows, "readings")
	}

	paths, _ := parquetio.Files(root)
	for _, p := range paths {
		r, err := parquetio.OpenReadings(p)
		if err != nil {
			panic(err)
		}
		r.Read(func(x records.Reading) error {
			fmt.Println(x.Time.Format(time.RFC3339Nano), x.Source.ID(), x.Values)
			return nil
		})
		r.Close()
	}
	// Output:
	// date=2024-05-01/hour=13 1 readings
	// date=2024-05-01/hour=14 2 readings
	// 2024-05-01T13:59:59.999000001Z sensors/0/0 [{temp 21.5}]
	// 2024-05-01T14:00:00.000000001Z sensors/0/1 [{temp 21.5}]
	// 2024-05-01T14:00:00.001000001Z sensors/0/2 [{temp 21.5}]
}
