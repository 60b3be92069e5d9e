package snapshot

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// A blob is binary data the manifest carries as a base64 string (the
// preprocessing statistics, float32 in base64), stored in a version 2
// body as its bytes, after the manifest. In the JSON, base64 takes 4/3 of
// the bytes' room, and its characters, coded by the same literal table as
// the manifest's text, cost zstd more than that: the float32 statistics of
// 64 features took about 180 bytes more in the file than as bytes beside
// the tensors.
type blob struct {
	key  string
	data []byte
}

// minBlob is the shortest base64 string worth lifting out.
const minBlob = 16

// liftBlobs takes the base64 strings out of a preprocessing spec's
// top-level fields: the spec without them, and the blobs in key order.
// Anything else (not a JSON object, no base64 string) stays as it is.
// restoreBlobs puts them back; the spec's fields may come back in another
// order, with the same values.
func liftBlobs(pre json.RawMessage) (json.RawMessage, []blob, error) {
	var fields map[string]json.RawMessage
	if len(pre) == 0 || json.Unmarshal(pre, &fields) != nil || fields == nil {
		return pre, nil, nil
	}
	var blobs []blob
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		var s string
		if len(k) > 255 || len(blobs) == 255 || json.Unmarshal(fields[k], &s) != nil || len(s) < minBlob {
			continue
		}
		data, err := base64.StdEncoding.DecodeString(s)
		if err != nil || base64.StdEncoding.EncodeToString(data) != s {
			continue
		}
		blobs = append(blobs, blob{k, data})
		delete(fields, k)
	}
	if blobs == nil {
		return pre, nil, nil
	}
	out, err := json.Marshal(fields)
	return out, blobs, err
}

// restoreBlobs puts blobs back into pre as base64 strings, refusing a
// result longer than maxLen.
func restoreBlobs(pre json.RawMessage, blobs []blob, maxLen int) (json.RawMessage, error) {
	if len(blobs) == 0 {
		return pre, nil
	}
	size := len(pre)
	for _, b := range blobs {
		size += len(b.key) + base64.StdEncoding.EncodedLen(len(b.data)) + 6
	}
	if size > maxLen {
		return nil, fmt.Errorf("preprocessing of %d bytes with its blobs (limit %d)", size, maxLen)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(pre, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("blobs for a preprocessing spec that is not a JSON object")
	}
	for _, b := range blobs {
		if _, ok := fields[b.key]; ok {
			return nil, fmt.Errorf("blob %q repeats a field", b.key)
		}
		s, err := json.Marshal(base64.StdEncoding.EncodeToString(b.data))
		if err != nil {
			return nil, err
		}
		fields[b.key] = s
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fields); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Blob encodings.
const (
	blobRaw   = 0 // uint32 length, the bytes
	blobCoded = 1 // uint32 length, uint32 coded length, the bytes range-coded as 4-byte values
)

// appendBlob appends data raw or range-coded as 4-byte values (float32
// statistics), whichever is shorter.
func appendBlob(dst, data []byte) []byte {
	le := binary.LittleEndian
	if len(data)%4 == 0 {
		if coded := encodeBytes(data, 4); len(coded)+4 < len(data) {
			dst = append(dst, blobCoded)
			dst = le.AppendUint32(dst, uint32(len(data)))
			dst = le.AppendUint32(dst, uint32(len(coded)))
			return append(dst, coded...)
		}
	}
	dst = append(dst, blobRaw)
	dst = le.AppendUint32(dst, uint32(len(data)))
	return append(dst, data...)
}

// blob reads what appendBlob wrote, refusing more than maxLen bytes:
// what is left of the manifest's limit.
func (c *body) blob(maxLen int) ([]byte, error) {
	enc := c.u8()
	n := int(c.u32()) // negative above 2^31 where int has 32 bits
	if c.err != nil {
		return nil, c.err
	}
	if n < 0 || n > maxLen {
		return nil, fmt.Errorf("%d bytes, more than the %d left of the manifest's limit (Limits.MaxManifest)", uint32(n), maxLen)
	}
	switch enc {
	case blobRaw:
		return c.take(n), c.err
	case blobCoded:
		coded := c.take(int(c.u32()))
		if c.err != nil {
			return nil, c.err
		}
		return decodeBytes(coded, n, 4)
	}
	return nil, fmt.Errorf("unknown encoding %d", enc)
}
