package jobs

import (
	"context"
	"fmt"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/models/snapshot"
	"strconv"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/batch"
	"github.com/muonml/muon/transforms/infer"
)

func init() { register("infer", inferJob{}) }

// inferJob decodes and featurizes the source topics as the features
// section says (dead letters and late readings to <topic><suffix>),
// batches the rows, and fans them out to every inference branch, each
// scoring them with the newest verified snapshot of its store and writing
// to its own topic; with an archive section, the feature batches also go
// to the Parquet archive.
type inferJob struct{}

// InferParams maps a job's inference branches onto infer.Params; brokers
// (the job's, or the spec's before the job starts) are those of stores on
// Kafka.
func InferParams(spec *configs.Spec, brokers []string) []infer.Params {
	ps := make([]infer.Params, 0, len(spec.Inference))
	for _, b := range spec.Inference {
		p := infer.Params{
			Name: b.Name, Store: b.Store, Trust: b.Trust, Names: FeatureNames(spec), Topic: b.Topic, Reload: b.Reload.D(),
			SourceTopic: spec.Source.Topics[0], DeadLetterSuffix: spec.Decode.DeadLetterSuffix, Cluster: spec.Kafka.Cluster(brokers),
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
	for i, p := range InferParams(spec, spec.Kafka.Brokers) {
		if modelstore.IsKafka(p.Store) && len(spec.Kafka.Brokers) == 0 {
			// On the job's embedded broker: nothing there before it runs
			// but what an earlier job of this process published.
			if _, err := snapshot.LoadKeyring(p.Trust...); err != nil {
				return nil, fmt.Errorf("inference[%d] (%s): %w", i, p.Name, err)
			}
			ms = append(ms, nil)
			continue
		}
		m, err := infer.Check(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("inference[%d] (%s): %w", i, p.Name, err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// branchTopics are the topics of a job's inference branches.
func branchTopics(spec *configs.Spec) []string {
	var out []string
	for _, b := range spec.Inference {
		out = append(out, b.Topic)
	}
	return out
}

func (inferJob) Outputs(spec *configs.Spec) []string { return branchTopics(spec) }

func (inferJob) Check(ctx context.Context, spec *configs.Spec) error {
	_, err := CheckInference(ctx, spec)
	return err
}

func (inferJob) Build(s beam.Scope, spec *configs.Spec, o Options) error {
	s = s.Scope("jobs.Infer")
	rows, _, _ := featureRows(s, spec, o, spec.Source.Topics, false)
	inferBranches(s, spec, o, rows)
	return nil
}

// inferBranches batches feature rows and fans them out to every inference
// branch of spec, each to its own topic (dead letters to the branch
// topic's dead-letter topic); with an archive section, the feature
// batches also go to the Parquet archive.
func inferBranches(s beam.Scope, spec *configs.Spec, o Options, rows beam.PCollection) {
	dim := RowWidth(spec)
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
	wp := kafkaio.WriteParams{Brokers: o.Brokers, Security: spec.Kafka.Security(), ReconnectFor: spec.Kafka.ReconnectFor.D()}
	for _, p := range InferParams(spec, o.Brokers) {
		preds, dead := infer.Batches(s, p, batches)
		o.ack(kafkaio.Write(s.Scope(p.Name), wp, preds))
		o.ack(kafkaio.Write(s.Scope(p.Name+".DeadLetters"), wp, dead))
	}
	if spec.Archive.Features {
		o.ack(parquetio.WriteFeatures(s, archiveParams(spec, FeaturesArchive(spec), dim), batches))
	}
	batch.StageOutput(s, batches)
}

// Summarize reports every branch from the job's metrics and the models
// its stores serve.
func (inferJob) Summarize(ctx context.Context, spec *configs.Spec, res *runners.Result, sum *Summary) error {
	served, err := servedModels(ctx, spec, sum.Brokers, res)
	if err != nil {
		return err
	}
	sum.Inference = SummarizeInference(spec, served, res)
	for _, b := range sum.Inference {
		sum.DeadLetters += b.DeadLetters
	}
	return nil
}

// servedModels are the models each branch served first: the oldest
// version with predictions in the job's metrics, loaded from the branch's
// store (the store only moves forward); a branch that predicted nothing
// is described by the version its store serves now.
func servedModels(ctx context.Context, spec *configs.Spec, brokers []string, res *runners.Result) ([]*infer.Model, error) {
	var ms []*infer.Model
	for i, p := range InferParams(spec, brokers) {
		var first uint64
		for ver, v := range res.Under(infer.Namespace(p.Name), infer.VersionCounter) {
			if seq := VersionSeq(ver); v > 0 && seq > 0 && (first == 0 || seq < first) {
				first = seq
			}
		}
		var m *infer.Model
		var err error
		if first > 0 {
			m, err = infer.LoadVersion(ctx, p, first)
		} else {
			m, err = infer.Check(ctx, p)
		}
		if err != nil {
			return nil, fmt.Errorf("summary of inference[%d] (%s): %w", i, p.Name, err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// SummarizeInference gathers each branch's figures from the job's metrics
// and the models it served (by branch).
func SummarizeInference(spec *configs.Spec, served []*infer.Model, res *runners.Result) []BranchSummary {
	var out []BranchSummary
	for i, p := range InferParams(spec, nil) {
		ns := infer.Namespace(p.Name)
		m := served[i]
		b := BranchSummary{
			Name: p.Name, Topic: p.Topic, Model: m.Name(), Size: m.Size, Ratio: m.Ratio,
			Weights: m.Manifest.Compression.Weights, Sparsity: m.Manifest.Compression.Sparsity,
			Rows: res.Counter(ns, infer.MetricRows), Predictions: res.Counter(ns, infer.MetricPredictions), Alerts: res.Counter(ns, infer.MetricAlerts),
			DeadLetters: res.Counter(ns, infer.MetricDeadLetters), Labelled: res.Counter(ns, infer.MetricLabelled),
			ModelLoads: res.Counter(ns, infer.MetricModelLoads), Refused: res.Counter(ns, infer.MetricModelsRefused),
		}
		b.RefusedWhy = res.Names(ns, infer.MetricModelsRefused+"/")
		if b.Labelled > 0 {
			acc := float64(res.Counter(ns, infer.MetricCorrect)) / float64(b.Labelled)
			b.Accuracy = &acc
		}
		b.Batches = res.Counter(ns, infer.MetricBatches)
		if d, ok := res.Dists[ns+"/"+infer.MetricBatchLatencyUs]; ok && d.Count > 0 {
			b.BatchMeanMs, b.BatchMinMs, b.BatchMaxMs = float64(d.Sum)/float64(d.Count)/1000, float64(d.Min)/1000, float64(d.Max)/1000
		}
		if d, ok := res.Dists[ns+"/"+infer.MetricModelLoadUs]; ok && d.Count > 0 {
			b.LoadMs = float64(d.Sum) / float64(d.Count) / 1000
		}
		if s := res.Elapsed.Seconds(); s > 0 {
			b.RowsPerSec = float64(b.Rows) / s
		}
		// Latencies and versions come from the branch's metrics: its
		// latency histogram (within 2.2 %) and its predictions per version.
		var finalSeq uint64
		for ver, v := range res.Under(ns, infer.VersionCounter) {
			if v > 0 {
				if b.ByModel == nil {
					b.ByModel = map[string]int64{}
				}
				b.ByModel[ver] = v
				if seq := VersionSeq(ver); seq > finalSeq && ver != b.Model {
					finalSeq, b.Final = seq, ver
				}
			}
		}
		if q := infer.LatencyQuantiles(res.Under(ns, ""), 0.5, 0.99); len(q) == 2 {
			b.LatencyP50, b.LatencyP99 = q[0], q[1]
		}
		out = append(out, b)
	}
	return out
}

// VersionSeq is the sequence number of a model version name@seq, 0 if
// it has none.
func VersionSeq(version string) uint64 {
	i := strings.LastIndexByte(version, '@')
	if i < 0 {
		return 0
	}
	seq, _ := strconv.ParseUint(version[i+1:], 10, 64)
	return seq
}
