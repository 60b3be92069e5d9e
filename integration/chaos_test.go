//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/io/kafkaio/kafkatest"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/producer/replay"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/infer"
	"github.com/segmentio/kafka-go"
)

// The fault suite (issue 15): each scenario injects a fault into a real
// broker or process and counts what was lost and repeated. make chaos
// runs these tests alone and keeps their CHAOS lines; make test runs them
// with the other integration tests.

// chaosLine prints a scenario's outcome on its own line, as make chaos
// reports it, and fails the test unless it survived with nothing lost.
func chaosLine(t *testing.T, scenario string, survived bool, lost, dups int, recovery time.Duration) {
	t.Helper()
	verdict := "survived"
	if !survived || lost > 0 {
		verdict = "failed"
		t.Errorf("%s: lost %d, survived %v", scenario, lost, survived)
	}
	fmt.Printf("CHAOS %s %s lost=%d duplicates=%d recovery_ms=%d\n", scenario, verdict, lost, dups, recovery.Milliseconds())
}

// faultyBroker is a broker a scenario can restart: the embedded one in
// this process on a fixed port and data directory, or Apache Kafka through
// integration/kafka/restart.sh.
type faultyBroker struct {
	broker
	t        *testing.T
	dir      string
	embedded *embedded.Broker
}

func faultyBrokers(t *testing.T) []*faultyBroker {
	t.Helper()
	e := &faultyBroker{broker: broker{name: "embedded", addrs: []string{kafkatest.FreeAddr(t)}}, t: t, dir: t.TempDir()}
	e.startEmbedded()
	t.Cleanup(func() {
		if e.embedded != nil {
			e.embedded.Close()
		}
	})
	out := []*faultyBroker{e}
	for _, b := range brokers(t)[1:] {
		out = append(out, &faultyBroker{broker: b, t: t})
	}
	return out
}

func (f *faultyBroker) startEmbedded() {
	b, err := embedded.Start(embedded.Options{Listen: f.addrs[0], DataDir: f.dir, Partitions: 4})
	if err != nil {
		f.t.Errorf("starting the embedded broker: %v", err)
		return
	}
	f.embedded = b
}

// restart stops the broker (a crash: SIGKILL for Apache Kafka), waits
// pause, and starts it on the same data; it returns once the broker
// answers again.
func (f *faultyBroker) restart(pause time.Duration) {
	if f.name == "embedded" {
		f.embedded.Close()
		time.Sleep(pause)
		f.startEmbedded()
		return
	}
	_, port, _ := net.SplitHostPort(f.addrs[0])
	out, err := exec.Command("kafka/restart.sh", port, "kill", strconv.Itoa(int(pause.Seconds()))).CombinedOutput()
	if err != nil {
		f.t.Errorf("restarting Apache Kafka: %v\n%s", err, out)
	}
}

// Scenario: the broker crashes and comes back while a stream reads it
// (item 5). Records produced before and after are read exactly once.
func TestChaosBrokerRestartDuringStream(t *testing.T) {
	for _, b := range faultyBrokers(t) {
		t.Run(b.name, func(t *testing.T) {
			topic := topicName(t, b.broker, "restart")
			ensure(t, b.broker, topic)
			produceIDs(t, b.broker, topic, 0, 2000)
			recovered := make(chan time.Duration, 1)
			go func() {
				time.Sleep(3 * time.Second) // the stream is reading by now
				start := time.Now()
				b.restart(time.Second)
				produceIDs(t, b.broker, topic, 2000, 2000)
				recovered <- time.Since(start)
			}()
			run := 14 * time.Second
			if b.name != "embedded" {
				run = 40 * time.Second // Apache Kafka recovers its log after SIGKILL
			}
			p, s := beam.NewPipelineWithRoot()
			recs := kafkaio.Read(s, kafkaio.Params{Brokers: b.addrs, Topics: []string{topic}, Unbounded: true,
				Until: time.Now().Add(run), CheckpointInterval: 300 * time.Millisecond, DialTimeout: 2 * time.Second})
			path := collectIDs(t, s, recs)
			_, err := runners.Run(context.Background(), p, runners.Options{})
			rec := <-recovered
			got := loadIDs(t, path)
			lost, dups := countLoss(got, 4000)
			chaosLine(t, "broker-restart-during-stream/"+b.name, err == nil, lost, dups, rec)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// countLoss counts ids in [0, n) never read and reads beyond the first.
func countLoss(got map[string]int, n int) (lost, dups int) {
	for i := 0; i < n; i++ {
		c := got[strconv.Itoa(i)]
		if c == 0 {
			lost++
		}
		if c > 1 {
			dups += c - 1
		}
	}
	return lost, dups
}

// Scenario: the broker is killed with SIGKILL right after acknowledging
// writes (item 8); everything acknowledged is there after the restart, in
// topics made explicitly and in topics a first write made. The embedded
// broker runs in a process of its own (muon broker --data-dir), so that
// it can be killed.
func TestChaosBrokerKillNine(t *testing.T) {
	for _, b := range faultyBrokers(t) {
		t.Run(b.name, func(t *testing.T) {
			target := b.broker
			var child *exec.Cmd
			if b.name == "embedded" {
				var addr string
				child, addr = kafkatest.BrokerProcess(t, b.dir+"-k9")
				target = broker{name: "embedded", addrs: []string{addr}}
			}
			explicit, auto := topicName(t, target, "k9"), topicName(t, target, "k9auto")
			ensure(t, target, explicit)
			if child == nil {
				// Apache Kafka answers a first write to a topic it is
				// still creating with an error; the embedded broker's
				// auto-created topics are what is tested there.
				ensure(t, target, auto)
			}
			const n = 5000
			produceIDs(t, target, explicit, 0, n)
			produceIDs(t, target, auto, 0, n)
			start := time.Now()
			if child != nil {
				_ = child.Process.Kill() // SIGKILL
				_ = child.Wait()
				again, err := embedded.Start(embedded.Options{DataDir: b.dir + "-k9"})
				if err != nil {
					t.Fatalf("restarting on the data directory: %v", err)
				}
				defer again.Close()
				target = broker{name: "embedded", addrs: []string{again.Addr()}}
			} else {
				b.restart(0)
			}
			lost := 0
			for _, topic := range []string{explicit, auto} {
				ends, err := kafkaio.EndOffsets(context.Background(), kafkaio.Plain(target.addrs...), topic)
				if err != nil {
					t.Errorf("%s: %v", topic, err)
					lost += n
					continue
				}
				var have int64
				for _, e := range ends {
					have += e
				}
				lost += n - int(have)
			}
			chaosLine(t, "broker-kill-9/"+b.name, true, lost, 0, time.Since(start))
		})
	}
}

// Scenario: a broker accepts connections and never answers (item 6). The
// job fails with an error naming the broker, well within a minute.
func TestChaosBrokerNeverAnswers(t *testing.T) {
	addr := kafkatest.BlackHole(t)
	spec, err := configs.Parse("hang.yaml", []byte(fmt.Sprintf("name: hang\nkafka: {brokers: [%s]}\nsource: {topics: [t], format: sensor}\noutput: {dir: %s}\n", addr, t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = jobs.Run(context.Background(), spec, jobs.RunOptions{})
	took := time.Since(start)
	named := err != nil && errors.Is(err, kafkaio.ErrNoAnswer) && strings.Contains(err.Error(), addr)
	if !named {
		t.Errorf("error %v does not say that %s did not answer", err, addr)
	}
	chaosLine(t, "broker-never-answers", named && took < time.Minute, 0, 0, took)
}

// Scenario: a record just under the broker's size limit is invalid (item
// 7): its dead letter is cut to fit, and every valid record is decoded.
func TestChaosOversizeDeadLetter(t *testing.T) {
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			topic := topicName(t, b, "huge")
			ensure(t, b, topic, topic+".dlq")
			produceIDs(t, b, topic, 0, 1000)
			w, err := kafkaio.NewWriter(kafkaio.WriteParams{Brokers: b.addrs, Topic: topic, BatchBytes: 1_048_500})
			if err != nil {
				t.Fatal(err)
			}
			huge := kafka.Message{Key: []byte("big"), Value: []byte(`{"device":"big","values":{"x":"` + strings.Repeat("y", 1_047_900) + `"}}`)}
			if err := w.WriteMessages(context.Background(), huge); err != nil {
				t.Fatal(err)
			}
			w.Close()
			produceIDs(t, b, topic, 1000, 1000)
			spec, err := configs.Parse("huge.yaml", []byte(fmt.Sprintf("name: huge\nkafka: {brokers: [%s]}\nsource: {topics: [%s], format: sensor}\noutput: {dir: %s}\n", b.addrs[0], topic, t.TempDir())))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			sum, err := jobs.Run(context.Background(), spec, jobs.RunOptions{})
			lost := 2001
			if err == nil {
				lost = 2000 - int(sum.Decoded) + 1 - int(sum.DeadLetters)
			}
			letters := readAll(t, b, topic+".dlq")
			cut := len(letters) == 1 && len(letters[0].Value) < len(huge.Value)
			chaosLine(t, "oversize-dead-letter/"+b.name, err == nil && cut, max(lost, 0), 0, time.Since(start))
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Scenario: the disk fills while a train job writes its model (item 11):
// the job fails and no new model serves. A file name taken by a directory
// fails the write as ENOSPC would (root ignores permissions).
func TestChaosFullDiskLeavesNoNewModel(t *testing.T) {
	data := filepath.Join("..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts")
	if _, err := os.Stat(data); err != nil {
		t.Fatalf("dataset: %v", err)
	}
	b := brokers(t)[0]
	topic := topicName(t, b, "disk")
	dir := t.TempDir()
	priv, _, err := snapshot.GenerateKey(filepath.Join(dir, "keys"), "chaos")
	if err != nil {
		t.Fatal(err)
	}
	out, store := filepath.Join(dir, "out"), filepath.Join(dir, "store")
	if err := os.MkdirAll(filepath.Join(out, "model.json", "taken"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec, err := configs.Parse("disk.yaml", []byte(fmt.Sprintf(`name: disk
job: train
kafka: {brokers: [%s]}
source: {topics: [%s], format: sensor}
replay: [{path: %s, period: 100ms}]
features: {kind: cases, channels: [dim0, dim1, dim2, dim3, dim4, dim5], bands: 4}
model: {kind: softmax, labels: [Badminton, Running, Standing, Walking]}
training: {epochs: 3, batch_size: 8, shards: 1, validation: 0.25}
snapshot: {key: %s, store: %s}
output: {dir: %s}
`, b.addrs[0], topic, data, priv, store, out)))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = jobs.Run(context.Background(), spec, jobs.RunOptions{})
	vs, _ := (&modelstore.Dir{Root: store}).List(context.Background())
	if err == nil || !strings.Contains(err.Error(), "model file") || len(vs) != 0 {
		t.Errorf("job error %v, %d versions published", err, len(vs))
	}
	chaosLine(t, "full-disk-no-new-model", err != nil && len(vs) == 0, 0, 0, time.Since(start))
}

// Scenario: an unbounded edge infer job is killed with SIGKILL while it
// scores a stream (item 10). Run again, it resumes where its group's
// committed position says, which is only ever where its outputs had been
// written: every record is scored, none is lost; what it scores twice
// (read after its last commit) is counted.
func TestChaosEdgeJobKillNine(t *testing.T) {
	bin := muonBinary(t)
	for _, b := range faultyBrokers(t) {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			d := trainDigits(t, b.broker, dir)
			live, preds := topicName(t, b.broker, "live"), topicName(t, b.broker, "preds")
			ensure(t, b.broker, live, live+".dlq", preds, preds+".dlq")
			name := fmt.Sprintf("chaos-kill-%d", time.Now().UnixNano())
			args := []string{"run", "--config", filepath.Join("..", "configs", "infer-digits.yaml"),
				"--set", "name=" + name, "--set", "kafka.brokers=[" + b.addrs[0] + "]", "--set", "replay=[]",
				"--set", "source.topics=[" + live + "]", "--set", "source.bounded=false", "--set", "output.dir=" + filepath.Join(dir, "out"),
				"--set", fmt.Sprintf("inference=[{name: digits, store: %s, trust: [%s], topic: %s}]", d.store, d.pub, preds)}
			start := func() (*exec.Cmd, *strings.Builder) {
				var out strings.Builder
				cmd := exec.Command(bin, args...)
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				return cmd, &out
			}
			scored := func() (ids map[string]int, total int) {
				recs, err := kafkaio.Tail(context.Background(), kafkaio.Plain(b.addrs...), preds, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				ids = map[string]int{}
				for _, r := range recs {
					pr, err := infer.ParsePrediction(r.Value)
					if err != nil {
						t.Fatal(err)
					}
					ids[pr.ID]++
				}
				return ids, len(recs)
			}
			waitFor := func(what string, cond func() bool) {
				deadline := time.Now().Add(90 * time.Second)
				for !cond() {
					if time.Now().After(deadline) {
						t.Fatalf("no %s within 90 s", what)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}

			first, out1 := start()
			produced := make(chan error, 1)
			go func() {
				ro := recording.Options{Start: day.AddDate(0, 0, 2), Period: time.Millisecond, Format: "csv", Device: "optdigits"}
				path := filepath.Join("..", "..", "shared", "datasets", "optdigits", "optdigits.tes")
				_, err := replay.Replay(context.Background(), []string{path}, replay.Options{Brokers: b.addrs, Topic: live, Recording: ro, Rate: 300})
				produced <- err
			}()
			group := jobs.PositionGroup(&configs.Spec{Name: name})
			committed := func() int64 {
				offs, err := kafkaio.CommittedOffsets(context.Background(), kafkaio.Plain(b.addrs...), group, live)
				if err != nil {
					t.Fatal(err)
				}
				var pos int64
				for _, o := range offs {
					pos += o
				}
				return pos
			}
			// Kill it mid-stream, once it has committed a position (about two
			// checkpoint intervals after the records before it were read).
			waitFor("committed position from the first run", func() bool { return committed() >= 300 })
			if err := first.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = first.Wait()
			ids, n := scored()
			pos := committed()
			t.Logf("killed after %d predictions (%d records), %d offsets committed", n, len(ids), pos)
			if pos > int64(len(ids)) {
				t.Errorf("%d offsets committed but only %d records scored: a position ran ahead of its outputs", pos, len(ids))
			}
			if len(ids) >= 1797 {
				t.Errorf("the first run scored everything before the kill: the scenario tested nothing\n%s", out1)
			}
			if err := <-produced; err != nil {
				t.Fatal(err)
			}

			began := time.Now()
			second, out2 := start()
			waitFor("every record scored after the restart", func() bool { ids, _ := scored(); return len(ids) >= 1797 })
			recovery := time.Since(began)
			_ = second.Process.Signal(syscall.SIGTERM)
			err := second.Wait()
			ids, n = scored()
			lost := 1797 - len(ids)
			dups := n - len(ids)
			chaosLine(t, "edge-job-sigkill/"+b.name, err == nil, lost, dups, recovery)
			if err != nil {
				t.Fatalf("the resumed job: %v\n%s", err, out2)
			}
			if !strings.Contains(out2.String(), "position       committed") {
				t.Errorf("the resumed job's summary has no position line:\n%s", out2)
			}
			t.Logf("resumed job:\n%s", out2)
		})
	}
}
