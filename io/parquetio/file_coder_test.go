package parquetio

import (
	"testing"
	"time"
)

func TestFileCoder(t *testing.T) {
	for _, f := range []File{
		{Path: "/a/date=2024-05-01/hour=13/part-0.parquet", Hour: time.Date(2024, 5, 1, 13, 0, 0, 0, time.UTC), Rows: 90, Bytes: 4096},
		{Path: "/a/date=2024-05-01/part-0.parquet", Hour: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), Daily: true, Rows: 1, Bytes: 1},
	} {
		b, err := encodeFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeFile(b)
		if err != nil || got.Path != f.Path || !got.Hour.Equal(f.Hour) || got.Daily != f.Daily || got.Rows != f.Rows || got.Bytes != f.Bytes {
			t.Errorf("decodeFile(encodeFile(%+v)) = %+v, %v", f, got, err)
		}
		b[len(b)-1] = 2
		if _, err := decodeFile(b); err == nil {
			t.Errorf("decodeFile took a partition flag of 2")
		}
		if _, err := decodeFile(b[:len(b)-1]); err == nil {
			t.Errorf("decodeFile took an encoding without its partition flag")
		}
	}
}
