package message

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/muonml/muon/records"
)

// BinaryMagic starts every reading in the binary format: a byte that never
// starts JSON text (which starts with '{' or white space), so that one
// topic can carry both and ParseReading tells them apart by their first
// byte.
const BinaryMagic = 0xB7

// binaryVersion is the version of the binary format after the magic.
const binaryVersion = 1

// The binary reading format, for producers who want speed (the JSON
// contract stays; a topic may carry both):
//
//	magic     0xB7
//	version   1
//	device    uvarint length, UTF-8 bytes
//	time      0 (none: the record's timestamp stands in), or 1 then
//	          zigzag varint Unix seconds and uvarint nanoseconds
//	label     uvarint length, UTF-8 bytes (0: none)
//	values    uvarint count, then per value: uvarint name length, UTF-8
//	          name bytes, float64 little-endian
//
// Everything ParseReading checks of a JSON reading holds: a device, at
// least one value, non-empty unique names, finite values, valid UTF-8,
// a time within the years 0000–9999, at most MaxReadingBytes, nothing
// after the last value.

// AppendReadingBinary appends r in the binary format to dst. It refuses
// what ParseReading would refuse (ValidateReading).
func AppendReadingBinary(dst []byte, r records.Reading) ([]byte, error) {
	if err := ValidateReading(&r); err != nil {
		return dst, err
	}
	dst = append(dst, BinaryMagic, binaryVersion)
	dst = binary.AppendUvarint(dst, uint64(len(r.Device)))
	dst = append(dst, r.Device...)
	if r.Time.IsZero() {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 1)
		dst = binary.AppendVarint(dst, r.Time.Unix())
		dst = binary.AppendUvarint(dst, uint64(r.Time.Nanosecond()))
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Label)))
	dst = append(dst, r.Label...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Values)))
	for _, v := range r.Values {
		dst = binary.AppendUvarint(dst, uint64(len(v.Name)))
		dst = append(dst, v.Name...)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.Value))
	}
	return dst, nil
}

// binReader is a cursor over a binary reading that names the offset of
// what it could not read.
type binReader struct {
	data []byte
	pos  int
	err  error
}

func (b *binReader) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("%w: binary reading at byte %d: %s", ErrSyntax, b.pos, fmt.Sprintf(format, args...))
	}
}

func (b *binReader) uvarint(what string, max uint64) uint64 {
	if b.err != nil {
		return 0
	}
	v, n := binary.Uvarint(b.data[b.pos:])
	if n <= 0 {
		b.fail("%s: truncated or overlong varint", what)
		return 0
	}
	if v > max {
		b.fail("%s %d is more than %d", what, v, max)
		return 0
	}
	b.pos += n
	return v
}

func (b *binReader) bytes(what string) []byte {
	if b.err != nil {
		return nil
	}
	u, k := binary.Uvarint(b.data[b.pos:])
	if k <= 0 || u > uint64(len(b.data)) {
		b.fail("%s length: truncated, overlong or beyond the reading", what)
		return nil
	}
	b.pos += k
	n := int(u)
	if n > len(b.data)-b.pos {
		b.fail("%s of %d bytes, %d left", what, n, len(b.data)-b.pos)
		return nil
	}
	out := b.data[b.pos : b.pos+n]
	b.pos += n
	if !utf8.Valid(out) {
		b.fail("%s is not valid UTF-8", what)
	}
	return out
}

// parseBinary decodes a binary reading into dst as ParseReading does a
// JSON one.
func parseBinary(data []byte, fallback time.Time, dst *records.Reading) error {
	b := binReader{data: data, pos: 1}
	if len(data) < 2 || data[1] != binaryVersion {
		v := -1
		if len(data) >= 2 {
			v = int(data[1])
		}
		return fmt.Errorf("%w: binary reading of version %d (this muon reads version %d)", ErrSyntax, v, binaryVersion)
	}
	b.pos = 2
	device := b.bytes("device")
	if b.err != nil {
		return b.err
	}
	if len(device) == 0 {
		return fmt.Errorf("%w: device is empty", ErrMissingDevice)
	}
	t := fallback
	if b.pos >= len(data) {
		b.fail("truncated before the time")
		return b.err
	}
	switch data[b.pos] {
	case 0:
		b.pos++
	case 1:
		b.pos++
		sec, n := binary.Varint(data[b.pos:])
		if n <= 0 {
			b.fail("time: truncated or overlong varint")
			return b.err
		}
		b.pos += n
		nanos := b.uvarint("nanoseconds", 999_999_999)
		if b.err != nil {
			return b.err
		}
		if sec < minTime.Unix() || sec > maxTime.Unix() {
			return fmt.Errorf("%w: %d seconds since 1970 is outside the years 0000–9999", ErrBadTimestamp, sec)
		}
		t = time.Unix(sec, int64(nanos)).UTC()
	default:
		b.fail("time flag %d, want 0 or 1", data[b.pos])
		return b.err
	}
	label := b.bytes("label")
	count := int(b.uvarint("value count", uint64(len(data))))
	if b.err != nil {
		return b.err
	}
	if count == 0 {
		return fmt.Errorf("%w: no values", ErrMissingValues)
	}
	vals := dst.Values[:0]
	for i := 0; i < count; i++ {
		name := b.bytes("value name")
		if b.err != nil {
			return b.err
		}
		if len(name) == 0 {
			return fmt.Errorf("%w: value %d", ErrValueName, i)
		}
		if len(data)-b.pos < 8 {
			b.fail("value %s: 8 bytes wanted, %d left", quoteForError(string(name)), len(data)-b.pos)
			return b.err
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(data[b.pos:]))
		b.pos += 8
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: value %s is %v", ErrNonNumeric, quoteForError(string(name)), v)
		}
		var old string
		if i < len(dst.Values) {
			old = dst.Values[:cap(dst.Values)][i].Name
		}
		vals = append(vals, records.Value{Name: reuse(old, name), Value: v})
	}
	if b.pos != len(data) {
		return fmt.Errorf("%w: binary reading: %d bytes after the last value", ErrSyntax, len(data)-b.pos)
	}
	if i, j, dup := findDuplicate(vals); dup {
		return fmt.Errorf("%w: %s at positions %d and %d", ErrDuplicateValue, quoteForError(vals[i].Name), i, j)
	}
	dst.Device = reuse(dst.Device, device)
	dst.Label = reuse(dst.Label, label)
	dst.Time = t
	dst.Values = vals
	return nil
}

// reuse is old when it spells b, else a new string of b: a decode loop
// that sees the same names again allocates nothing.
func reuse(old string, b []byte) string {
	if old == string(b) {
		return old
	}
	return string(b)
}
