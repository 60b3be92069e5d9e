package snapshot

import (
	"encoding/binary"
	"errors"
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
