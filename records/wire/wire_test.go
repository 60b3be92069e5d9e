package wire_test

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/muonml/muon/records/wire"
)

var errBad = errors.New("bad")

func TestRoundTrip(t *testing.T) {
	at := time.Date(3000, 1, 2, 3, 4, 5, 6, time.UTC)
	var b []byte
	b = wire.AppendString(b, "héllo")
	b = wire.AppendBytes(b, nil)
	b = wire.AppendBytes(b, []byte{})
	b = wire.AppendBytes(b, []byte{1, 2})
	b = wire.AppendTime(b, time.Time{})
	b = wire.AppendTime(b, at)
	b = wire.AppendFloat64(b, math.Copysign(0, -1))
	r := wire.NewReader(b, errBad)
	if s := r.String(); s != "héllo" {
		t.Errorf("string %q", s)
	}
	if v := r.Bytes(); v != nil {
		t.Errorf("nil bytes came back as %v", v)
	}
	if v := r.Bytes(); v == nil || len(v) != 0 {
		t.Errorf("empty bytes came back as %v", v)
	}
	if v := r.Bytes(); !bytes.Equal(v, []byte{1, 2}) {
		t.Errorf("bytes %v", v)
	}
	if tm := r.Time(); !tm.IsZero() {
		t.Errorf("zero time came back as %v", tm)
	}
	if tm := r.Time(); !tm.Equal(at) {
		t.Errorf("time %v, want %v", tm, at)
	}
	if f := r.Float64(); f != 0 || !math.Signbit(f) {
		t.Errorf("float %v", f)
	}
	if err := r.Done(); err != nil {
		t.Error(err)
	}
}

func TestCorruptInputs(t *testing.T) {
	good := wire.AppendTime(wire.AppendString(nil, "abc"), time.Unix(5, 7))
	for i := 0; i < len(good); i++ {
		r := wire.NewReader(good[:i], errBad)
		_ = r.String()
		r.Time()
		if !errors.Is(r.Done(), errBad) {
			t.Errorf("truncated at %d: %v", i, r.Done())
		}
	}
	for name, b := range map[string][]byte{
		"bad time flag":     {0, 2},
		"nanoseconds ≥ 1e9": append([]byte{0, 1, 2}, 0x80, 0x94, 0xeb, 0xdc, 0x03),
		"trailing bytes":    {0, 0, 9},
		"huge length":       {0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		r := wire.NewReader(b, errBad)
		_ = r.String()
		r.Time()
		if !errors.Is(r.Done(), errBad) {
			t.Errorf("%s: %v", name, r.Done())
		}
	}
	r := wire.NewReader(wire.AppendString(nil, "abcdef"), errBad)
	r.MaxLen = 3
	if _ = r.String(); !errors.Is(r.Err(), errBad) {
		t.Errorf("a length over MaxLen: %v", r.Err())
	}
}
