package pipelines

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/transforms/batch"
	"github.com/muonml/muon/transforms/infer"
)

func init() {
	register.Function1x1(batchRows)
	register.Function1x0(discardCount)
}

// InferParams maps an infer job's branches onto infer.Params.
func InferParams(spec *configs.Spec) []infer.Params {
	ps := make([]infer.Params, 0, len(spec.Inference))
	for _, b := range spec.Inference {
		p := infer.Params{
			Name: b.Name, Store: b.Store, Trust: b.Trust, Names: FeatureNames(spec), Topic: b.Topic, Reload: b.Reload.D(),
			SourceTopic: spec.Source.Topics[0], DeadLetterSuffix: spec.Decode.DeadLetterSuffix,
		}
		if a := b.Alert; a != nil {
			p.Alert = &infer.Alert{Label: a.Label, Threshold: a.Threshold, Below: a.Below}
		}
		ps = append(ps, p)
	}
	return ps
}

// CheckInference loads every branch's serving model before the job
// starts: a store with nothing that verifies, a model trained on other
// features, or an alert on a class the model lacks fail here. It returns
// the models, by branch.
func CheckInference(ctx context.Context, spec *configs.Spec) ([]*infer.Model, error) {
	var ms []*infer.Model
	for i, p := range InferParams(spec) {
		m, err := infer.Check(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("inference[%d] (%s): %w", i, p.Name, err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// Infer builds the infer job into s: the source topics decoded and
// featurized as the features section says (dead letters and late
// readings to <topic><suffix>), batched, and fanned out to every
// inference branch, each scoring the batches with the newest verified
// snapshot of its store and writing to its own topic; with an archive
// section, the feature batches also go to the Parquet archive.
func Infer(s beam.Scope, spec *configs.Spec, o Options) error {
	s = s.Scope("pipelines.Infer")
	if _, err := CheckInference(context.Background(), spec); err != nil {
		return err
	}
	rows, _ := featureRows(s, spec, o, spec.Source.Topics)
	inferBranches(s, spec, o, rows)
	return nil
}

// inferBranches batches feature rows and fans them out to every inference
// branch of spec, each to its own topic (dead letters to the branch
// topic's dead-letter topic); with an archive section, the feature
// batches also go to the Parquet archive.
func inferBranches(s beam.Scope, spec *configs.Spec, o Options, rows beam.PCollection) {
	dim := len(FeatureNames(spec))
	// Rows are batched as they stream by, in bounded jobs too: scoring
	// needs no key locality, and grouping by shard would hold the whole
	// input at the GroupByKey (prism hands a stage all its pending
	// elements at once). Without it, the read, decode, features,
	// batching, scoring and the Kafka write fuse into one stage and the
	// job's memory stays at a few bundles whatever the input's size.
	batches := batch.Rows(s, batch.Params{
		Dim: dim, MaxRows: spec.Batch.MaxRows, Shards: spec.Batch.Shards,
		Unbounded: true, MaxWait: spec.Batch.MaxWait.D(),
	}, rows)
	wp := kafkaio.WriteParams{Brokers: o.Brokers}
	for _, p := range InferParams(spec) {
		preds, dead := infer.Batches(s, p, batches)
		kafkaio.Write(s.Scope(p.Name), wp, preds)
		kafkaio.Write(s.Scope(p.Name+".DeadLetters"), wp, dead)
	}
	if spec.Archive.Features {
		parquetio.WriteFeatures(s, parquetio.WriteParams{Root: FeaturesArchive(spec), Dim: dim, Names: FeatureNames(spec)}, batches)
	}
	stageOutput(s, batches)
}

// stageOutput gives the fused stage that makes batches an output to a
// later stage: the rows per batch, summed per 10 s of event time. On
// prism (Beam 2.62) a stage whose only ends are sinks busy-waits a core
// for as long as each of its bundles runs, which halves an infer job's
// throughput on two cores; a stage with an output waits for it instead.
func stageOutput(s beam.Scope, batches beam.PCollection) {
	s = s.Scope("StageOutput")
	rows := beam.WindowInto(s, window.NewFixedWindows(10*time.Second), beam.ParDo(s, batchRows, batches))
	beam.ParDo0(s, discardCount, stats.Sum(s, rows))
}

func batchRows(b arrowio.Batch) int64 { return int64(b.Rows()) }

func discardCount(int64) {}
