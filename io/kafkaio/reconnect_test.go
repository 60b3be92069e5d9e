package kafkaio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/io/kafkaio/kafkatest"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	kproduce "github.com/segmentio/kafka-go/protocol/produce"
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("fetch d5/2 at offset 1000: %w", io.EOF), true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{syscall.ECONNRESET, true},
		{kafka.NotLeaderForPartition, true},
		{kafka.LeaderNotAvailable, true},
		{kproduce.NewError(protocol.ErrNoLeader), true}, // kafka.(*Client).Produce to a topic just created
		{kproduce.NewError(protocol.ErrNoRecord), false},
		{fmt.Errorf("x: %w", kafkaio.ErrNoAnswer), true},
		{kafka.OffsetOutOfRange, false},
		{kafka.TopicAuthorizationFailed, false},
		{context.Canceled, false},
		{kafkaio.ErrBadParams, false},
		{errors.New("kafkaio: corrupt"), false},
	} {
		if got := kafkaio.Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// restartable is an embedded broker on a fixed port and data directory
// that a test can stop and start again.
type restartable struct {
	t      *testing.T
	addr   string
	dir    string
	broker *embedded.Broker
}

func newRestartable(t *testing.T, topic string) *restartable {
	t.Helper()
	addr := kafkatest.FreeAddr(t)
	r := &restartable{t: t, addr: addr, dir: t.TempDir()}
	r.start()
	t.Cleanup(r.stop)
	if err := kafkaio.EnsureTopics(context.Background(), kafkaio.Plain(addr), kafkaio.TopicSpec{Name: topic, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *restartable) start() {
	b, err := embedded.Start(embedded.Options{Listen: r.addr, DataDir: r.dir, Partitions: 2})
	if err != nil {
		r.t.Errorf("restarting the broker: %v", err)
		return
	}
	r.broker = b
}

func (r *restartable) stop() {
	if r.broker != nil {
		r.broker.Close()
		r.broker = nil
	}
}

// A stream reads on through a broker restart: the read reconnects with
// backoff and resumes at its offsets, losing and repeating nothing
// (issue 15 item 5).
func TestUnboundedReadSurvivesBrokerRestart(t *testing.T) {
	const topic = "blip"
	r := newRestartable(t, topic)
	brokers := []string{r.addr}
	want := produce(t, brokers, topic, 0, 300)
	go func() {
		time.Sleep(2 * time.Second)
		r.stop()
		time.Sleep(2 * time.Second)
		r.start()
		produce(t, brokers, topic, 300, 300)
	}()
	for i := 300; i < 600; i++ {
		want = append(want, fmt.Sprintf("record-%06d", i))
	}
	p, s := beam.NewPipelineWithRoot()
	recs := kafkaio.Read(s, kafkaio.Params{Brokers: brokers, Topics: []string{topic}, Unbounded: true,
		Until: time.Now().Add(9 * time.Second), CheckpointInterval: 200 * time.Millisecond, DialTimeout: time.Second})
	passert.Equals(s, beam.ParDo(s, recordValue, recs), toAny(want)...)
	ptest.RunAndValidate(t, p)
}

// When the brokers stay away longer than ReconnectFor, a stream's source
// gives up: the pipeline drains with what it read, and the metrics say
// why, instead of failing without a summary.
func TestUnboundedReadGivesUp(t *testing.T) {
	const topic = "gone"
	r := newRestartable(t, topic)
	brokers := []string{r.addr}
	want := produce(t, brokers, topic, 0, 200)
	go func() {
		time.Sleep(2 * time.Second)
		r.stop()
	}()
	p, s := beam.NewPipelineWithRoot()
	recs := kafkaio.Read(s, kafkaio.Params{Brokers: brokers, Topics: []string{topic}, Unbounded: true,
		Until: time.Now().Add(60 * time.Second), CheckpointInterval: 200 * time.Millisecond, DialTimeout: time.Second, ReconnectFor: 2 * time.Second})
	passert.Equals(s, beam.ParDo(s, recordValue, recs), toAny(want)...)
	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	var why []string
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace == kafkaio.ReadNamespace && strings.HasPrefix(c.Key.Name, kafkaio.MetricGaveUp+"/") {
			why = append(why, c.Key.Name)
		}
	}
	if len(why) != 2 || !strings.Contains(why[0], "after reconnecting for") {
		t.Errorf("gave up on %q, want both partitions with the reason", why)
	}
}

// A write waits out a broker that is away for a while and writes every
// record once it is back.
func TestWriteRetryingThroughRestart(t *testing.T) {
	const topic = "w"
	r := newRestartable(t, topic)
	brokers := []string{r.addr}
	r.stop()
	go func() {
		time.Sleep(1500 * time.Millisecond)
		r.start()
	}()
	w, err := kafkaio.NewWriter(kafkaio.WriteParams{Brokers: brokers, Topic: topic, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	msgs := make([]kafka.Message, 100)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: fmt.Appendf(nil, "v%d", i)}
	}
	retries := 0
	if err := kafkaio.WriteRetrying(context.Background(), w, msgs, 30*time.Second, func(int, error) { retries++ }); err != nil {
		t.Fatal(err)
	}
	ends, err := kafkaio.EndOffsets(context.Background(), kafkaio.Plain(brokers...), topic)
	if err != nil {
		t.Fatal(err)
	}
	if n := ends[0] + ends[1]; n < 100 || retries == 0 {
		t.Errorf("%d records after %d retries, want at least 100 after some", n, retries)
	}
}
