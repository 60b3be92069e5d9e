//go:build integration

package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/io/kafkaio/kafkatest"
	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/message"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/runners"
	"github.com/segmentio/kafka-go"
)

func TestMain(m *testing.M) {
	kafkatest.ServeIfAsked()
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.Function1x1(recordID)
	register.DoFn3x1[context.Context, int, func(*idCount) bool, error](&writeIDCountsFn{})
	register.Function2x1(toIDCount)
	register.Iter1[idCount]()
	register.DoFn2x0[int, func(kafkaio.Record)](&genRecordsFn{})
}

// broker is a Kafka to run the tests against.
type broker struct {
	name  string
	addrs []string
}

// brokers returns the embedded broker and, when KAFKA_BROKERS is set,
// Apache Kafka.
func brokers(t *testing.T) []broker {
	t.Helper()
	b, err := embedded.Start(embedded.Options{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	out := []broker{{name: "embedded", addrs: []string{b.Addr()}}}
	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		out = append(out, broker{name: "kafka", addrs: strings.Split(env, ",")})
	} else if os.Getenv("MUON_REQUIRE_KAFKA") == "1" {
		t.Fatal("MUON_REQUIRE_KAFKA=1 but KAFKA_BROKERS is not set: start Apache Kafka with integration/kafka/start.sh")
	} else {
		t.Log("KAFKA_BROKERS not set: Apache Kafka half skipped (integration/kafka/start.sh starts one)")
	}
	return out
}

// topicName is unique per test run, since Apache Kafka outlives tests.
func topicName(t *testing.T, b broker, suffix string) string {
	return fmt.Sprintf("it-%s-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), suffix, time.Now().UnixNano()%1e9)
}

func ensure(t *testing.T, b broker, topics ...string) {
	t.Helper()
	specs := make([]kafkaio.TopicSpec, len(topics))
	for i, tp := range topics {
		specs[i] = kafkaio.TopicSpec{Name: tp, Partitions: 4}
	}
	if err := kafkaio.EnsureTopics(context.Background(), kafkaio.Plain(b.addrs...), specs...); err != nil {
		t.Fatal(err)
	}
}

// produceIDs writes n sensor readings whose device field carries a unique id.
func produceIDs(t *testing.T, b broker, topic string, from, n int) {
	t.Helper()
	w, err := kafkaio.NewWriter(kafkaio.WriteParams{Brokers: b.addrs, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	msgs := make([]kafka.Message, 0, 1000)
	for i := from; i < from+n; i++ {
		r := records.Reading{Device: fmt.Sprintf("dev-%03d", i%50), Time: base.Add(time.Duration(i) * time.Millisecond),
			Values: []records.Value{{Name: "id", Value: float64(i)}, {Name: "x", Value: float64(i) / 7}}}
		msgs = append(msgs, kafka.Message{Key: []byte(r.Device), Value: message.AppendReading(nil, r), Time: r.Time})
		if len(msgs) == cap(msgs) || i == from+n-1 {
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				t.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
}

func recordID(r kafkaio.Record) string {
	var m records.Reading
	if err := message.ParseReading(r.Value, r.Time, &m); err != nil {
		return "unparsable:" + r.ID()
	}
	for _, v := range m.Values {
		if v.Name == "id" {
			return strconv.Itoa(int(v.Value))
		}
	}
	return "noid:" + r.ID()
}

type idCount struct {
	ID    string
	Count int
}

func toIDCount(id string, n int) idCount { return idCount{ID: id, Count: n} }

// writeIDCountsFn writes every id and how often it was read to a JSON file.
type writeIDCountsFn struct{ Path string }

func (fn *writeIDCountsFn) ProcessElement(_ context.Context, _ int, iter func(*idCount) bool) error {
	m := map[string]int{}
	var c idCount
	for iter(&c) {
		m[c.ID] += c.Count
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(fn.Path, b, 0o644)
}

// readIDs reads ids from the collection of records into a map id → times read.
func collectIDs(t *testing.T, s beam.Scope, recs beam.PCollection) string {
	path := filepath.Join(t.TempDir(), "ids.json")
	counts := beam.ParDo(s, toIDCount, stats.Count(s, beam.ParDo(s, recordID, recs)))
	beam.ParDo0(s, &writeIDCountsFn{Path: path}, beam.GroupByKey(s, beam.AddFixedKey(s, counts)))
	return path
}

func loadIDs(t *testing.T, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkExactlyOnce compares the ids read with [0, n): nothing may be lost;
// duplicates are counted and reported (a bounded read has none).
func checkExactlyOnce(t *testing.T, got map[string]int, n int) {
	t.Helper()
	lost, dups := countLoss(got, n)
	extra := 0
	for id := range got {
		if i, err := strconv.Atoi(id); err != nil || i < 0 || i >= n {
			extra++
		}
	}
	t.Logf("produced %d, read %d distinct: %d lost, %d duplicates, %d unexpected", n, len(got), lost, dups, extra)
	if lost != 0 || extra != 0 {
		t.Errorf("%d lost, %d unexpected records", lost, extra)
	}
	if dups != 0 {
		t.Errorf("%d duplicates in a bounded read", dups)
	}
}

func TestBoundedReadExactlyTheProducedSet(t *testing.T) {
	const n = 50000
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			topic := topicName(t, b, "bounded")
			ensure(t, b, topic)
			produceIDs(t, b, topic, 0, n)
			// Records produced after the end offsets are captured must not
			// be read: the read is bounded by the offsets at start.
			for _, params := range []kafkaio.Params{
				{Brokers: b.addrs, Topics: []string{topic}},
				// Three connections per partition fetching chunks of 997.
				{Brokers: b.addrs, Topics: []string{topic}, FetchConns: 3, ChunkRecords: 997},
			} {
				p, s := beam.NewPipelineWithRoot()
				path := collectIDs(t, s, kafkaio.Read(s, params))
				if _, err := runners.Run(context.Background(), p, runners.Options{Kind: runners.Edge}); err != nil {
					t.Fatal(err)
				}
				checkExactlyOnce(t, loadIDs(t, path), n)
			}
		})
	}
}

func TestReadFromOffsetsAndTimestamp(t *testing.T) {
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			topic := topicName(t, b, "start")
			ensure(t, b, topic)
			produceIDs(t, b, topic, 0, 4000)
			ends, err := kafkaio.EndOffsets(context.Background(), kafkaio.Plain(b.addrs...), topic)
			if err != nil {
				t.Fatal(err)
			}
			// Start every partition half way: about half the records.
			offs := map[int]int64{}
			var want int64
			for p, end := range ends {
				offs[p] = end / 2
				want += end - end/2
			}
			p, s := beam.NewPipelineWithRoot()
			path := collectIDs(t, s, kafkaio.Read(s, kafkaio.Params{Brokers: b.addrs, Topics: []string{topic},
				Start: kafkaio.Start{Kind: kafkaio.StartOffsets, Offsets: offs}}))
			if _, err := runners.Run(context.Background(), p, runners.Options{}); err != nil {
				t.Fatal(err)
			}
			if got := len(loadIDs(t, path)); int64(got) != want {
				t.Errorf("read %d records from explicit offsets, want %d", got, want)
			}

			// From a timestamp: ids ≥ 3000 have timestamps ≥ base+3000ms.
			p, s = beam.NewPipelineWithRoot()
			from := time.Date(2024, 1, 1, 0, 0, 3, 0, time.UTC)
			path = collectIDs(t, s, kafkaio.Read(s, kafkaio.Params{Brokers: b.addrs, Topics: []string{topic},
				Start: kafkaio.Start{Kind: kafkaio.StartTime, Time: from}}))
			if _, err := runners.Run(context.Background(), p, runners.Options{}); err != nil {
				t.Fatal(err)
			}
			got := loadIDs(t, path)
			if len(got) != 1000 {
				t.Errorf("read %d records from %s, want 1000", len(got), from)
			}
			for id := range got {
				if i, _ := strconv.Atoi(id); i < 3000 {
					t.Errorf("record %s is before the start time", id)
					break
				}
			}
		})
	}
}

func TestUnboundedReadSeesLaterRecords(t *testing.T) {
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			topic := topicName(t, b, "live")
			ensure(t, b, topic)
			produceIDs(t, b, topic, 0, 1000)
			errc := make(chan error, 1)
			go func() {
				time.Sleep(3 * time.Second) // the pipeline is running by now
				produceIDs(t, b, topic, 1000, 2000)
				errc <- nil
			}()
			p, s := beam.NewPipelineWithRoot()
			recs := kafkaio.Read(s, kafkaio.Params{Brokers: b.addrs, Topics: []string{topic}, Unbounded: true,
				Until: time.Now().Add(8 * time.Second), CheckpointInterval: 300 * time.Millisecond})
			path := collectIDs(t, s, recs)
			if _, err := runners.Run(context.Background(), p, runners.Options{}); err != nil {
				t.Fatal(err)
			}
			<-errc
			got := loadIDs(t, path)
			later := 0
			for id := range got {
				if i, _ := strconv.Atoi(id); i >= 1000 {
					later++
				}
			}
			t.Logf("unbounded read: %d records, %d produced after the pipeline started", len(got), later)
			checkExactlyOnce(t, got, 3000)
		})
	}
}

type genRecordsFn struct {
	Topic string
	N     int
}

func (fn *genRecordsFn) ProcessElement(_ int, emit func(kafkaio.Record)) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < fn.N; i++ {
		r := records.Reading{Device: fmt.Sprintf("dev-%03d", i%50), Time: base.Add(time.Duration(i) * time.Millisecond),
			Values: []records.Value{{Name: "id", Value: float64(i)}}}
		emit(kafkaio.Record{Topic: fn.Topic, Key: []byte(r.Device), Value: message.AppendReading(nil, r), Time: r.Time,
			Headers: []kafkaio.Header{{Key: "seq", Value: []byte(strconv.Itoa(i))}}})
	}
}

func TestWriteKeepsEveryRecordAndKey(t *testing.T) {
	const n = 20000
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			topic := topicName(t, b, "write")
			ensure(t, b, topic)
			p, s := beam.NewPipelineWithRoot()
			kafkaio.Write(s, kafkaio.WriteParams{Brokers: b.addrs}, beam.ParDo(s, &genRecordsFn{Topic: topic, N: n}, beam.Create(s, 1)))
			if _, err := runners.Run(context.Background(), p, runners.Options{}); err != nil {
				t.Fatal(err)
			}
			msgs := readAll(t, b, topic)
			seen := map[string]int{}
			keyOK := true
			for _, m := range msgs {
				id := recordID(kafkaio.Record{Value: m.Value, Time: m.Time})
				seen[id]++
				var r records.Reading
				if err := message.ParseReading(m.Value, m.Time, &r); err != nil || r.Device != string(m.Key) {
					keyOK = false
				}
			}
			checkExactlyOnce(t, seen, n)
			if !keyOK {
				t.Error("a record's key does not match its device")
			}
			// Same key → same partition.
			part := map[string]int{}
			for _, m := range msgs {
				if p, ok := part[string(m.Key)]; ok && p != m.Partition {
					t.Fatalf("key %s in partitions %d and %d", m.Key, p, m.Partition)
				}
				part[string(m.Key)] = m.Partition
			}
		})
	}
}

func TestWriteErrorsSurface(t *testing.T) {
	// Nothing listens on this port: once it has reconnected for
	// ReconnectFor, the write must fail the job, not drop records.
	p, s := beam.NewPipelineWithRoot()
	kafkaio.Write(s, kafkaio.WriteParams{Brokers: []string{"127.0.0.1:1"}, Attempts: 2, Timeout: 2 * time.Second, ReconnectFor: 3 * time.Second},
		beam.ParDo(s, &genRecordsFn{Topic: "nowhere", N: 10}, beam.Create(s, 1)))
	_, err := runners.Run(context.Background(), p, runners.Options{})
	if err == nil {
		t.Fatal("writing to a broker that is not there succeeded")
	}
	if !strings.Contains(err.Error(), "gave up after reconnecting for") {
		t.Errorf("error %q does not say it reconnected and gave up", err)
	}
	t.Logf("write error surfaced: %.200s", err)
}

// readAll reads every record of topic with a plain kafka-go batch loop.
func readAll(t *testing.T, b broker, topic string) []kafka.Message {
	t.Helper()
	ends, err := kafkaio.EndOffsets(context.Background(), kafkaio.Plain(b.addrs...), topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for part, end := range ends {
		if end == 0 {
			continue
		}
		conn, err := kafka.DialLeader(context.Background(), "tcp", b.addrs[0], topic, part)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for next := int64(0); next < end; {
			batch := conn.ReadBatch(1, 8<<20)
			for {
				m, err := batch.ReadMessage()
				if err != nil {
					break
				}
				out = append(out, m)
				next = m.Offset + 1
			}
			if err := batch.Close(); err != nil && !errors.Is(err, kafka.RequestTimedOut) {
				t.Fatal(err)
			}
		}
		conn.Close()
	}
	return out
}

func TestMalformedRecordsGoToDeadLetterTopic(t *testing.T) {
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			topic := topicName(t, b, "dlq")
			dlq := topic + ".dlq"
			ensure(t, b, topic, dlq)
			produceIDs(t, b, topic, 0, 500)
			bad := []struct{ key, value, why string }{
				{"d1", `{"device":"d1","values":{"x":1}`, "invalid JSON"},
				{"d2", `{"values":{"x":1}}`, "missing device"},
				{"d3", `{"device":"d3","values":{"x":"high"}}`, "not a finite number"},
				{"d4", `not json at all`, "invalid JSON"},
				{"d5", `{"device":"d5","values":{}}`, "missing values"},
				{"d6", `{"device":"d6","ts":"yesterday","values":{"x":1}}`, "bad timestamp"},
				{"d7", `{"device":"d7","values":{"x":1},"pad":"` + strings.Repeat("x", 3000) + `"}`, "too large"},
			}
			w, err := kafkaio.NewWriter(kafkaio.WriteParams{Brokers: b.addrs, Topic: topic})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range bad {
				if err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte(m.key), Value: []byte(m.value)}); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			// A value just under the broker's limit: its dead letter would
			// not fit whole once the dead-letter headers are added.
			huge := kafka.Message{Key: []byte("d8"), Value: append([]byte(`{"device":"d8","values":{"x":1},"pad":"`), strings.Repeat("x", 1_047_900)...)}
			bad = append(bad, struct{ key, value, why string }{"d8", string(huge.Value), "too large"})
			wb, err := kafkaio.NewWriter(kafkaio.WriteParams{Brokers: b.addrs, Topic: topic, BatchBytes: 1_048_500})
			if err != nil {
				t.Fatal(err)
			}
			if err := wb.WriteMessages(context.Background(), huge); err != nil {
				t.Fatalf("producing a record just under the broker's limit: %v", err)
			}
			wb.Close()
			produceIDs(t, b, topic, 500, 500)

			spec, err := configs.Parse("dlq.yaml", []byte(fmt.Sprintf("name: dlq\nsource:\n  topics: [%s]\n  format: sensor\ndecode:\n  max_bytes: 2048\noutput:\n  dir: %s\n", topic, t.TempDir())))
			if err != nil {
				t.Fatal(err)
			}
			p, s := beam.NewPipelineWithRoot()
			build(s, spec, jobs.Options{Brokers: b.addrs})
			res, err := runners.Run(context.Background(), p, runners.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if ok, dead := res.Counter("decode", "sensor.ok"), res.Counter("decode", "sensor.dead"); ok != 1000 || dead != int64(len(bad)) {
				t.Errorf("decoded %d good and %d bad, want 1000 and %d", ok, dead, len(bad))
			}
			reasons := res.Under(kafkaio.DeadLetterNamespace, "")
			if reasons["decode: message: invalid JSON"] != 2 || reasons["decode: message: reading too large"] != 2 {
				t.Errorf("dead letters by reason %v, want 2 invalid JSON and 2 too large among them", reasons)
			}
			letters := readAll(t, b, dlq)
			if len(letters) != len(bad) {
				t.Fatalf("%d dead letters, want %d", len(letters), len(bad))
			}
			src := map[string]kafka.Message{}
			for _, m := range readAll(t, b, topic) {
				src[fmt.Sprintf("%d/%d", m.Partition, m.Offset)] = m
			}
			sort.Slice(letters, func(i, j int) bool { return string(letters[i].Key) < string(letters[j].Key) })
			for i, l := range letters {
				h := map[string]string{}
				for _, x := range l.Headers {
					h[x.Key] = string(x.Value)
				}
				if h[kafkaio.HeaderStage] != "decode" || h[kafkaio.HeaderSourceTopic] != topic {
					t.Errorf("dead letter %s: headers %v", l.Key, h)
				}
				if !strings.Contains(h[kafkaio.HeaderError], bad[i].why) {
					t.Errorf("dead letter %s: error %q does not say %q", l.Key, h[kafkaio.HeaderError], bad[i].why)
				}
				orig, ok := src[h[kafkaio.HeaderSourcePartition]+"/"+h[kafkaio.HeaderSourceOffset]]
				if h[kafkaio.HeaderCut] != "" {
					sum := sha256.Sum256(orig.Value)
					if string(l.Key) != "d8" || h[kafkaio.HeaderCut] != "value" || !strings.HasPrefix(string(orig.Value), string(l.Value)) ||
						h[kafkaio.HeaderOriginalSize] != strconv.Itoa(len(orig.Value)) || h[kafkaio.HeaderOriginalDigest] != "sha256:"+hex.EncodeToString(sum[:]) {
						t.Errorf("cut dead letter %s: %d bytes, headers %v", l.Key, len(l.Value), h)
					}
					continue
				}
				if !ok || string(orig.Value) != string(l.Value) || string(orig.Key) != string(l.Key) {
					t.Errorf("dead letter %s does not point at its source record (%s/%s)", l.Key, h[kafkaio.HeaderSourcePartition], h[kafkaio.HeaderSourceOffset])
				}
			}
		})
	}
}

// build builds spec's job into s, as muon run does.
func build(s beam.Scope, spec *configs.Spec, o jobs.Options) error {
	job, err := jobs.For(spec.Job)
	if err != nil {
		return err
	}
	return job.Build(s, spec, o)
}
