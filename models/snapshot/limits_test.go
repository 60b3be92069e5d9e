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

// skewedInt8 is the coded stream of a dense all-zero int8 tensor of
// rows×channels positions with zero scales, written as encodeValues
// writes it without the tensor's values in memory: a skewed stream that
// packs thousands of positions in a byte.
func skewedInt8(rows, channels int) []byte {
	e := newRangeEncoder(nil)
	side := newBytesModel(4)
	var zero [4]byte
	for range channels {
		side.encode(e, zero[:])
	}
	i8 := newInt8Model()
	for range rows * channels {
		i8.encode(e, 0)
	}
	return e.finish()
}

// A body's tensors hold at most Limits.MaxParams positions in all,
// however few bytes code them: a coded all-zero int8 tensor of 2^27
// positions (310,206 bytes, which decode to 128 MiB) after another
// tensor is refused before it is decoded, naming the limit.
func TestTensorPositionsLimit(t *testing.T) {
	le := binary.LittleEndian
	stream := skewedInt8(1<<13, 1<<14)
	t.Logf("2^27 positions in %d coded bytes", len(stream))
	raw := le.AppendUint32(nil, 2)
	raw = append(raw, "{}"...)
	raw = append(raw, 0) // no blobs
	raw = le.AppendUint32(raw, 2)
	// b: one float32, dense.
	raw = le.AppendUint16(raw, 1)
	raw = append(raw, 'b', byte(Float32), 1)
	raw = le.AppendUint32(raw, 1)
	raw = append(raw, layoutDense, 0, 0, 0x80, 0x3f)
	// w: 2^13 × 2^14 int8, coded.
	raw = le.AppendUint16(raw, 1)
	raw = append(raw, 'w', byte(Int8), 2)
	raw = le.AppendUint32(le.AppendUint32(raw, 1<<13), 1<<14)
	raw = append(raw, layoutCoded, 0)
	raw = le.AppendUint32(raw, uint32(len(stream)))
	raw = append(raw, stream...)

	var err error
	n := allocated(func() { _, err = decodeBody(raw, 2, Limits{}.withDefaults()) })
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "Limits.MaxParams") {
		t.Fatalf("error %v, want ErrTooLarge naming Limits.MaxParams", err)
	}
	if n > 1<<20 {
		t.Errorf("refusing it allocated %d bytes", n)
	}
	t.Log(err)
	// A limit one lower refuses the tensor alone, and the limit counts
	// plain layouts (version 1) too.
	if _, err := decodeBody(raw, 2, Limits{MaxParams: 1<<27 - 1}.withDefaults()); !errors.Is(err, ErrTooLarge) {
		t.Errorf("limit 2^27 - 1: %v", err)
	}
	plain := le.AppendUint32(nil, 2)
	plain = append(plain, "{}"...)
	plain = le.AppendUint32(plain, 1)
	plain = le.AppendUint16(plain, 1)
	plain = append(plain, 'b', byte(Float32), 1)
	plain = le.AppendUint32(plain, 2)
	plain = append(plain, layoutDense, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40)
	if s, err := decodeBody(plain, 1, Limits{MaxParams: 2}.withDefaults()); err != nil || len(s.Tensors[0].F32) != 2 {
		t.Errorf("2 positions, limit 2: %v", err)
	}
	if _, err := decodeBody(plain, 1, Limits{MaxParams: 1}.withDefaults()); !errors.Is(err, ErrTooLarge) {
		t.Errorf("2 positions, limit 1: %v", err)
	}
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
