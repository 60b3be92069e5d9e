package kafkaio

import (
	"errors"
	"fmt"
	"time"
)

// StartKind says where a read starts in each partition.
type StartKind int

const (
	// StartEarliest starts at the earliest retained offset.
	StartEarliest StartKind = iota
	// StartLatest starts at the high watermark when the pipeline starts:
	// only records produced afterwards are read.
	StartLatest
	// StartOffsets starts at explicit offsets per partition.
	StartOffsets
	// StartTime starts at the first offset whose timestamp is at or after a time.
	StartTime
)

// String returns the name used in job specs.
func (k StartKind) String() string {
	switch k {
	case StartEarliest:
		return "earliest"
	case StartLatest:
		return "latest"
	case StartOffsets:
		return "offsets"
	case StartTime:
		return "timestamp"
	}
	return fmt.Sprintf("StartKind(%d)", int(k))
}

// Start says where a read starts.
type Start struct {
	Kind StartKind
	// Offsets maps partition → first offset to read, for StartOffsets.
	// Partitions not listed start at the earliest offset. An offset below
	// the earliest retained one starts at the earliest.
	Offsets map[int]int64
	// Time is the start time for StartTime.
	Time time.Time
}

// Defaults that Params overrides.
const (
	// DefaultCheckpointRecords is how many records an unbounded read emits
	// before it checkpoints itself.
	DefaultCheckpointRecords = 20000
	// DefaultCheckpointInterval is how long an unbounded read runs before it
	// checkpoints itself.
	DefaultCheckpointInterval = time.Second
	// DefaultIdleTimeout is how long a caught-up partition stays without new
	// records before its watermark advances with the wall clock.
	DefaultIdleTimeout = 2 * time.Second
	// DefaultFetchMaxBytes is the most bytes one fetch asks for.
	DefaultFetchMaxBytes = 8 << 20
	// DefaultFetchMaxWait is how long the broker may hold a fetch waiting
	// for data.
	DefaultFetchMaxWait = 250 * time.Millisecond
	// DefaultBatchRecords is the most records one ReadBatches element holds.
	DefaultBatchRecords = 4096
	// DefaultDialTimeout bounds connecting to a broker.
	DefaultDialTimeout = 10 * time.Second
	// DefaultFetchConns is how many connections fetch one partition in a
	// bounded read.
	DefaultFetchConns = 2
	// DefaultChunkRecords is the chunk of offsets one connection fetches
	// before moving to its next.
	DefaultChunkRecords = 50_000
)

// Params configures Read and ReadBatches.
type Params struct {
	// Brokers are bootstrap addresses, host:port. Required.
	Brokers []string
	// Security is how the read connects: TLS, SASL. Default plaintext.
	Security Security
	// Group, for unbounded reads, is the consumer group whose committed
	// offsets are the read's durable position: each partition starts where
	// the group committed (Start only where it has not), and
	// CommitPositions commits as the pipeline's outputs are written.
	// Default: none (Start decides; positions live in the runner).
	Group string
	// Topics to read. Required.
	Topics []string
	// Partitions restricts the read to these partition numbers. Default: all.
	Partitions []int
	// Start is where each partition starts. Default: earliest.
	Start Start
	// Unbounded reads without end (until Until). Default false: a bounded
	// read captures each partition's end offset when the pipeline starts and
	// ends by itself.
	Unbounded bool
	// Until, for unbounded reads, is the wall time at which the source stops
	// and the pipeline drains. Default: never.
	Until time.Time
	// StopFile, for unbounded reads, is a path whose appearance stops the
	// source and drains the pipeline; it reaches workers in other processes
	// on the same host. Default: none.
	StopFile string
	// CheckpointRecords: an unbounded read checkpoints itself after this many
	// records. Default DefaultCheckpointRecords.
	CheckpointRecords int
	// CheckpointInterval: an unbounded read checkpoints itself after this long.
	// Default DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// IdleTimeout: when a partition has been caught up for this long without
	// new records, its watermark advances to the wall clock minus MaxDelay.
	// Default DefaultIdleTimeout; negative disables idle advancement.
	IdleTimeout time.Duration
	// MaxDelay is how far behind the wall clock an idle partition's watermark
	// stays, to leave room for records still in flight. Default 0.
	MaxDelay time.Duration
	// FetchMaxBytes is the most bytes one fetch asks for. Default DefaultFetchMaxBytes.
	FetchMaxBytes int
	// FetchMaxWait is how long the broker may hold a fetch. Default DefaultFetchMaxWait.
	FetchMaxWait time.Duration
	// BatchRecords is the most records one ReadBatches element holds.
	// Default DefaultBatchRecords.
	BatchRecords int
	// DialTimeout bounds connecting to a broker. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// FetchConns is how many connections a bounded read fetches one
	// partition with, each taking every FetchConns-th chunk of ChunkRecords
	// offsets; records are still claimed and emitted in offset order.
	// Default DefaultFetchConns.
	FetchConns int
	// ChunkRecords is the size, in offsets, of the chunks FetchConns
	// connections share. Default DefaultChunkRecords.
	ChunkRecords int
	// ReconnectFor is how long a partition's read keeps reconnecting, with
	// backoff, to brokers that fail before it gives up: a bounded read then
	// fails; an unbounded one stops that partition's source, keeps what it
	// read, lets the pipeline drain, and reports why in the metric
	// MetricGaveUp. Default DefaultReconnectFor.
	ReconnectFor time.Duration
}

// Errors from parameter validation.
var (
	// ErrNoBrokers means Params.Brokers is empty.
	ErrNoBrokers = errors.New("kafkaio: no brokers")
	// ErrNoTopics means Params.Topics (or the write topic) is empty.
	ErrNoTopics = errors.New("kafkaio: no topics")
	// ErrBadParams means a parameter is out of range.
	ErrBadParams = errors.New("kafkaio: bad parameter")
)

// cluster is where p reads from.
func (p *Params) cluster() Cluster { return Cluster{Brokers: p.Brokers, Security: p.Security} }

func (p *Params) withDefaults() Params {
	q := *p
	if q.CheckpointRecords == 0 {
		q.CheckpointRecords = DefaultCheckpointRecords
	}
	if q.CheckpointInterval == 0 {
		q.CheckpointInterval = DefaultCheckpointInterval
	}
	if q.IdleTimeout == 0 {
		q.IdleTimeout = DefaultIdleTimeout
	}
	if q.FetchMaxBytes == 0 {
		q.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if q.FetchMaxWait == 0 {
		q.FetchMaxWait = DefaultFetchMaxWait
	}
	if q.BatchRecords == 0 {
		q.BatchRecords = DefaultBatchRecords
	}
	if q.DialTimeout == 0 {
		q.DialTimeout = DefaultDialTimeout
	}
	if q.FetchConns == 0 {
		q.FetchConns = DefaultFetchConns
	}
	if q.ChunkRecords == 0 {
		q.ChunkRecords = DefaultChunkRecords
	}
	if q.ReconnectFor == 0 {
		q.ReconnectFor = DefaultReconnectFor
	}
	return q
}

func (p *Params) validate() error {
	if len(p.Brokers) == 0 {
		return ErrNoBrokers
	}
	if err := p.Security.Check(); err != nil {
		return err
	}
	if len(p.Topics) == 0 {
		return ErrNoTopics
	}
	for _, t := range p.Topics {
		if t == "" {
			return fmt.Errorf("%w: empty topic name", ErrBadParams)
		}
	}
	switch p.Start.Kind {
	case StartEarliest, StartLatest:
	case StartTime:
		if p.Start.Time.IsZero() {
			return fmt.Errorf("%w: start at a timestamp needs Start.Time", ErrBadParams)
		}
	case StartOffsets:
		if len(p.Topics) != 1 {
			return fmt.Errorf("%w: explicit start offsets need exactly one topic, have %d", ErrBadParams, len(p.Topics))
		}
		for part, off := range p.Start.Offsets {
			if part < 0 || off < 0 {
				return fmt.Errorf("%w: start offset %d for partition %d", ErrBadParams, off, part)
			}
		}
	default:
		return fmt.Errorf("%w: start kind %d", ErrBadParams, p.Start.Kind)
	}
	if p.FetchConns < 0 || p.ChunkRecords < 0 {
		return fmt.Errorf("%w: negative FetchConns or ChunkRecords", ErrBadParams)
	}
	if p.CheckpointRecords < 0 || p.CheckpointInterval < 0 || p.FetchMaxBytes < 0 || p.FetchMaxWait < 0 || p.BatchRecords < 0 || p.DialTimeout < 0 || p.MaxDelay < 0 || p.ReconnectFor < 0 {
		return fmt.Errorf("%w: negative size or duration", ErrBadParams)
	}
	if (!p.Until.IsZero() || p.StopFile != "") && !p.Unbounded {
		return fmt.Errorf("%w: Until and StopFile apply to unbounded reads only", ErrBadParams)
	}
	return nil
}
