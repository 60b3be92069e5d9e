package kafkaio

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/muonml/muon/internal/printable"
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
	// HeaderCut is set on a dead letter too large to write whole: it lists
	// what was shortened or left out ("value", "headers", "key"). The
	// original value's size and digest then travel in HeaderOriginalSize
	// and HeaderOriginalDigest, and its coordinates find it in the source
	// topic while that retains it.
	HeaderCut = "muon.cut"
	// HeaderOriginalSize is the original value's size in bytes, decimal.
	HeaderOriginalSize = "muon.original.size"
	// HeaderOriginalDigest is the original value's SHA-256, "sha256:<hex>".
	HeaderOriginalDigest = "muon.original.digest"
)

// DeadLetterSuffix is appended to a source topic's name to name its
// dead-letter topic.
const DeadLetterSuffix = ".dlq"

// DefaultPartitions is the partition count of topics muon creates (replay
// and dead-letter topics) for a spec that names none.
const DefaultPartitions = 4

// MaxDeadLetterBytes is the most a dead letter's key, value and headers
// take together. It leaves room under DefaultWriteBatchBytes, and so under
// the broker's default message.max.bytes, for the record's framing: a
// record that only just fitted in its source topic would not fit once the
// dead-letter headers are added, and could then block its pipeline on
// every run. A larger dead letter is cut to fit (see HeaderCut).
const MaxDeadLetterBytes = DefaultWriteBatchBytes - 32<<10

// maxErrorBytes caps the error a dead letter carries.
const maxErrorBytes = 4 << 10

// DeadLetter returns the dead letter for r: the same key, value and
// headers, bound for r.Topic+suffix, with headers naming the error, the
// stage and r's coordinates; a nil value becomes an empty one. An empty
// suffix means DeadLetterSuffix. A dead letter over MaxDeadLetterBytes is
// cut to fit, value first (see HeaderCut).
func DeadLetter(r Record, stage string, cause error, suffix string) Record {
	if suffix == "" {
		suffix = DeadLetterSuffix
	}
	muon := make([]Header, 0, 9)
	muon = append(muon,
		Header{Key: HeaderError, Value: []byte(cutString(cause.Error(), maxErrorBytes))},
		Header{Key: HeaderStage, Value: []byte(stage)},
		Header{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
		Header{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
		Header{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
	)
	if !r.Time.IsZero() {
		muon = append(muon, Header{Key: HeaderSourceTime, Value: []byte(r.Time.UTC().Format(time.RFC3339Nano))})
	}
	d := Record{Topic: r.Topic + suffix, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Time: r.Time}
	if d.Value == nil {
		// The reader cannot tell a null value from an empty one; a null
		// dead letter would read as a tombstone, so it is empty.
		d.Value = []byte{}
	}
	if recordBytes(r.Key, r.Value, r.Headers)+headerBytes(muon) <= MaxDeadLetterBytes {
		d.Headers = append(append(make([]Header, 0, len(r.Headers)+len(muon)), r.Headers...), muon...)
		return d
	}
	return cutToFit(d, r.Headers, muon)
}

// cutToFit shortens d's value to MaxDeadLetterBytes, then leaves out the
// original headers and shortens the key if those alone are too large.
func cutToFit(d Record, orig, muon []Header) Record {
	sum := sha256.Sum256(d.Value)
	muon = append(muon,
		Header{Key: HeaderOriginalSize, Value: strconv.AppendInt(nil, int64(len(d.Value)), 10)},
		Header{Key: HeaderOriginalDigest, Value: []byte("sha256:" + hex.EncodeToString(sum[:]))},
		Header{Key: HeaderCut, Value: []byte("value,headers,key")}, // the longest it can say
	)
	var cut []string
	fixed := headerBytes(muon)
	if recordBytes(d.Key, nil, orig)+fixed <= MaxDeadLetterBytes {
		cut = append(cut, "value")
		n := MaxDeadLetterBytes - fixed - recordBytes(d.Key, nil, orig)
		d.Value = d.Value[:n:n]
		d.Headers = append(append(make([]Header, 0, len(orig)+len(muon)), orig...), muon...)
	} else {
		cut = append(cut, "value", "headers")
		d.Value = nil
		if recordBytes(d.Key, nil, nil)+fixed > MaxDeadLetterBytes {
			cut = append(cut, "key")
			d.Key = d.Key[:MaxDeadLetterBytes-fixed-recordBytes(nil, nil, nil)]
		}
		d.Headers = muon
	}
	d.Headers[len(d.Headers)-1].Value = []byte(strings.Join(cut, ","))
	return d
}

// recordOverhead and headerOverhead bound what Kafka's record encoding
// adds to a record's key and value and to each header (varint lengths,
// attributes, deltas), so sizes computed here never undercount.
const (
	recordOverhead = 64
	headerOverhead = 10
)

func recordBytes(key, value []byte, headers []Header) int {
	return recordOverhead + len(key) + len(value) + headerBytes(headers)
}

func headerBytes(hs []Header) int {
	n := 0
	for _, h := range hs {
		n += headerOverhead + len(h.Key) + len(h.Value)
	}
	return n
}

// cutString shortens s to at most max bytes at a rune boundary, marking
// the cut.
func cutString(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = "… (cut)"
	n := max - len(mark)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + mark
}

// DeadLetterReason is the kind of error a dead letter records, as its
// stage and the first two parts of its error ("decode: message: invalid
// JSON"), without per-record detail: what summaries and metrics count.
func DeadLetterReason(stage, msg string) string {
	parts := strings.SplitN(msg, ": ", 3)
	if len(parts) >= 2 {
		msg = parts[0] + ": " + parts[1]
	}
	return printable.String(stage+": "+msg, maxReasonRunes)
}

// maxReasonRunes caps a dead-letter reason.
const maxReasonRunes = 160
