package pipelines

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/internal/atomicfile"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/transforms/analyze"
	"github.com/muonml/muon/transforms/batch"
	"github.com/muonml/muon/transforms/decode"
	"github.com/muonml/muon/transforms/featurize"
)

func init() {
	register.DoFn2x1[context.Context, analyze.Spec, error](&writeSpecFn{})
	register.DoFn2x0[featurize.Row, func(featurize.Row)](&relabelFn{})
}

// FeatureNames are the names of a features job's row columns, in order.
func FeatureNames(spec *configs.Spec) []string {
	f := spec.Features
	if f.Kind == "images" {
		names := make([]string, 0, f.Image.Width*f.Image.Height)
		for y := 0; y < f.Image.Height; y++ {
			for x := 0; x < f.Image.Width; x++ {
				names = append(names, fmt.Sprintf("px%d_%d", y, x))
			}
		}
		return names
	}
	if f.Kind == "readings" {
		return f.Channels
	}
	return featurize.Names(f.Channels, f.Bands)
}

// FeaturesArchive is the root of a features job's Parquet feature archive.
func FeaturesArchive(spec *configs.Spec) string { return filepath.Join(spec.Archive.Dir, "features") }

// ReadingsArchive is the root of a features job's Parquet readings archive.
func ReadingsArchive(spec *configs.Spec) string { return filepath.Join(spec.Archive.Dir, "readings") }

// PreprocessFile is where a bounded features job writes the preprocessing
// spec (per-feature statistics and labels) of its rows.
func PreprocessFile(spec *configs.Spec) string {
	return filepath.Join(spec.Output.Dir, "preprocess.json")
}

// Features builds the features job into s: read the source topics, decode
// (dead letters to <topic><suffix>), make feature rows — event-time
// windows or whole cases per device for sensor readings (late readings to
// the dead letter), resized images for images — group them into Arrow
// batches and archive them as Parquet. A bounded job also writes the
// rows' preprocessing spec to PreprocessFile.
func Features(s beam.Scope, spec *configs.Spec, o Options) {
	s = s.Scope("pipelines.Features")
	rp := o.sourceParams(spec)
	rows, _ := featureRows(s, spec, o, spec.Source.Topics)
	dim := len(FeatureNames(spec))
	batches := batch.Rows(s, batch.Params{
		Dim:       dim,
		MaxRows:   spec.Batch.MaxRows,
		Shards:    spec.Batch.Shards,
		Unbounded: rp.Unbounded,
		MaxWait:   spec.Batch.MaxWait.D(),
	}, rows)
	parquetio.WriteFeatures(s, parquetio.WriteParams{Root: FeaturesArchive(spec), Dim: dim, Names: FeatureNames(spec)}, batches)
	if !rp.Unbounded {
		beam.ParDo0(s, &writeSpecFn{Path: PreprocessFile(spec), Names: FeatureNames(spec)}, analyze.Features(s, dim, rows))
	}
}

// featureRows reads topics as the source section says, decodes (dead
// letters to <topic><suffix>), archives the readings if the spec says so,
// and makes the feature rows the spec's features section describes, with
// their labels mapped by features.relabel: PCollection<featurize.Row>.
// ranges are the offset ranges read, PCollection<kafkaio.PartitionRange>.
func featureRows(s beam.Scope, spec *configs.Spec, o Options, topics []string) (rows, ranges beam.PCollection) {
	rp := o.sourceParams(spec)
	rp.Topics = topics
	records, ranges := kafkaio.ReadBatchesRanges(s, rp)
	wp := kafkaio.WriteParams{Brokers: o.Brokers}
	f := spec.Features

	var dead beam.PCollection
	switch spec.Source.Format {
	case "image":
		var images beam.PCollection
		images, dead = decode.Images(s, DecodeParams(spec), records)
		rows = featurize.Images(s, featurize.ImageParams{Width: f.Image.Width, Height: f.Image.Height}, images)
	default:
		var readings beam.PCollection
		readings, dead = decode.Sensors(s, DecodeParams(spec), records)
		if spec.Archive.Readings {
			parquetio.WriteReadings(s, parquetio.WriteParams{Root: ReadingsArchive(spec)}, readings)
		}
		rows = sensorRows(s, spec, rp.Unbounded, readings, wp)
	}
	kafkaio.Write(s.Scope("DeadLetters"), wp, dead)
	return relabel(s, spec, rows), ranges
}

// relabel maps row labels as features.relabel says.
func relabel(s beam.Scope, spec *configs.Spec, rows beam.PCollection) beam.PCollection {
	if len(spec.Features.Relabel) == 0 {
		return rows
	}
	return beam.ParDo(s, &relabelFn{Map: spec.Features.Relabel}, rows)
}

// relabelFn maps labels; labels the map does not list stay.
type relabelFn struct{ Map map[string]string }

func (fn *relabelFn) ProcessElement(r featurize.Row, emit func(featurize.Row)) {
	if l, ok := fn.Map[r.Label]; ok {
		r.Label = l
	}
	emit(r)
}

// sensorRows makes the feature rows of decoded readings as the spec's
// features kind says; late readings of windows go to the dead letter.
func sensorRows(s beam.Scope, spec *configs.Spec, unbounded bool, readings beam.PCollection, wp kafkaio.WriteParams) beam.PCollection {
	f := spec.Features
	switch f.Kind {
	case "cases":
		return featurize.Cases(s, featurize.CaseParams{Channels: f.Channels, Bands: f.Bands, LastLabel: f.Label == "last"}, readings)
	case "readings":
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
		Unbounded:        unbounded,
		DeadLetterSuffix: spec.Decode.DeadLetterSuffix,
	}, readings)
	kafkaio.Write(s.Scope("LateLetters"), wp, late)
	return rows
}

// writeSpecFn writes the preprocessing spec, with the feature names, as
// JSON.
type writeSpecFn struct {
	Path  string
	Names []string
}

func (fn *writeSpecFn) ProcessElement(_ context.Context, sp analyze.Spec) error {
	sp.Names = fn.Names
	if err := sp.Check(); err != nil {
		return fmt.Errorf("preprocessing spec: %w", err)
	}
	b, err := json.MarshalIndent(sp, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(fn.Path, append(b, '\n'))
}
