package records

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

var at = time.Date(2024, 5, 1, 12, 0, 0, 250_000_123, time.UTC)

// readingCases are coder round trips: in is encoded, want is what decodes.
var readingCases = []struct {
	name     string
	in, want Reading
}{
	{
		name: "basic motions",
		in: Reading{Device: "BasicMotions_TRAIN-0001", Time: at, Label: "Standing",
			Values: []Value{val("dim0", 0.079106), val("dim1", 0.394032), val("dim2", 0.551444), val("dim3", 0.351565), val("dim4", 0.02381), val("dim5", -0.125399)},
			Source: Source{Topic: "sensors", Partition: 3, Offset: 1234567}},
		want: Reading{Device: "BasicMotions_TRAIN-0001", Time: at, Label: "Standing",
			Values: []Value{val("dim0", 0.079106), val("dim1", 0.394032), val("dim2", 0.551444), val("dim3", 0.351565), val("dim4", 0.02381), val("dim5", -0.125399)},
			Source: Source{Topic: "sensors", Partition: 3, Offset: 1234567}},
	},
	{
		// Kafka records without a timestamp (-1) reach us with a zero Time,
		// and a reading without ts takes it.
		name: "zero time stays zero",
		in:   Reading{Device: "d", Values: []Value{val("a", 1)}},
		want: Reading{Device: "d", Values: []Value{val("a", 1)}},
	},
	{
		name: "time in another zone comes back in UTC",
		in:   Reading{Device: "d", Time: at.In(time.FixedZone("CEST", 2*3600))},
		want: Reading{Device: "d", Time: at},
	},
	{
		// The message contract accepts the years 0000–9999.
		name: "year 9999",
		in:   Reading{Device: "d", Time: time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)},
		want: Reading{Device: "d", Time: time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)},
	},
	{
		name: "year 0",
		in:   Reading{Device: "d", Time: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
		want: Reading{Device: "d", Time: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
	},
	{
		name: "special floats and unicode names",
		in: Reading{Device: "capteur-é🌡", Values: []Value{
			val("température", math.Copysign(0, -1)), val("max", math.MaxFloat64), val("tiny", math.SmallestNonzeroFloat64), val("", 0)}},
		want: Reading{Device: "capteur-é🌡", Values: []Value{
			val("température", math.Copysign(0, -1)), val("max", math.MaxFloat64), val("tiny", math.SmallestNonzeroFloat64), val("", 0)}},
	},
	{
		name: "empty values come back nil",
		in:   Reading{Device: "d", Values: []Value{}, Source: Source{Partition: -1, Offset: math.MaxInt64}},
		want: Reading{Device: "d", Source: Source{Partition: -1, Offset: math.MaxInt64}},
	},
	{name: "zero"},
}

func val(name string, x float64) Value { return Value{Name: name, Value: x} }

// sameReading compares float values bit for bit, so that NaN equals itself
// and -0 differs from 0.
func sameReading(a, b Reading) bool {
	if a.Device != b.Device || a.Label != b.Label || a.Time != b.Time || a.Source != b.Source || len(a.Values) != len(b.Values) {
		return false
	}
	for i := range a.Values {
		if a.Values[i].Name != b.Values[i].Name || math.Float64bits(a.Values[i].Value) != math.Float64bits(b.Values[i].Value) {
			return false
		}
	}
	return true
}

func TestReadingCoderRoundTrip(t *testing.T) {
	for _, tc := range readingCases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := MarshalReading(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnmarshalReading(b)
			if err != nil {
				t.Fatalf("UnmarshalReading(%x): %v", b, err)
			}
			if !sameReading(got, tc.want) || !reflect.DeepEqual(got.Values == nil, tc.want.Values == nil) {
				t.Errorf("round trip:\n got  %#v\n want %#v", got, tc.want)
			}
		})
	}
}

func TestReadingCoderTruncated(t *testing.T) {
	for _, tc := range readingCases {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := MarshalReading(tc.in)
			for i := range len(b) {
				if _, err := UnmarshalReading(b[:i]); !errors.Is(err, errCorrupt) {
					t.Fatalf("UnmarshalReading(first %d of %d bytes): err %v, want %v", i, len(b), err, errCorrupt)
				}
			}
			if _, err := UnmarshalReading(append(b, 0)); !errors.Is(err, errCorrupt) {
				t.Errorf("decodeReading with a trailing byte: err %v, want %v", err, errCorrupt)
			}
		})
	}
}

// imageCases are coder round trips.
var imageCases = []struct {
	name     string
	in, want Image
}{
	{
		name: "tile",
		in: Image{Device: "cam-1", Label: "Blowhole", Time: at, Width: 3, Height: 2, Pix: []byte{0, 1, 2, 253, 254, 255},
			Source: Source{Topic: "images", Partition: 1, Offset: 42}},
		want: Image{Device: "cam-1", Label: "Blowhole", Time: at, Width: 3, Height: 2, Pix: []byte{0, 1, 2, 253, 254, 255},
			Source: Source{Topic: "images", Partition: 1, Offset: 42}},
	},
	{
		name: "zero time stays zero",
		in:   Image{Device: "cam-1", Width: 1, Height: 1, Pix: []byte{7}},
		want: Image{Device: "cam-1", Width: 1, Height: 1, Pix: []byte{7}},
	},
	{
		name: "time beyond 2262",
		in:   Image{Device: "cam-1", Time: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), Width: 1, Height: 1, Pix: []byte{7}},
		want: Image{Device: "cam-1", Time: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), Width: 1, Height: 1, Pix: []byte{7}},
	},
	{
		name: "large",
		in:   Image{Device: "cam-2", Width: 300, Height: 200, Pix: bytes.Repeat([]byte{0x80}, 300*200)},
		want: Image{Device: "cam-2", Width: 300, Height: 200, Pix: bytes.Repeat([]byte{0x80}, 300*200)},
	},
	{
		name: "empty",
		in:   Image{Pix: []byte{}},
		want: Image{Pix: []byte{}},
	},
}

func TestImageCoderRoundTrip(t *testing.T) {
	for _, tc := range imageCases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := MarshalImage(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnmarshalImage(b)
			if err != nil {
				t.Fatalf("decodeImage: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("round trip:\n got  %+v\n want %+v", got, tc.want)
			}
		})
	}
}

func TestImageCoderTruncated(t *testing.T) {
	for _, tc := range imageCases[:3] {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := MarshalImage(tc.in)
			for i := range len(b) {
				if _, err := UnmarshalImage(b[:i]); !errors.Is(err, errCorrupt) {
					t.Fatalf("UnmarshalImage(first %d of %d bytes): err %v, want %v", i, len(b), err, errCorrupt)
				}
			}
			if _, err := UnmarshalImage(append(b, 0)); !errors.Is(err, errCorrupt) {
				t.Errorf("decodeImage with a trailing byte: err %v, want %v", err, errCorrupt)
			}
		})
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
func uv(x uint64) []byte         { return binary.AppendUvarint(nil, x) }
func sv(x int64) []byte          { return binary.AppendVarint(nil, x) }

var (
	zero     = []byte{0}
	overlong = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	// noTime is the encoding of a zero time.
	noTime = []byte{0}
	// someTime is a valid non-zero time.
	someTime = cat([]byte{1}, sv(1714564800), uv(0))
	// emptySource is Source{}.
	emptySource = []byte{0, 0, 0}
)

func TestReadingCoderCorrupt(t *testing.T) {
	// device, time, label, value count, values, source
	if _, err := UnmarshalReading(cat(zero, noTime, zero, uv(0), emptySource)); err != nil {
		t.Fatalf("hand-made Reading{}: %v", err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"device length overlong varint", overlong},
		{"device length max uint64", cat(uv(math.MaxUint64), []byte("dev"))},
		{"device length past the data", cat(uv(4), []byte("dev"))},
		{"time flag 2", cat(zero, []byte{2}, zero, uv(0), emptySource)},
		{"nanoseconds ≥ 1e9", cat(zero, []byte{1}, sv(0), uv(1e9), zero, uv(0), emptySource)},
		{"value count max uint64", cat(zero, noTime, zero, uv(math.MaxUint64), emptySource)},
		{"value count 2^40", cat(zero, noTime, zero, uv(1<<40), emptySource)},
		{"value count past the data", cat(zero, noTime, zero, uv(2), uv(1), []byte("a"), make([]byte, 8), emptySource)},
		{"value name length past the data", cat(zero, noTime, zero, uv(1), uv(200), []byte("a"), make([]byte, 8))},
		// A value cut inside its float64: this used to panic.
		{"value cut inside its float", cat(zero, noTime, zero, uv(1), uv(1), []byte("a"), make([]byte, 7))},
		{"value name eats the float", cat(zero, noTime, zero, uv(1), uv(9), []byte("a"), make([]byte, 8))},
		{"source partition overlong", cat(zero, noTime, zero, uv(0), zero, overlong, zero)},
		{"no source", cat(zero, noTime, zero, uv(0))},
		{"trailing bytes", cat(zero, noTime, zero, uv(0), emptySource, zero)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := UnmarshalReading(tc.in)
			if !errors.Is(err, errCorrupt) {
				t.Errorf("UnmarshalReading(%x) = %+v, %v; want %v", tc.in, r, err, errCorrupt)
			}
		})
	}
}

func TestImageCoderCorrupt(t *testing.T) {
	// device, label, time, width, height, pixels, source
	if _, err := UnmarshalImage(cat(zero, zero, someTime, uv(1), uv(2), uv(2), []byte{1, 2}, emptySource)); err != nil {
		t.Fatalf("hand-made 1×2 image: %v", err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"device length max uint64", cat(uv(math.MaxUint64), []byte("dev"))},
		{"time flag 7", cat(zero, zero, []byte{7}, uv(1), uv(1), uv(1), []byte{1}, emptySource)},
		{"pixels fewer than width×height", cat(zero, zero, someTime, uv(2), uv(2), uv(3), []byte{1, 2, 3}, emptySource)},
		{"pixels more than width×height", cat(zero, zero, someTime, uv(1), uv(1), uv(2), []byte{1, 2}, emptySource)},
		{"pixel length past the data", cat(zero, zero, someTime, uv(1), uv(1), uv(1<<40), []byte{1}, emptySource)},
		{"pixel length max uint64", cat(zero, zero, someTime, uv(1), uv(1), uv(math.MaxUint64), []byte{1}, emptySource)},
		// 2^32 × 2^32 wraps to 0 in uint64: it must not pass as an empty image.
		{"width×height overflows", cat(zero, zero, someTime, uv(1<<32), uv(1<<32), uv(0), emptySource)},
		{"width beyond int32", cat(zero, zero, someTime, uv(1<<31), uv(0), uv(0), emptySource)},
		{"width overlong varint", cat(zero, zero, someTime, overlong)},
		{"no source", cat(zero, zero, someTime, uv(1), uv(1), uv(1), []byte{1})},
		{"trailing bytes", cat(zero, zero, someTime, uv(1), uv(1), uv(1), []byte{1}, emptySource, zero)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im, err := UnmarshalImage(tc.in)
			if !errors.Is(err, errCorrupt) {
				t.Errorf("UnmarshalImage(%x) = %d×%d, %v; want %v", tc.in, im.Width, im.Height, err, errCorrupt)
			}
		})
	}
}

func FuzzDecodeReadingCoder(f *testing.F) {
	for _, tc := range readingCases {
		b, _ := MarshalReading(tc.in)
		f.Add(b)
	}
	f.Add(cat(zero, noTime, zero, uv(1), uv(1), []byte("a"), make([]byte, 7)))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalReading(b)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v does not wrap %v", err, errCorrupt)
			}
			return
		}
		b2, err := MarshalReading(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := UnmarshalReading(b2)
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", r, err)
		}
		if !sameReading(r, r2) {
			t.Fatalf("re-encoding changed the reading:\n first  %#v\n second %#v", r, r2)
		}
	})
}

func FuzzDecodeImageCoder(f *testing.F) {
	for _, tc := range imageCases[:3] {
		b, _ := MarshalImage(tc.in)
		f.Add(b)
	}
	f.Add(cat(zero, zero, someTime, uv(1<<32), uv(1<<32), uv(0), emptySource))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := UnmarshalImage(b)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v does not wrap %v", err, errCorrupt)
			}
			return
		}
		if im.Width*im.Height != len(im.Pix) {
			t.Fatalf("decoded %d×%d image with %d pixels", im.Width, im.Height, len(im.Pix))
		}
		b2, err := MarshalImage(im)
		if err != nil {
			t.Fatal(err)
		}
		im2, err := UnmarshalImage(b2)
		if err != nil {
			t.Fatalf("re-encoded %d×%d image does not decode: %v", im.Width, im.Height, err)
		}
		if !reflect.DeepEqual(im, im2) {
			t.Fatalf("re-encoding changed the image:\n first  %+v\n second %+v", im, im2)
		}
	})
}

// A source's id is topic/partition/offset (DESIGN.md's row ids).
func TestSourceID(t *testing.T) {
	for _, c := range []struct {
		s    Source
		want string
	}{
		{Source{Topic: "digits-test", Partition: 3, Offset: 17}, "digits-test/3/17"},
		{Source{Topic: "t", Partition: -1, Offset: -1}, "t/-1/-1"},
		{Source{Topic: "big", Partition: 1<<31 - 1, Offset: 1<<63 - 1}, "big/2147483647/9223372036854775807"},
	} {
		if got := c.s.ID(); got != c.want {
			t.Errorf("%+v.ID() = %q, want %q", c.s, got, c.want)
		}
	}
}
