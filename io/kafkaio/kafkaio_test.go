package kafkaio_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/segmentio/kafka-go"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.Function1x1(recordValue)
	register.Function2x0(explode)
	register.Emitter1[kafkaio.Record]()
}

func recordValue(r kafkaio.Record) string { return string(r.Value) }

func explode(rs kafkaio.Records, emit func(kafkaio.Record)) {
	for _, r := range rs.Records {
		emit(r)
	}
}

// startBroker starts an embedded broker with topic on 4 partitions.
func startBroker(t *testing.T, topic string) string {
	t.Helper()
	b, err := embedded.Start(embedded.Options{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := kafkaio.EnsureTopics(context.Background(), kafkaio.Plain(b.Addr()), kafkaio.TopicSpec{Name: topic, Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	return b.Addr()
}

func produce(t *testing.T, brokers []string, topic string, from, n int) []string {
	t.Helper()
	w, err := kafkaio.NewWriter(kafkaio.WriteParams{Brokers: brokers, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var vals []string
	msgs := make([]kafka.Message, 0, n)
	for i := from; i < from+n; i++ {
		v := fmt.Sprintf("record-%06d", i)
		vals = append(vals, v)
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("dev-%d", i%7)), Value: []byte(v), Time: time.UnixMilli(int64(1_700_000_000_000 + i))})
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	return vals
}

func toAny(xs []string) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

func TestReadBounded(t *testing.T) {
	const topic = "bounded"
	addr := startBroker(t, topic)
	want := produce(t, []string{addr}, topic, 0, 5000)

	p, s := beam.NewPipelineWithRoot()
	recs := kafkaio.Read(s, kafkaio.Params{Brokers: []string{addr}, Topics: []string{topic}})
	vals := beam.ParDo(s, recordValue, recs)
	passert.Equals(s, vals, toAny(want)...)
	passert.Count(s, stats.Count(s, vals), "distinct", len(want))
	ptest.RunAndValidate(t, p)
}

func TestReadBatchesBounded(t *testing.T) {
	const topic = "batches"
	addr := startBroker(t, topic)
	want := produce(t, []string{addr}, topic, 0, 3000)

	p, s := beam.NewPipelineWithRoot()
	batches := kafkaio.ReadBatches(s, kafkaio.Params{Brokers: []string{addr}, Topics: []string{topic}, BatchRecords: 100})
	vals := beam.ParDo(s, recordValue, beam.ParDo(s, explode, batches))
	passert.Equals(s, vals, toAny(want)...)
	ptest.RunAndValidate(t, p)
}

func TestReadUnboundedSeesNewRecords(t *testing.T) {
	const topic = "live"
	addr := startBroker(t, topic)
	old := produce(t, []string{addr}, topic, 0, 100)

	// Records produced after the pipeline has started.
	go func() {
		time.Sleep(2 * time.Second)
		produce(t, []string{addr}, topic, 100, 400)
	}()
	want := append(old, make([]string, 0, 400)...)
	for i := 100; i < 500; i++ {
		want = append(want, fmt.Sprintf("record-%06d", i))
	}

	p, s := beam.NewPipelineWithRoot()
	recs := kafkaio.Read(s, kafkaio.Params{
		Brokers: []string{addr}, Topics: []string{topic},
		Unbounded: true, Until: time.Now().Add(5 * time.Second),
		CheckpointRecords: 50, CheckpointInterval: 200 * time.Millisecond,
	})
	vals := beam.ParDo(s, recordValue, recs)
	passert.Equals(s, vals, toAny(want)...)
	ptest.RunAndValidate(t, p)
}

// Several connections fetching interleaved chunks of a partition still
// yield every record once, from any start.
func TestReadBoundedChunked(t *testing.T) {
	const topic = "chunked"
	addr := startBroker(t, topic)
	want := produce(t, []string{addr}, topic, 0, 5000)
	for _, tt := range []struct {
		name        string
		conns, size int
	}{{"three conns, odd chunks", 3, 97}, {"one conn", 1, 50}, {"more conns than chunks", 8, 400}} {
		t.Run(tt.name, func(t *testing.T) {
			p, s := beam.NewPipelineWithRoot()
			recs := kafkaio.Read(s, kafkaio.Params{Brokers: []string{addr}, Topics: []string{topic}, FetchConns: tt.conns, ChunkRecords: tt.size})
			vals := beam.ParDo(s, recordValue, recs)
			passert.Equals(s, vals, toAny(want)...)
			passert.Count(s, stats.Count(s, vals), "distinct", len(want))
			ptest.RunAndValidate(t, p)
		})
	}
}

// A read names only what exists: a topic that does not exist is not
// created by reading it, and partitions or start offsets for partitions
// the topic lacks are refused.
func TestResolveRangesRefusesWhatDoesNotExist(t *testing.T) {
	addr := startBroker(t, "four")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		p    kafkaio.Params
		want error
		says string
	}{
		{"missing topic", kafkaio.Params{Topics: []string{"absent"}}, kafkaio.ErrUnknownTopic, `"absent"`},
		{"missing partition", kafkaio.Params{Topics: []string{"four"}, Partitions: []int{1, 7}}, kafkaio.ErrBadParams, "partition 7"},
		{"offset for a missing partition", kafkaio.Params{Topics: []string{"four"}, Start: kafkaio.Start{Kind: kafkaio.StartOffsets, Offsets: map[int]int64{0: 0, 9: 5}}}, kafkaio.ErrBadParams, "partition 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.Brokers = []string{addr}
			_, err := kafkaio.ResolveRanges(ctx, tc.p)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v, want %v naming %s", err, tc.want, tc.says)
			}
		})
	}
	if _, err := kafkaio.EndOffsets(ctx, kafkaio.Plain(addr), "absent"); !errors.Is(err, kafkaio.ErrUnknownTopic) {
		t.Errorf("reading created the topic: %v", err)
	}
}
