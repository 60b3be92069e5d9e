package parquetio

import (
	"bytes"
	"testing"

	"github.com/parquet-go/parquet-go/compress/zstd"
)

func TestCheckZstdFrame(t *testing.T) {
	var codec zstd.Codec // as the writers compress
	for _, n := range []int{1, 255, 256, 70000, 1 << 20} {
		frame, err := codec.Encode(nil, make([]byte, n))
		if err != nil {
			t.Fatal(err)
		}
		r := bytes.NewReader(frame)
		if err := checkZstdFrame(r, 0, int64(len(frame)), int64(n)); err != nil {
			t.Errorf("%d bytes in a page of %d: %v", n, n, err)
		}
		// A page that declares less than its frame: refused, when the frame
		// says its size (from 256 bytes on).
		if err := checkZstdFrame(r, 0, int64(len(frame)), int64(n-1)); (err == nil) != (n < 256) {
			t.Errorf("%d bytes in a page of %d: %v", n, n-1, err)
		}
	}
	for _, bad := range [][]byte{[]byte("PAR1PAR1"), {0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0}} {
		if err := checkZstdFrame(bytes.NewReader(bad), 0, int64(len(bad)), 1<<20); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}

func TestParsePageHeaderRefuses(t *testing.T) {
	for _, bad := range [][]byte{
		nil,
		{0x15},                         // a field cut short
		{0x15, 0x00, 0x00},             // type only
		{0x19, 0xff, 0xff, 0xff},       // a list longer than the bytes
		{0x18, 0xff, 0xff, 0xff, 0x0f}, // a binary longer than the bytes
		bytes.Repeat([]byte{0x1c}, 64), // structs nested too deep
	} {
		if _, _, err := parsePageHeader(bad); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}
