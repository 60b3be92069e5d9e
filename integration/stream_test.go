//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/producer/replay"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/infer"
)

var day = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// produceDigits replays an optdigits file into topic, one digit a
// millisecond of event time from start.
func produceDigits(t *testing.T, b broker, topic, file string, start time.Time) {
	t.Helper()
	ro := recording.Options{Start: start, Period: time.Millisecond, Format: "csv", Device: "optdigits"}
	path := filepath.Join("..", "..", "shared", "datasets", "optdigits", file)
	if _, err := replay.Replay(context.Background(), []string{path}, replay.Options{Brokers: b.addrs, Topic: topic, Recording: ro}); err != nil {
		t.Fatal(err)
	}
}

// trainedDigits is a digits model a bounded train job published.
type trainedDigits struct {
	priv, pub, store string
	spec             *configs.Spec
}

// trainDigits trains an MLP on optdigits.tra on the edge runner (3 epochs,
// one shard) and publishes it, pruned and int8, signed with a new key, to
// a store under dir.
func trainDigits(t *testing.T, b broker, dir string) trainedDigits {
	t.Helper()
	priv, pub, err := snapshot.GenerateKey(filepath.Join(dir, "keys"), "it")
	if err != nil {
		t.Fatal(err)
	}
	topic := topicName(t, b, "digits")
	ensure(t, b, topic, topic+".dlq")
	produceDigits(t, b, topic, "optdigits.tra", day)
	store := filepath.Join(dir, "store")
	spec, err := configs.Load(filepath.Join("..", "configs", "train-digits.yaml"), "name=it-digits", "output.dir="+filepath.Join(dir, "bounded"),
		"training.epochs=3", "training.shards=1", "source.topics=["+topic+"]", "training.test={}",
		"snapshot={key: "+priv+", store: "+store+", prune: 0.5, gate: {min: 0.5, max_drop: 0.5}}")
	if err != nil {
		t.Fatal(err)
	}
	p, s := beam.NewPipelineWithRoot()
	if err := build(s, spec, jobs.Options{Brokers: b.addrs}); err != nil {
		t.Fatal(err)
	}
	if _, err := runners.Run(context.Background(), p, runners.Options{}); err != nil {
		t.Fatal(err)
	}
	return trainedDigits{priv: priv, pub: pub, store: store, spec: spec}
}

// streamTrainInfer runs a train job on a stream with an inference branch
// beside it on the runner: a bounded job publishes the first snapshot;
// the streaming job trains every event-time minute from the newest model
// and publishes each as a signed snapshot to the same store; readings
// that arrive after the stream's first snapshot are scored by it (or a
// later one). The job stops when those predictions are on the topic.
func streamTrainInfer(t *testing.T, kind runners.Kind, b broker, endpoint string) {
	ctx := context.Background()
	dir := t.TempDir()
	d := trainDigits(t, b, dir)
	priv, pub, store, bounded := d.priv, d.pub, d.store, d.spec
	live, preds := topicName(t, b, "live"), topicName(t, b, "predictions")
	ensure(t, b, live, live+".dlq", preds, preds+".dlq")
	first, err := (&modelstore.Dir{Root: store}).Latest(ctx)
	if err != nil {
		t.Fatalf("the bounded job published no snapshot: %v", err)
	}
	produce := func(topic, file string, start time.Time) { produceDigits(t, b, topic, file, start) }

	// The test digits make the stream's backlog. On Flink, where the
	// watermark of the read does not reach the windows while it runs, the
	// open minute trains and publishes every 3 s of processing time.
	produce(live, "optdigits.tes", day.AddDate(0, 0, 1))
	every := ""
	if kind == runners.Flink {
		every = ", every: 3s"
	}
	stop := filepath.Join(dir, "stop")
	spec, err := configs.Load(filepath.Join("..", "configs", "train-digits.yaml"), "name=it-stream", "output.dir="+filepath.Join(dir, "stream"),
		"source={topics: ["+live+"], format: sensor, bounded: false}", "training.test={}", "training.shards=1",
		"training.stream={window: 1m, initial: "+jobs.ModelFile(bounded)+every+"}",
		"snapshot={key: "+priv+", store: "+store+"}",
		fmt.Sprintf("inference=[{name: rul, store: %s, trust: [%s], topic: %s, reload: 200ms}]", store, pub, preds))
	if err != nil {
		t.Fatal(err)
	}
	p, s := beam.NewPipelineWithRoot()
	if err := build(s, spec, jobs.Options{Brokers: b.addrs, StopFile: stop}); err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		res *runners.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := runners.Run(ctx, p, runners.Options{Kind: kind, Endpoint: endpoint})
		done <- outcome{res, err}
	}()
	finished := false
	defer func() {
		if !finished {
			os.WriteFile(stop, nil, 0o644)
			<-done
		}
	}()
	wait := func(what string, limit time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !cond() {
			select {
			case o := <-done:
				finished = true
				t.Fatalf("%s: the job ended (%v) before %s", kind, o.err, what)
			case <-time.After(250 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no %s after %s", kind, what, limit)
			}
		}
	}
	var streamed modelstore.Version
	wait("snapshot published by the stream", 3*time.Minute, func() bool {
		v, err := (&modelstore.Dir{Root: store}).Latest(ctx)
		if err == nil && v.Seq > first.Seq {
			streamed = v
			return true
		}
		return false
	})
	t.Logf("%s: the stream published %s", kind, streamed)
	// The test digits again, a day later: scored after the stream's
	// snapshot was published, so by it or a newer one.
	time.Sleep(time.Second)
	produce(live, "optdigits.tes", day.AddDate(0, 0, 2))
	byModel := map[string]int{}
	wait("predictions by a streamed snapshot", 3*time.Minute, func() bool {
		recs, err := kafkaio.Tail(ctx, kafkaio.Plain(b.addrs...), preds, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		clear(byModel)
		newer := false
		for _, r := range recs {
			pr, err := infer.ParsePrediction(r.Value)
			if err != nil {
				t.Fatalf("prediction %s: %v", r.Value, err)
			}
			byModel[pr.Model]++
			if strings.HasPrefix(pr.Model, "it-stream@") && pr.Time.After(day.AddDate(0, 0, 2)) {
				newer = true
			}
		}
		return newer
	})
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o := <-done
	finished = true
	if o.err != nil {
		t.Fatalf("%s: %v", kind, o.err)
	}
	vs, err := (&modelstore.Dir{Root: store}).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, v := range vs {
		known[v.String()] = true
	}
	for m := range byModel {
		if !known[m] {
			t.Errorf("predictions by %s, not a version of the store", m)
		}
	}
	t.Logf("%s: %d versions in the store; predictions by model: %v; %d rows scored in %s", kind, len(vs), byModel,
		o.res.Counter("infer.rul", "rows"), o.res.Elapsed)
}

// A train job on a stream publishes every window's model as a signed
// snapshot, and the inference branch beside it picks each up: on the edge
// runner against the embedded broker.
func TestStreamTrainAndInferOnEdge(t *testing.T) {
	bs := brokers(t)
	streamTrainInfer(t, runners.Edge, bs[0], "")
}

// The same on Flink, against Apache Kafka.
func TestStreamTrainAndInferOnFlink(t *testing.T) {
	ep := flinkEndpoint(t)
	bs := brokers(t)
	streamTrainInfer(t, runners.Flink, bs[len(bs)-1], ep)
}

// The same bounded infer job (two branches: every digit scored, and an
// alert branch) gives the same predictions on the edge runner and on
// Flink, against Apache Kafka: the same ids, models, labels, scores and
// alerts.
func TestInferSameOnEdgeAndFlink(t *testing.T) {
	ep := flinkEndpoint(t)
	bs := brokers(t)
	b := bs[len(bs)-1]
	dir := t.TempDir()
	d := trainDigits(t, b, dir)
	live := topicName(t, b, "live")
	ensure(t, b, live, live+".dlq")
	produceDigits(t, b, live, "optdigits.tes", day.AddDate(0, 0, 1))
	run := func(kind runners.Kind) (preds, alerts map[string]string) {
		p, a := topicName(t, b, string(kind)+"-predictions"), topicName(t, b, string(kind)+"-alerts")
		ensure(t, b, p, p+".dlq", a, a+".dlq")
		spec, err := configs.Load(filepath.Join("..", "configs", "infer-digits.yaml"), "output.dir="+filepath.Join(dir, string(kind)),
			"source.topics=["+live+"]",
			fmt.Sprintf("inference=[{name: digits, store: %s, trust: [%s], topic: %s}, {name: zeros, store: %[1]s, trust: [%[2]s], topic: %[4]s, alert: {label: \"0\", threshold: 0.9}}]",
				d.store, d.pub, p, a))
		if err != nil {
			t.Fatal(err)
		}
		pl, s := beam.NewPipelineWithRoot()
		if err := build(s, spec, jobs.Options{Brokers: b.addrs}); err != nil {
			t.Fatal(err)
		}
		res, err := runners.Run(context.Background(), pl, runners.Options{Kind: kind, Endpoint: ep})
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		read := func(topic string) map[string]string {
			recs, err := kafkaio.Tail(context.Background(), kafkaio.Plain(b.addrs...), topic, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for _, r := range recs {
				pr, err := infer.ParsePrediction(r.Value)
				if err != nil {
					t.Fatalf("%s: %v", r.Value, err)
				}
				if _, dup := out[pr.ID]; dup {
					t.Errorf("%s: prediction %s twice", kind, pr.ID)
				}
				// Everything but the latency, which is the runner's.
				out[pr.ID] = fmt.Sprintf("%s %s %s %s %v %v %s", pr.Key, pr.Time.Format(time.RFC3339Nano), pr.Model, pr.Label, pr.Scores, pr.Values, pr.Alert)
			}
			return out
		}
		preds, alerts = read(p), read(a)
		t.Logf("%s runner: %d predictions, %d alerts, %d dead letters in %s", kind, len(preds), len(alerts),
			res.Counter("infer.digits", "dead_letters")+res.Counter("infer.zeros", "dead_letters"), res.Elapsed)
		return preds, alerts
	}
	edgeP, edgeA := run(runners.Edge)
	flinkP, flinkA := run(runners.Flink)
	if len(edgeP) != 1797 || len(edgeA) == 0 || len(edgeA) >= len(edgeP) {
		t.Fatalf("edge: %d predictions and %d alerts, want 1797 and some", len(edgeP), len(edgeA))
	}
	for _, c := range []struct {
		name        string
		edge, flink map[string]string
	}{{"predictions", edgeP, flinkP}, {"alerts", edgeA, flinkA}} {
		if len(c.edge) != len(c.flink) {
			t.Errorf("%s: %d on the edge runner, %d on Flink", c.name, len(c.edge), len(c.flink))
		}
		for id, e := range c.edge {
			if f, ok := c.flink[id]; !ok || f != e {
				t.Errorf("%s %s: edge %q, Flink %q", c.name, id, e, f)
				break
			}
		}
	}
}
