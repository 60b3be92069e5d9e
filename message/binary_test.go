package message

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/records"
)

// Readings round-trip through the binary format as through JSON, with
// and without a time, and the strings of a reused destination are reused.
func TestBinaryRoundTrip(t *testing.T) {
	fb := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, r := range []records.Reading{
		{Device: "press-07", Time: time.Date(2024, 5, 1, 12, 0, 0, 250_000_001, time.UTC), Values: []records.Value{{Name: "temp", Value: 71.5}, {Name: "vib", Value: -0.031}}, Label: "ok"},
		{Device: "d", Values: []records.Value{{Name: "x", Value: math.MaxFloat64}}},
		{Device: "ünï", Time: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), Values: []records.Value{{Name: "a b", Value: 0}}, Label: "Ünï"},
		{Device: "far", Time: time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC), Values: []records.Value{{Name: "y", Value: -1e-300}}},
	} {
		bin, err := AppendReadingBinary(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		if bin[0] != BinaryMagic {
			t.Fatalf("binary reading starts with %#x", bin[0])
		}
		var got records.Reading
		if err := ParseReading(bin, fb, &got); err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		want := r
		if want.Time.IsZero() {
			want.Time = fb
		}
		if !readingsEqual(got, want) {
			t.Errorf("read back %+v, want %+v", got, want)
		}
		var viaJSON records.Reading
		if err := ParseReading(AppendReading(nil, r), fb, &viaJSON); err != nil || !readingsEqual(viaJSON, got) {
			t.Errorf("JSON gives %+v (%v), binary %+v", viaJSON, err, got)
		}
		if n := testing.AllocsPerRun(50, func() { _ = ParseReading(bin, fb, &got) }); n != 0 {
			t.Errorf("%v allocations decoding into a reused reading", n)
		}
	}
}

// Every truncation, and every rule a JSON reading obeys, is refused with
// the error of its kind.
func TestBinaryRefusals(t *testing.T) {
	good, err := AppendReadingBinary(nil, records.Reading{Device: "d", Time: time.Unix(1, 5), Label: "l",
		Values: []records.Value{{Name: "a", Value: 1}, {Name: "b", Value: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	var r records.Reading
	for n := 1; n < len(good); n++ {
		if err := ParseReading(good[:n], time.Time{}, &r); err == nil {
			t.Fatalf("took the first %d of %d bytes", n, len(good))
		}
	}
	if err := ParseReading(append(good, 0), time.Time{}, &r); !errors.Is(err, ErrSyntax) {
		t.Errorf("a trailing byte: %v", err)
	}
	for name, tt := range map[string]struct {
		data []byte
		want error
	}{
		"version 2":       {[]byte{BinaryMagic, 2, 1, 'd', 0, 0, 1, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0}, ErrSyntax},
		"empty device":    {[]byte{BinaryMagic, 1, 0, 0, 0, 1, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0}, ErrMissingDevice},
		"no values":       {[]byte{BinaryMagic, 1, 1, 'd', 0, 0, 0}, ErrMissingValues},
		"empty name":      {[]byte{BinaryMagic, 1, 1, 'd', 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrValueName},
		"NaN":             {[]byte{BinaryMagic, 1, 1, 'd', 0, 0, 1, 1, 'a', 1, 0, 0, 0, 0, 0, 0xf8, 0x7f}, ErrNonNumeric},
		"duplicate name":  {[]byte{BinaryMagic, 1, 1, 'd', 0, 0, 2, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0}, ErrDuplicateValue},
		"bad UTF-8":       {[]byte{BinaryMagic, 1, 1, 0xff, 0, 0, 1, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0}, ErrSyntax},
		"time flag 2":     {[]byte{BinaryMagic, 1, 1, 'd', 2, 0, 1, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0}, ErrSyntax},
		"year 10000":      {append([]byte{BinaryMagic, 1, 1, 'd', 1}, append(varint(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()), 0, 0, 1, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0)...), ErrBadTimestamp},
		"a billion nanos": {[]byte{BinaryMagic, 1, 1, 'd', 1, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03, 0, 1, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0}, ErrSyntax},
		"huge length":     {[]byte{BinaryMagic, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrSyntax},
	} {
		err := ParseReading(tt.data, time.Time{}, &r)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "\x00") {
			t.Errorf("%s: the error carries raw bytes: %q", name, err)
		}
	}
	if _, err := AppendReadingBinary(nil, records.Reading{Device: "d", Values: []records.Value{{Name: "a", Value: math.Inf(1)}}}); !errors.Is(err, ErrNonNumeric) {
		t.Errorf("encoded an infinite value: %v", err)
	}
}

func varint(v int64) []byte {
	var b []byte
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}
