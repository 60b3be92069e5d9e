package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/io/message"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Reading)(nil)).Elem())
	beam.RegisterCoder(reflect.TypeOf((*Reading)(nil)).Elem(), encodeReading, decodeReading)
	beam.RegisterType(reflect.TypeOf((*Image)(nil)).Elem())
	beam.RegisterCoder(reflect.TypeOf((*Image)(nil)).Elem(), encodeImage, decodeImage)
}

// Source is where a record was read: its Kafka coordinates.
type Source struct {
	Topic     string
	Partition int
	Offset    int64
}

// ID is the deterministic identity topic/partition/offset.
func (s Source) ID() string { return fmt.Sprintf("%s/%d/%d", s.Topic, s.Partition, s.Offset) }

// Reading is a decoded sensor reading.
type Reading struct {
	Device string
	Time   time.Time
	Values []message.Value
	Label  string
	Source Source
}

// Image is a decoded image, 8-bit grayscale.
type Image struct {
	Device string
	Label  string
	Time   time.Time
	Width  int
	Height int
	Pix    []byte // row-major, Width×Height
	Source Source
}

var errCorrupt = errors.New("decode: corrupt element encoding")

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime writes a flag (0: zero time) and then Unix seconds and
// nanoseconds. UnixNano would do for today's timestamps, but a zero time
// (a Kafka record without a timestamp) and the years 0000–9999 the message
// contract accepts do not fit in int64 nanoseconds.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func appendSource(b []byte, s Source) []byte {
	b = appendStr(b, s.Topic)
	b = binary.AppendVarint(b, int64(s.Partition))
	return binary.AppendVarint(b, s.Offset)
}

func encodeReading(r Reading) ([]byte, error) {
	b := make([]byte, 0, 48+len(r.Device)+len(r.Label)+len(r.Source.Topic)+len(r.Values)*16)
	b = appendStr(b, r.Device)
	b = appendTime(b, r.Time)
	b = appendStr(b, r.Label)
	b = binary.AppendUvarint(b, uint64(len(r.Values)))
	for _, v := range r.Values {
		b = appendStr(b, v.Name)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Value))
	}
	return appendSource(b, r.Source), nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) take(n uint64) []byte {
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errCorrupt
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string { return string(r.take(r.uvarint())) }

func (r *reader) float64() float64 {
	b := r.take(8)
	if r.err != nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

func (r *reader) time() time.Time {
	flag := r.take(1)
	if r.err != nil || flag[0] == 0 {
		return time.Time{}
	}
	sec, nsec := r.varint(), r.uvarint()
	if flag[0] != 1 || nsec >= 1e9 {
		r.err = errCorrupt
	}
	if r.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (r *reader) source() Source {
	return Source{Topic: r.str(), Partition: int(r.varint()), Offset: r.varint()}
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r.b))
	}
	return r.err
}

func decodeReading(b []byte) (Reading, error) {
	r := reader{b: b}
	var out Reading
	out.Device = r.str()
	out.Time = r.time()
	out.Label = r.str()
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return Reading{}, errCorrupt
	}
	if n > 0 && r.err == nil {
		out.Values = make([]message.Value, n)
		for i := range out.Values {
			out.Values[i].Name = r.str()
			out.Values[i].Value = r.float64()
			if r.err != nil {
				return Reading{}, r.err
			}
		}
	}
	out.Source = r.source()
	return out, r.done()
}

func encodeImage(im Image) ([]byte, error) {
	b := make([]byte, 0, 64+len(im.Pix)+len(im.Device)+len(im.Label))
	b = appendStr(b, im.Device)
	b = appendStr(b, im.Label)
	b = appendTime(b, im.Time)
	b = binary.AppendUvarint(b, uint64(im.Width))
	b = binary.AppendUvarint(b, uint64(im.Height))
	b = binary.AppendUvarint(b, uint64(len(im.Pix)))
	b = append(b, im.Pix...)
	return appendSource(b, im.Source), nil
}

func decodeImage(b []byte) (Image, error) {
	r := reader{b: b}
	var im Image
	im.Device = r.str()
	im.Label = r.str()
	im.Time = r.time()
	w, h := r.uvarint(), r.uvarint()
	im.Pix = r.take(r.uvarint())
	im.Source = r.source()
	if err := r.done(); err != nil {
		return Image{}, err
	}
	if w*h != uint64(len(im.Pix)) || w > math.MaxInt32 || h > math.MaxInt32 {
		return Image{}, fmt.Errorf("%w: %d×%d image with %d pixels", errCorrupt, w, h, len(im.Pix))
	}
	im.Width, im.Height = int(w), int(h)
	return im, nil
}
