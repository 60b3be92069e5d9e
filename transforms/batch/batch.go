package batch

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/transforms/featurize"
)

func init() {
	register.Function2x2(shardOf)
	register.DoFn4x1[context.Context, int, func(*featurize.Row) bool, func(arrowio.Batch), error](&buildFn{})
	register.DoFn4x1[context.Context, beam.EventTime, featurize.Row, func(beam.EventTime, arrowio.Batch), error](&streamBuildFn{})
	register.Emitter1[arrowio.Batch]()
	register.Emitter2[beam.EventTime, arrowio.Batch]()
	register.Iter1[featurize.Row]()
}

// Params configures Rows.
type Params struct {
	// Dim is the number of features per row. Required.
	Dim int
	// MaxRows is the most rows in one batch. Default DefaultMaxRows.
	MaxRows int
	// Shards is how many groups the rows are spread over before batching,
	// so that several workers build batches at once. Default DefaultShards.
	// Bounded inputs only.
	Shards int
	// Unbounded selects the streaming implementation: rows are batched where
	// they are made, without a shuffle, and a batch is emitted when it has
	// MaxRows rows, when its first row has waited MaxWait, or when the
	// bundle ends, whichever comes first. Default false.
	Unbounded bool
	// MaxWait is the longest a row waits for its batch to fill, in
	// processing time, when Unbounded. Default DefaultMaxWait.
	MaxWait time.Duration
}

// Defaults Params overrides.
const (
	// DefaultMaxRows is the most rows in one batch.
	DefaultMaxRows = 4096
	// DefaultShards is how many groups build batches in parallel.
	DefaultShards = 8
	// DefaultMaxWait is the longest a row waits for its batch in streaming.
	DefaultMaxWait = time.Second
)

// Rows groups rows into Arrow batches: PCollection<featurize.Row> →
// PCollection<arrowio.Batch> with at most MaxRows rows each, per window of
// the input (a bounded input has one). Rows of one key stay in one shard.
// With Unbounded, batches are made as rows stream by (see Params). It
// panics if p is invalid.
func Rows(s beam.Scope, p Params, rows beam.PCollection) beam.PCollection {
	s = s.Scope("batch.Rows")
	if p.MaxRows == 0 {
		p.MaxRows = DefaultMaxRows
	}
	if p.Shards == 0 {
		p.Shards = DefaultShards
	}
	if p.MaxWait == 0 {
		p.MaxWait = DefaultMaxWait
	}
	if p.Dim <= 0 || p.MaxRows < 0 || p.Shards < 0 || p.MaxWait < 0 {
		panic(fmt.Sprintf("batch.Rows: bad params %+v: Dim must be ≥ 1, MaxRows, Shards and MaxWait ≥ 0", p))
	}
	if p.Unbounded {
		return beam.ParDo(s, &streamBuildFn{Dim: p.Dim, MaxRows: p.MaxRows, MaxWait: p.MaxWait}, rows)
	}
	keyed := beam.ParDo(s, shardOf, rows, beam.SideInput{Input: beam.Create(s, p.Shards)})
	return beam.ParDo(s, &buildFn{Dim: p.Dim, MaxRows: p.MaxRows}, beam.GroupByKey(s, keyed))
}

// shardOf keys a row by the hash of its key modulo the shard count.
func shardOf(r featurize.Row, shards int) (int, featurize.Row) {
	h := fnv.New32a()
	h.Write([]byte(r.Key))
	return int(h.Sum32() % uint32(shards)), r
}

// counts counts the rows and batches made, as batch/rows and
// batch/batches.
type counts struct {
	rows, batches beam.Counter
}

func newCounts() counts {
	return counts{rows: beam.NewCounter(Namespace, MetricRows), batches: beam.NewCounter(Namespace, MetricBatches)}
}

// made takes the builder's rows as a batch and counts it. The pipeline
// owns emitted batches.
func (c counts) made(ctx context.Context, rb *arrowio.RowBuilder) arrowio.Batch {
	c.rows.Inc(ctx, int64(rb.Len()))
	c.batches.Inc(ctx, 1)
	return rb.NewBatch()
}

// buildFn builds batches of at most MaxRows rows from one shard.
type buildFn struct {
	Dim     int
	MaxRows int

	c counts
}

func (fn *buildFn) Setup() { fn.c = newCounts() }

func (fn *buildFn) ProcessElement(ctx context.Context, _ int, iter func(*featurize.Row) bool, emit func(arrowio.Batch)) error {
	rb := arrowio.NewRowBuilder(memory.DefaultAllocator, fn.Dim)
	defer rb.Release()
	var r featurize.Row
	for iter(&r) {
		if rb.Len() == 0 {
			rb.Reserve(min(fn.MaxRows, 1024))
		}
		if len(r.Features) != fn.Dim {
			return fmt.Errorf("batch.Rows: row %s of %s has %d features, want %d", r.ID, r.Key, len(r.Features), fn.Dim)
		}
		rb.Append(r.Key, r.Time, r.Features, r.Label, r.ID, r.Source)
		if rb.Len() >= fn.MaxRows {
			emit(fn.c.made(ctx, rb))
		}
	}
	if rb.Len() > 0 {
		emit(fn.c.made(ctx, rb))
	}
	return nil
}

// streamBuildFn batches rows as they stream by. It needs no timers (Flink
// has no processing-time timers for Go), so a batch's wait is bounded by
// MaxWait as rows arrive and by the end of the bundle otherwise.
type streamBuildFn struct {
	Dim     int
	MaxRows int
	MaxWait time.Duration

	c      counts
	rb     *arrowio.RowBuilder
	now    func() time.Time
	first  time.Time      // when the oldest pending row arrived
	newest beam.EventTime // the newest pending row's event time
}

func (fn *streamBuildFn) Setup() {
	fn.rb = arrowio.NewRowBuilder(memory.DefaultAllocator, fn.Dim)
	fn.now = time.Now
	fn.c = newCounts()
}

func (fn *streamBuildFn) ProcessElement(ctx context.Context, et beam.EventTime, r featurize.Row, emit func(beam.EventTime, arrowio.Batch)) error {
	if len(r.Features) != fn.Dim {
		return fmt.Errorf("batch.Rows: row %s of %s has %d features, want %d", r.ID, r.Key, len(r.Features), fn.Dim)
	}
	now := fn.now()
	if fn.rb.Len() == 0 {
		fn.first, fn.newest = now, et
		fn.rb.Reserve(min(fn.MaxRows, 1024))
	}
	fn.rb.Append(r.Key, r.Time, r.Features, r.Label, r.ID, r.Source)
	fn.newest = max(fn.newest, et)
	if fn.rb.Len() >= fn.MaxRows || now.Sub(fn.first) >= fn.MaxWait {
		emit(fn.newest, fn.c.made(ctx, fn.rb))
	}
	return nil
}

func (fn *streamBuildFn) FinishBundle(ctx context.Context, emit func(beam.EventTime, arrowio.Batch)) {
	if fn.rb.Len() > 0 {
		emit(fn.newest, fn.c.made(ctx, fn.rb))
	}
}

func (fn *streamBuildFn) Teardown() {
	if fn.rb != nil {
		fn.rb.Release()
	}
}

// Metric names, in namespace Namespace: the rows batched and the batches
// made.
const (
	Namespace     = "batch"
	MetricRows    = "rows"
	MetricBatches = "batches"
)
