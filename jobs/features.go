package jobs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/analyze"
	"github.com/muonml/muon/transforms/batch"
	"github.com/muonml/muon/transforms/decode"
	"github.com/muonml/muon/transforms/featurize"
)

func init() { register("features", features{}) }

// features reads the source topics, decodes (dead letters to
// <topic><suffix>), makes feature rows — event-time windows or whole cases
// per device for sensor readings (late readings to the dead letter),
// resized images for images — groups them into Arrow batches and archives
// them as Parquet. A bounded job also writes the rows' preprocessing spec
// to PreprocessFile.
type features struct{}

// PreprocessFile is where a bounded features job writes the preprocessing
// spec (per-feature statistics and labels) of its rows.
func PreprocessFile(spec *configs.Spec) string {
	return filepath.Join(spec.Output.Dir, "preprocess.json")
}

func (features) Outputs(*configs.Spec) []string             { return nil }
func (features) Check(context.Context, *configs.Spec) error { return nil }

func (features) Build(s beam.Scope, spec *configs.Spec, o Options) error {
	s = s.Scope("jobs.Features")
	_ = os.Remove(PreprocessFile(spec))
	rp := o.sourceParams(spec)
	rows, _, seen := featureRows(s, spec, o, spec.Source.Topics, true)
	dim := RowWidth(spec)
	batches := batch.Rows(s, batch.Params{
		Dim:       dim,
		MaxRows:   spec.Batch.MaxRows,
		Shards:    spec.Batch.Shards,
		Unbounded: rp.Unbounded,
		MaxWait:   spec.Batch.MaxWait.D(),
	}, rows)
	o.ack(parquetio.WriteFeatures(s, archiveParams(spec, FeaturesArchive(spec), dim), batches))
	if !rp.Unbounded {
		analyze.WriteSpec(s, PreprocessFile(spec), RowNames(spec), checkedStats(s, spec, dim, rows, seen))
	}
	return nil
}

// featureRows reads topics as the source section says, decodes (dead
// letters to <topic><suffix>), archives the readings if the spec says so,
// and makes the feature rows the spec's features section describes, with
// their labels mapped by features.relabel: PCollection<featurize.Row>.
// ranges are the offset ranges read, PCollection<kafkaio.PartitionRange>;
// seen the value names of the readings, PCollection<featurize.SeenNames>
// (empty for images, and unless names: collecting them costs a sorted
// insert per value of every reading, for errors only a job that fits
// statistics reports).
func featureRows(s beam.Scope, spec *configs.Spec, o Options, topics []string, names bool) (rows, ranges, seen beam.PCollection) {
	rp := o.sourceParams(spec)
	if !slices.Equal(topics, spec.Source.Topics) {
		// A train job's test topics are read whole: where the source
		// starts (offsets, a time, the previous model's end) is about the
		// training data.
		rp.Start = kafkaio.Start{}
	}
	rp.Topics = topics
	records, ranges := kafkaio.ReadBatchesRanges(s, rp)
	wp := kafkaio.WriteParams{Brokers: o.Brokers, Security: spec.Kafka.Security(), ReconnectFor: spec.Kafka.ReconnectFor.D()}
	f := spec.Features

	var dead beam.PCollection
	seen = beam.CreateList(s, []featurize.SeenNames{})
	switch spec.Source.Format {
	case "image":
		var images beam.PCollection
		images, dead = decode.Images(s, DecodeParams(spec), records)
		rows = featurize.Images(s, featurize.ImageParams{Width: f.Image.Width, Height: f.Image.Height}, images)
	default:
		var readings beam.PCollection
		readings, dead = decode.Sensors(s, DecodeParams(spec), records)
		if names && !rp.Unbounded {
			// A stream never ends: its names would never be counted.
			seen = featurize.ValueNames(s, readings)
		}
		if spec.Archive.Readings {
			o.ack(parquetio.WriteReadings(s, archiveParams(spec, ReadingsArchive(spec), 0), readings))
		}
		rows = sensorRows(s, spec, o, rp.Unbounded, readings, wp)
	}
	o.ack(kafkaio.Write(s.Scope("DeadLetters"), wp, dead))
	return featurize.Relabel(s, spec.Features.Relabel, rows), ranges, seen
}

// sensorRows makes the feature rows of decoded readings as the spec's
// features kind says; late readings of windows go to the dead letter.
func sensorRows(s beam.Scope, spec *configs.Spec, o Options, unbounded bool, readings beam.PCollection, wp kafkaio.WriteParams) beam.PCollection {
	f := spec.Features
	length := 0
	if f.Kind == "rocket" {
		length = f.Rocket.Length
	}
	switch {
	case f.Kind == "cases" || f.Kind == "rocket" && f.Rocket.Over != "windows":
		return featurize.Cases(s, featurize.CaseParams{Channels: f.Channels, Bands: f.Bands, LastLabel: f.Label == "last", Length: length}, readings)
	case f.Kind == "readings":
		return featurize.Readings(s, featurize.ReadingParams{Channels: f.Channels}, readings)
	}
	rows, late := featurize.Windows(s, featurize.WindowParams{
		Channels:         f.Channels,
		Bands:            f.Bands,
		Size:             f.Window.Size.D(),
		Period:           f.Window.Period.D(),
		AllowedLateness:  f.Window.AllowedLateness.D(),
		MinReadings:      f.Window.MinReadings,
		LastLabel:        f.Label == "last",
		Length:           length,
		Unbounded:        unbounded,
		DeadLetterSuffix: spec.Decode.DeadLetterSuffix,
	}, readings)
	o.ack(kafkaio.Write(s.Scope("LateLetters"), wp, late))
	return rows
}

// Summarize reports the rows and batches from the job's metrics, the
// archive's files written since the job started, and the labels of the
// rows from the metrics of their preprocessing spec.
func (features) Summarize(_ context.Context, spec *configs.Spec, res *runners.Result, sum *Summary) error {
	f := spec.Features
	fs := &FeatureSummary{
		Kind:        f.Kind,
		Dim:         RowWidth(spec),
		Rows:        res.Counter(batch.Namespace, batch.MetricRows),
		Batches:     res.Counter(batch.Namespace, batch.MetricBatches),
		Late:        res.Counter(featurize.Namespace, featurize.WindowsLate),
		LatePartial: res.Counter(featurize.Namespace, featurize.WindowsLatePartial),
		ArchiveDir:  spec.Archive.Dir,
		Archive:     map[string]Files{},
	}
	switch f.Kind {
	case "images":
		fs.Shape = fmt.Sprintf("images resized to %d×%d, %d features in [0, 1]", f.Image.Width, f.Image.Height, fs.Dim)
	case "readings":
		fs.Shape = fmt.Sprintf("one row per reading, %d features", fs.Dim)
	case "cases":
		fs.Shape = fmt.Sprintf("one row per device over all its readings, %d channels × %d = %d features", len(f.Channels), fs.Dim/len(f.Channels), fs.Dim)
	case "rocket":
		fs.Shape = fmt.Sprintf("one series per %s, %d channels × %d values (MiniRocket's input: a train job makes its %d features)",
			map[string]string{"cases": "device", "windows": "device and window"}[f.Rocket.Over], len(f.Channels), f.Rocket.Length, featurize.RocketWidth(f.Rocket.Features))
	default:
		w := f.Window
		kind := "fixed"
		if w.Period != w.Size {
			kind = "sliding every " + w.Period.String()
		}
		fs.Shape = fmt.Sprintf("%s windows per device (%s, allowed lateness %s), %d channels × %d = %d features",
			w.Size, kind, w.AllowedLateness, len(f.Channels), fs.Dim/len(f.Channels), fs.Dim)
	}
	if err := countArchives(spec, res, sum.Started, fs.Archive); err != nil {
		return err
	}
	if spec.Source.IsBounded() && fs.Rows > 0 {
		fs.Preprocess = PreprocessFile(spec)
		fs.Labels = res.Under(analyze.Namespace, analyze.LabelPrefix)
	}
	sum.Features = fs
	return nil
}

// countArchives adds to out the files of the features and readings
// archives written since start, with their rows from the writers' metrics.
func countArchives(spec *configs.Spec, res *runners.Result, start time.Time, out map[string]Files) error {
	for sub, a := range map[string]struct{ dir, ns string }{
		"features": {FeaturesArchive(spec), parquetio.FeaturesNamespace},
		"readings": {ReadingsArchive(spec), parquetio.ReadingsNamespace},
	} {
		n, err := countParquet(a.dir, start)
		if err != nil {
			return err
		}
		if n.Files > 0 {
			n.Rows = res.Counter(a.ns, parquetio.MetricRows)
			n.Partition = spec.Archive.Partition
			out[sub] = n
		}
	}
	return nil
}

// countParquet counts the Parquet files under dir written since start
// (an archive keeps earlier runs' files), and their partitions.
func countParquet(dir string, start time.Time) (Files, error) {
	var n Files
	parts := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") || filepath.Ext(path) != ".parquet" {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.ModTime().Before(start) {
			return nil
		}
		n.Files++
		n.Bytes += info.Size()
		parts[filepath.Dir(path)] = true
		return nil
	})
	n.Partitions = len(parts)
	return n, err
}
