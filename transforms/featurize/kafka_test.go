package featurize_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/producer/replay"
	"github.com/muonml/muon/transforms/decode"
	"github.com/muonml/muon/transforms/featurize"
)

// BasicMotions replayed through Kafka (the embedded broker, over the
// Kafka wire protocol) as muon produce sends it, read back, decoded and
// windowed: every row equals the direct computation from the recording.
func TestWindowsOnBasicMotionsThroughKafka(t *testing.T) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	readings := basicMotions(t, start) // the reference's input, straight from the file
	b, err := embedded.Start(embedded.Options{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	brokers := []string{b.Addr()}
	path := filepath.Join("..", "..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts")
	if err := kafkaio.EnsureTopics(context.Background(), kafkaio.Plain(brokers...), kafkaio.TopicSpec{Name: "sensors", Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	sum, err := replay.Replay(context.Background(), []string{path}, replay.Options{Brokers: brokers, Topic: "sensors",
		Recording: recording.Options{Start: start, Period: 100 * time.Millisecond}})
	if err != nil || sum.Records != int64(len(readings)) {
		t.Fatalf("replayed %d records (%v), want %d", sum.Records, err, len(readings))
	}

	channels := []string{"dim0", "dim1", "dim2", "dim3", "dim4", "dim5"}
	size, period := 2500*time.Millisecond, 1500*time.Millisecond
	want := wantWindows(readings, channels, 3, size, period)
	p := featurize.WindowParams{Channels: channels, Bands: 3, Size: size, Period: period}

	dir := t.TempDir()
	pipe, s := beam.NewPipelineWithRoot()
	decoded, dead := decode.Sensors(s, decode.Params{}, kafkaio.ReadBatches(s, kafkaio.Params{Brokers: brokers, Topics: []string{"sensors"}}))
	rows, late := featurize.Windows(s, p, decoded)
	beam.ParDo0(s, &writeRowsFn{Path: filepath.Join(dir, "rows.json"), ByID: true}, beam.GroupByKey(s, beam.AddFixedKey(s, rows)))
	beam.ParDo0(s, writeDead, beam.GroupByKey(s, beam.AddFixedKey(s, beam.Flatten(s, dead, late))), beam.SideInput{Input: beam.Create(s, dir)})
	ptest.RunAndValidate(t, pipe)
	got, letters := readRunOutputs(t, dir)
	if len(letters) != 0 {
		t.Fatalf("%d dead letters, first %s", len(letters), letters[0].Value)
	}
	compareRows(t, got, want)
}
