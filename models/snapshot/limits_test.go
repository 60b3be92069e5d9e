package snapshot

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// allocated is how many bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A stream cut short is refused where it ends, among the side values
// too: random bytes, long enough for a 2^27-channel int8 tensor's
// scales by their count, decode no further than they reach.
func TestSideValuesStopAtTheEnd(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	coded := make([]byte, 200_000)
	for i := range coded {
		coded[i] = byte(rng.Uint32())
	}
	tt := Tensor{Name: "w", Shape: []int{1, 1 << 27}, DType: Int8}
	if !canHold(coded, 32<<27+1<<27) {
		t.Fatal("the bytes are too few to reach the side values' loop")
	}
	var err error
	n := allocated(func() { err = decodeValues(&tt, coded, false, maskGlobal) })
	if !errors.Is(err, errCoded) {
		t.Fatalf("error %v, want errCoded", err)
	}
	if n > 16<<20 {
		t.Errorf("a stream of %d bytes allocated %d bytes", len(coded), n)
	}
}

// decodeBytes counts 8 decisions a byte: 4 MiB of bytes cannot come
// from 500 coded bytes, and are refused before they are allocated.
func TestDecodeBytesCountsDecisions(t *testing.T) {
	coded := make([]byte, 500)
	var err error
	n := allocated(func() { _, err = decodeBytes(coded, 4<<20, 4) })
	if !errors.Is(err, errCoded) {
		t.Fatalf("error %v, want errCoded", err)
	}
	if n > 64<<10 {
		t.Errorf("refusing it allocated %d bytes", n)
	}
	// What the encoder wrote still reads back, skewed or not.
	for _, data := range [][]byte{make([]byte, 1<<20), {1, 2, 3, 4, 5, 6, 7, 8}} {
		got, err := decodeBytes(encodeBytes(data, 4), len(data), 4)
		if err != nil || string(got) != string(data) {
			t.Fatalf("%d bytes: %v", len(data), err)
		}
	}
}

// A body's blobs add up to at most the manifest's limit as they are
// read: the second of two coded blobs of the limit each is refused
// before it is decoded.
func TestBlobsTotalLimit(t *testing.T) {
	le := binary.LittleEndian
	const limit = 1 << 20
	coded := encodeBytes(make([]byte, limit), 4)
	man := `{"preprocess":{}}`
	raw := le.AppendUint32(nil, uint32(len(man)))
	raw = append(raw, man...)
	raw = append(raw, 20)
	for i := range 20 {
		raw = append(raw, 1, byte('a'+i), blobCoded)
		raw = le.AppendUint32(raw, limit)
		raw = le.AppendUint32(raw, uint32(len(coded)))
		raw = append(raw, coded...)
	}
	raw = le.AppendUint32(raw, 0)
	var err error
	n := allocated(func() { _, err = decodeBody(raw, 2, Limits{MaxManifest: limit}.withDefaults()) })
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), `blob "b"`) || !strings.Contains(err.Error(), "Limits.MaxManifest") {
		t.Fatalf("error %v, want ErrFormat for blob b naming Limits.MaxManifest", err)
	}
	if n > 4*limit {
		t.Errorf("refusing them allocated %d bytes", n)
	}
}
