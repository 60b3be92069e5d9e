package parquetio_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/records"
)

// FuzzReadFeatures reads untrusted bytes as a feature file: an error or
// batches of the declared dimension, never a panic or a leak.
func FuzzReadFeatures(f *testing.F) {
	b := makeFeatures(memory.DefaultAllocator, 20, 3, t0, 7*time.Minute, "f/")
	good := writeFeatures(f, parquetio.FeatureOptions{Dim: 3, Names: []string{"x", "y", "z"}, RowGroupRows: 8}, b)
	f.Add(good)
	f.Add(writeFeatures(f, parquetio.FeatureOptions{Dim: 1}))
	f.Add(good[:len(good)/2])
	f.Add(writeReadings(f, parquetio.ReadingOptions{}, sampleReadings(5)...))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		r, err := parquetio.NewFeatureReader(bytes.NewReader(data), int64(len(data)), "fuzz.parquet", parquetio.ReadOptions{BatchRows: 16, Mem: mem})
		if err != nil {
			checkSentinel(t, err)
			return
		}
		err = r.Read(func(b arrowio.Batch) error {
			defer b.Record.Release()
			if _, n, dim, err := arrowio.Features(b.Record); err != nil || dim != r.Dim() || n == 0 || n > 16 {
				t.Errorf("batch of %d×%d (%v) from a file of dimension %d", n, dim, err, r.Dim())
			}
			return nil
		})
		if err != nil {
			checkSentinel(t, err)
		}
	})
}

// FuzzReadReadings reads untrusted bytes as a readings file.
func FuzzReadReadings(f *testing.F) {
	f.Add(writeReadings(f, parquetio.ReadingOptions{RowGroupRows: 4}, sampleReadings(12)...))
	f.Add(writeReadings(f, parquetio.ReadingOptions{}))
	f.Add(writeFeatures(f, parquetio.FeatureOptions{Dim: 2}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parquetio.NewReadingReader(bytes.NewReader(data), int64(len(data)), "fuzz.parquet")
		if err != nil {
			checkSentinel(t, err)
			return
		}
		if err := r.Read(func(records.Reading) error { return nil }); err != nil {
			checkSentinel(t, err)
		}
	})
}

func checkSentinel(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, parquetio.ErrCorrupt) && !errors.Is(err, parquetio.ErrNotArchive) {
		t.Errorf("error %v wraps neither ErrCorrupt nor ErrNotArchive", err)
	}
}
