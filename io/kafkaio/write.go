package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/segmentio/kafka-go"
)

func init() {
	register.DoFn4x1[context.Context, beam.EventTime, Record, func(beam.EventTime, int64), error](&writeFn{})
	register.Emitter2[beam.EventTime, int64]()
}

// Acks is how many acknowledgements a write waits for.
type Acks int

const (
	// AcksAll waits for all in-sync replicas (Kafka's acks=all).
	AcksAll Acks = iota
	// AcksLeader waits for the partition leader only (acks=1).
	AcksLeader
	// AcksNone does not wait (acks=0): records may be lost without an error.
	AcksNone
)

// Defaults that WriteParams overrides.
const (
	// DefaultWriteBatch is how many records a write buffers before sending.
	DefaultWriteBatch = 4096
	// DefaultWriteBatchBytes caps the bytes of one record batch per
	// partition; it stays under the brokers' default message.max.bytes
	// (1 MiB + 12 B), which limits a whole record batch, not one record.
	DefaultWriteBatchBytes = 1_000_000
	// DefaultWriteAttempts is how often a failed produce request is tried.
	DefaultWriteAttempts = 10
	// DefaultWriteTimeout bounds one produce request, and the metadata
	// request before it.
	DefaultWriteTimeout = DefaultCallTimeout
)

// WriteParams configures Write.
type WriteParams struct {
	// Brokers are bootstrap addresses, host:port. Required.
	Brokers []string
	// Security is how the writes connect: TLS, SASL. Default plaintext.
	Security Security
	// Topic, when set, is where every record goes; otherwise each record's
	// own Topic field names it (as dead letters do).
	Topic string
	// Acks is the acknowledgement level. Default AcksAll.
	Acks Acks
	// Batch is how many records are buffered before a produce. Default
	// DefaultWriteBatch; the buffer is also flushed at the end of each bundle.
	Batch int
	// BatchBytes caps one produce request per partition. Default DefaultWriteBatchBytes.
	BatchBytes int
	// Attempts is how often a produce is tried before the bundle fails.
	// Default DefaultWriteAttempts.
	Attempts int
	// Timeout bounds one produce request. Default DefaultWriteTimeout.
	Timeout time.Duration
	// KeepPartition writes each record to its Partition field instead of
	// hashing its key. Default false: records with the same key go to the
	// same partition, as Kafka's default partitioner does.
	KeepPartition bool
	// ReconnectFor is how long Write keeps writing what failed again, with
	// backoff, while the brokers fail in a way reconnecting may cure (a
	// restart, a blip), before the bundle fails. Records are written at
	// least once. Default DefaultReconnectFor.
	ReconnectFor time.Duration
}

func (p *WriteParams) withDefaults() WriteParams {
	q := *p
	if q.Batch == 0 {
		q.Batch = DefaultWriteBatch
	}
	if q.BatchBytes == 0 {
		q.BatchBytes = DefaultWriteBatchBytes
	}
	if q.Attempts == 0 {
		q.Attempts = DefaultWriteAttempts
	}
	if q.Timeout == 0 {
		q.Timeout = DefaultWriteTimeout
	}
	if q.ReconnectFor == 0 {
		q.ReconnectFor = DefaultReconnectFor
	}
	return q
}

func (p *WriteParams) validate() error {
	if len(p.Brokers) == 0 {
		return ErrNoBrokers
	}
	if err := p.Security.Check(); err != nil {
		return err
	}
	if p.Acks < AcksAll || p.Acks > AcksNone {
		return fmt.Errorf("%w: acks %d", ErrBadParams, p.Acks)
	}
	if p.Batch < 0 || p.BatchBytes < 0 || p.Attempts < 0 || p.Timeout < 0 || p.ReconnectFor < 0 {
		return fmt.Errorf("%w: negative write batch, attempts or timeout", ErrBadParams)
	}
	return nil
}

// Write produces every record of col (PCollection<Record>) to Kafka, keys
// and headers preserved. A record whose Topic is empty and no
// WriteParams.Topic is set fails the bundle. It returns its
// acknowledgements (PCollection<int64>): when a bundle ends, after every
// record of it has been acknowledged by the brokers, the number of records,
// stamped with the latest event time among them, in the global window (for
// CommitPositions). It panics if p is invalid.
func Write(s beam.Scope, p WriteParams, col beam.PCollection) beam.PCollection {
	s = s.Scope("kafkaio.Write")
	q := p.withDefaults()
	if err := q.validate(); err != nil {
		panic(fmt.Sprintf("kafkaio.Write: %v", err))
	}
	return beam.ParDo(s, &writeFn{Params: q}, col)
}

// NewWriter returns a kafka-go writer configured as Write configures its
// own; producers outside pipelines (muon produce) use it.
func NewWriter(p WriteParams) (*kafka.Writer, error) {
	q := p.withDefaults()
	if err := q.validate(); err != nil {
		return nil, err
	}
	tr, err := q.Security.writerTransport()
	if err != nil {
		return nil, err
	}
	w := &kafka.Writer{
		Addr:                   kafka.TCP(q.Brokers...),
		Transport:              tr,
		Topic:                  q.Topic,
		Balancer:               &kafka.Hash{},
		MaxAttempts:            q.Attempts,
		WriteBackoffMin:        10 * time.Millisecond,
		WriteBackoffMax:        time.Second,
		BatchSize:              q.Batch,
		BatchBytes:             int64(q.BatchBytes),
		BatchTimeout:           time.Millisecond,
		WriteTimeout:           q.Timeout,
		ReadTimeout:            q.Timeout,
		AllowAutoTopicCreation: true,
	}
	switch q.Acks {
	case AcksAll:
		w.RequiredAcks = kafka.RequireAll
	case AcksLeader:
		w.RequiredAcks = kafka.RequireOne
	case AcksNone:
		w.RequiredAcks = kafka.RequireNone
	}
	if q.KeepPartition {
		w.Balancer = partitionField{}
	}
	return w, nil
}

// partitionField sends each message to the partition it names; kafka-go
// exposes the record's intended partition only through the balancer.
type partitionField struct{}

func (partitionField) Balance(m kafka.Message, partitions ...int) int {
	for _, p := range partitions {
		if p == m.Partition {
			return p
		}
	}
	return partitions[0]
}

// Message converts r to a kafka-go message.
func (r *Record) Message() kafka.Message {
	m := kafka.Message{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Time: r.Time}
	if len(r.Headers) > 0 {
		m.Headers = make([]kafka.Header, len(r.Headers))
		for i, h := range r.Headers {
			m.Headers[i] = kafka.Header{Key: h.Key, Value: h.Value}
		}
	}
	return m
}

// writeFn buffers records and produces them synchronously, so an error
// fails the bundle and the runner retries it.
type writeFn struct {
	Params WriteParams

	w       *kafka.Writer
	pending []kafka.Message
	written beam.Counter
	bytes   beam.Counter
	retries beam.Counter
	reasons reasonCounts
	// acked counts the bundle's records, latest is their latest event time.
	acked  int64
	latest beam.EventTime
}

// StartBundle forgets what a failed bundle counted.
func (fn *writeFn) StartBundle(context.Context, func(beam.EventTime, int64)) {
	fn.acked = 0
	fn.pending = fn.pending[:0]
}

func (fn *writeFn) Setup() error {
	w, err := NewWriter(fn.Params)
	if err != nil {
		return err
	}
	// Topic goes on each message so one writer serves records bound for
	// several topics (data and dead letters).
	w.Topic = ""
	fn.w = w
	fn.written = beam.NewCounter(WriteNamespace, MetricRecords)
	fn.bytes = beam.NewCounter(WriteNamespace, MetricBytes)
	fn.retries = beam.NewCounter(WriteNamespace, MetricRetries)
	return nil
}

func (fn *writeFn) ProcessElement(ctx context.Context, ts beam.EventTime, r Record, _ func(beam.EventTime, int64)) error {
	if fn.acked == 0 || ts > fn.latest {
		fn.latest = ts
	}
	fn.acked++
	m := r.Message()
	if fn.Params.Topic != "" {
		m.Topic = fn.Params.Topic
	}
	if m.Topic == "" {
		return fmt.Errorf("kafkaio.Write: record %s has no topic and WriteParams.Topic is empty", r.ID())
	}
	if !fn.Params.KeepPartition {
		m.Partition = 0
	}
	fn.pending = append(fn.pending, m)
	if len(fn.pending) >= fn.Params.Batch {
		return fn.flush(ctx)
	}
	return nil
}

func (fn *writeFn) FinishBundle(ctx context.Context, ack func(beam.EventTime, int64)) error {
	if err := fn.flush(ctx); err != nil {
		return err
	}
	if fn.acked > 0 {
		ack(fn.latest, fn.acked)
		fn.acked = 0
	}
	return nil
}

func (fn *writeFn) flush(ctx context.Context) error {
	if len(fn.pending) == 0 {
		return nil
	}
	retry := func(attempt int, err error) {
		fn.retries.Inc(ctx, 1)
		if attempt == 1 {
			log.Warnf(ctx, "kafkaio.Write to %v: %v; writing again with backoff for up to %v", fn.Params.Brokers, err, fn.Params.ReconnectFor)
		}
	}
	if err := WriteRetrying(ctx, fn.w, fn.pending, fn.Params.ReconnectFor, retry); err != nil {
		return fmt.Errorf("kafkaio.Write to %v: %w", fn.Params.Brokers, err)
	}
	n := 0
	for i := range fn.pending {
		n += len(fn.pending[i].Key) + len(fn.pending[i].Value)
	}
	fn.written.Inc(ctx, int64(len(fn.pending)))
	fn.bytes.Inc(ctx, int64(n))
	fn.reasons.add(ctx, fn.pending)
	clear(fn.pending)
	fn.pending = fn.pending[:0]
	return nil
}

// maxReasons caps the distinct dead-letter reasons one writer counts;
// further ones count as "<stage>: other", so no input can make the
// metrics grow without bound.
const maxReasons = 64

// reasonCounts counts the dead letters a writer wrote by their reason,
// once they are acknowledged: a summary's reasons are this run's.
type reasonCounts struct {
	counters map[string]beam.Counter
}

func (c *reasonCounts) add(ctx context.Context, msgs []kafka.Message) {
	var n map[string]int64
	for i := range msgs {
		reason, ok := deadLetterReason(msgs[i].Headers)
		if !ok {
			continue
		}
		if n == nil {
			n = map[string]int64{}
		}
		n[reason]++
	}
	for reason, k := range n {
		c.counter(reason).Inc(ctx, k)
	}
}

func (c *reasonCounts) counter(reason string) beam.Counter {
	if ctr, ok := c.counters[reason]; ok {
		return ctr
	}
	if c.counters == nil {
		c.counters = map[string]beam.Counter{}
	}
	if len(c.counters) >= maxReasons {
		stage, _, _ := strings.Cut(reason, ": ")
		reason = stage + ": other"
		if ctr, ok := c.counters[reason]; ok {
			return ctr
		}
	}
	ctr := beam.NewCounter(DeadLetterNamespace, reason)
	c.counters[reason] = ctr
	return ctr
}

// deadLetterReason is the reason of a message carrying dead-letter
// headers; false for any other message.
func deadLetterReason(hs []kafka.Header) (string, bool) {
	var msg, stage []byte
	found := false
	for _, h := range hs {
		switch h.Key {
		case HeaderError:
			msg, found = h.Value, true
		case HeaderStage:
			stage = h.Value
		}
	}
	if !found {
		return "", false
	}
	return DeadLetterReason(string(stage), string(msg)), true
}

// WriteError condenses an error from kafka-go's Writer.WriteMessages of n
// messages: a kafka.WriteErrors holds one error per message, which would
// repeat the same cause n times.
func WriteError(err error, n int) error {
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if e != nil {
				return fmt.Errorf("%d of %d records failed: %w", werrs.Count(), n, noAnswer(e))
			}
		}
	}
	return fmt.Errorf("writing %d records: %w", n, noAnswer(err))
}

// noAnswer marks a timeout as ErrNoAnswer; kafka-go's error names the
// broker's address.
func noAnswer(err error) error {
	if timedOut(err) {
		return fmt.Errorf("%w in time: %w", ErrNoAnswer, err)
	}
	return err
}

func (fn *writeFn) Teardown() error {
	if fn.w == nil {
		return nil
	}
	return fn.w.Close()
}
