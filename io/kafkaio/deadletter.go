package kafkaio

import (
	"strconv"
	"time"
)

// Dead-letter headers. A dead letter keeps the original key, value and
// headers and adds these, so it can be understood and replayed.
const (
	// HeaderError names what was wrong with the record.
	HeaderError = "muon.error"
	// HeaderStage names the pipeline stage that refused it (decode, late, inference, ...).
	HeaderStage = "muon.stage"
	// HeaderSourceTopic, HeaderSourcePartition and HeaderSourceOffset are the
	// record's coordinates in the topic it was read from.
	HeaderSourceTopic     = "muon.source.topic"
	HeaderSourcePartition = "muon.source.partition"
	HeaderSourceOffset    = "muon.source.offset"
	// HeaderSourceTime is the record's Kafka timestamp, RFC 3339.
	HeaderSourceTime = "muon.source.time"
)

// DeadLetterSuffix is appended to a source topic's name to name its
// dead-letter topic.
const DeadLetterSuffix = ".dlq"

// DefaultPartitions is the partition count of topics muon creates (replay
// and dead-letter topics) for a spec that names none.
const DefaultPartitions = 4

// DeadLetter returns the dead letter for r: the same key, value and
// headers, bound for r.Topic+suffix, with headers naming the error, the
// stage and r's coordinates. An empty suffix means DeadLetterSuffix.
func DeadLetter(r Record, stage string, cause error, suffix string) Record {
	if suffix == "" {
		suffix = DeadLetterSuffix
	}
	h := make([]Header, 0, len(r.Headers)+6)
	h = append(h, r.Headers...)
	h = append(h,
		Header{Key: HeaderError, Value: []byte(cause.Error())},
		Header{Key: HeaderStage, Value: []byte(stage)},
		Header{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
		Header{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
		Header{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
	)
	if !r.Time.IsZero() {
		h = append(h, Header{Key: HeaderSourceTime, Value: []byte(r.Time.UTC().Format(time.RFC3339Nano))})
	}
	return Record{Topic: r.Topic + suffix, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: h, Time: r.Time}
}
