package kafkaio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/rtrackers/offsetrange"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/internal/printable"
	"github.com/segmentio/kafka-go"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*partitionRange)(nil)).Elem())
	register.DoFn3x1[context.Context, []byte, func(partitionRange), error](&resolveFn{})
	register.Emitter1[partitionRange]()

	register.DoFn4x1[context.Context, *sdf.LockRTracker, partitionRange, func(beam.EventTime, Record), error](&boundedReadFn{})
	register.DoFn4x1[context.Context, *sdf.LockRTracker, partitionRange, func(beam.EventTime, Records), error](&boundedBatchReadFn{})
	register.DoFn6x2[context.Context, *watermarkEstimator, beam.BundleFinalization, *sdf.LockRTracker, partitionRange, func(beam.EventTime, Record), sdf.ProcessContinuation, error](&unboundedReadFn{})
	register.DoFn6x2[context.Context, *watermarkEstimator, beam.BundleFinalization, *sdf.LockRTracker, partitionRange, func(beam.EventTime, Records), sdf.ProcessContinuation, error](&unboundedBatchReadFn{})
	register.Emitter2[beam.EventTime, Record]()
	register.Emitter2[beam.EventTime, Records]()
	register.Function1x1(exportRange)
	beam.RegisterCoder(reflect.TypeOf((*PartitionRange)(nil)).Elem(), encodeRange, decodeRange)
}

// Metrics of the read, incremented once per fetch.
var (
	readRecords = beam.NewCounter(ReadNamespace, MetricRecords)
	readBytes   = beam.NewCounter(ReadNamespace, MetricBytes)
)

// partitionRange is the element of the read: one partition and the offsets
// resolved for it when the pipeline started. End is math.MaxInt64 for
// unbounded reads.
type partitionRange struct {
	Topic     string
	Partition int
	Start     int64
	End       int64
}

// key names the partition: topic/partition.
func (p partitionRange) key() string { return fmt.Sprintf("%s/%d", p.Topic, p.Partition) }

// Read reads Kafka records: PCollection<Record>, one element per record,
// timestamped with the record's Kafka timestamp. It panics if p is invalid.
func Read(s beam.Scope, p Params) beam.PCollection {
	s = s.Scope("kafkaio.Read")
	q := p.withDefaults()
	if err := q.validate(); err != nil {
		panic(fmt.Sprintf("kafkaio.Read: %v", err))
	}
	parts := resolve(s, q)
	base := readBase{Params: q}
	if q.Unbounded {
		return beam.ParDo(s, &unboundedReadFn{unboundedBase{base}}, parts)
	}
	return beam.ParDo(s, &boundedReadFn{readBase: base}, parts)
}

// ReadBatches reads Kafka records as batches: PCollection<Records>, each
// element at most Params.BatchRecords records of one partition in offset
// order, timestamped with its first record's timestamp. Emitting a fetch as
// one element removes the per-element cost of the runner from the hot path.
func ReadBatches(s beam.Scope, p Params) beam.PCollection {
	s = s.Scope("kafkaio.ReadBatches")
	q := p.withDefaults()
	if err := q.validate(); err != nil {
		panic(fmt.Sprintf("kafkaio.ReadBatches: %v", err))
	}
	batches, _ := readBatches(s, q)
	return batches
}

// ReadBatchesRanges is ReadBatches that also returns what it reads:
// PCollection<PartitionRange>, one element a partition, with the offsets
// resolved when the pipeline started. A batch run records them as its
// lineage.
func ReadBatchesRanges(s beam.Scope, p Params) (batches, ranges beam.PCollection) {
	s = s.Scope("kafkaio.ReadBatches")
	q := p.withDefaults()
	if err := q.validate(); err != nil {
		panic(fmt.Sprintf("kafkaio.ReadBatchesRanges: %v", err))
	}
	batches, parts := readBatches(s, q)
	return batches, beam.ParDo(s.Scope("Ranges"), exportRange, parts)
}

func readBatches(s beam.Scope, q Params) (batches, parts beam.PCollection) {
	parts = resolve(s, q)
	base := readBase{Params: q}
	if q.Unbounded {
		return beam.ParDo(s, &unboundedBatchReadFn{unboundedBase{base}}, parts), parts
	}
	return beam.ParDo(s, &boundedBatchReadFn{readBase: base}, parts), parts
}

func exportRange(r partitionRange) PartitionRange {
	return PartitionRange{Topic: r.Topic, Partition: r.Partition, Start: r.Start, End: r.End}
}

// encodeRange and decodeRange are PartitionRange's coder: JSON, which
// every runner passes through as bytes (a side input of structs is
// otherwise decoded by the runner with Beam's schema coder).
func encodeRange(r PartitionRange) ([]byte, error) { return json.Marshal(r) }

func decodeRange(b []byte) (PartitionRange, error) {
	var r PartitionRange
	err := json.Unmarshal(b, &r)
	return r, err
}

func resolve(s beam.Scope, p Params) beam.PCollection {
	return beam.ParDo(s.Scope("Partitions"), &resolveFn{Params: p}, beam.Impulse(s))
}

// resolveFn lists the partitions to read and resolves their start (and, for
// bounded reads, end) offsets. It runs once, when the pipeline starts.
type resolveFn struct {
	Params Params
}

func (fn *resolveFn) ProcessElement(ctx context.Context, _ []byte, emit func(partitionRange)) error {
	ranges, err := ResolveRanges(ctx, fn.Params)
	if err != nil {
		return err
	}
	var rereads int64
	for _, r := range ranges {
		if r.Resumed {
			log.Infof(ctx, "kafkaio: %s/%d resumes at offset %d, where group %s committed", r.Topic, r.Partition, r.Start, fn.Params.Group)
			rereads += r.Rereads
		}
		emit(partitionRange{Topic: r.Topic, Partition: r.Partition, Start: r.Start, End: r.End})
	}
	if rereads > 0 {
		beam.NewCounter(PositionNamespace, MetricRereads).Inc(ctx, rereads)
	}
	return nil
}

// PartitionRange is the offset range a read covers in one partition.
type PartitionRange struct {
	Topic     string
	Partition int
	// Start is the first offset to read.
	Start int64
	// End is one past the last offset for bounded reads, math.MaxInt64 for
	// unbounded ones.
	End int64
	// Resumed says Start is the position Params.Group committed, and
	// Rereads how many records after it the previous run had read when it
	// last committed (so at least that many are read again).
	Resumed bool  `json:",omitempty"`
	Rereads int64 `json:",omitempty"`
}

// ResolveRanges resolves the partitions and offset ranges p reads, as Read
// does when the pipeline starts. Batch runs record them as lineage.
func ResolveRanges(ctx context.Context, p Params) ([]PartitionRange, error) {
	p = p.withDefaults()
	if err := p.validate(); err != nil {
		return nil, err
	}
	l, err := p.cluster().link(p.DialTimeout)
	if err != nil {
		return nil, err
	}
	var out []PartitionRange
	for _, topic := range p.Topics {
		parts, err := lookupPartitions(ctx, l, topic)
		if err != nil {
			return nil, err
		}
		if err := checkPartitions(topic, parts, p); err != nil {
			return nil, err
		}
		var committed map[int]committedPos
		if p.Unbounded && p.Group != "" {
			ids := make([]int, len(parts))
			for i, part := range parts {
				ids[i] = part.ID
			}
			if committed, err = committedOffsets(ctx, l, p.Group, topic, ids); err != nil {
				return nil, err
			}
		}
		for _, part := range parts {
			if len(p.Partitions) > 0 && !containsInt(p.Partitions, part.ID) {
				continue
			}
			// A topic created moments ago may not have its leaders yet
			// (Not Leader For Partition): retry what Kafka marks retriable,
			// within one call's deadline.
			var first, last int64
			rctx, cancel := callContext(ctx)
			err := untilSettled(rctx, func() error {
				var err error
				first, last, err = partitionOffsets(ctx, l, topic, part.ID)
				return err
			})
			cancel()
			if err != nil {
				return nil, err
			}
			start := first
			switch p.Start.Kind {
			case StartLatest:
				start = last
			case StartOffsets:
				if off, ok := p.Start.Offsets[part.ID]; ok {
					start = max(first, min(off, last))
				}
			case StartTime:
				if start, err = offsetForTime(ctx, l, topic, part.ID, p.Start.Time); err != nil {
					return nil, err
				}
				start = max(first, min(start, last))
			}
			r := PartitionRange{Topic: topic, Partition: part.ID}
			if c, ok := committed[part.ID]; ok {
				start, r.Resumed = max(first, min(c.Offset, last)), true
				r.Rereads = max(0, min(c.Read, last)-start)
			}
			end := last
			if p.Unbounded {
				end = math.MaxInt64
			}
			r.Start, r.End = start, max(start, end)
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("kafkaio: topics %v on %v: no partitions matched %v", p.Topics, p.Brokers, p.Partitions)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}

// checkPartitions refuses partitions p names that topic does not have.
func checkPartitions(topic string, parts []kafka.Partition, p Params) error {
	have := make([]int, len(parts))
	for i, part := range parts {
		have[i] = part.ID
	}
	for _, id := range p.Partitions {
		if !containsInt(have, id) {
			return fmt.Errorf("%w: partition %d of %q does not exist (it has %d partitions)", ErrBadParams, id, topic, len(parts))
		}
	}
	for id := range p.Start.Offsets {
		if !containsInt(have, id) {
			return fmt.Errorf("%w: a start offset names partition %d of %q, which does not exist (it has %d partitions)", ErrBadParams, id, topic, len(parts))
		}
	}
	return nil
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// readBase holds what all four read DoFns share: the parameters, the cached
// connections and the partition state that lives in this worker.
type readBase struct {
	Params Params

	conns   map[string]*partitionConn
	lags    map[string]beam.Gauge
	est     *endEstimator
	journal *journal // Params.Group's, for unbounded reads with a group
}

// partitionConn is an open connection to a partition's leader and what this
// worker last saw of the partition.
type partitionConn struct {
	conn *kafka.Conn
	next int64 // the offset the connection is positioned at
	// lastData is when a fetch last returned records; drives idle watermarks.
	lastData time.Time
}

func (fn *readBase) Teardown() error {
	var first error
	for k, pc := range fn.conns {
		if err := pc.conn.Close(); err != nil && first == nil {
			first = err
		}
		delete(fn.conns, k)
	}
	return first
}

func (fn *readBase) CreateInitialRestriction(p partitionRange) offsetrange.Restriction {
	return offsetrange.Restriction{Start: p.Start, End: p.End}
}

func (fn *readBase) SplitRestriction(_ partitionRange, rest offsetrange.Restriction) []offsetrange.Restriction {
	return []offsetrange.Restriction{rest}
}

func (fn *readBase) RestrictionSize(_ partitionRange, rest offsetrange.Restriction) float64 {
	if rest.End != math.MaxInt64 {
		return float64(rest.End - rest.Start)
	}
	if fn.est != nil {
		if hwm := fn.est.hwm.Load(); hwm > rest.Start {
			return float64(hwm - rest.Start)
		}
	}
	return 1
}

func (fn *readBase) CreateTracker(rest offsetrange.Restriction) *sdf.LockRTracker {
	if rest.End != math.MaxInt64 {
		return sdf.NewLockRTracker(offsetrange.NewTracker(rest))
	}
	est := &endEstimator{}
	est.hwm.Store(rest.Start)
	fn.est = est
	rt, err := offsetrange.NewGrowableTracker(rest, est)
	if err != nil {
		panic(err) // only for a nil estimator
	}
	return sdf.NewLockRTracker(orderedTracker{rt})
}

// orderedTracker refuses the runner's dynamic splits of an unbounded
// partition read, keeping only checkpoints (a split at 0): the rest of a
// partition then runs after the bundle that read its beginning, never
// beside it, so each partition's records reach the pipeline in offset
// order, which per-device stream time (featurize.Windows) relies on.
// Parallelism comes from partitions.
type orderedTracker struct {
	*offsetrange.GrowableTracker
}

func (t orderedTracker) TrySplit(fraction float64) (primary, residual any, err error) {
	if fraction > 0 {
		return nil, nil, nil
	}
	return t.GrowableTracker.TrySplit(fraction)
}

// TruncateRestriction ends an unbounded read at what has been claimed when
// the runner drains the pipeline.
func (fn *unboundedBase) TruncateRestriction(rt *sdf.LockRTracker, _ partitionRange) offsetrange.Restriction {
	start := rt.GetRestriction().(offsetrange.Restriction).Start
	return offsetrange.Restriction{Start: start, End: start}
}

// endEstimator estimates the end of a growable range from the high
// watermark that fetches report.
type endEstimator struct {
	hwm atomic.Int64
}

func (e *endEstimator) Estimate() int64 { return e.hwm.Load() }

// watermarkEstimator follows record timestamps and, on idle partitions, the
// wall clock. Its state survives checkpoints.
type watermarkEstimator struct {
	wm time.Time
}

func (e *watermarkEstimator) CurrentWatermark() time.Time { return e.wm }

func (e *watermarkEstimator) advance(t time.Time) {
	if t.After(e.wm) {
		e.wm = t
	}
}

// connFor returns the cached connection to the partition's leader,
// positioned at offset.
func (fn *readBase) connFor(ctx context.Context, p partitionRange, offset int64) (*partitionConn, error) {
	if fn.conns == nil {
		fn.conns = make(map[string]*partitionConn)
	}
	key := fmt.Sprintf("%s/%d", p.Topic, p.Partition)
	pc := fn.conns[key]
	if pc == nil {
		l, err := fn.Params.cluster().link(fn.Params.DialTimeout)
		if err != nil {
			return nil, err
		}
		conn, err := dialLeader(ctx, l, p.Topic, p.Partition)
		if err != nil {
			return nil, err
		}
		pc = &partitionConn{conn: conn, next: -1, lastData: time.Now()}
		fn.conns[key] = pc
	}
	if pc.next != offset {
		// No round trip to check the offset: a fetch at an offset out of
		// range fails with the broker's OffsetOutOfRange, and a check would
		// be one more request to time out under load.
		if _, err := pc.conn.Seek(offset, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
			fn.drop(key)
			return nil, fmt.Errorf("kafkaio: seek %s to %d: %w", key, offset, err)
		}
		pc.next = offset
	}
	return pc, nil
}

// earliest is the oldest offset p's partition still holds.
func (fn *readBase) earliest(ctx context.Context, p partitionRange) (int64, error) {
	l, err := fn.Params.cluster().link(fn.Params.DialTimeout)
	if err != nil {
		return 0, err
	}
	conn, err := dialLeader(ctx, l, p.Topic, p.Partition)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(fn.Params.DialTimeout))
	return conn.ReadFirstOffset()
}

func (fn *readBase) drop(key string) {
	if pc := fn.conns[key]; pc != nil {
		_ = pc.conn.Close()
		delete(fn.conns, key)
	}
}

// fetch reads one fetch batch from pc into dst and returns the records
// appended and the partition's high watermark. On error the connection is
// dropped from the cache.
func (fn *readBase) fetch(p partitionRange, pc *partitionConn, maxWait time.Duration, dst []Record) ([]Record, int64, error) {
	n := len(dst)
	dst, hwm, err := readBatch(p, pc.conn, fn.Params, maxWait, dst, math.MaxInt64)
	if len(dst) > n {
		pc.next = dst[len(dst)-1].Offset + 1
	}
	if err != nil {
		fn.drop(fmt.Sprintf("%s/%d", p.Topic, p.Partition))
		return dst, hwm, fmt.Errorf("kafkaio: fetch %s/%d at offset %d: %w", p.Topic, p.Partition, pc.next, err)
	}
	return dst, hwm, nil
}

// readBatch reads one fetch batch from conn, appending to dst the records
// below stopAt; at the first record at or past stopAt it discards the rest
// of the batch without decoding it.
func readBatch(p partitionRange, conn *kafka.Conn, params Params, maxWait time.Duration, dst []Record, stopAt int64) ([]Record, int64, error) {
	if err := conn.SetDeadline(time.Now().Add(maxWait + params.DialTimeout)); err != nil {
		return dst, 0, err
	}
	batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: params.FetchMaxBytes, MaxWait: maxWait})
	for {
		m, err := batch.ReadMessage()
		if err == nil && m.Offset >= stopAt {
			err = io.EOF
		}
		if err != nil {
			hwm := batch.HighWaterMark()
			cerr := batch.Close()
			// kafka-go reports an empty fetch (nothing arrived within
			// MaxWait) as RequestTimedOut; that is not a failure.
			if errors.Is(err, io.EOF) || errors.Is(err, kafka.RequestTimedOut) {
				err = cerr
				if errors.Is(err, kafka.RequestTimedOut) {
					err = nil
				}
			}
			return dst, hwm, err
		}
		r := Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Time: m.Time}
		if r.Topic == "" {
			r.Topic = p.Topic
		}
		if len(m.Headers) > 0 {
			r.Headers = make([]Header, len(m.Headers))
			for i, h := range m.Headers {
				r.Headers[i] = Header{Key: h.Key, Value: h.Value}
			}
		}
		dst = append(dst, r)
	}
}

// lag sets the gauge of how many records p's partition holds past what
// this read has fetched: Kafka lag, live.
func (fn *readBase) lag(ctx context.Context, p partitionRange, n int64) {
	k := p.key()
	g, ok := fn.lags[k]
	if !ok {
		if fn.lags == nil {
			fn.lags = map[string]beam.Gauge{}
		}
		g = beam.NewGauge(ReadNamespace, MetricLag+"/"+k)
		fn.lags[k] = g
	}
	g.Set(ctx, max(n, 0))
}

func countFetch(ctx context.Context, rs []Record) {
	if len(rs) == 0 {
		return
	}
	n := 0
	for i := range rs {
		n += len(rs[i].Key) + len(rs[i].Value)
	}
	readRecords.Inc(ctx, int64(len(rs)))
	readBytes.Inc(ctx, int64(n))
}

// emitter receives the records of one fetch that the tracker let the DoFn
// claim.
type emitter interface {
	emit(rs []Record)
	flush()
	// keeps reports whether emitted elements may alias rs, so that the
	// caller must not reuse its buffer.
	keeps() bool
}

type recordEmitter struct {
	out func(beam.EventTime, Record)
}

func (e recordEmitter) emit(rs []Record) {
	for i := range rs {
		e.out(mtime.FromTime(rs[i].Time), rs[i])
	}
}

func (e recordEmitter) flush() {}

// keeps is false: each Record is copied into its element.
func (e recordEmitter) keeps() bool { return false }

type batchEmitter struct {
	out  func(beam.EventTime, Records)
	max  int
	pend []Record
}

func (e *batchEmitter) keeps() bool { return true }

func (e *batchEmitter) emit(rs []Record) {
	// Whole batches go out as sub-slices of the fetch buffer, without a
	// copy; only a tail shorter than a batch waits in pend.
	for len(e.pend) == 0 && len(rs) >= e.max {
		e.out(mtime.FromTime(rs[0].Time), Records{Records: rs[:e.max:e.max]})
		rs = rs[e.max:]
	}
	for len(rs) > 0 {
		n := min(len(rs), e.max-len(e.pend))
		e.pend = append(e.pend, rs[:n]...)
		rs = rs[n:]
		if len(e.pend) >= e.max {
			e.flush()
		}
	}
}

func (e *batchEmitter) flush() {
	if len(e.pend) == 0 {
		return
	}
	e.out(mtime.FromTime(e.pend[0].Time), Records{Records: e.pend})
	e.pend = make([]Record, 0, e.max)
}

// fetched is one fetch handed from a fetcher to the emitting loop. A
// fetched with done set ends a chunk.
type fetched struct {
	recs []Record
	err  error
	done bool
}

// readBounded reads the restriction to its end. The range is cut into
// chunks of ChunkRecords offsets, fetched by FetchConns goroutines, each
// with its own connection, while this goroutine claims and emits the
// chunks in offset order: decoding Kafka's batches runs on several cores
// and overlaps with the work downstream.
func (fn *readBase) readBounded(ctx context.Context, rt *sdf.LockRTracker, p partitionRange, em emitter) error {
	rest := rt.GetRestriction().(offsetrange.Restriction)
	defer em.flush()
	if rest.Start >= rest.End {
		rt.TryClaim(rest.End)
		return nil
	}
	conns := fn.Params.FetchConns
	chunk := int64(fn.Params.ChunkRecords)
	if size := rest.End - rest.Start; size < 2*chunk {
		conns, chunk = 1, size
	}
	nChunks := (rest.End - rest.Start + chunk - 1) / chunk
	conns = int(min(int64(conns), nChunks))

	ctx, cancel := context.WithCancel(ctx)
	outs := make([]chan fetched, conns)
	var wg sync.WaitGroup
	for w := range outs {
		outs[w] = make(chan fetched, 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(outs[w])
			fn.fetchChunks(ctx, p, rest, chunk, w, conns, outs[w])
		}()
	}
	defer func() {
		cancel()
		for _, ch := range outs { // let the fetchers finish
			for range ch {
			}
		}
		wg.Wait()
	}()

	for i := int64(0); i < nChunks; i++ {
		ch := outs[i%int64(conns)]
		for {
			f, ok := <-ch
			if !ok {
				if err := ctx.Err(); err != nil {
					return err
				}
				return fmt.Errorf("kafkaio: %s/%d: a fetcher stopped before the end of its chunk", p.Topic, p.Partition)
			}
			if f.err != nil {
				return f.err
			}
			if f.done {
				break
			}
			for j := range f.recs {
				if !rt.TryClaim(f.recs[j].Offset) {
					countFetch(ctx, f.recs[:j])
					em.emit(f.recs[:j])
					return rt.GetError()
				}
			}
			countFetch(ctx, f.recs)
			em.emit(f.recs)
		}
	}
	// Everything below the end has been read; offsets without records
	// (compacted away, control records) belong to this restriction too.
	rt.TryClaim(rest.End)
	return rt.GetError()
}

// fetchChunks fetches chunks w, w+stride, w+2·stride, ... of rest, each
// ended by a done marker, over a connection of its own. While the brokers
// fail in a way reconnecting may cure, for up to ReconnectFor, it
// reconnects with backoff and fetches again from where it was.
func (fn *readBase) fetchChunks(ctx context.Context, p partitionRange, rest offsetrange.Restriction, chunk int64, w, stride int, out chan<- fetched) {
	send := func(f fetched) bool {
		select {
		case out <- f:
			return true
		case <-ctx.Done():
			return false
		}
	}
	l, err := fn.Params.cluster().link(fn.Params.DialTimeout)
	if err != nil {
		send(fetched{err: err})
		return
	}
	var conn *kafka.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	var down outage
	// failed drops the connection after err; false means stop (the error
	// has been sent, or ctx ended).
	failed := func(err error) bool {
		if conn != nil {
			conn.Close()
			conn = nil
		}
		if !Retryable(err) {
			send(fetched{err: err})
			return false
		}
		down.fail()
		if down.lasted() >= fn.Params.ReconnectFor {
			send(fetched{err: fmt.Errorf("kafkaio: gave up after reconnecting for %v: %w", down.lasted().Round(time.Second), err)})
			return false
		}
		if down.attempts == 1 {
			log.Warnf(ctx, "kafkaio: %v; reconnecting with backoff for up to %v", err, fn.Params.ReconnectFor)
		}
		return sleep(ctx, backoff(down.attempts)) == nil
	}
	sizeHint := 1024
	for from := rest.Start + int64(w)*chunk; from < rest.End; from += int64(stride) * chunk {
		to := min(from+chunk, rest.End)
		next, empties := from, 0
		positioned := false
		for next < to {
			if conn == nil {
				c, err := dialLeader(ctx, l, p.Topic, p.Partition)
				if err != nil {
					if !failed(err) {
						return
					}
					continue
				}
				conn, positioned = c, false
			}
			if !positioned {
				_ = conn.SetDeadline(time.Now().Add(DefaultCallTimeout))
				if _, err := conn.Seek(next, kafka.SeekAbsolute); err != nil {
					if !failed(fmt.Errorf("kafkaio: seek %s/%d to %d: %w", p.Topic, p.Partition, next, err)) {
						return
					}
					continue
				}
				positioned = true
			}
			recs, hwm, err := readBatch(p, conn, fn.Params, fn.Params.FetchMaxWait, make([]Record, 0, sizeHint), to)
			if err != nil {
				if !failed(fmt.Errorf("kafkaio: fetch %s/%d at offset %d: %w", p.Topic, p.Partition, next, err)) {
					return
				}
				continue
			}
			down = outage{}
			if len(recs) == 0 {
				pos, _ := conn.Offset()
				switch {
				case pos > next:
					// kafka-go skipped control records: move on.
					next = pos
					continue
				case hwm <= next:
					// The partition ends before the chunk does.
				case empties < 5:
					empties++
					continue
				default:
					// Never conclude there is nothing left where the
					// broker says there is: that would lose records.
					send(fetched{err: fmt.Errorf("kafkaio: %s/%d: %d empty fetches at offset %d below the high watermark %d", p.Topic, p.Partition, empties+1, next, hwm)})
					return
				}
				break
			}
			empties = 0
			sizeHint = max(sizeHint, len(recs))
			next = recs[len(recs)-1].Offset + 1
			if !send(fetched{recs: recs}) {
				return
			}
			if next < to {
				// readBatch stopped at the end of the fetch, not at to:
				// keep the connection's position in step.
				if pos, _ := conn.Offset(); pos != next {
					positioned = false
				}
			}
		}
		if !send(fetched{done: true}) {
			return
		}
	}
}

// readUnbounded reads until it is time to checkpoint, the restriction is
// split, or the stream is told to stop.
func (fn *readBase) readUnbounded(ctx context.Context, we *watermarkEstimator, bf beam.BundleFinalization, rt *sdf.LockRTracker, p partitionRange, em emitter) (sdf.ProcessContinuation, error) {
	defer em.flush()
	rest := rt.GetRestriction().(offsetrange.Restriction)
	next := rest.Start
	began := time.Now()
	if fn.Params.Group != "" && fn.journal == nil {
		fn.journal = journalOf(fn.Params.Group)
	}
	// The position this call reads up to is noted only once its bundle
	// has completed (finalization comes after every DoFn of the stage
	// finished, so after the fused writes were acknowledged): the runner
	// may advance the stage's watermark on another partition's bundle
	// while this one's outputs are still buffered. Prism finalizes a
	// bundle before its outputs go downstream (finalize-first.patch), so
	// CommitPositions finds the note when the acknowledgements come.
	var noteOff int64
	var noteTime time.Time
	if fn.journal != nil && bf != nil {
		defer func() {
			if noteOff == 0 {
				return
			}
			j, key, off, t := fn.journal, p.key(), noteOff, noteTime
			bf.RegisterCallback(5*time.Minute, func() error {
				j.note(key, off, t)
				return nil
			})
		}()
	}
	n := 0
	var buf []Record
	for {
		if fn.stopRequested() {
			// Stop the source: keep what was claimed, drop the rest of the
			// range, and release the watermark so the pipeline drains.
			_, _, _ = rt.TrySplit(0)
			we.advance(mtime.MaxTimestamp.ToTime())
			return sdf.StopProcessing(), nil
		}
		pc, err := fn.connFor(ctx, p, next)
		var hwm int64
		if err == nil {
			wait := min(fn.Params.FetchMaxWait, max(time.Millisecond, fn.Params.CheckpointInterval-time.Since(began)))
			buf, hwm, err = fn.fetch(p, pc, wait, buf[:0])
		}
		if errors.Is(err, kafka.OffsetOutOfRange) {
			if first, ferr := fn.earliest(ctx, p); ferr == nil && first > next {
				// Retention deleted [next, first) before the read got
				// there: those records are gone whatever it does, so it
				// counts them and goes on from the oldest one left
				// instead of failing the job.
				log.Warnf(ctx, "kafkaio: %s: offsets %d to %d were deleted by the broker's retention before this read reached them; %d records lost, reading on from %d", p.key(), next, first-1, first-next, first)
				beam.NewCounter(ReadNamespace, MetricExpired).Inc(ctx, first-next)
				next = first
				continue
			}
		}
		if err != nil {
			return fn.reconnectLater(ctx, we, rt, p, err)
		}
		outages.ok(p.key())
		if fn.est != nil {
			fn.est.hwm.Store(max(hwm, next))
		}
		fn.lag(ctx, p, hwm-pc.next)
		for i := range buf {
			if !rt.TryClaim(buf[i].Offset) {
				countFetch(ctx, buf[:i])
				em.emit(buf[:i])
				return sdf.StopProcessing(), rt.GetError()
			}
			we.advance(buf[i].Time.Add(-fn.Params.MaxDelay))
		}
		countFetch(ctx, buf)
		em.emit(buf)
		now := time.Now()
		if len(buf) > 0 && fn.journal != nil {
			latest := we.wm
			if noteTime.After(latest) {
				latest = noteTime
			}
			for i := range buf {
				if buf[i].Time.After(latest) {
					latest = buf[i].Time
				}
			}
			noteOff, noteTime = buf[len(buf)-1].Offset+1, latest
		}
		if len(buf) > 0 {
			next = buf[len(buf)-1].Offset + 1
			pc.lastData = now
			n += len(buf)
		} else if fn.Params.IdleTimeout > 0 && next >= hwm && now.Sub(pc.lastData) >= fn.Params.IdleTimeout {
			we.advance(now.Add(-fn.Params.MaxDelay))
		}
		if n >= fn.Params.CheckpointRecords || now.Sub(began) >= fn.Params.CheckpointInterval {
			if len(buf) == 0 {
				return sdf.ResumeProcessingIn(fn.Params.FetchMaxWait / 4), nil
			}
			return sdf.ResumeProcessingIn(0), nil
		}
		if em.keeps() {
			buf = nil // emitted batches alias it: the next fetch gets a new one
		} else {
			buf = buf[:0]
		}
	}
}

// reconnectLater handles a failed connection or fetch of an unbounded
// read: while reconnecting may cure it, for up to ReconnectFor, the read
// checkpoints and resumes at the same offset after a backoff; then it
// gives up on the partition as a stop does, keeping what it read, and
// says why in MetricGaveUp. Any other error fails the bundle.
func (fn *readBase) reconnectLater(ctx context.Context, we *watermarkEstimator, rt *sdf.LockRTracker, p partitionRange, err error) (sdf.ProcessContinuation, error) {
	if !Retryable(err) {
		return sdf.StopProcessing(), err
	}
	u := outages.fail(p.key())
	if down := u.lasted(); down >= fn.Params.ReconnectFor {
		why := fmt.Sprintf("%s after reconnecting for %v: %v", p.key(), down.Round(time.Second), err)
		log.Errorf(ctx, "kafkaio: giving up on %s; the rest of the pipeline drains", why)
		beam.NewCounter(ReadNamespace, MetricGaveUp+"/"+printable.String(why, 240)).Inc(ctx, 1)
		outages.ok(p.key())
		_, _, _ = rt.TrySplit(0)
		we.advance(mtime.MaxTimestamp.ToTime())
		return sdf.StopProcessing(), nil
	}
	beam.NewCounter(ReadNamespace, MetricRetries).Inc(ctx, 1)
	if u.attempts == 1 {
		log.Warnf(ctx, "kafkaio: %s: %v; reconnecting with backoff for up to %v", p.key(), err, fn.Params.ReconnectFor)
	}
	// The backoff is waited here: the edge runner resumes a checkpoint at
	// once, whatever delay it asks for.
	if err := sleep(ctx, backoff(u.attempts)); err != nil {
		return sdf.StopProcessing(), err
	}
	return sdf.ResumeProcessingIn(0), nil
}

// stopRequested reports whether the read has been told to stop: its Until
// time has passed, or its StopFile exists.
func (fn *readBase) stopRequested() bool {
	if !fn.Params.Until.IsZero() && time.Now().After(fn.Params.Until) {
		return true
	}
	if fn.Params.StopFile != "" {
		if _, err := os.Stat(fn.Params.StopFile); err == nil {
			return true
		}
	}
	return false
}

type boundedReadFn struct{ readBase }

func (fn *boundedReadFn) ProcessElement(ctx context.Context, rt *sdf.LockRTracker, p partitionRange, emit func(beam.EventTime, Record)) error {
	return fn.readBounded(ctx, rt, p, recordEmitter{out: emit})
}

type boundedBatchReadFn struct{ readBase }

func (fn *boundedBatchReadFn) ProcessElement(ctx context.Context, rt *sdf.LockRTracker, p partitionRange, emit func(beam.EventTime, Records)) error {
	return fn.readBounded(ctx, rt, p, &batchEmitter{out: emit, max: fn.Params.BatchRecords})
}

// unboundedBase adds what unbounded reads need: the watermark estimator
// with state that survives checkpoints, and truncation on drain.
type unboundedBase struct{ readBase }

func (fn *unboundedBase) InitialWatermarkEstimatorState(_ beam.EventTime, _ offsetrange.Restriction, _ partitionRange) int64 {
	return int64(mtime.MinTimestamp)
}

func (fn *unboundedBase) CreateWatermarkEstimator(ms int64) *watermarkEstimator {
	return &watermarkEstimator{wm: mtime.Time(ms).ToTime()}
}

func (fn *unboundedBase) WatermarkEstimatorState(we *watermarkEstimator) int64 {
	return int64(mtime.FromTime(we.wm))
}

type unboundedReadFn struct{ unboundedBase }

func (fn *unboundedReadFn) ProcessElement(ctx context.Context, we *watermarkEstimator, bf beam.BundleFinalization, rt *sdf.LockRTracker, p partitionRange, emit func(beam.EventTime, Record)) (sdf.ProcessContinuation, error) {
	return fn.readUnbounded(ctx, we, bf, rt, p, recordEmitter{out: emit})
}

type unboundedBatchReadFn struct{ unboundedBase }

func (fn *unboundedBatchReadFn) ProcessElement(ctx context.Context, we *watermarkEstimator, bf beam.BundleFinalization, rt *sdf.LockRTracker, p partitionRange, emit func(beam.EventTime, Records)) (sdf.ProcessContinuation, error) {
	return fn.readUnbounded(ctx, we, bf, rt, p, &batchEmitter{out: emit, max: fn.Params.BatchRecords})
}

// Metric names: Read counts records and bytes in ReadNamespace, Write in
// WriteNamespace. Write also counts the dead letters it wrote in
// DeadLetterNamespace, one counter per DeadLetterReason.
const (
	ReadNamespace       = "kafkaio.Read"
	WriteNamespace      = "kafkaio.Write"
	DeadLetterNamespace = "kafkaio.DeadLetters"
	MetricRecords       = "records"
	MetricBytes         = "bytes"
	// MetricRetries counts reconnection attempts after a failed fetch or
	// write.
	MetricRetries = "retries"
	// MetricGaveUp + "/" + why: an unbounded read stopped a partition's
	// source after ReconnectFor of failures.
	MetricGaveUp = "gave_up"
	// MetricLag + "/" + topic + "/" + partition is a gauge of the records
	// an unbounded read's partition holds past what it fetched.
	MetricLag = "lag"
	// MetricExpired counts records an unbounded read never read because
	// the broker deleted them (retention) before the read reached them:
	// the read goes on from the partition's earliest offset.
	MetricExpired = "expired"
)
