package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// AppendString appends s with a uvarint length prefix.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// AppendBytes appends b so that nil (length 0) and empty (length 1, no
// data) stay distinct, as Kafka keeps them: a nil key is not an empty key.
func AppendBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b))+1)
	return append(dst, b...)
}

// AppendTime appends a flag (0: the zero time) and then Unix seconds and
// nanoseconds. Seconds and nanoseconds rather than UnixNano: Kafka
// timestamps are int64 milliseconds and the message contract accepts the
// years 0000–9999, which int64 nanoseconds cannot hold.
func AppendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

// AppendFloat64 appends f as 8 little-endian bytes.
func AppendFloat64(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

// Reader reads what the Append functions wrote. Slices it returns alias
// its input.
type Reader struct {
	b       []byte
	corrupt error
	// MaxLen, when set, bounds every length prefix read.
	MaxLen uint64
	err    error
}

// NewReader reads b; every problem is reported as corrupt, the caller's
// sentinel error.
func NewReader(b []byte, corrupt error) *Reader {
	return &Reader{b: b, corrupt: corrupt}
}

// Err is the first problem met, or nil.
func (r *Reader) Err() error { return r.err }

// Rest is what has not been read.
func (r *Reader) Rest() []byte { return r.b }

// Len is how many bytes have not been read.
func (r *Reader) Len() int { return len(r.b) }

// Fail records a problem the caller found, unless one is already recorded.
func (r *Reader) Fail() {
	if r.err == nil {
		r.err = r.corrupt
	}
}

// Done is Err, or an error if bytes are left over.
func (r *Reader) Done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", r.corrupt, len(r.b))
	}
	return r.err
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Varint reads a signed varint.
func (r *Reader) Varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.Fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.Fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// Take reads n bytes.
func (r *Reader) Take(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) || (r.MaxLen > 0 && n > r.MaxLen) {
		r.Fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// String reads what AppendString wrote.
func (r *Reader) String() string { return string(r.Take(r.Uvarint())) }

// Bytes reads what AppendBytes wrote.
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if n == 0 || r.err != nil {
		return nil
	}
	return r.Take(n - 1)
}

// Float64 reads what AppendFloat64 wrote.
func (r *Reader) Float64() float64 {
	b := r.Take(8)
	if r.err != nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// Time reads what AppendTime wrote, in UTC.
func (r *Reader) Time() time.Time {
	switch r.Byte() {
	case 0:
		return time.Time{}
	case 1:
		sec, nsec := r.Varint(), r.Uvarint()
		if nsec >= 1e9 {
			r.Fail()
		}
		if r.err != nil {
			return time.Time{}
		}
		return time.Unix(sec, int64(nsec)).UTC()
	}
	r.Fail()
	return time.Time{}
}
