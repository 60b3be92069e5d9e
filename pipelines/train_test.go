package pipelines_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/io/recording"
	"github.com/muonml/muon/io/replay"
	"github.com/muonml/muon/pipelines"
	"github.com/muonml/muon/runners"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

// The train job on BasicMotions through Kafka: one row per case, an MLP on
// two shards; every epoch is reported, and the model it writes classifies
// the held-out cases.
func TestTrainJob(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("dataset not available: %v", err)
	}
	b, err := embedded.Start(embedded.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	brokers := []string{b.Addr()}
	if err := kafkaio.EnsureTopics(context.Background(), brokers, kafkaio.TopicSpec{Name: "sensors", Partitions: 2}, kafkaio.TopicSpec{Name: "sensors.dlq", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := replay.Replay(context.Background(), []string{path}, replay.Options{Brokers: brokers, Topic: "sensors",
		Recording: recording.Options{Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Period: 100 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	spec, err := configs.Parse("train.yaml", []byte(fmt.Sprintf(`name: t
job: train
source: {topics: [sensors], format: sensor}
features: {kind: cases, channels: [dim0, dim1, dim2, dim3, dim4, dim5], bands: 4}
model: {kind: mlp, hidden: [16], activation: tanh, labels: [Badminton, Running, Standing, Walking]}
training: {epochs: 40, batch_size: 4, shards: 2, validation: 0.25, learning_rate: 0.01}
output: {dir: %s}
`, out)))
	if err != nil {
		t.Fatal(err)
	}
	p, s := beam.NewPipelineWithRoot()
	if err := pipelines.Train(s, spec, pipelines.Options{Brokers: brokers}); err != nil {
		t.Fatal(err)
	}
	res, err := runners.Run(context.Background(), p, runners.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rows := res.Counter("batch", "rows"); rows != 40 {
		t.Errorf("%d rows batched, want the 40 cases", rows)
	}
	mb, err := os.ReadFile(pipelines.ModelFile(spec))
	if err != nil {
		t.Fatal(err)
	}
	var tm pipelines.TrainedModel
	if err := json.Unmarshal(mb, &tm); err != nil {
		t.Fatal(err)
	}
	if tm.Epochs != 40 || tm.Validation.N == 0 || tm.Validation.N >= 40 || len(tm.Preprocess.Labels) != 4 || len(tm.Preprocess.Names) != 60 {
		t.Fatalf("model file: %d epochs, %d validation rows, labels %v, %d names", tm.Epochs, tm.Validation.N, tm.Preprocess.Labels, len(tm.Preprocess.Names))
	}
	if tm.Validation.Accuracy < 0.8 {
		t.Errorf("validation accuracy %.3f on %d held-out cases, want ≥ 0.8", tm.Validation.Accuracy, tm.Validation.N)
	}
	f, err := os.Open(pipelines.EpochsFile(spec))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
	}
	if lines != 40 {
		t.Errorf("%d epoch lines, want 40", lines)
	}
}
