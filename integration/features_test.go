//go:build integration

package integration

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/message"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/producer/replay"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/runners"
	"github.com/segmentio/kafka-go"
)

// featureRow is one archived row, comparable.
type featureRow struct {
	key, label, id string
	features       []float64
}

// readFeatureArchive reads every row of a feature archive, by id.
func readFeatureArchive(t *testing.T, root string) map[string]featureRow {
	t.Helper()
	files, err := parquetio.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]featureRow{}
	for _, path := range files {
		fr, err := parquetio.OpenFeatures(path, parquetio.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		err = fr.Read(func(b arrowio.Batch) error {
			defer b.Record.Release()
			vals, n, dim, err := arrowio.Features(b.Record)
			if err != nil {
				return err
			}
			rec := b.Record
			for i := 0; i < n; i++ {
				r := featureRow{
					key:      rec.Column(arrowio.KeyIndex).ValueStr(i),
					label:    rec.Column(arrowio.LabelIndex).ValueStr(i),
					id:       rec.Column(arrowio.IDIndex).ValueStr(i),
					features: append([]float64(nil), vals[i*dim:(i+1)*dim]...),
				}
				if _, dup := rows[r.id]; dup {
					return fmt.Errorf("row %s archived twice", r.id)
				}
				rows[r.id] = r
			}
			return nil
		})
		fr.Close()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return rows
}

func featuresSpec(t *testing.T, name, topic, out string, extra string) *configs.Spec {
	t.Helper()
	spec, err := configs.Parse(name+".yaml", []byte(featuresYAML(name, topic, out, extra)))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// featuresYAML is featuresSpec's text.
func featuresYAML(name, topic, out string, extra string) string {
	return fmt.Sprintf(`name: %s
job: features
source:
  topics: [%s]
  format: sensor
features:
  channels: [dim0, dim1, dim2, dim3, dim4, dim5]
  bands: 3
  window: {size: 2500ms, period: 1500ms, allowed_lateness: 1s}
archive:
  dir: %s
  readings: true
output:
  dir: %s
%s`, name, topic, filepath.Join(out, "archive"), out, extra)
}

// The features job on BasicMotions makes the same rows from Apache Kafka
// as from the embedded broker, archives every reading, and the archives
// read back through parquetio.
func TestFeaturesJobSameOnEveryBroker(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts")
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var first map[string]featureRow
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			topic := topicName(t, b, "features")
			ensure(t, b, topic, topic+".dlq")
			sum, err := replay.Replay(context.Background(), []string{path}, replay.Options{Brokers: b.addrs, Topic: topic,
				Recording: recording.Options{Start: start, Period: 100 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			spec := featuresSpec(t, "features", topic, out, "")
			p, s := beam.NewPipelineWithRoot()
			build(s, spec, jobs.Options{Brokers: b.addrs})
			res, err := runners.Run(context.Background(), p, runners.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rows := readFeatureArchive(t, jobs.FeaturesArchive(spec))
			// 40 cases of 10 s; windows every 1.5 s that hold a reading.
			if len(rows) != 40*8 || res.Counter("batch", "rows") != int64(len(rows)) {
				t.Fatalf("%d archived rows, %d batched, want 320", len(rows), res.Counter("batch", "rows"))
			}
			var archived int64
			files, err := parquetio.Files(jobs.ReadingsArchive(spec))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				rr, err := parquetio.OpenReadings(f)
				if err != nil {
					t.Fatal(err)
				}
				archived += rr.Rows()
				rr.Close()
			}
			if archived != sum.Records {
				t.Errorf("%d readings archived, %d replayed", archived, sum.Records)
			}
			if first == nil {
				first = rows
				return
			}
			for id, want := range first {
				got, ok := rows[id]
				if !ok || got.key != want.key || got.label != want.label || len(got.features) != len(want.features) {
					t.Fatalf("row %s differs between brokers", id)
				}
				for i := range got.features {
					if math.Float64bits(got.features[i]) != math.Float64bits(want.features[i]) {
						t.Fatalf("row %s feature %d: %v here, %v on the embedded broker", id, i, got.features[i], want.features[i])
					}
				}
			}
		})
	}
}

// On a stream, windows close as the device's readings move on; a reading
// behind its closed windows lands in the dead-letter topic with stage
// late, is counted, and the device's other windows are unaffected.
func TestFeaturesStreamSendsLateReadingsToDeadLetters(t *testing.T) {
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			topic := topicName(t, b, "stream")
			dlq := topic + ".dlq"
			ensure(t, b, topic, dlq)
			w, err := kafkaio.NewWriter(kafkaio.WriteParams{Brokers: b.addrs, Topic: topic})
			if err != nil {
				t.Fatal(err)
			}
			base := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
			reading := func(device string, sec float64) kafka.Message {
				r := records.Reading{Device: device, Time: base.Add(time.Duration(sec * float64(time.Second))),
					Values: []records.Value{{Name: "dim0", Value: sec}}}
				return kafka.Message{Key: []byte(device), Value: message.AppendReading(nil, r), Time: r.Time}
			}
			var msgs []kafka.Message
			for i := 0; i < 300; i++ { // 30 s at 10 Hz
				msgs = append(msgs, reading("wrist-a", float64(i)/10), reading("wrist-b", float64(i)/10))
			}
			// 28 s behind wrist-a's newest reading: far past 2.5 s + 1 s.
			msgs = append(msgs, reading("wrist-a", 1.05))
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				t.Fatal(err)
			}
			w.Close()

			out := t.TempDir()
			spec := featuresSpec(t, "stream", topic, out, "")
			spec.Source.Bounded = new(bool)
			spec.Features.Channels = []string{"dim0"}
			spec.Source.CheckpointInterval = configs.Duration(300 * time.Millisecond)
			p, s := beam.NewPipelineWithRoot()
			// The source stops at Until, counted from here: on a loaded
			// machine prism takes seconds to start, and 6 s once cut the
			// read of one partition short.
			build(s, spec, jobs.Options{Brokers: b.addrs, Until: time.Now().Add(12 * time.Second)})
			res, err := runners.Run(context.Background(), p, runners.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if late := res.Counter("featurize", "windows.late"); late != 1 {
				t.Errorf("%d late readings counted, want 1", late)
			}
			letters := readAll(t, b, dlq)
			if len(letters) != 1 {
				t.Fatalf("%d dead letters, want the late reading", len(letters))
			}
			h := map[string]string{}
			for _, x := range letters[0].Headers {
				h[x.Key] = string(x.Value)
			}
			if h[kafkaio.HeaderStage] != "late" || string(letters[0].Key) != "wrist-a" || !strings.Contains(h[kafkaio.HeaderError], "allowed lateness") {
				t.Errorf("dead letter key %s headers %v", letters[0].Key, h)
			}
			var back records.Reading
			if err := message.ParseReading(letters[0].Value, time.Time{}, &back); err != nil || back.Values[0].Value != 1.05 {
				t.Errorf("dead letter value %s (%v), want the late reading", letters[0].Value, err)
			}
			// Every window with readings: per device, starts every 1.5 s
			// from -1.5 s to 28.5 s, all closed when the stream stopped.
			rows := readFeatureArchive(t, jobs.FeaturesArchive(spec))
			perDevice := map[string]int{}
			var ids []string
			for id, r := range rows {
				perDevice[r.key]++
				ids = append(ids, id)
			}
			sort.Strings(ids)
			if perDevice["wrist-a"] != 21 || perDevice["wrist-b"] != 21 {
				t.Errorf("windows per device %v, want 21 each (%v)", perDevice, ids)
			}
		})
	}
}

// A producer whose readings are an hour apart (BasicMotions replayed at
// one reading an hour: 40 cases of 100 readings over 100 hours) spreads an
// hourly archive over a file per hour and bundle, a few readings each, and
// the summary says so; with archive.partition: day the archive holds a
// file per day and bundle.
func TestArchiveOfSparseProducer(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts")
	for _, partition := range []string{"hour", "day"} {
		t.Run(partition, func(t *testing.T) {
			out := t.TempDir()
			spec, err := configs.Parse("sparse.yaml", []byte(fmt.Sprintf(`name: sparse
job: features
source: {topics: [sparse], format: sensor}
features: {kind: readings, channels: [dim0, dim1, dim2, dim3, dim4, dim5]}
archive: {readings: true, partition: %s}
replay:
  - {path: %s, topic: sparse, period: 1h}
output: {dir: %s}
`, partition, path, out)))
			if err != nil {
				t.Fatal(err)
			}
			sum, err := jobs.Run(context.Background(), spec, jobs.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			n, ok := sum.Features.Archive["readings"]
			if !ok || n.Rows != 4000 || n.Partition != partition {
				t.Fatalf("readings archive %+v (%v), want 4000 rows by %s", n, ok, partition)
			}
			files, err := parquetio.Files(jobs.ReadingsArchive(spec))
			if err != nil {
				t.Fatal(err)
			}
			days := map[string]bool{}
			for _, f := range files {
				from, to, ok := parquetio.PartitionSpan(f)
				if !ok || (partition == "day") != (to.Sub(from) == 24*time.Hour) {
					t.Fatalf("%s: a %s partition spans %v–%v (%v)", f, partition, from, to, ok)
				}
				days[from.Format(time.DateOnly)] = true
			}
			t.Logf("%s: %d files in %d partitions over %d days, %.1f readings a file", partition, n.Files, n.Partitions, len(days), float64(n.Rows)/float64(n.Files))
			if len(files) != n.Files {
				t.Errorf("%d files on disk, the summary says %d", len(files), n.Files)
			}
			switch partition {
			case "hour":
				if n.Partitions != 100 || !n.Small() {
					t.Errorf("hourly: %d partitions, small files %v; want 100 and a warning", n.Partitions, n.Small())
				}
			case "day":
				if n.Partitions != len(days) || n.Partitions != 5 || n.Small() {
					t.Errorf("daily: %d partitions over %d days, small files %v", n.Partitions, len(days), n.Small())
				}
			}
		})
	}
}
