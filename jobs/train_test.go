package jobs_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/models/compress"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/producer/replay"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/train"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

// The train job on BasicMotions through Kafka: one row per case, an MLP on
// two shards, averaged every 4 epochs (40 epochs: the default 10 rounds);
// every round is reported, and the model it writes classifies the
// held-out cases.
func TestTrainJob(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("dataset not available: %v", err)
	}
	brokers := testBroker(t, "sensors", "sensors-test")
	for topic, file := range map[string]string{"sensors": path, "sensors-test": strings.Replace(path, "_TRAIN", "_TEST", 1)} {
		if _, err := replay.Replay(context.Background(), []string{file}, replay.Options{Brokers: brokers, Topic: topic,
			Recording: recording.Options{Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Period: 100 * time.Millisecond}}); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	spec, err := configs.Parse("train.yaml", []byte(fmt.Sprintf(`name: t
job: train
source: {topics: [sensors], format: sensor}
features: {kind: cases, channels: [dim0, dim1, dim2, dim3, dim4, dim5], bands: 4}
model: {kind: mlp, hidden: [16], activation: tanh, labels: [Badminton, Running, Standing, Walking]}
training: {epochs: 40, batch_size: 4, shards: 2, validation: 0.25, learning_rate: 0.01, test: {topics: [sensors-test]}}
output: {dir: %s}
`, out)))
	if err != nil {
		t.Fatal(err)
	}
	p, s := beam.NewPipelineWithRoot()
	if err := build(s, spec, jobs.Options{Brokers: brokers}); err != nil {
		t.Fatal(err)
	}
	res, err := runners.Run(context.Background(), p, runners.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rows := res.Counter("batch", "rows"); rows != 80 {
		t.Errorf("%d rows batched, want the 40 training and 40 test cases", rows)
	}
	mb, err := os.ReadFile(jobs.ModelFile(spec))
	if err != nil {
		t.Fatal(err)
	}
	var tm train.TrainedModel
	if err := json.Unmarshal(mb, &tm); err != nil {
		t.Fatal(err)
	}
	if tm.Epochs != 40 || tm.Validation.N == 0 || tm.Validation.N >= 40 || len(tm.Preprocess.Labels) != 4 || len(tm.Preprocess.Names) != 60 {
		t.Fatalf("model file: %d epochs, %d validation rows, labels %v, %d names", tm.Epochs, tm.Validation.N, tm.Preprocess.Labels, len(tm.Preprocess.Names))
	}
	if tm.Validation.Accuracy < 0.8 {
		t.Errorf("validation accuracy %.3f on %d held-out cases, want ≥ 0.8", tm.Validation.Accuracy, tm.Validation.N)
	}
	// The archive's own test split, standardized with the training
	// statistics and measured once with the final model.
	if tm.Test == nil || tm.Test.N != 40 || len(tm.Test.Confusion) != 4 {
		t.Fatalf("test metrics %+v, want the 40 cases of BasicMotions_TEST", tm.Test)
	}
	if tm.Test.Accuracy < 0.95 {
		t.Errorf("test accuracy %.3f, want ≥ 0.95", tm.Test.Accuracy)
	}
	for i, row := range tm.Test.Confusion {
		if n := row[0] + row[1] + row[2] + row[3]; n != 10 {
			t.Errorf("class %d has %d test cases, want 10", i, n)
		}
	}
	f, err := os.Open(jobs.EpochsFile(spec))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, epochs := 0, 0
	for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
		var e struct {
			Epoch int `json:"epoch"`
			Span  int `json:"span"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		epochs += e.Span
		if e.Span != 4 || e.Epoch != epochs {
			t.Errorf("line %d reports epochs %d–%d, want a round of 4 ending at %d", lines+1, e.Epoch-e.Span+1, e.Epoch, epochs)
		}
	}
	if lines != 10 || epochs != 40 {
		t.Errorf("%d lines for %d epochs, want 10 rounds of 4", lines, epochs)
	}
}

// basicMotionsBroker starts an embedded broker with BasicMotions_TRAIN in
// topic sensors and BasicMotions_TEST in sensors-test.
func basicMotionsBroker(t *testing.T) []string {
	t.Helper()
	path := filepath.Join("..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("dataset not available: %v", err)
	}
	brokers := testBroker(t, "sensors", "sensors-test")
	ctx := context.Background()
	for topic, file := range map[string]string{"sensors": path, "sensors-test": strings.Replace(path, "_TRAIN", "_TEST", 1)} {
		if _, err := replay.Replay(ctx, []string{file}, replay.Options{Brokers: brokers, Topic: topic,
			Recording: recording.Options{Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Period: 100 * time.Millisecond}}); err != nil {
			t.Fatal(err)
		}
	}
	return brokers
}

// runJob parses a spec and runs its features or train job on the edge
// runner.
func runJob(t *testing.T, brokers []string, yaml string) (*configs.Spec, *jobs.Summary) {
	t.Helper()
	spec, err := configs.Parse("job.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	job, err := jobs.Check(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	p, s := beam.NewPipelineWithRoot()
	sum := &jobs.Summary{Started: time.Now()}
	if err := job.Build(s, spec, jobs.Options{Brokers: brokers}); err != nil {
		t.Fatal(err)
	}
	res, err := runners.Run(context.Background(), p, runners.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Summarize(context.Background(), spec, res, sum); err != nil {
		t.Fatal(err)
	}
	return spec, sum
}

// runPipeline parses a spec, builds its job and runs it on the edge
// runner, and returns the spec and the run's error, for tests of jobs that
// must fail while they run.
func runPipeline(t *testing.T, brokers []string, yaml string) (*configs.Spec, error) {
	t.Helper()
	spec, err := configs.Parse("job.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	p, s := beam.NewPipelineWithRoot()
	if err := build(s, spec, jobs.Options{Brokers: brokers}); err != nil {
		t.Fatal(err)
	}
	_, err = runners.Run(context.Background(), p, runners.Options{})
	return spec, err
}

// build builds spec's job into s.
func build(s beam.Scope, spec *configs.Spec, o jobs.Options) error {
	job, err := jobs.For(spec.Job)
	if err != nil {
		return err
	}
	return job.Build(s, spec, o)
}

func readModel(t *testing.T, spec *configs.Spec) train.TrainedModel {
	t.Helper()
	b, err := os.ReadFile(jobs.ModelFile(spec))
	if err != nil {
		t.Fatal(err)
	}
	var tm train.TrainedModel
	if err := json.Unmarshal(b, &tm); err != nil {
		t.Fatal(err)
	}
	return tm
}

// Training from the features job's Parquet archive gives the model that
// training from Kafka gives: the same rows (ids, features, labels) reach
// the trainer, which orders them by id.
func TestTrainFromArchive(t *testing.T) {
	brokers := basicMotionsBroker(t)
	dir := t.TempDir()
	const features = "features: {kind: cases, channels: [dim0, dim1, dim2, dim3, dim4, dim5], bands: 4}\n"
	const training = "model: {kind: mlp, hidden: [16], activation: tanh, labels: [Badminton, Running, Standing, Walking]}\n" +
		"training: {epochs: 10, batch_size: 4, shards: 1, validation: 0.25, learning_rate: 0.01, %s}\n"
	for _, topic := range []string{"sensors", "sensors-test"} {
		runJob(t, brokers, fmt.Sprintf("name: f\njob: features\nsource: {topics: [%s], format: sensor}\n%sarchive: {dir: %s}\noutput: {dir: %s}\n",
			topic, features, filepath.Join(dir, topic), filepath.Join(dir, topic, "out")))
	}
	kafkaSpec, _ := runJob(t, brokers, fmt.Sprintf("name: k\njob: train\nsource: {topics: [sensors], format: sensor}\n%s"+training+"output: {dir: %s}\n",
		features, "test: {topics: [sensors-test]}", filepath.Join(dir, "kafka")))
	fromKafka := readModel(t, kafkaSpec)
	archiveSpec, _ := runJob(t, brokers, fmt.Sprintf("name: a\njob: train\nsource: {archive: [%s], format: sensor}\n%s"+training+"output: {dir: %s}\n",
		filepath.Join(dir, "sensors", "features"), features, fmt.Sprintf("test: {archive: [%s]}", filepath.Join(dir, "sensors-test", "features")), filepath.Join(dir, "archive")))
	fromArchive := readModel(t, archiveSpec)

	if fromArchive.Test == nil || fromKafka.Test == nil || fromArchive.Test.N != 40 || fromArchive.Validation.N != fromKafka.Validation.N {
		t.Fatalf("test sets %+v and %+v, validation %d and %d rows", fromArchive.Test, fromKafka.Test, fromArchive.Validation.N, fromKafka.Validation.N)
	}
	if len(fromArchive.Params) != len(fromKafka.Params) {
		t.Fatalf("%d and %d parameters", len(fromArchive.Params), len(fromKafka.Params))
	}
	// The standardization statistics are sums in whatever order the
	// runner combines them: equal to rounding.
	for i, a := range fromArchive.Params {
		if k := fromKafka.Params[i]; math.Abs(a-k) > 1e-9*max(1, math.Abs(k)) {
			t.Fatalf("parameter %d: %v from the archive, %v from Kafka", i, a, k)
		}
	}
	if fromArchive.Test.Accuracy != fromKafka.Test.Accuracy {
		t.Errorf("test accuracy %v from the archive, %v from Kafka", fromArchive.Test.Accuracy, fromKafka.Test.Accuracy)
	}

	// A date range: the readings' hour (2024-01-01 00:00) is read whole;
	// a range without a partition fails before the job starts, naming it.
	rangeSpec := func(from, to string) string {
		return fmt.Sprintf("name: r\njob: train\nsource: {archive: [%s], archive_from: %s, archive_to: %s, format: sensor}\n%s"+training+"output: {dir: %s}\n",
			filepath.Join(dir, "sensors", "features"), from, to, features, "test: {fraction: 0}", filepath.Join(dir, "range"))
	}
	inRange, _ := runJob(t, brokers, rangeSpec("2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"))
	if m := readModel(t, inRange); m.Validation.N != fromKafka.Validation.N {
		t.Errorf("the hour's archive gave %d validation rows, the whole %d", m.Validation.N, fromKafka.Validation.N)
	}
	empty, err := configs.Parse("r.yaml", []byte(rangeSpec("2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.Check(context.Background(), empty); err == nil || !strings.Contains(err.Error(), "no partition") || !strings.Contains(err.Error(), "2024-01-02T00:00:00Z") {
		t.Errorf("an empty range: %v", err)
	}
}

// The engines example: C-MAPSS FD001 replayed through Kafka, whole 30-cycle
// windows labelled with the remaining life at their last cycle, capped at
// 125, validated on a fifth of the engines and tested on each test
// engine's last window.
func TestTrainEngines(t *testing.T) {
	spec, err := configs.Load(filepath.Join("..", "configs", "train-engines.yaml"), "output.dir="+t.TempDir(), "training.epochs=20", "snapshot.key="+testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("..", spec.Replay[0].Path)); err != nil {
		t.Skipf("dataset not available: %v", err)
	}
	b, err := embedded.Start(embedded.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	brokers := []string{b.Addr()}
	ctx := context.Background()
	for _, r := range spec.Replay {
		if err := kafkaio.EnsureTopics(ctx, kafkaio.Plain(brokers...), kafkaio.TopicSpec{Name: r.Topic, Partitions: 2}, kafkaio.TopicSpec{Name: r.Topic + ".dlq", Partitions: 2}); err != nil {
			t.Fatal(err)
		}
		ro := recording.Options{Start: r.Start, Period: r.Period.D(), Format: r.Format}
		if r.RUL != "" {
			ro.RUL = filepath.Join("..", r.RUL)
		}
		if _, err := replay.Replay(ctx, []string{filepath.Join("..", r.Path)}, replay.Options{Brokers: brokers, Topic: r.Topic, Recording: ro}); err != nil {
			t.Fatal(err)
		}
	}
	p, s := beam.NewPipelineWithRoot()
	if err := build(s, spec, jobs.Options{Brokers: brokers}); err != nil {
		t.Fatal(err)
	}
	res, err := runners.Run(ctx, p, runners.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 100 training engines of 128–362 cycles and 100 test engines of
	// 31–303: every cycle from the 30th ends one whole window.
	if rows, short := res.Counter("featurize", "windows.rows"), res.Counter("featurize", "windows.short"); rows != (20631-100*29)+(13096-100*29) || short == 0 {
		t.Errorf("%d whole windows (%d short ones dropped), want %d", rows, short, (20631-100*29)+(13096-100*29))
	}
	tm := readModel(t, spec)
	if tm.Test == nil || tm.Test.N != 100 {
		t.Fatalf("test metrics %+v, want one row per test engine", tm.Test)
	}
	if tm.TargetCap != 125 || tm.Validation.N == 0 {
		t.Errorf("target cap %v, %d validation rows", tm.TargetCap, tm.Validation.N)
	}
	if tm.Test.RMSE > 22 {
		t.Errorf("test RMSE %.2f cycles, want ≤ 22", tm.Test.RMSE)
	}
	t.Logf("C-MAPSS FD001: validation RMSE %.2f on %d windows, test RMSE %.2f on %d engines", tm.Validation.RMSE, tm.Validation.N, tm.Test.RMSE, tm.Test.N)
}

// Training on a stream: every event-time window trains the newest
// published model and publishes its own; a second run over later data
// continues from the first run's newest model.
func TestTrainStream(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "datasets", "cmapss_fd001", "train_FD001.txt")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("dataset not available: %v", err)
	}
	dir := t.TempDir()
	b, err := embedded.Start(embedded.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	brokers := []string{b.Addr()}
	ctx := context.Background()
	day := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, topic := range []string{"engines", "live1", "live2"} {
		if err := kafkaio.EnsureTopics(ctx, kafkaio.Plain(brokers...), kafkaio.TopicSpec{Name: topic, Partitions: 2}, kafkaio.TopicSpec{Name: topic + ".dlq", Partitions: 2}); err != nil {
			t.Fatal(err)
		}
		// The stream runs see the engines again, a day later each time.
		ro := recording.Options{Start: day.AddDate(0, 0, i), Period: time.Second, Format: "cmapss"}
		if _, err := replay.Replay(ctx, []string{path}, replay.Options{Brokers: brokers, Topic: topic, Recording: ro}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join("..", "configs", "train-engines-stream.yaml")
	initial := filepath.Join(dir, "initial")
	bounded, err := configs.Load(filepath.Join("..", "configs", "train-engines.yaml"), "output.dir="+initial, "training.epochs=3", "source.topics=[engines]", "training.test={}", "snapshot.key="+testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	pb, sb := beam.NewPipelineWithRoot()
	if err := build(sb, bounded, jobs.Options{Brokers: brokers}); err != nil {
		t.Fatal(err)
	}
	if _, err := runners.Run(ctx, pb, runners.Options{}); err != nil {
		t.Fatal(err)
	}

	// The windows chain through a directory store, and through a store
	// on Kafka as workers that share no disk do.
	for _, store := range []string{filepath.Join(dir, "stream", "models"), "kafka://engines.windows"} {
		out := filepath.Join(dir, "stream")
		if modelstore.IsKafka(store) {
			out = filepath.Join(dir, "stream-kafka")
		}
		type window struct {
			Window, Base time.Time
			Rows         int64
		}
		runStream := func(out, store, topic string) []window {
			spec, err := configs.Load(cfg, "output.dir="+out, "source.topics=["+topic+"]",
				"training.stream.initial="+jobs.ModelFile(bounded), "training.stream.store="+store)
			if err != nil {
				t.Fatal(err)
			}
			_ = os.Remove(jobs.WindowsFile(spec))
			p, s := beam.NewPipelineWithRoot()
			if err := build(s, spec, jobs.Options{Brokers: brokers, Until: time.Now().Add(10 * time.Second)}); err != nil {
				t.Fatal(err)
			}
			res, err := runners.Run(ctx, p, runners.Options{})
			if err != nil {
				t.Fatal(err)
			}
			job, _ := jobs.For(spec.Job)
			sum := jobs.Summary{Brokers: brokers}
			if err := job.Summarize(ctx, spec, res, &sum); err != nil || sum.Stream == nil {
				t.Fatalf("summary %+v: %v", sum.Stream, err)
			}
			data, err := os.ReadFile(jobs.WindowsFile(spec))
			if err != nil {
				t.Fatal(err)
			}
			var ws []window
			var rows int64
			for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				var w window
				if err := json.Unmarshal([]byte(line), &w); err != nil {
					t.Fatal(err)
				}
				if pub, err := train.NewStreamStore(modelstore.Locate(jobs.WindowStore(spec), spec.Kafka.Cluster(brokers)), spec.Name).LatestBefore(ctx, w.Window); err != nil || pub == nil || !pub.Window.Equal(w.Window) {
					t.Errorf("window %s: no published model: %+v, %v", w.Window, pub, err)
				}
				if w.Base.After(w.Window) {
					t.Errorf("window %s started from the model of a later window, %s", w.Window, w.Base)
				}
				ws = append(ws, w)
				rows += w.Rows
			}
			// Every whole 30-cycle window of every engine trains once.
			if rows != 20631-100*29 {
				t.Errorf("%s: %d rows trained in %d windows, want %d", topic, rows, len(ws), 20631-100*29)
			}
			// The summary, from the metrics and the store, says the same: a
			// window is chained when it started from one of this run's.
			ours := map[time.Time]bool{}
			for _, w := range ws {
				ours[w.Window] = true
			}
			var chained int64
			for _, w := range ws {
				if ours[w.Base] {
					chained++
				}
			}
			if st := sum.Stream; st.Windows != int64(len(ws)) || st.Rows != rows || st.Chained != chained || st.Newest == "" {
				t.Errorf("%s: summary %+v, want %d windows, %d rows, %d chained", topic, st, len(ws), rows, chained)
			}
			return ws
		}
		first := runStream(out, store, "live1")
		var newest time.Time
		for _, w := range first {
			if w.Base.Before(day) && !w.Base.IsZero() {
				t.Errorf("first run: window %s started from %s, before any was published", w.Window, w.Base)
			}
			if w.Window.After(newest) {
				newest = w.Window
			}
		}
		latest, err := train.NewStreamStore(modelstore.Locate(store, kafkaio.Plain(brokers...)), "train-engines-stream").Latest(ctx)
		if err != nil || latest == nil || !latest.Window.Equal(newest) {
			t.Fatalf("store's newest %+v (%v), want the window ending %s", latest, err, newest)
		}
		// A day later: every window's newest earlier model is the first run's
		// newest, or one of this run's.
		for _, w := range runStream(out, store, "live2") {
			if !w.Base.Equal(newest) && !(w.Base.After(day.AddDate(0, 0, 1)) && w.Base.Before(w.Window.Add(time.Nanosecond))) {
				t.Errorf("second run: window %s started from %s, want the first run's newest (%s) or a later one", w.Window, w.Base, newest)
			}
		}
		if _, err := os.Stat(filepath.Join(out, "models")); modelstore.IsKafka(store) && err == nil {
			t.Errorf("%s: the runs wrote a directory store too", store)
		}
	}
}

// A train job with a signing key compresses, gates and publishes a signed
// snapshot; a gate it misses sends the snapshot to rejected/ and leaves
// the latest as it was; a missing key fails before the job starts.
func TestTrainSnapshotGate(t *testing.T) {
	brokers := basicMotionsBroker(t)
	dir := t.TempDir()
	priv, pub, err := snapshot.GenerateKey(filepath.Join(dir, "keys"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	job := func(gate string) string {
		return fmt.Sprintf(`name: bm
job: train
source: {topics: [sensors], format: sensor}
features: {kind: cases, channels: [dim0, dim1, dim2, dim3, dim4, dim5], bands: 4}
model: {kind: mlp, hidden: [16], activation: tanh, labels: [Badminton, Running, Standing, Walking]}
training: {epochs: 30, batch_size: 4, shards: 1, validation: 0.25, learning_rate: 0.01, test: {topics: [sensors-test]}}
snapshot: {key: %s, store: %s, prune: 0.5, gate: {%s}}
output: {dir: %s}
`, priv, filepath.Join(dir, "store"), gate, filepath.Join(dir, "out"))
	}
	_, sum := runJob(t, brokers, job("min: 0.5"))
	if res := sum.Training.Snapshot; res == nil || !res.Published {
		t.Fatalf("snapshot result %+v", res)
	}
	ring, err := snapshot.LoadKeyring(pub)
	if err != nil {
		t.Fatal(err)
	}
	store := &modelstore.Dir{Root: filepath.Join(dir, "store")}
	latest, err := store.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(latest.Path)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := snapshot.Read(f, ring, snapshot.Limits{})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if snap.Manifest.Compression.Weights != "int8" || snap.Manifest.Compression.Sparsity < 0.5 || len(snap.Manifest.Labels) != 4 {
		t.Errorf("manifest %+v", snap.Manifest.Compression)
	}
	m, err := compress.FromTensors(snap.Manifest.Model, snap.Tensors)
	if err != nil {
		t.Fatal(err)
	}
	// The lineage is every partition's offset range the job read.
	var want []snapshot.Source
	for _, use := range []struct{ use, topic string }{{"train", "sensors"}, {"test", "sensors-test"}} {
		ranges, err := kafkaio.ResolveRanges(context.Background(), kafkaio.Params{Brokers: brokers, Topics: []string{use.topic}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ranges {
			want = append(want, snapshot.Source{Kind: "kafka", Use: use.use, Topic: r.Topic, Partition: r.Partition, From: r.Start, To: r.End})
		}
	}
	if got := snap.Manifest.Lineage.Sources; !reflect.DeepEqual(got, want) {
		t.Errorf("lineage %+v, want %+v", got, want)
	}
	if ct := snap.Manifest.Metrics["compressed.test"]; ct.N != 40 || ct.Accuracy < 0.85 || m.NumParams() == 0 {
		t.Errorf("compressed model's test metrics %+v", ct)
	}

	// An unreachable gate: rejected, and the latest stays.
	_, sum = runJob(t, brokers, job("min: 1.01, balanced: true"))
	if res := sum.Training.Snapshot; res == nil || res.Published || !strings.Contains(res.Reason, "below the gate") {
		t.Fatalf("snapshot result %+v", res)
	}
	if again, err := store.Latest(context.Background()); err != nil || again.Seq != latest.Seq {
		t.Fatalf("latest moved to %+v (%v) after a rejection", again, err)
	}
	if rej, _ := store.Rejected(context.Background()); len(rej) != 1 {
		t.Fatalf("%d rejected snapshots", len(rej))
	}

	bad, err := configs.Parse("job.yaml", []byte(strings.Replace(job(""), priv, filepath.Join(dir, "missing.key"), 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.Check(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "snapshot.key") {
		t.Fatalf("a missing key: %v", err)
	}
}

// testBroker starts an embedded broker for the test, closed with it, and
// creates each topic and its dead-letter topic with two partitions.
func testBroker(t *testing.T, topics ...string) []string {
	t.Helper()
	b, err := embedded.Start(embedded.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	brokers := []string{b.Addr()}
	for _, topic := range topics {
		if err := kafkaio.EnsureTopics(context.Background(), kafkaio.Plain(brokers...), kafkaio.TopicSpec{Name: topic, Partitions: 2}, kafkaio.TopicSpec{Name: topic + ".dlq", Partitions: 2}); err != nil {
			t.Fatal(err)
		}
	}
	return brokers
}

// testKey is a new signing key for the example specs' snapshot.key.
func testKey(t *testing.T) string {
	t.Helper()
	priv, _, err := snapshot.GenerateKey(t.TempDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// A train job whose topics hold nothing fails saying so, not with Beam's
// empty singleton side input.
func TestTrainOnEmptyTopics(t *testing.T) {
	brokers := testBroker(t, "empty")
	ctx := context.Background()
	spec, err := configs.Parse("job.yaml", []byte(fmt.Sprintf(`name: e
job: train
source: {topics: [empty], format: sensor}
features: {kind: cases, channels: [dim0, dim1]}
model: {kind: softmax, labels: [a, b]}
output: {dir: %s}
`, t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	p, s := beam.NewPipelineWithRoot()
	if err := build(s, spec, jobs.Options{Brokers: brokers}); err != nil {
		t.Fatal(err)
	}
	_, err = runners.Run(ctx, p, runners.Options{})
	if err == nil || !strings.Contains(err.Error(), "read no training rows from topics empty") {
		t.Fatalf("got %v, want an error naming the empty source", err)
	}
}

// A bounded job fails before it starts when a topic it reads does not
// exist, naming it; it no longer creates the topic and reads nothing.
func TestBoundedReadOfMissingTopic(t *testing.T) {
	brokers := testBroker(t)
	spec, err := configs.Parse("job.yaml", []byte(fmt.Sprintf(`name: m
kafka: {brokers: [%s]}
source: {topics: [no-such-topic], format: sensor}
output: {dir: %s}
`, brokers[0], t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	_, err = jobs.Run(context.Background(), spec, jobs.RunOptions{})
	if !errors.Is(err, kafkaio.ErrUnknownTopic) || !strings.Contains(err.Error(), `source topic "no-such-topic"`) {
		t.Fatalf("got %v, want an unknown-topic error naming no-such-topic", err)
	}
	if _, err := kafkaio.EndOffsets(context.Background(), kafkaio.Plain(brokers...), "no-such-topic"); !errors.Is(err, kafkaio.ErrUnknownTopic) {
		t.Errorf("the failed job created its source topic: %v", err)
	}
}

// A train job that cannot write its model file publishes nothing, and one
// that fails after publishing says plainly that its model now serves
// (issue 15 item 11). A file name taken by a directory stands in for a
// full disk: both fail the write, and root ignores permissions.
func TestFailedWritesAndTheServingModel(t *testing.T) {
	brokers := basicMotionsBroker(t)
	dir := t.TempDir()
	priv, _, err := snapshot.GenerateKey(filepath.Join(dir, "keys"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	out, storeDir := filepath.Join(dir, "out"), filepath.Join(dir, "store")
	spec, err := configs.Parse("job.yaml", []byte(fmt.Sprintf(`name: bm
job: train
kafka: {brokers: [%s]}
source: {topics: [sensors], format: sensor}
features: {kind: cases, channels: [dim0, dim1, dim2, dim3, dim4, dim5], bands: 4}
model: {kind: softmax, labels: [Badminton, Running, Standing, Walking]}
training: {epochs: 5, batch_size: 8, shards: 1, validation: 0.25}
snapshot: {key: %s, store: %s}
output: {dir: %s}
`, brokers[0], priv, storeDir, out)))
	if err != nil {
		t.Fatal(err)
	}
	block := func(name string) func() {
		if err := os.MkdirAll(filepath.Join(out, name, "taken"), 0o755); err != nil {
			t.Fatal(err)
		}
		return func() { os.RemoveAll(filepath.Join(out, name)) }
	}
	store := &modelstore.Dir{Root: storeDir}

	unblock := block("model.json")
	_, err = jobs.Run(context.Background(), spec, jobs.RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "writing the model file") {
		t.Fatalf("a job that cannot write model.json: %v", err)
	}
	if vs, _ := store.List(context.Background()); len(vs) != 0 {
		t.Fatalf("a job that could not write model.json published %+v", vs)
	}
	unblock()

	block("summary.json")
	_, err = jobs.Run(context.Background(), spec, jobs.RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "published bm@1 to "+storeDir+", which now serves") || !strings.Contains(err.Error(), "writing the summary") {
		t.Fatalf("a job that published and then failed: %v", err)
	}
	if v, err := store.Latest(context.Background()); err != nil || v.Seq != 1 {
		t.Fatalf("latest %+v, %v", v, err)
	}
}

// A stream whose brokers go away for longer than kafka.reconnect_for
// drains, is summarized, and says why it stopped (issue 15 item 5).
func TestStreamGivesUpWithASummary(t *testing.T) {
	b, err := embedded.Start(embedded.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	spec, err := configs.Parse("job.yaml", []byte(fmt.Sprintf(`name: s
kafka: {brokers: [%s], reconnect_for: 2s}
source: {topics: [live], format: sensor, bounded: false, for: 60s}
output: {dir: %s}
`, b.Addr(), t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(3 * time.Second)
		b.Close()
	}()
	sum, err := jobs.Run(context.Background(), spec, jobs.RunOptions{})
	if !errors.Is(err, jobs.ErrGaveUp) || sum == nil || len(sum.GaveUp) != 4 || !strings.Contains(sum.GaveUp[0], "live/0 after reconnecting for") {
		t.Fatalf("got %v, summary %+v; want ErrGaveUp and a summary naming the 4 partitions", err, sum)
	}
	if n := sum.Counters[kafkaio.ReadNamespace+"/"+kafkaio.MetricRetries]; n > 4*20 {
		t.Errorf("%d reconnection attempts in 2 s: no backoff", n)
	}
	if _, err := os.Stat(jobs.SummaryFile(spec)); err != nil {
		t.Errorf("no summary file: %v", err)
	}
}

// training.validation: 0 trains on every row and reports no validation
// rows rather than a validation accuracy of 0.
func TestTrainWithoutValidation(t *testing.T) {
	brokers := basicMotionsBroker(t)
	_, sum := runJob(t, brokers, fmt.Sprintf(`name: nv
job: train
source: {topics: [sensors], format: sensor}
features: {kind: cases, channels: [dim0, dim1, dim2, dim3, dim4, dim5], bands: 4}
model: {kind: softmax, labels: [Badminton, Running, Standing, Walking]}
training: {epochs: 5, batch_size: 8, shards: 1, validation: 0}
output: {dir: %s}
`, t.TempDir()))
	if sum.Training.Validation.N != 0 || sum.Training.Rows == 0 || sum.Training.Trained != 5 {
		t.Errorf("validation %d rows, trained on %d rows for %d epochs; want 0 validation rows and every row trained 5 epochs", sum.Training.Validation.N, sum.Training.Rows, sum.Training.Trained)
	}
}

// A channel that matches nothing in the data fails the job before it
// trains (it trained on all-missing features and exited 0); a feature
// constant over the rows is counted and named.
func TestChannelThatMatchesNothing(t *testing.T) {
	spec, err := runPipeline(t, basicMotionsBroker(t), fmt.Sprintf(`name: nothing
job: train
source: {topics: [sensors], format: sensor}
features: {kind: cases, channels: [dim0, Dim1], bands: 4}
model: {kind: softmax, labels: [Badminton, Running, Standing, Walking]}
training: {epochs: 2, batch_size: 8, shards: 1}
output: {dir: %s}
`, t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), `features.channels: "Dim1" never has a value`) {
		t.Fatalf("error %v, want one naming the channel Dim1", err)
	}
	if !strings.Contains(err.Error(), `the readings carry "dim0", "dim1", "dim2", "dim3", "dim4", "dim5"`) {
		t.Errorf("error %v does not name what the readings carry", err)
	}
	if _, err := os.Stat(jobs.ModelFile(spec)); err == nil {
		t.Errorf("a model was saved although a channel matches nothing")
	}
}

// A classifier whose spec lists no classes takes them from the replayed
// .ts file's @classLabel; a label the rows carry outside the classes
// fails before training, naming the labels seen.
func TestLabelsFromTheRecording(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts")
	spec, err := configs.Parse("job.yaml", []byte(fmt.Sprintf(`name: labels
job: train
source: {topics: [sensors], format: sensor}
features: {kind: cases, channels: [dim0, dim1], bands: 4}
model: {kind: softmax}
training: {epochs: 2, batch_size: 8, shards: 1}
output: {dir: %s}
replay: [{path: %s, period: 100ms}]
`, t.TempDir(), path)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.Check(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Standing", "Running", "Walking", "Badminton"}; !slices.Equal(spec.Model.Labels, want) {
		t.Errorf("labels %q, want the header's %q", spec.Model.Labels, want)
	}

	none, err := configs.Parse("job.yaml", []byte(`name: none
job: train
source: {topics: [sensors], format: sensor}
features: {kind: cases, channels: [dim0]}
model: {kind: softmax}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.Check(context.Background(), none); err == nil || !strings.Contains(err.Error(), "model.labels: a classifier names its classes") {
		t.Errorf("no labels and no recording: error %v, want one saying to list them", err)
	}

	_, err = runPipeline(t, basicMotionsBroker(t), fmt.Sprintf(`name: wrong
job: train
source: {topics: [sensors], format: sensor}
features: {kind: cases, channels: [dim0, dim1], bands: 4}
model: {kind: softmax, labels: [standing, running, walking, badminton]}
training: {epochs: 2, batch_size: 8, shards: 1}
output: {dir: %s}
`, t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "model.labels: the rows carry label(s)") || !strings.Contains(err.Error(), "Running (10)") {
		t.Fatalf("error %v, want one listing the labels seen", err)
	}
}

// MiniRocket end to end: a train job fits it to BasicMotions' training
// cases and solves a ridge classifier; the snapshot carries the fitted
// transform, and an infer job makes the same features from the test
// cases' series and scores them.
func TestRocketTrainAndInfer(t *testing.T) {
	brokers := basicMotionsBroker(t)
	dir := t.TempDir()
	priv, pub, err := snapshot.GenerateKey(filepath.Join(dir, "keys"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	const features = "features: {kind: rocket, channels: [dim0, dim1, dim2, dim3, dim4, dim5], rocket: {length: 100, features: 840}}\n"
	spec, sum := runJob(t, brokers, fmt.Sprintf(`name: rocket
job: train
source: {topics: [sensors], format: sensor}
%smodel: {kind: softmax, labels: [Badminton, Running, Standing, Walking]}
training: {optimizer: ridge, validation: 0.25, test: {topics: [sensors-test]}}
snapshot: {key: %s, store: %s}
output: {dir: %s}
`, features, priv, filepath.Join(dir, "store"), filepath.Join(dir, "out")))
	tm := readModel(t, spec)
	if tm.Test == nil || tm.Test.N != 40 || tm.Test.Accuracy < 0.9 {
		t.Fatalf("test metrics %+v, want 40 cases at 0.9 or better", tm.Test)
	}
	if r := tm.Preprocess.Rocket; r == nil || r.Width() != 840 || r.Channels != 6 || r.Length != 100 || tm.Preprocess.Features != 840 {
		t.Fatalf("the model's preprocessing has MiniRocket %+v for %d features", r, tm.Preprocess.Features)
	}
	if res := sum.Training.Snapshot; res == nil || !res.Published {
		t.Fatalf("snapshot %+v", res)
	}

	_, isum := runJob(t, brokers, fmt.Sprintf(`name: score
job: infer
source: {topics: [sensors-test], format: sensor, bounded: true}
%sinference:
  - {name: rocket, store: %s, trust: [%s], topic: rocket.predictions}
output: {dir: %s}
`, features, filepath.Join(dir, "store"), pub, filepath.Join(dir, "infer")))
	if len(isum.Inference) != 1 {
		t.Fatalf("%d branches", len(isum.Inference))
	}
	b := isum.Inference[0]
	if b.Predictions != 40 || b.DeadLetters != 0 || b.Accuracy == nil || math.Abs(*b.Accuracy-tm.Test.Accuracy) > 0.051 {
		t.Errorf("infer: %d predictions, %d dead letters, accuracy %v; training measured %v on the same cases", b.Predictions, b.DeadLetters, b.Accuracy, tm.Test.Accuracy)
	}
}

// MiniRocket over event-time windows: each 2.5 s window of a BasicMotions
// case (25 readings at 10 Hz) is a series of 25 values a channel.
func TestRocketOverWindows(t *testing.T) {
	brokers := basicMotionsBroker(t)
	spec, _ := runJob(t, brokers, fmt.Sprintf(`name: rocket-windows
job: train
source: {topics: [sensors], format: sensor}
features:
  kind: rocket
  channels: [dim0, dim1, dim2, dim3, dim4, dim5]
  window: {size: 2500ms, min_readings: 25}
  rocket: {over: windows, length: 25, features: 840}
model: {kind: softmax, labels: [Badminton, Running, Standing, Walking]}
training: {optimizer: ridge, validation: 0.25, split_by: device, test: {topics: [sensors-test]}}
output: {dir: %s}
`, t.TempDir()))
	tm := readModel(t, spec)
	// 40 cases of 10 s: 4 whole windows each.
	if tm.Test == nil || tm.Test.N != 160 || tm.Test.Accuracy < 0.8 {
		t.Fatalf("test metrics %+v, want 160 windows at 0.8 or better", tm.Test)
	}
	if r := tm.Preprocess.Rocket; r == nil || r.Length != 25 || r.Channels != 6 {
		t.Fatalf("MiniRocket %+v", r)
	}
}

// source.start: previous retrains on what arrived since the model the job
// last published: the first run (an empty store) reads everything, the
// second only the records produced after the first, from the offsets in
// the first snapshot's lineage, and a third with nothing new fails saying
// so.
func TestTrainSincePrevious(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("dataset not available: %v", err)
	}
	brokers := testBroker(t, "sensors", "sensors-test")
	ctx := context.Background()
	produce := func(topic, file string, start time.Time) int64 {
		s, err := replay.Replay(ctx, []string{file}, replay.Options{Brokers: brokers, Topic: topic,
			Recording: recording.Options{Start: start, Period: 100 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		return s.Records
	}
	day := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	first := produce("sensors", path, day)
	test := produce("sensors-test", strings.Replace(path, "_TRAIN", "_TEST", 1), day) // read by every run
	dir := t.TempDir()
	spec, err := configs.Parse("bm.yaml", []byte(fmt.Sprintf(`name: bm
job: train
kafka: {brokers: [%s]}
source: {topics: [sensors], format: sensor, start: previous}
features: {kind: cases, channels: [dim0, dim1, dim2, dim3, dim4, dim5], bands: 4}
model: {kind: mlp, hidden: [16], activation: tanh, labels: [Badminton, Running, Standing, Walking]}
training: {epochs: 20, batch_size: 4, shards: 1, validation: 0.25, learning_rate: 0.01, test: {topics: [sensors-test]}}
snapshot: {key: %s, store: %s, gate: {min: 0.25}}
output: {dir: %s}
`, brokers[0], testKey(t), filepath.Join(dir, "store"), filepath.Join(dir, "out"))))
	if err != nil {
		t.Fatal(err)
	}
	run := func() (*jobs.Summary, error) {
		return jobs.Run(ctx, spec, jobs.RunOptions{Runner: runners.Options{Kind: runners.Edge, JobName: "bm"}})
	}
	sum, err := run()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Read != first+test || sum.Since == nil || sum.Since.Version != "" || !sum.Training.Snapshot.Published {
		t.Fatalf("first run: read %d of %d, since %+v, snapshot %+v", sum.Read, first, sum.Since, sum.Training.Snapshot)
	}
	ends, err := kafkaio.EndOffsets(ctx, kafkaio.Plain(brokers...), "sensors")
	if err != nil {
		t.Fatal(err)
	}
	more := produce("sensors", path, day.Add(24*time.Hour))
	sum, err = run()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Read != more+test || sum.Since == nil || sum.Since.Version != "bm@1" || !reflect.DeepEqual(sum.Since.Offsets, ends) {
		t.Fatalf("second run: read %d, want the %d new records; since %+v, want bm@1 from %v", sum.Read, more, sum.Since, ends)
	}
	if sum.Training.Snapshot.Version != "bm@2" {
		t.Errorf("second run published %+v", sum.Training.Snapshot)
	}
	if _, err := run(); !errors.Is(err, jobs.ErrNothingNew) || !strings.Contains(err.Error(), "bm@2") {
		t.Errorf("a run with nothing new: %v", err)
	}
}

// The quick start with its model store on Kafka: the train job publishes
// its signed snapshot to a compacted topic of the broker it reads from,
// and the infer job serves it from there, verified; nothing goes through
// a store on disk.
func TestModelStoreOnKafka(t *testing.T) {
	b, err := embedded.Start(embedded.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	dir := t.TempDir()
	priv, pub, err := snapshot.GenerateKey(dir, "k")
	if err != nil {
		t.Fatal(err)
	}
	trainSpec, err := configs.Load(filepath.Join("..", "configs", "train-digits.yaml"), "snapshot.key="+priv, "snapshot.store=kafka://models.digits",
		"output.dir="+filepath.Join(dir, "train"), "training.epochs=8", "snapshot.gate.min=0.9")
	if err != nil {
		t.Fatal(err)
	}
	for i := range trainSpec.Replay { // the example's paths are the repository's
		trainSpec.Replay[i].Path = filepath.Join("..", trainSpec.Replay[i].Path)
	}
	sum, err := jobs.Run(ctx, trainSpec, jobs.RunOptions{Broker: b, Runner: runners.Options{Kind: runners.Edge}})
	if err != nil {
		t.Fatal(err)
	}
	if s := sum.Training.Snapshot; s == nil || !s.Published || s.Version != "train-digits@1" || !strings.HasPrefix(s.Path, "kafka://models.digits/") {
		t.Fatalf("the snapshot: %+v", sum.Training.Snapshot)
	}
	y, err := os.ReadFile(filepath.Join("..", "configs", "infer-digits.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(y), "store: out/train-digits/store", "store: kafka://models.digits")
	text = strings.ReplaceAll(text, "keys/muon.pub", pub)
	inferSpec, err := configs.Parse("infer.yaml", []byte(text), "output.dir="+filepath.Join(dir, "infer"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range inferSpec.Replay {
		inferSpec.Replay[i].Path = filepath.Join("..", inferSpec.Replay[i].Path)
	}
	if _, err := jobs.CheckAll(ctx, []*configs.Spec{trainSpec, inferSpec}); err != nil {
		t.Fatalf("checking the two jobs before they run: %v", err)
	}
	isum, err := jobs.Run(ctx, inferSpec, jobs.RunOptions{Broker: b, Runner: runners.Options{Kind: runners.Edge}})
	if err != nil {
		t.Fatal(err)
	}
	br := isum.Inference[0]
	if br.Model != "train-digits@1" || br.Predictions != 1797 || br.Accuracy == nil || *br.Accuracy < 0.85 {
		t.Errorf("the infer branch: model %s, %d predictions, accuracy %v", br.Model, br.Predictions, br.Accuracy)
	}
}
