package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/internal/printable"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/analyze"
	"github.com/muonml/muon/transforms/batch"
	"github.com/muonml/muon/transforms/featurize"
	"github.com/muonml/muon/transforms/publish"
	"github.com/muonml/muon/transforms/split"
	"github.com/muonml/muon/transforms/train"
)

func init() { register("train", trainJob{}) }

// trainJob trains a model on feature rows from the source topics
// (featurized as the features section says) or from Parquet feature
// archives. A bounded job caps their targets, standardizes them with
// statistics of the training rows (written with the model), splits them
// into training and validation rows by a hash of their ids, batches them
// and trains data-parallel (train.DataParallel); the test set
// (training.test: other topics or archives, or a seeded fraction of the
// rows, each device's last row if asked) is standardized with the same
// statistics and measured once with the final model. Every epoch prints a
// progress line and appends to EpochsFile; the model goes to ModelFile and,
// with a snapshot section, compressed and signed to the model store if it
// passes the gate (publish.Trained). On an unbounded source the job trains
// per event-time window instead (trainStream).
type trainJob struct{}

// ModelFile is where a train job writes its model: descriptor, parameters,
// preprocessing statistics and metrics, as JSON (train.TrainedModel).
func ModelFile(spec *configs.Spec) string { return filepath.Join(spec.Output.Dir, "model.json") }

// EpochsFile is where a train job writes one JSON line per epoch.
func EpochsFile(spec *configs.Spec) string { return filepath.Join(spec.Output.Dir, "epochs.jsonl") }

// WindowStore is the model store a train job on a stream publishes its
// windows' models to (training.stream.store; default on Kafka beside a
// snapshot store on Kafka, else <output.dir>/models).
func WindowStore(spec *configs.Spec) string {
	if st := spec.Training.Stream.Store; st != "" {
		return st
	}
	if modelstore.IsKafka(spec.Snapshot.Store) {
		return spec.Snapshot.Store + ".windows"
	}
	return filepath.Join(spec.Output.Dir, "models")
}

// WindowsFile is where a train job on a stream writes one JSON line per
// published model.
func WindowsFile(spec *configs.Spec) string { return filepath.Join(spec.Output.Dir, "windows.jsonl") }

// schedule maps training.schedule onto a per-epoch schedule.
func schedule(t configs.Training) models.Schedule {
	switch t.Schedule {
	case "cosine":
		return models.Schedule{Kind: models.Cosine, Length: int64(t.Epochs)}
	case "step":
		return models.Schedule{Kind: models.StepDecay, Every: int64(t.StepEvery), Gamma: t.StepGamma}
	}
	return models.Schedule{}
}

// TrainParams maps a train job's spec onto train.Params.
func TrainParams(spec *configs.Spec) (train.Params, error) {
	m, t := spec.Model, spec.Training
	d := models.Desc{
		Kind:    models.Kind(m.Kind),
		Inputs:  len(FeatureNames(spec)),
		Hidden:  m.Hidden,
		Filters: m.Filters,
		Labels:  m.Labels,
	}
	if m.Kind == "mlp" || m.Kind == "cnn" {
		// The activation of hidden layers and the head: softmax and linear
		// models have neither.
		d.Head, d.Activation = models.Head(m.Head), models.Activation(m.Activation)
	}
	if len(m.Labels) > 0 {
		d.Classes = len(m.Labels)
	}
	if m.Kind == "cnn" {
		d.Width, d.Height, d.Channels = spec.Features.Image.Width, spec.Features.Image.Height, 1
	}
	if t.Optimizer == string(models.Ridge) {
		// Solved once: epochs, rates and schedules do not apply.
		t.Epochs, t.LearningRate, t.Schedule = 1, 0, ""
	}
	p := train.Params{
		Model: d,
		Optimizer: models.OptimizerDesc{Kind: models.OptimizerKind(t.Optimizer), LearningRate: t.LearningRate,
			Momentum: t.Momentum, Nesterov: t.Nesterov, WeightDecay: t.WeightDecay, Schedule: schedule(t)},
		Labels:    m.Labels,
		Epochs:    t.Epochs,
		BatchSize: t.BatchSize,
		Shards:    t.Shards,
		SyncEvery: t.SyncEvery,
		Seed:      uint64(t.Seed),
		Patience:  t.Patience,
	}
	if err := d.Validate(); err != nil {
		return train.Params{}, fmt.Errorf("model: %w", err)
	}
	if err := p.Optimizer.Validate(); err != nil {
		return train.Params{}, fmt.Errorf("training: %w", err)
	}
	return p, nil
}

func (trainJob) Outputs(spec *configs.Spec) []string { return branchTopics(spec) }

// resolveLabels gives a classifier whose spec lists no classes the labels
// its replayed recordings declare (a .ts file's @classLabel, an image
// folder's sub-folders), in their order; without any, it fails before
// anything starts and says what to write.
func resolveLabels(spec *configs.Spec) error {
	if !spec.Model.Classifies() || len(spec.Model.Labels) > 0 {
		return nil
	}
	var labels []string
	seen := map[string]bool{}
	var from []string
	for _, r := range spec.Replay {
		opt := recording.Options{Start: r.Start, Period: r.Period.D(), Device: r.Device, Exclude: r.Exclude, Format: r.Format, RUL: r.RUL}
		if opt.Start.IsZero() {
			opt.Start = time.Now()
		}
		src, err := recording.Open(r.Path, opt)
		if err != nil {
			return fmt.Errorf("replay %s: %w", r.Path, err)
		}
		if l, ok := src.(recording.Labeler); ok && len(l.Labels()) > 0 {
			from = append(from, r.Path)
			for _, x := range l.Labels() {
				if !seen[x] {
					seen[x] = true
					labels = append(labels, x)
				}
			}
		}
		src.Close()
	}
	if len(labels) < 2 {
		return fmt.Errorf("model.labels: a classifier names its classes, at least two (e.g. [\"0\", \"1\"]): none of the replayed recordings declares them (a .ts file's @classLabel, an image folder's sub-folders), so list them")
	}
	spec.Model.Labels = labels
	fmt.Fprintf(os.Stderr, "muon: model.labels not given: %s, from %s\n", printable.String(strings.Join(labels, ", "), 400), strings.Join(from, ", "))
	return nil
}

// Check checks the model and the optimizer, loads the signing key of a
// snapshot section and checks that its store takes files, before anything
// starts.
func (trainJob) Check(_ context.Context, spec *configs.Spec) error {
	if err := resolveLabels(spec); err != nil {
		return err
	}
	if _, err := TrainParams(spec); err != nil {
		return err
	}
	if err := spec.Snapshot.CheckKey(); err != nil {
		return err
	}
	if err := checkArchiveRange(spec); err != nil {
		return err
	}
	if ws := WindowStore(spec); !spec.Source.IsBounded() && modelstore.IsKafka(ws) {
		if err := kafkaio.CheckTopic(strings.TrimPrefix(ws, modelstore.KafkaScheme)); err != nil {
			return fmt.Errorf("training.stream.store %s: %v", ws, err)
		}
		if len(spec.Kafka.Brokers) == 0 {
			return fmt.Errorf("training.stream.store %s: a store on Kafka needs kafka.brokers", ws)
		}
	}
	return spec.Snapshot.CheckStore()
}

func (trainJob) Build(s beam.Scope, spec *configs.Spec, o Options) error {
	s = s.Scope("jobs.Train")
	tp, err := TrainParams(spec)
	if err != nil {
		return err
	}
	if !spec.Source.IsBounded() {
		_ = os.Remove(WindowsFile(spec)) // the model store stays: a new run continues from its newest model
		return trainStream(s, spec, o, tp)
	}
	_ = os.Remove(EpochsFile(spec))
	_ = os.Remove(ModelFile(spec))
	t := spec.Training
	dim := RowWidth(spec)
	bp := batch.Params{Dim: dim, MaxRows: spec.Batch.MaxRows, Shards: spec.Batch.Shards}
	var trainB, test, sources beam.PCollection
	seen := beam.CreateList(s, []featurize.SeenNames{})
	if len(spec.Source.Archive) > 0 && len(spec.Features.Relabel) == 0 && t.TargetCap == 0 && t.Test.Fraction == 0 {
		// An archive's batches need no row to be touched: they go to
		// training as they are read, and the runner never holds a row on
		// its own.
		trainB = parquetio.ReadFeatures(s, parquetio.ReadParams{Paths: spec.Source.Archive, Dim: dim, From: spec.Source.ArchiveFrom, To: spec.Source.ArchiveTo})
		sources = beam.CreateList(s, []snapshot.Source{})
	} else {
		var rows beam.PCollection
		rows, sources, seen = trainingRows(s, spec, o, spec.Source.Topics, spec.Source.Archive, "train")
		if t.Test.Fraction > 0 && len(t.Test.Topics) == 0 && len(t.Test.Archive) == 0 {
			rows, test = split.Holdout(s.Scope("TestSplit"), split.Params{Fraction: t.Test.Fraction, Salt: fmt.Sprintf("test/%d/", t.Seed), ByDevice: t.SplitBy == "device"}, rows)
		}
		trainB = batch.Rows(s.Scope("Train"), bp, rows)
	}
	if len(t.Test.Topics) > 0 || len(t.Test.Archive) > 0 {
		var testSources beam.PCollection
		test, testSources, _ = trainingRows(s.Scope("Test"), spec, o, t.Test.Topics, t.Test.Archive, "test")
		sources = beam.Flatten(s, sources, testSources)
	}
	if test.IsValid() && t.Test.LastPerDevice {
		test = split.LastPerDevice(s.Scope("Test"), test)
	}

	// The batches stay as they were read or made: training, evaluation and
	// publishing standardize rows with the statistics as they read them.
	stats := requireStats(s, spec, analyze.FeaturesOfBatches(s, dim, trainB), seen)
	var rocket beam.PCollection
	if f := spec.Features; f.Kind == "rocket" {
		// MiniRocket is fitted to the training series (validation's too:
		// its biases are quantiles of convolutions, no label is read) and
		// travels with the statistics of its features, so that serving
		// makes the same features.
		rp := featurize.RocketParams{Features: f.Rocket.Features, MaxDilations: f.Rocket.MaxDilations, Seed: uint64(t.Seed)}
		rocket = featurize.FitRocketOn(s, rp, len(f.Channels), f.Rocket.Length, trainB)
		trainB = featurize.RocketBatches(s, rocket, trainB)
		stats = analyze.WithRocket(s, analyze.FeaturesOfBatches(s, featurize.RocketWidth(f.Rocket.Features), trainB), rocket)
	}
	trainB, valB := split.HoldoutBatches(s, split.Params{Fraction: t.Validation, ByDevice: t.SplitBy == "device"}, trainB)
	final, epochs := train.DataParallel(s, tp, stats, trainB, valB)
	train.Progress(s, EpochsFile(spec), tp.Epochs, epochs)

	testMetrics := beam.CreateList(s, []models.Metrics{})
	testB := beam.CreateList(s, []arrowio.Batch{})
	if test.IsValid() {
		ts := s.Scope("Test")
		testB = batch.Rows(ts, bp, test)
		if rocket.IsValid() {
			testB = featurize.RocketBatches(ts, rocket, testB)
		}
		testMetrics = train.Evaluate(ts, tp, stats, final, testB)
	}
	saved := train.Save(s, train.SaveParams{Path: ModelFile(spec), Train: tp, Names: FeatureNames(spec), TargetCap: t.TargetCap, Source: describeSource(spec)},
		final, stats, testMetrics)
	if spec.Snapshot.Key != "" {
		// The snapshot is published only once model.json is written.
		publish.Trained(s, publishParams(spec, o, tp), final, stats, trainB, valB, testB, sources, saved)
	}
	return nil
}

// publishParams maps a train job's spec onto publish.Params.
func publishParams(spec *configs.Spec, o Options, tp train.Params) publish.Params {
	return publish.Params{Spec: spec.Snapshot, Name: spec.Name, Train: tp, Names: FeatureNames(spec), Source: describeSource(spec),
		Archive: spec.Source.Archive, TestArchive: spec.Training.Test.Archive, ArchiveFrom: spec.Source.ArchiveFrom, ArchiveTo: spec.Source.ArchiveTo, SpecHash: specHash(spec), Version: o.Version,
		Cluster: spec.Kafka.Cluster(o.Brokers)}
}

// trainingRows reads a train job's rows from topics (featurized as the
// spec says) or from feature archives, and caps their targets. sources is
// their lineage, PCollection<snapshot.Source>: the Kafka offset ranges
// read, marked with use (an archive's files are listed when the snapshot
// is written). seen is the value names the readings carried (none from
// an archive).
func trainingRows(s beam.Scope, spec *configs.Spec, o Options, topics, archive []string, use string) (rows, sources, seen beam.PCollection) {
	if len(archive) > 0 {
		rp := parquetio.ReadParams{Paths: archive, Dim: RowWidth(spec)}
		if use == "train" {
			rp.From, rp.To = spec.Source.ArchiveFrom, spec.Source.ArchiveTo
		}
		batches := parquetio.ReadFeatures(s, rp)
		rows = featurize.Relabel(s, spec.Features.Relabel, batch.Unbatch(s, batches))
		sources = beam.CreateList(s, []snapshot.Source{})
		seen = beam.CreateList(s, []featurize.SeenNames{})
	} else {
		var ranges beam.PCollection
		rows, ranges, seen = featureRows(s, spec, o, topics, true)
		sources = publish.Lineage(s, use, ranges)
	}
	return featurize.CapTargets(s, spec.Training.TargetCap, rows), sources, seen
}

// trainStream builds the train job on an unbounded source: the rows,
// standardized with the initial model's statistics, train the newest
// published model one event-time window at a time (train.Stream); each
// window's model goes to WindowStore, a progress line to stderr and a JSON
// line to WindowsFile, and with a snapshot key, as a signed snapshot to
// the snapshot store. With inference branches, the same rows are scored
// beside, each branch with the newest verified snapshot of its store
// (the job's own store picks up every window's model as it is published).
func trainStream(s beam.Scope, spec *configs.Spec, o Options, tp train.Params) error {
	st := spec.Training.Stream
	init, err := train.ReadTrainedModel(st.Initial)
	if err != nil {
		return fmt.Errorf("training.stream.initial: %w", err)
	}
	if !reflect.DeepEqual(normalDesc(init.Model), normalDesc(tp.Model)) {
		return fmt.Errorf("training.stream.initial: %s holds a %s model; the spec's model section describes %s", st.Initial, describe(init.Model), describe(tp.Model))
	}
	if n := init.Preprocess.Features; n != tp.Model.Inputs {
		return fmt.Errorf("training.stream.initial: %s standardizes %d features; the features section makes %d", st.Initial, n, tp.Model.Inputs)
	}
	rows, _, _ := trainingRows(s, spec, o, spec.Source.Topics, nil, "train")
	std := analyze.StandardizeWith(s, init.Preprocess, rows)
	if len(spec.Inference) > 0 {
		if _, err := CheckInference(context.Background(), spec); err != nil {
			return err
		}
	}
	published := train.Stream(s, train.StreamParams{Params: tp, Window: st.Window.D(), Store: WindowStore(spec), Cluster: spec.Kafka.Cluster(o.Brokers), Name: spec.Name, Initial: init.Params, Every: st.Every.D()}, std)
	train.WindowProgress(s, WindowsFile(spec), published)
	o.ack(published)
	if spec.Snapshot.Key != "" {
		if err := publish.Windows(s.Scope("Snapshot"), publishParams(spec, o, tp), init.Preprocess, published); err != nil {
			return err
		}
	}
	if len(spec.Inference) > 0 {
		inferBranches(s.Scope("Infer"), spec, o, rows)
	}
	return nil
}

// describeSource names a train job's source for errors.
func describeSource(spec *configs.Spec) string {
	if len(spec.Source.Archive) > 0 {
		return "archive " + strings.Join(spec.Source.Archive, ", ")
	}
	return "topics " + strings.Join(spec.Source.Topics, ", ")
}

// normalDesc is d with its defaults filled in, for comparing descriptors.
func normalDesc(d models.Desc) models.Desc {
	m, err := models.New(d, 1)
	if err != nil {
		return d
	}
	return m.Desc()
}

func describe(d models.Desc) string {
	m, err := models.New(d, 1)
	if err != nil {
		return string(d.Kind)
	}
	return m.String()
}

// Summarize reports a bounded train job from the metrics train.Save and
// publish.Trained set and the snapshot it left in the store; a job on a
// stream from train.WindowProgress's metrics and its model store.
func (trainJob) Summarize(ctx context.Context, spec *configs.Spec, res *runners.Result, sum *Summary) error {
	if !spec.Source.IsBounded() {
		st, err := summarizeStream(ctx, spec, res, sum.Brokers)
		sum.Stream = st
		return err
	}
	tp, err := TrainParams(spec)
	if err != nil {
		return err
	}
	f, ok := train.FinalFrom(res.Counters)
	if !ok {
		return fmt.Errorf("the train job reported no model (were there rows? see the dead letters)")
	}
	m, err := models.New(tp.Model, 1)
	if err != nil {
		return err
	}
	f.Validation.Confusion = nil
	ts := &TrainSummary{Final: f, TargetCap: spec.Training.TargetCap, Model: m.String(), Params: m.NumParams(),
		Rows: res.Counter(batch.Namespace, batch.MetricRows), ModelFile: ModelFile(spec), EpochsFile: EpochsFile(spec),
		Curve: train.CurveFrom(res.Counters)}
	if spec.Snapshot.Key != "" {
		published := res.Counter(publish.Namespace, publish.Published) > 0
		seq := res.Counter(publish.Namespace, publish.Version)
		if !published && res.Counter(publish.Namespace, publish.Rejected) == 0 {
			return fmt.Errorf("the train job reported no snapshot, published or rejected")
		}
		if ts.Snapshot, err = publish.Outcome(ctx, spec.Snapshot, spec.Kafka.Cluster(sum.Brokers), spec.Name, uint64(seq), published); err != nil {
			return err
		}
	}
	sum.Training = ts
	return nil
}

// summarizeStream reports a train job on a stream from its model store:
// the versions this run published (their range is in the metric
// train.WindowSeqs), and the store's newest model.
func summarizeStream(ctx context.Context, spec *configs.Spec, res *runners.Result, brokers []string) (*StreamSummary, error) {
	sum := &StreamSummary{Store: WindowStore(spec)}
	store := train.NewStreamStore(modelstore.Locate(sum.Store, spec.Kafka.Cluster(brokers)), spec.Name)
	if seqs := res.Dists[train.Namespace+"/"+train.WindowSeqs]; seqs.Count > 0 {
		pubs, err := store.Range(ctx, uint64(seqs.Min), uint64(seqs.Max))
		if err != nil {
			return nil, err
		}
		ours := map[time.Time]bool{}
		var last time.Time
		for _, pub := range pubs {
			sum.Windows++
			sum.Rows += pub.Rows
			if f := pub.Window.Format(time.RFC3339); sum.First == "" || f < sum.First {
				sum.First = f
			}
			if pub.Window.After(last) {
				last, sum.Last, sum.TrainLoss = pub.Window, pub.Window.Format(time.RFC3339), pub.TrainLoss
			}
			ours[pub.Window] = true
		}
		// A window is chained when it started from a model this run
		// published.
		for _, pub := range pubs {
			if ours[pub.Base] {
				sum.Chained++
			}
		}
	}
	if pub, err := store.Latest(ctx); err == nil && pub != nil {
		sum.Newest = pub.Version
	}
	return sum, nil
}
