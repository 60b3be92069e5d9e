package kafkaio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Record)(nil)).Elem())
	beam.RegisterCoder(reflect.TypeOf((*Record)(nil)).Elem(), encodeRecord, decodeRecord)
	beam.RegisterType(reflect.TypeOf((*Records)(nil)).Elem())
	beam.RegisterCoder(reflect.TypeOf((*Records)(nil)).Elem(), encodeRecords, decodeRecords)
}

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one Kafka record with its coordinates.
type Record struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Time      time.Time
}

// Header returns the value of the last header named key, and whether it exists.
func (r *Record) Header(key string) ([]byte, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return r.Headers[i].Value, true
		}
	}
	return nil, false
}

// ID is the record's deterministic identity: topic/partition/offset.
func (r *Record) ID() string {
	return fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
}

// Records is a batch of records travelling as one pipeline element, usually
// one fetch from one partition.
type Records struct {
	Records []Record
}

// errCorruptRecord is returned by the coder for bytes it did not write.
var errCorruptRecord = errors.New("kafkaio: corrupt record encoding")

// minRecordBytes is the smallest encoding of a record: empty topic,
// partition, offset, nil key, nil value, no headers, no time.
const minRecordBytes = 7

// maxCoderLen bounds every length prefix the coder reads (Kafka's own
// message.max.bytes is far lower).
const maxCoderLen = 1 << 30

// AppendRecord appends the coder encoding of r to dst.
func AppendRecord(dst []byte, r *Record) []byte {
	dst = appendString(dst, r.Topic)
	dst = binary.AppendVarint(dst, int64(r.Partition))
	dst = binary.AppendVarint(dst, r.Offset)
	dst = appendBytes(dst, r.Key)
	dst = appendBytes(dst, r.Value)
	dst = binary.AppendUvarint(dst, uint64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = appendString(dst, h.Key)
		dst = appendBytes(dst, h.Value)
	}
	// Seconds and nanoseconds rather than UnixNano: Kafka timestamps are
	// int64 milliseconds, so a producer can send times (before 1678, after
	// 2262) that int64 nanoseconds cannot hold.
	if r.Time.IsZero() {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 1)
		dst = binary.AppendVarint(dst, r.Time.Unix())
		dst = binary.AppendUvarint(dst, uint64(r.Time.Nanosecond()))
	}
	return dst
}

// ReadRecord decodes one record from the front of b and returns the rest.
// Byte slices in r alias b.
func ReadRecord(b []byte, r *Record) ([]byte, error) {
	var d decoder
	d.b = b
	r.Topic = d.string()
	r.Partition = int(d.varint())
	r.Offset = d.varint()
	r.Key = d.bytes()
	r.Value = d.bytes()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = errCorruptRecord
	}
	r.Headers = nil
	if n > 0 && d.err == nil {
		r.Headers = make([]Header, n)
		for i := range r.Headers {
			r.Headers[i].Key = d.string()
			r.Headers[i].Value = d.bytes()
		}
	}
	r.Time = time.Time{}
	switch d.byte() {
	case 0:
	case 1:
		sec, nsec := d.varint(), d.uvarint()
		if nsec >= 1e9 {
			d.err = errCorruptRecord
		}
		r.Time = time.Unix(sec, int64(nsec)).UTC()
	default:
		d.err = errCorruptRecord
	}
	if d.err != nil {
		return nil, d.err
	}
	return d.b, nil
}

func encodeRecord(r Record) ([]byte, error) {
	return AppendRecord(make([]byte, 0, 64+len(r.Key)+len(r.Value)), &r), nil
}

func decodeRecord(b []byte) (Record, error) {
	var r Record
	rest, err := ReadRecord(b, &r)
	if err != nil {
		return Record{}, err
	}
	if len(rest) != 0 {
		return Record{}, fmt.Errorf("%w: %d trailing bytes", errCorruptRecord, len(rest))
	}
	return r, nil
}

func encodeRecords(rs Records) ([]byte, error) {
	size := 8
	for i := range rs.Records {
		size += 48 + len(rs.Records[i].Topic) + len(rs.Records[i].Key) + len(rs.Records[i].Value)
	}
	b := binary.AppendUvarint(make([]byte, 0, size), uint64(len(rs.Records)))
	for i := range rs.Records {
		b = AppendRecord(b, &rs.Records[i])
	}
	return b, nil
}

func decodeRecords(b []byte) (Records, error) {
	n, k := binary.Uvarint(b)
	// Every encoded record takes at least minRecordBytes, which bounds what
	// a corrupt count can make us allocate.
	if k <= 0 || n > uint64(len(b)-k)/minRecordBytes {
		return Records{}, errCorruptRecord
	}
	b = b[k:]
	rs := Records{Records: make([]Record, n)}
	var err error
	for i := range rs.Records {
		if b, err = ReadRecord(b, &rs.Records[i]); err != nil {
			return Records{}, err
		}
	}
	if len(b) != 0 {
		return Records{}, fmt.Errorf("%w: %d trailing bytes", errCorruptRecord, len(b))
	}
	return rs, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendBytes distinguishes nil (length 0) from empty (length 1, no data)
// because Kafka does: a nil key is not an empty key.
func appendBytes(dst []byte, b []byte) []byte {
	if b == nil {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b))+1)
	return append(dst, b...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorruptRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorruptRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errCorruptRecord
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > maxCoderLen || n > uint64(len(d.b)) {
		d.err = errCorruptRecord
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	return string(d.take(d.uvarint()))
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	return d.take(n - 1)
}
