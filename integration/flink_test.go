//go:build integration

package integration

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/producer/replay"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/analyze"
	"github.com/muonml/muon/transforms/train"
)

// flinkEndpoint is Beam's Flink job server that integration/flink/start.sh
// started, or skips (fails under MUON_REQUIRE_FLINK=1).
func flinkEndpoint(t *testing.T) string {
	t.Helper()
	ep := os.Getenv("FLINK_ENDPOINT")
	if ep == "" {
		if os.Getenv("MUON_REQUIRE_FLINK") == "1" {
			t.Fatal("MUON_REQUIRE_FLINK=1 but FLINK_ENDPOINT is not set: start the job server with integration/flink/start.sh")
		}
		t.Skip("FLINK_ENDPOINT not set (integration/flink/start.sh starts Beam's Flink job server)")
	}
	return ep
}

// The ingest job on real data gives the same counts, dead letters and
// per-device file on the edge runner and on Flink.
func TestIngestSameOnEdgeAndFlink(t *testing.T) {
	ep := flinkEndpoint(t)
	bs := brokers(t)
	b := bs[len(bs)-1] // Apache Kafka when there is one
	topic := topicName(t, b, "ingest")
	ensure(t, b, topic, topic+".dlq")
	files := []string{
		filepath.Join("..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts"),
		filepath.Join("..", "configs", "testdata", "malformed.jsonl"),
	}
	for _, f := range files {
		_, err := replay.Replay(context.Background(), []string{f}, replay.Options{
			Brokers: b.addrs, Topic: topic,
			Recording: recording.Options{Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Period: 100 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	type outcome struct {
		ok, dead, read int64
		counts         string
	}
	run := func(kind runners.Kind) outcome {
		dir := t.TempDir()
		spec, err := configs.Parse("it.yaml", []byte(fmt.Sprintf("name: it\nsource:\n  topics: [%s]\n  format: sensor\noutput:\n  dir: %s\n", topic, dir)))
		if err != nil {
			t.Fatal(err)
		}
		p, s := beam.NewPipelineWithRoot()
		build(s, spec, jobs.Options{Brokers: b.addrs})
		res, err := runners.Run(context.Background(), p, runners.Options{Kind: kind, Endpoint: ep})
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		counts, err := os.ReadFile(jobs.CountsFile(spec))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		t.Logf("%s runner: %d decoded, %d dead letters in %s", kind, res.Counter("decode", "sensor.ok"), res.Counter("decode", "sensor.dead"), res.Elapsed)
		return outcome{res.Counter("decode", "sensor.ok"), res.Counter("decode", "sensor.dead"), res.Counter("kafkaio.Read", "records"), string(counts)}
	}
	edge := run(runners.Edge)
	flink := run(runners.Flink)
	if edge.ok != 4001 || edge.dead != 6 || edge.read != 4007 {
		t.Errorf("edge: %d read, %d decoded, %d dead, want 4007, 4001, 6", edge.read, edge.ok, edge.dead)
	}
	if flink != edge {
		t.Errorf("flink and edge differ:\nflink %d/%d/%d\n%s\nedge %d/%d/%d\n%s", flink.read, flink.ok, flink.dead, flink.counts, edge.read, edge.ok, edge.dead, edge.counts)
	}
}

// The features job (windows, batches, Parquet archive, preprocessing spec)
// archives the same rows on Flink as on the edge runner.
func TestFeaturesSameOnEdgeAndFlink(t *testing.T) {
	ep := flinkEndpoint(t)
	bs := brokers(t)
	b := bs[len(bs)-1]
	topic := topicName(t, b, "features")
	ensure(t, b, topic, topic+".dlq")
	_, err := replay.Replay(context.Background(), []string{filepath.Join("..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts")}, replay.Options{
		Brokers: b.addrs, Topic: topic,
		Recording: recording.Options{Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Period: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func(kind runners.Kind) (map[string]featureRow, string) {
		spec := featuresSpec(t, "it", topic, t.TempDir(), "")
		p, s := beam.NewPipelineWithRoot()
		build(s, spec, jobs.Options{Brokers: b.addrs})
		res, err := runners.Run(context.Background(), p, runners.Options{Kind: kind, Endpoint: ep})
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		pre, err := os.ReadFile(jobs.PreprocessFile(spec))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		rows := readFeatureArchive(t, jobs.FeaturesArchive(spec))
		t.Logf("%s runner: %d rows archived in %s", kind, len(rows), res.Elapsed)
		return rows, string(pre)
	}
	edge, edgePre := run(runners.Edge)
	flink, flinkPre := run(runners.Flink)
	sameFeatures(t, "Flink", edge, edgePre, flink, flinkPre)
}

// sameFeatures fails t unless the archived rows and preprocessing spec of
// a features job on other (a runner's name) are the edge runner's.
func sameFeatures(t *testing.T, other string, edge map[string]featureRow, edgePre string, flink map[string]featureRow, flinkPre string) {
	t.Helper()
	if len(edge) != 320 || len(flink) != len(edge) {
		t.Fatalf("%d rows on the edge runner, %d on %s, want 320", len(edge), len(flink), other)
	}
	for id, e := range edge {
		f := flink[id]
		if f.key != e.key || f.label != e.label || fmt.Sprint(f.features) != fmt.Sprint(e.features) {
			t.Fatalf("row %s differs between %s and the edge runner", id, other)
		}
	}
	// The statistics merge in whatever order each runner combines: equal
	// to rounding.
	fs, err1 := analyze.UnmarshalSpec([]byte(flinkPre))
	es, err2 := analyze.UnmarshalSpec([]byte(edgePre))
	if err1 != nil || err2 != nil || fs.Rows != es.Rows || fmt.Sprint(fs.Labels, fs.LabelCounts) != fmt.Sprint(es.Labels, es.LabelCounts) {
		t.Fatalf("preprocessing specs differ:\n%s %s\nedge %s", other, flinkPre, edgePre)
	}
	for i := range es.Mean {
		if math.Abs(fs.Mean[i]-es.Mean[i]) > 1e-9*math.Max(1, math.Abs(es.Mean[i])) || math.Abs(fs.Std[i]-es.Std[i]) > 1e-9*math.Max(1, es.Std[i]) {
			t.Fatalf("feature %d: mean %v std %v on %s, %v %v on the edge runner", i, fs.Mean[i], fs.Std[i], other, es.Mean[i], es.Std[i])
		}
	}
}

// basicMotionsTopics makes topics NAME and NAME-test (unique to the test)
// on b, with their dead-letter topics, and replays BasicMotions' train and
// test sets into them.
func basicMotionsTopics(t *testing.T, b broker, name string) (train, test string) {
	t.Helper()
	train, test = topicName(t, b, name), topicName(t, b, name+"-test")
	ensure(t, b, train, train+".dlq", test, test+".dlq")
	dir := filepath.Join("..", "..", "shared", "datasets", "basicmotions")
	for tp, file := range map[string]string{train: "BasicMotions_TRAIN.ts", test: "BasicMotions_TEST.ts"} {
		if _, err := replay.Replay(context.Background(), []string{filepath.Join(dir, file)}, replay.Options{Brokers: b.addrs, Topic: tp,
			Recording: recording.Options{Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Period: 100 * time.Millisecond}}); err != nil {
			t.Fatal(err)
		}
	}
	return train, test
}

// The train job on Flink trains the model the edge runner trains: on one
// shard it is serial minibatch SGD over rows in id order, so the
// parameters agree to the rounding of the standardization statistics, and
// the held-out test accuracy is the same.
func TestTrainSameOnEdgeAndFlink(t *testing.T) {
	ep := flinkEndpoint(t)
	bs := brokers(t)
	b := bs[len(bs)-1]
	topic, test := basicMotionsTopics(t, b, "train")
	run := func(kind runners.Kind) train.TrainedModel {
		out := t.TempDir()
		spec, err := configs.Parse("train.yaml", []byte(fmt.Sprintf(`name: it
job: train
source: {topics: [%s], format: sensor}
features: {kind: cases, channels: [dim0, dim1, dim2, dim3, dim4, dim5], bands: 4}
model: {kind: mlp, hidden: [16], activation: tanh, labels: [Badminton, Running, Standing, Walking]}
training: {epochs: 8, batch_size: 4, shards: 1, validation: 0.25, learning_rate: 0.01, test: {topics: [%s]}}
output: {dir: %s}
`, topic, test, out)))
		if err != nil {
			t.Fatal(err)
		}
		p, s := beam.NewPipelineWithRoot()
		if err := build(s, spec, jobs.Options{Brokers: b.addrs}); err != nil {
			t.Fatal(err)
		}
		res, err := runners.Run(context.Background(), p, runners.Options{Kind: kind, Endpoint: ep})
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		tm, err := train.ReadTrainedModel(jobs.ModelFile(spec))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		t.Logf("%s runner: %d epochs in %s, test accuracy %.3f on %d cases", kind, tm.Epochs, res.Elapsed, tm.Test.Accuracy, tm.Test.N)
		return *tm
	}
	edge, flink := run(runners.Edge), run(runners.Flink)
	if edge.Test == nil || flink.Test == nil || edge.Test.N != 40 || flink.Test.N != 40 || edge.Validation.N != flink.Validation.N {
		t.Fatalf("test sets %+v and %+v, validation %d and %d rows", edge.Test, flink.Test, edge.Validation.N, flink.Validation.N)
	}
	for i, e := range edge.Params {
		if f := flink.Params[i]; math.Abs(f-e) > 1e-9*math.Max(1, math.Abs(e)) {
			t.Fatalf("parameter %d: %v on Flink, %v on the edge runner", i, f, e)
		}
	}
	if edge.Test.Accuracy != flink.Test.Accuracy {
		t.Errorf("test accuracy %v on Flink, %v on the edge runner", flink.Test.Accuracy, edge.Test.Accuracy)
	}
}
