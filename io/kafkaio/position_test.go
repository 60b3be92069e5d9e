package kafkaio_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/io/kafkaio"
)

func init() {
	register.Function1x1(toOut)
}

// toOut copies a record to the topic "out".
func toOut(r kafkaio.Record) kafkaio.Record {
	return kafkaio.Record{Topic: "out", Key: r.Key, Value: r.Value, Time: r.Time}
}

// runCopy copies topic to "out" with an unbounded read that keeps its
// position in group, for d, and returns how many records the read read.
func runCopy(t *testing.T, addr, topic, group string, d time.Duration) int64 {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	recs := kafkaio.Read(s, kafkaio.Params{
		Brokers: []string{addr}, Topics: []string{topic}, Group: group,
		Unbounded: true, Until: time.Now().Add(d),
		CheckpointRecords: 50, CheckpointInterval: 200 * time.Millisecond,
	})
	acks := kafkaio.Write(s, kafkaio.WriteParams{Brokers: []string{addr}}, beam.ParDo(s, toOut, recs))
	kafkaio.CommitPositions(s, kafkaio.PositionParams{Brokers: []string{addr}, Group: group}, acks)
	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace == kafkaio.ReadNamespace && c.Key.Name == kafkaio.MetricRecords {
			n += c.Committed
		}
	}
	return n
}

func committedSum(t *testing.T, addr, topic, group string) int64 {
	t.Helper()
	offs, err := kafkaio.CommittedOffsets(context.Background(), kafkaio.Plain(addr), group, topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, o := range offs {
		n += o
	}
	return n
}

// A stream that keeps its position commits it as its outputs are written,
// and a second run resumes there: it reads only what came after.
func TestPositionsCommittedAndResumed(t *testing.T) {
	const topic, group = "pos", "muon.test"
	addr := startBroker(t, topic)
	produce(t, []string{addr}, topic, 0, 300)
	if n := runCopy(t, addr, topic, group, 3*time.Second); n != 300 {
		t.Fatalf("first run read %d records, want 300", n)
	}
	if got := committedSum(t, addr, topic, group); got != 300 {
		t.Fatalf("committed offsets sum to %d after the first run, want 300", got)
	}
	produce(t, []string{addr}, topic, 300, 200)
	if n := runCopy(t, addr, topic, group, 3*time.Second); n != 200 {
		t.Errorf("second run read %d records, want the 200 produced after the first", n)
	}
	if got := committedSum(t, addr, topic, group); got != 500 {
		t.Errorf("committed offsets sum to %d after the second run, want 500", got)
	}
	ends, err := kafkaio.EndOffsets(context.Background(), kafkaio.Plain(addr), "out")
	if err != nil {
		t.Fatal(err)
	}
	var out int64
	for _, e := range ends {
		out += e
	}
	if out != 500 {
		t.Errorf("%d records on out, want 500 (each once)", out)
	}
}
