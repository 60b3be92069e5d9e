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
	"github.com/muonml/muon/io/recording"
	"github.com/muonml/muon/io/replay"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/pipelines"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/infer"
)

// streamTrainInfer runs a train job on a stream with an inference branch
// beside it on the runner: a bounded job publishes the first snapshot;
// the streaming job trains every event-time minute from the newest model
// and publishes each as a signed snapshot to the same store; readings
// that arrive after the stream's first snapshot are scored by it (or a
// later one). The job stops when those predictions are on the topic.
func streamTrainInfer(t *testing.T, kind runners.Kind, b broker, endpoint string) {
	ctx := context.Background()
	dir := t.TempDir()
	priv, pub, err := snapshot.GenerateKey(filepath.Join(dir, "keys"), "it")
	if err != nil {
		t.Fatal(err)
	}
	boundedTopic, live, preds := topicName(t, b, "engines"), topicName(t, b, "live"), topicName(t, b, "predictions")
	ensure(t, b, boundedTopic, boundedTopic+".dlq", live, live+".dlq", preds, preds+".dlq")
	day := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	digits := filepath.Join("..", "..", "shared", "datasets", "optdigits")
	produce := func(topic, file string, start time.Time) {
		t.Helper()
		ro := recording.Options{Start: start, Period: time.Millisecond, Format: "csv", Device: "optdigits"}
		if _, err := replay.Replay(ctx, []string{filepath.Join(digits, file)}, replay.Options{Brokers: b.addrs, Topic: topic, Recording: ro}); err != nil {
			t.Fatal(err)
		}
	}
	produce(boundedTopic, "optdigits.tra", day)

	// The bounded job, on the edge runner: the stream's initial model and
	// the store's first snapshot.
	store := filepath.Join(dir, "store")
	bounded, err := configs.Load(filepath.Join("..", "configs", "train-digits.yaml"), "name=it-digits", "output.dir="+filepath.Join(dir, "bounded"),
		"training.epochs=3", "training.shards=1", "source.topics=["+boundedTopic+"]", "training.test={}",
		"snapshot={key: "+priv+", store: "+store+", gate: {min: 0.5, max_drop: 0.5}}")
	if err != nil {
		t.Fatal(err)
	}
	p, s := beam.NewPipelineWithRoot()
	if err := pipelines.Train(s, bounded, pipelines.Options{Brokers: b.addrs}); err != nil {
		t.Fatal(err)
	}
	if _, err := runners.Run(ctx, p, runners.Options{}); err != nil {
		t.Fatal(err)
	}
	first, err := (&modelstore.Dir{Root: store}).Latest(ctx)
	if err != nil {
		t.Fatalf("the bounded job published no snapshot: %v", err)
	}

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
		"training.stream={window: 1m, initial: "+pipelines.ModelFile(bounded)+every+"}",
		"snapshot={key: "+priv+", store: "+store+"}",
		fmt.Sprintf("inference=[{name: rul, store: %s, trust: [%s], topic: %s, reload: 200ms}]", store, pub, preds))
	if err != nil {
		t.Fatal(err)
	}
	p, s = beam.NewPipelineWithRoot()
	if err := pipelines.Train(s, spec, pipelines.Options{Brokers: b.addrs, StopFile: stop}); err != nil {
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
		recs, err := kafkaio.Tail(ctx, b.addrs, preds, 1<<20)
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
	t.Logf("%s: %d versions in the store; predictions by model: %v; %d rows trained, %d scored in %s", kind, len(vs), byModel,
		o.res.Counter("train.Stream", "rows"), o.res.Counter("infer.rul", "rows"), o.res.Elapsed)
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
