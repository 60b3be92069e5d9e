package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/segmentio/kafka-go"
)

// Durable positions for streams on the edge runner.
//
// An unbounded read's offsets live in the runner's checkpoints, which prism
// keeps in memory: a muon killed with SIGKILL would start again from
// source.start. With Params.Group set, the read notes, as it goes, the
// offset it has read up to in each partition and the latest event time
// of what it read (or its watermark, if later); CommitPositions commits
// such an offset to Kafka, as the group's offset, once the watermark of
// every sink's acknowledgements has passed that time (plus Slack, the
// longest event-time window the pipeline holds records in). Prism does not
// advance a stage's watermark past an element still pending or in a bundle
// in progress, and a Kafka write acknowledges before its bundle completes,
// so every output derived from the records before a committed offset has
// been written: a restart resumes there and loses nothing. What was read
// after the last commit is read again (at least once); the summary counts
// how many records that was.
//
// The notes live in the process (the edge runner's workers run in it); on
// a runner whose workers are other processes CommitPositions commits
// nothing and says so.

func init() {
	beam.RegisterType(reflect.TypeOf((*positionFn)(nil)).Elem())
	beam.RegisterFunction(positionKey)
}

// MetricCommits counts the offset commits of CommitPositions
// (PositionNamespace); MetricRereads the records a resumed read reads
// again, read by the previous run after its last commit.
const (
	PositionNamespace = "kafkaio.Positions"
	MetricCommits     = "commits"
	MetricRereads     = "rereads"
)

// positionNote is where a read is in one partition: every record before
// Offset has been read, and none of them has an event time (or was read
// under a watermark) after Time.
type positionNote struct {
	Offset int64
	Time   time.Time
	noted  time.Time
}

// journal holds the notes of one group's reads in this process.
type journal struct {
	mu        sync.Mutex
	notes     map[string][]positionNote // "topic/partition" → notes, in offset order
	committed map[string]int64
}

var journals sync.Map // group → *journal

func journalOf(group string) *journal {
	j, _ := journals.LoadOrStore(group, &journal{notes: map[string][]positionNote{}, committed: map[string]int64{}})
	return j.(*journal)
}

// noteCoalesce merges notes closer together than this: a commit needs no
// finer grain, and the journal of a fast read stays small.
const noteCoalesce = 100 * time.Millisecond

// note records that the read of key has read every record before offset,
// none later than t.
func (j *journal) note(key string, offset int64, t time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	ns := j.notes[key]
	now := time.Now()
	if n := len(ns); n > 0 {
		last := &ns[n-1]
		if offset <= last.Offset {
			// A retried bundle reads again what was noted: keep the later time.
			if t.After(last.Time) {
				last.Time = t
			}
			return
		}
		if t.Before(last.Time) {
			t = last.Time
		}
		if now.Sub(last.noted) < noteCoalesce && n > 1 {
			last.Offset, last.Time = offset, t
			return
		}
	}
	j.notes[key] = append(ns, positionNote{Offset: offset, Time: t, noted: now})
}

// committedPos is a committed position: Offset, and how far the read had
// read when it was committed (Read, kept in the commit's metadata).
type committedPos struct {
	Offset, Read int64
}

// due returns, for each partition, the furthest offset whose records all
// have times before t, and drops the notes it passes.
func (j *journal) due(t time.Time) map[string]committedPos {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := map[string]committedPos{}
	for key, ns := range j.notes {
		i := sort.Search(len(ns), func(i int) bool { return !ns[i].Time.Before(t) })
		if i == 0 {
			continue
		}
		if off := ns[i-1].Offset; off > j.committed[key] {
			out[key] = committedPos{Offset: off, Read: ns[len(ns)-1].Offset}
		}
		j.notes[key] = append(ns[:0], ns[i:]...)
	}
	return out
}

// done records offsets as committed.
func (j *journal) done(offs map[string]committedPos) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for k, c := range offs {
		j.committed[k] = max(j.committed[k], c.Offset)
	}
}

// latest returns the latest time of the notes not yet committed, and false
// if there are none.
func (j *journal) latest() (time.Time, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var last time.Time
	found := false
	for _, ns := range j.notes {
		if n := len(ns); n > 0 && (!found || ns[n-1].Time.After(last)) {
			last, found = ns[n-1].Time, true
		}
	}
	return last, found
}

// PositionParams configures CommitPositions.
type PositionParams struct {
	// Brokers and Security reach the cluster the reads read.
	Brokers  []string
	Security Security
	// Group is the consumer group that holds the positions: the reads'
	// Params.Group. Required.
	Group string
	// Slack is how far past a record's event time the acknowledgements'
	// watermark must be before its offset is committed: the longest
	// event-time window (size plus allowed lateness) the pipeline holds
	// records in before it writes what they make. Default 0.
	Slack time.Duration
}

// CommitPositions commits the positions of the unbounded reads whose
// Params.Group is p.Group, as described above. acks are PCollections every
// sink of the pipeline emits (what Write returns, the files an archive
// writes, ...), stamped no earlier than what they acknowledge, in any
// windows (they are brought into the global window). It panics if p has no group.
func CommitPositions(s beam.Scope, p PositionParams, acks ...beam.PCollection) {
	if p.Group == "" {
		panic("kafkaio.CommitPositions: no Group")
	}
	if p.Slack < 0 {
		panic(fmt.Sprintf("kafkaio.CommitPositions: negative Slack %v", p.Slack))
	}
	s = s.Scope("kafkaio.CommitPositions")
	keyed := make([]beam.PCollection, len(acks))
	for i, a := range acks {
		// A sink's acknowledgements may be windowed (counts per minute);
		// their timestamps, not their windows, say what they cover.
		keyed[i] = beam.ParDo(s, positionKey, beam.WindowInto(s, window.NewGlobalWindows(), a))
	}
	beam.ParDo0(s, &positionFn{Params: p, Commit: timers.InEventTime("commit"), Armed: state.MakeValueState[int64]("armed")}, beam.Flatten(s, keyed...))
}

// positionKey puts every acknowledgement under one key, so that one
// stateful DoFn sees the watermark of them all.
func positionKey(_ beam.T) (string, int) { return "positions", 0 }

type positionFn struct {
	Params PositionParams
	Commit timers.EventTime
	// Armed is when the timer is set to fire, 0 if it is not set.
	Armed state.Value[int64]

	l       *link
	tr      *kafka.Transport // one for every commit: a transport per commit leaked memory
	commits beam.Counter
}

func (fn *positionFn) Setup() error {
	l, err := Cluster{Brokers: fn.Params.Brokers, Security: fn.Params.Security}.link(DefaultDialTimeout)
	if err != nil {
		return err
	}
	fn.l, fn.tr = l, l.transport()
	fn.commits = beam.NewCounter(PositionNamespace, MetricCommits)
	return nil
}

func (fn *positionFn) Teardown() {
	if fn.tr != nil {
		fn.tr.CloseIdleConnections()
	}
}

// ProcessElement sets the timer, unless it is set, for the latest note:
// it fires once the acknowledgements' watermark has passed that note's
// time plus the slack, and commits every note before. A set timer is never
// moved, so a busy stream still commits, one round at a time.
func (fn *positionFn) ProcessElement(_ context.Context, sp state.Provider, tp timers.Provider, _ string, _ int) error {
	armed, _, err := fn.Armed.Read(sp)
	if err != nil || armed != 0 {
		return err
	}
	return fn.arm(sp, tp)
}

func (fn *positionFn) arm(sp state.Provider, tp timers.Provider) error {
	t, ok := journalOf(fn.Params.Group).latest()
	if !ok {
		return fn.Armed.Write(sp, 0)
	}
	at := mtime.FromTime(t.Add(fn.Params.Slack)) + 1
	if at >= mtime.MaxTimestamp {
		at = mtime.MaxTimestamp - 1
	}
	fn.Commit.Set(tp, at.ToTime())
	return fn.Armed.Write(sp, int64(at))
}

func (fn *positionFn) OnTimer(ctx context.Context, ts beam.EventTime, sp state.Provider, tp timers.Provider, _ string, _ timers.Context) error {
	j := journalOf(fn.Params.Group)
	due := j.due(ts.ToTime().Add(-fn.Params.Slack))
	if len(due) > 0 {
		if err := commitOffsets(ctx, fn.l, fn.tr, fn.Params.Group, due); err != nil {
			// The next firing commits further; a restart before that
			// reads a little more again.
			log.Warnf(ctx, "kafkaio: committing positions of group %s: %v", fn.Params.Group, err)
		} else {
			j.done(due)
			fn.commits.Inc(ctx, 1)
		}
	}
	return fn.arm(sp, tp)
}

// readMeta is the commit metadata that says how far the read had read.
const readMeta = "muon.read="

// commitOffsets commits "topic/partition" → position for group.
func commitOffsets(ctx context.Context, l *link, tr *kafka.Transport, group string, offs map[string]committedPos) error {
	topics := map[string][]kafka.OffsetCommit{}
	for key, c := range offs {
		topic, part, err := splitKey(key)
		if err != nil {
			return err
		}
		topics[topic] = append(topics[topic], kafka.OffsetCommit{Partition: part, Offset: c.Offset, Metadata: readMeta + strconv.FormatInt(c.Read, 10)})
	}
	ctx, cancel := callContext(ctx)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(l.brokers...), Transport: tr}
	return untilSettled(ctx, func() error {
		resp, err := c.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: topics})
		if err != nil {
			return callError("committing offsets", l.sec.securityHint(err))
		}
		for topic, parts := range resp.Topics {
			for _, p := range parts {
				if p.Error != nil {
					return fmt.Errorf("committing the offset of %s/%d: %w", topic, p.Partition, p.Error)
				}
			}
		}
		return nil
	})
}

// untilSettled calls f until it succeeds, fails for good, or ctx ends:
// group requests fail for a while on a broker that has just started (its
// group coordinator loads, or moves) with errors Kafka marks retriable.
func untilSettled(ctx context.Context, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		var ke kafka.Error
		if err == nil || !errors.As(err, &ke) || !ke.Temporary() {
			return err
		}
		if sleep(ctx, backoff(attempt)) != nil {
			return err
		}
	}
}

// committedOffsets returns group's committed offsets of topic's
// partitions; a partition without one is missing.
func committedOffsets(ctx context.Context, l *link, group, topic string, parts []int) (map[int]committedPos, error) {
	ctx, cancel := callContext(ctx)
	defer cancel()
	tr := l.transport()
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(l.brokers...), Transport: tr}
	var out map[int]committedPos
	err := untilSettled(ctx, func() error {
		resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
		if err != nil {
			return callError(fmt.Sprintf("reading the positions of group %s", group), l.sec.securityHint(err))
		}
		out = map[int]committedPos{}
		if errors.Is(resp.Error, kafka.GroupIdNotFound) {
			return nil // a group that never committed
		}
		if resp.Error != nil {
			return fmt.Errorf("reading the positions of group %s: %w", group, resp.Error)
		}
		for _, p := range resp.Topics[topic] {
			if p.Error != nil {
				return fmt.Errorf("reading the position of group %s in %s/%d: %w", group, topic, p.Partition, p.Error)
			}
			if p.CommittedOffset >= 0 {
				c := committedPos{Offset: p.CommittedOffset, Read: p.CommittedOffset}
				if r, ok := strings.CutPrefix(p.Metadata, readMeta); ok {
					if n, err := strconv.ParseInt(r, 10, 64); err == nil && n > c.Read {
						c.Read = n
					}
				}
				out[p.Partition] = c
			}
		}
		return nil
	})
	return out, err
}

// CommittedOffsets returns group's committed offsets in topic's
// partitions; a partition without one is left out.
func CommittedOffsets(ctx context.Context, c Cluster, group, topic string) (map[int]int64, error) {
	l, err := c.link(DefaultDialTimeout)
	if err != nil {
		return nil, err
	}
	ids, err := partitionIDs(ctx, l, topic)
	if err != nil {
		return nil, err
	}
	cs, err := committedOffsets(ctx, l, group, topic, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[int]int64, len(cs))
	for p, c := range cs {
		out[p] = c.Offset
	}
	return out, nil
}

func splitKey(key string) (string, int, error) {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '/' {
			p, err := strconv.Atoi(key[i+1:])
			return key[:i], p, err
		}
	}
	return "", 0, fmt.Errorf("kafkaio: bad partition key %q", key)
}
