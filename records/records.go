package records

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/muonml/muon/records/wire"
)

// Value is one named measurement of a reading.
type Value struct {
	Name  string
	Value float64
}

// Source is where a record was read: its Kafka coordinates.
type Source struct {
	Topic     string
	Partition int
	Offset    int64
}

// ID is the deterministic identity topic/partition/offset.
func (s Source) ID() string {
	b := make([]byte, 0, len(s.Topic)+24)
	b = append(b, s.Topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(s.Partition), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, s.Offset, 10)
	return string(b)
}

// Reading is one sensor reading: the values one device measured at one
// time, and where muon read it. A producer fills in all but Source; the
// message contract (package message) encodes and parses it.
type Reading struct {
	Device string
	// Time is the event time. A zero Time is not encoded, so that the Kafka
	// record timestamp stands in for it.
	Time   time.Time
	Values []Value // in the order they were measured or received
	Label  string  // empty when unlabelled
	// Source is where the reading was read from; zero until it is read.
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

func appendSource(b []byte, s Source) []byte {
	b = wire.AppendString(b, s.Topic)
	b = binary.AppendVarint(b, int64(s.Partition))
	return binary.AppendVarint(b, s.Offset)
}

func readSource(r *wire.Reader) Source {
	return Source{Topic: r.String(), Partition: int(r.Varint()), Offset: r.Varint()}
}

// MarshalReading encodes r in its Beam coder's binary form.
func MarshalReading(r Reading) ([]byte, error) {
	return AppendReadingBinary(make([]byte, 0, 48+len(r.Device)+len(r.Label)+len(r.Source.Topic)+len(r.Values)*16), r), nil
}

// AppendReadingBinary appends r in the binary encoding of its Beam coder,
// for coders of types that hold readings.
func AppendReadingBinary(b []byte, r Reading) []byte {
	b = wire.AppendString(b, r.Device)
	b = wire.AppendTime(b, r.Time)
	b = wire.AppendString(b, r.Label)
	b = binary.AppendUvarint(b, uint64(len(r.Values)))
	for _, v := range r.Values {
		b = wire.AppendString(b, v.Name)
		b = wire.AppendFloat64(b, v.Value)
	}
	return appendSource(b, r.Source)
}

// UnmarshalReading decodes what MarshalReading encoded.
func UnmarshalReading(b []byte) (Reading, error) {
	r := wire.NewReader(b, errCorrupt)
	out := ReadReadingBinary(r)
	if err := r.Done(); err != nil {
		return Reading{}, err
	}
	return out, nil
}

// ReadReadingBinary reads one reading written by AppendReadingBinary. A
// failure is recorded in r (see wire.Reader.Err).
func ReadReadingBinary(r *wire.Reader) Reading {
	var out Reading
	out.Device = r.String()
	out.Time = r.Time()
	out.Label = r.String()
	n := r.Uvarint()
	if n > uint64(r.Len()) {
		r.Fail()
		return Reading{}
	}
	if n > 0 && r.Err() == nil {
		out.Values = make([]Value, n)
		for i := range out.Values {
			out.Values[i].Name = r.String()
			out.Values[i].Value = r.Float64()
			if r.Err() != nil {
				return Reading{}
			}
		}
	}
	out.Source = readSource(r)
	return out
}

// MarshalImage encodes im in its Beam coder's binary form.
func MarshalImage(im Image) ([]byte, error) {
	b := make([]byte, 0, 64+len(im.Pix)+len(im.Device)+len(im.Label))
	b = wire.AppendString(b, im.Device)
	b = wire.AppendString(b, im.Label)
	b = wire.AppendTime(b, im.Time)
	b = binary.AppendUvarint(b, uint64(im.Width))
	b = binary.AppendUvarint(b, uint64(im.Height))
	b = binary.AppendUvarint(b, uint64(len(im.Pix)))
	b = append(b, im.Pix...)
	return appendSource(b, im.Source), nil
}

// UnmarshalImage decodes what MarshalImage encoded.
func UnmarshalImage(b []byte) (Image, error) {
	r := wire.NewReader(b, errCorrupt)
	var im Image
	im.Device = r.String()
	im.Label = r.String()
	im.Time = r.Time()
	w, h := r.Uvarint(), r.Uvarint()
	im.Pix = r.Take(r.Uvarint())
	im.Source = readSource(r)
	if err := r.Done(); err != nil {
		return Image{}, err
	}
	if w*h != uint64(len(im.Pix)) || w > math.MaxInt32 || h > math.MaxInt32 {
		return Image{}, fmt.Errorf("%w: %d×%d image with %d pixels", errCorrupt, w, h, len(im.Pix))
	}
	im.Width, im.Height = int(w), int(h)
	return im, nil
}
