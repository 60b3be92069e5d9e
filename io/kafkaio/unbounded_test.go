package kafkaio

import (
	"context"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/rtrackers/offsetrange"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// collect is an emitter that keeps what it is given.
type collect struct{ got []Record }

func (c *collect) emit(rs []Record) { c.got = append(c.got, rs...) }
func (c *collect) flush()           {}
func (c *collect) keeps() bool      { return true }

// oneTopic starts an embedded broker holding topic on one partition, and
// a writer to it; the broker stops when the test ends.
func oneTopic(t *testing.T, topic string) ([]string, *kafka.Writer) {
	t.Helper()
	b, err := embedded.Start(embedded.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	brokers := []string{b.Addr()}
	if err := EnsureTopics(context.Background(), Plain(brokers...), TopicSpec{Name: topic, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(WriteParams{Brokers: brokers, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	return brokers, w
}

// The unbounded read's watermark follows record timestamps, advances with
// the wall clock once a caught-up partition has been idle, checkpoints
// after CheckpointRecords, and stops the source when told to.
func TestUnboundedWatermarkAndCheckpoints(t *testing.T) {
	brokers, w := oneTopic(t, "wm")
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var msgs []kafka.Message
	for i := 0; i < 30; i++ {
		msgs = append(msgs, kafka.Message{Value: []byte("x"), Time: base.Add(time.Duration(i) * time.Second)})
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	raw := Params{Brokers: brokers, Topics: []string{"wm"}, Unbounded: true, CheckpointRecords: 10,
		CheckpointInterval: 500 * time.Millisecond, IdleTimeout: 200 * time.Millisecond, MaxDelay: time.Second,
		FetchMaxWait: 50 * time.Millisecond}
	params := raw.withDefaults()
	fn := &unboundedReadFn{unboundedBase{readBase{Params: params}}}
	defer fn.Teardown()
	p := partitionRange{Topic: "wm", Partition: 0, Start: 0, End: math.MaxInt64}
	we := fn.CreateWatermarkEstimator(fn.InitialWatermarkEstimatorState(0, offsetrange.Restriction{}, p))
	ctx := context.Background()

	// Records within the first fetch are all claimed, then the read
	// checkpoints itself because it passed CheckpointRecords.
	rt := fn.CreateTracker(offsetrange.Restriction{Start: 0, End: math.MaxInt64})
	var out collect
	cont, err := fn.readUnbounded(ctx, we, nil, rt, p, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !cont.ShouldResume() || len(out.got) < 10 {
		t.Fatalf("read %d records, resume %v: want ≥ 10 and a checkpoint", len(out.got), cont.ShouldResume())
	}
	last := out.got[len(out.got)-1]
	if wm := we.CurrentWatermark(); !wm.Equal(last.Time.Add(-time.Second)) {
		t.Errorf("watermark %s, want the last record's time minus MaxDelay %s", wm, last.Time.Add(-time.Second))
	}
	// The runner resumes the residual; read on until idle: the watermark
	// then follows the wall clock.
	next := last.Offset + 1
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && we.CurrentWatermark().Before(time.Now().Add(-time.Minute)) {
		rt = fn.CreateTracker(offsetrange.Restriction{Start: next, End: math.MaxInt64})
		out = collect{}
		if _, err := fn.readUnbounded(ctx, we, nil, rt, p, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.got) > 0 {
			next = out.got[len(out.got)-1].Offset + 1
		}
	}
	if next != 30 {
		t.Errorf("read up to offset %d, want 30", next)
	}
	if wm := we.CurrentWatermark(); wm.Before(time.Now().Add(-time.Minute)) {
		t.Errorf("watermark %s did not advance on the idle partition", wm)
	}

	// Told to stop: the source keeps what it claimed, drops the rest of its
	// range and releases the watermark.
	fn.Params.Until = time.Now().Add(-time.Second)
	rt = fn.CreateTracker(offsetrange.Restriction{Start: next, End: math.MaxInt64})
	cont, err = fn.readUnbounded(ctx, we, nil, rt, p, &collect{})
	if err != nil || cont.ShouldResume() {
		t.Fatalf("stop: resume %v, err %v", cont.ShouldResume(), err)
	}
	if !rt.IsDone() {
		t.Errorf("stopped tracker %v is not done", rt.GetRestriction())
	}
	if wm := we.CurrentWatermark(); !wm.Equal(mtime.MaxTimestamp.ToTime()) {
		t.Errorf("watermark after stop %s, want the end of time", wm)
	}
}

// Batches an unbounded read emits alias its fetch buffer; the next fetch
// must not write over them.
func TestUnboundedBatchesAreNotOverwritten(t *testing.T) {
	brokers, w := oneTopic(t, "alias")
	for i := 0; i < 6; i++ { // one record batch each, so one record per small fetch
		if err := w.WriteMessages(context.Background(), kafka.Message{Value: []byte{byte('a' + i)}}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	raw := Params{Brokers: brokers, Topics: []string{"alias"}, Unbounded: true, CheckpointRecords: 6,
		CheckpointInterval: 5 * time.Second, FetchMaxBytes: 1, FetchMaxWait: 50 * time.Millisecond}
	params := raw.withDefaults()
	fn := &unboundedBatchReadFn{unboundedBase{readBase{Params: params}}}
	defer fn.Teardown()
	p := partitionRange{Topic: "alias", Partition: 0, Start: 0, End: math.MaxInt64}
	we := fn.CreateWatermarkEstimator(fn.InitialWatermarkEstimatorState(0, offsetrange.Restriction{}, p))
	var got []Records
	em := &batchEmitter{out: func(_ beam.EventTime, rs Records) { got = append(got, rs) }, max: 1}
	if _, err := fn.readUnbounded(context.Background(), we, nil, fn.CreateTracker(offsetrange.Restriction{Start: 0, End: math.MaxInt64}), p, em); err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, rs := range got {
		for _, r := range rs.Records {
			values = append(values, string(r.Value))
		}
	}
	if want := []string{"a", "b", "c", "d", "e", "f"}; !reflect.DeepEqual(values, want) {
		t.Errorf("emitted batches hold %v, want %v", values, want)
	}
}

// An unbounded read whose next offset the broker's retention has deleted
// (it fell behind, or resumed from an old position) counts the records it
// can no longer read and goes on from the oldest one left, instead of
// failing the job on OffsetOutOfRange.
func TestUnboundedReadSkipsExpiredRecords(t *testing.T) {
	brokers, w := oneTopic(t, "expiring")
	ctx := context.Background()
	var msgs []kafka.Message
	for i := 0; i < 30; i++ {
		msgs = append(msgs, kafka.Message{Value: []byte{byte(i)}})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// What retention does: the log now starts at offset 20.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	topic := kmsg.NewDeleteRecordsRequestTopic()
	topic.Topic = "expiring"
	part := kmsg.NewDeleteRecordsRequestTopicPartition()
	part.Offset = 20
	topic.Partitions = append(topic.Partitions, part)
	req.Topics = append(req.Topics, topic)
	req.TimeoutMillis = 5000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 || resp.Topics[0].Partitions[0].LowWatermark != 20 {
		t.Fatalf("DeleteRecords: %+v, %v", resp, err)
	}

	raw := Params{Brokers: brokers, Topics: []string{"expiring"}, Unbounded: true, CheckpointRecords: 100,
		CheckpointInterval: 300 * time.Millisecond, FetchMaxWait: 50 * time.Millisecond}
	fn := &unboundedReadFn{unboundedBase{readBase{Params: raw.withDefaults()}}}
	defer fn.Teardown()
	p := partitionRange{Topic: "expiring", Partition: 0, Start: 5, End: math.MaxInt64}
	we := fn.CreateWatermarkEstimator(fn.InitialWatermarkEstimatorState(0, offsetrange.Restriction{}, p))
	rt := fn.CreateTracker(offsetrange.Restriction{Start: 5, End: math.MaxInt64})
	var out collect
	if _, err := fn.readUnbounded(ctx, we, nil, rt, p, &out); err != nil {
		t.Fatalf("reading from a deleted offset: %v", err)
	}
	if len(out.got) != 10 || out.got[0].Offset != 20 || out.got[9].Offset != 29 {
		t.Fatalf("read %d records (%v…), want offsets 20 to 29", len(out.got), out.got[:min(1, len(out.got))])
	}
}
