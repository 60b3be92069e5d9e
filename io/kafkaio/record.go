package kafkaio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/records/wire"
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
	dst = wire.AppendString(dst, r.Topic)
	dst = binary.AppendVarint(dst, int64(r.Partition))
	dst = binary.AppendVarint(dst, r.Offset)
	dst = wire.AppendBytes(dst, r.Key)
	dst = wire.AppendBytes(dst, r.Value)
	dst = binary.AppendUvarint(dst, uint64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = wire.AppendString(dst, h.Key)
		dst = wire.AppendBytes(dst, h.Value)
	}
	return wire.AppendTime(dst, r.Time)
}

// ReadRecord decodes one record from the front of b and returns the rest.
// Byte slices in r alias b.
func ReadRecord(b []byte, r *Record) ([]byte, error) {
	d := wire.NewReader(b, errCorruptRecord)
	d.MaxLen = maxCoderLen
	r.Topic = d.String()
	r.Partition = int(d.Varint())
	r.Offset = d.Varint()
	r.Key = d.Bytes()
	r.Value = d.Bytes()
	n := d.Uvarint()
	if n > uint64(d.Len()) {
		d.Fail()
	}
	r.Headers = nil
	if n > 0 && d.Err() == nil {
		r.Headers = make([]Header, n)
		for i := range r.Headers {
			r.Headers[i].Key = d.String()
			r.Headers[i].Value = d.Bytes()
		}
	}
	r.Time = d.Time()
	if err := d.Err(); err != nil {
		return nil, err
	}
	return d.Rest(), nil
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
