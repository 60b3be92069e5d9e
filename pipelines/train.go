package pipelines

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/internal/atomicfile"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/transforms/analyze"
	"github.com/muonml/muon/transforms/batch"
	"github.com/muonml/muon/transforms/featurize"
	"github.com/muonml/muon/transforms/train"
)

func init() {
	register.DoFn3x1[featurize.Row, analyze.Spec, func(featurize.Row), error](&standardizeFn{})
	register.DoFn3x0[featurize.Row, func(featurize.Row), func(featurize.Row)](&splitFn{})
	register.DoFn2x1[arrowio.Batch, func(featurize.Row), error](&unbatchFn{})
	register.DoFn2x0[featurize.Row, func(featurize.Row)](&capFn{})
	register.Function1x2(rowKey)
	register.DoFn1x1[kafkaio.PartitionRange, snapshot.Source](&sourceFn{})
	register.Function3x0(lastRow)
	register.Iter1[featurize.Row]()
	register.DoFn2x1[context.Context, train.State, error](&progressFn{})
	register.DoFn2x1[featurize.Row, func(featurize.Row), error](&standardizeWithFn{})
	register.DoFn2x1[context.Context, train.Published, error](&windowProgressFn{})
	register.DoFn4x1[context.Context, train.State, func(*analyze.Spec) bool, func(*models.Metrics) bool, error](&writeModelFn{})
	register.Iter1[analyze.Spec]()
}

// ModelFile is where a train job writes its model: descriptor, parameters,
// preprocessing statistics and metrics, as JSON (the signed, compressed
// snapshot format replaces it).
func ModelFile(spec *configs.Spec) string { return filepath.Join(spec.Output.Dir, "model.json") }

// EpochsFile is where a train job writes one JSON line per epoch.
func EpochsFile(spec *configs.Spec) string { return filepath.Join(spec.Output.Dir, "epochs.jsonl") }

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
	p := train.Params{
		Model: d,
		Optimizer: models.OptimizerDesc{Kind: models.OptimizerKind(t.Optimizer), LearningRate: t.LearningRate,
			Momentum: t.Momentum, Nesterov: t.Nesterov, WeightDecay: t.WeightDecay, Schedule: schedule(t)},
		Labels:    m.Labels,
		Epochs:    t.Epochs,
		BatchSize: t.BatchSize,
		Shards:    t.Shards,
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

// Train builds the train job into s: feature rows from the source topics
// (featurized as the features section says) or from Parquet feature
// archives, their targets capped, standardized with statistics of the
// training rows (written with the model), split into training and
// validation rows by a hash of their ids, batched, and trained
// data-parallel (train.DataParallel). The test set (training.test: other
// topics or archives, or a seeded fraction of the rows, each device's last
// row if asked) is standardized with the same statistics and measured once
// with the final model. Every epoch prints a progress line to stderr and
// appends to EpochsFile; the model goes to ModelFile. The source must be
// bounded.
func Train(s beam.Scope, spec *configs.Spec, o Options) error {
	s = s.Scope("pipelines.Train")
	tp, err := TrainParams(spec)
	if err != nil {
		return err
	}
	if !spec.Source.IsBounded() {
		return trainStream(s, spec, o, tp)
	}
	if err := checkSnapshotSpec(spec); err != nil {
		return err
	}
	t := spec.Training
	dim := len(FeatureNames(spec))
	rows, sources := trainingRows(s, spec, o, spec.Source.Topics, spec.Source.Archive, "train")
	var test beam.PCollection
	switch {
	case len(t.Test.Topics) > 0 || len(t.Test.Archive) > 0:
		var testSources beam.PCollection
		test, testSources = trainingRows(s.Scope("Test"), spec, o, t.Test.Topics, t.Test.Archive, "test")
		sources = beam.Flatten(s, sources, testSources)
	case t.Test.Fraction > 0:
		rows, test = beam.ParDo2(s.Scope("TestSplit"), &splitFn{Fraction: t.Test.Fraction, Salt: fmt.Sprintf("test/%d/", t.Seed), ByDevice: t.SplitBy == "device"}, rows)
	}
	if test.IsValid() && t.Test.LastPerDevice {
		test = lastPerDevice(s.Scope("Test"), test)
	}

	stats := analyze.Features(s, dim, rows)
	std := beam.ParDo(s, &standardizeFn{}, rows, beam.SideInput{Input: stats})
	trainRows, valRows := beam.ParDo2(s, &splitFn{Fraction: t.Validation, ByDevice: t.SplitBy == "device"}, std)
	bp := batch.Params{Dim: dim, MaxRows: spec.Batch.MaxRows, Shards: spec.Batch.Shards}
	trainB, valB := batch.Rows(s.Scope("Train"), bp, trainRows), batch.Rows(s.Scope("Validation"), bp, valRows)
	final, epochs := train.DataParallel(s, tp, trainB, valB)
	beam.ParDo0(s, &progressFn{Path: EpochsFile(spec), Epochs: tp.Epochs}, epochs)

	testMetrics := beam.CreateList(s, []models.Metrics{})
	testB := beam.CreateList(s, []arrowio.Batch{})
	if test.IsValid() {
		ts := s.Scope("Test")
		stdTest := beam.ParDo(ts, &standardizeFn{}, test, beam.SideInput{Input: stats})
		testB = batch.Rows(ts, bp, stdTest)
		testMetrics = train.Evaluate(ts, tp, final, testB)
	}
	if spec.Snapshot.Key != "" {
		beam.ParDo0(s.Scope("Snapshot"), &snapshotFn{Source: describeSource(spec), Spec: spec.Snapshot, Params: tp, Names: FeatureNames(spec), Name: spec.Name,
			Archive: spec.Source.Archive, TestArchive: t.Test.Archive, SpecHash: specHash(spec), Version: o.Version, OutputDir: spec.Output.Dir, TargetCap: t.TargetCap},
			beam.Impulse(s.Scope("Snapshot")), beam.SideInput{Input: final}, beam.SideInput{Input: stats}, beam.SideInput{Input: trainB}, beam.SideInput{Input: valB}, beam.SideInput{Input: testB},
			beam.SideInput{Input: sources})
	}
	beam.ParDo0(s, &writeModelFn{Source: describeSource(spec), Path: ModelFile(spec), Params: tp, Names: FeatureNames(spec), TargetCap: t.TargetCap},
		final, beam.SideInput{Input: stats}, beam.SideInput{Input: testMetrics})
	return nil
}

// StoreDir is where a train job on a stream publishes its models.
func StoreDir(spec *configs.Spec) string { return filepath.Join(spec.Output.Dir, "models") }

// WindowsFile is where a train job on a stream writes one JSON line per
// published model.
func WindowsFile(spec *configs.Spec) string { return filepath.Join(spec.Output.Dir, "windows.jsonl") }

// ReadTrainedModel reads a model file a bounded train job wrote.
func ReadTrainedModel(path string) (*TrainedModel, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tm TrainedModel
	if err := json.Unmarshal(b, &tm); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := models.FromParams(tm.Model, tm.Params); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := tm.Preprocess.Check(); err != nil {
		return nil, fmt.Errorf("%s: preprocessing: %w", path, err)
	}
	return &tm, nil
}

// trainStream builds the train job on an unbounded source: the rows,
// standardized with the initial model's statistics, train the newest
// published model one event-time window at a time (train.Stream); each
// window's model goes to StoreDir, a progress line to stderr and a JSON
// line to WindowsFile, and with a snapshot key, as a signed snapshot to
// the snapshot store. With inference branches, the same rows are scored
// beside, each branch with the newest verified snapshot of its store
// (the job's own store picks up every window's model as it is published).
func trainStream(s beam.Scope, spec *configs.Spec, o Options, tp train.Params) error {
	st := spec.Training.Stream
	init, err := ReadTrainedModel(st.Initial)
	if err != nil {
		return fmt.Errorf("training.stream.initial: %w", err)
	}
	if !reflect.DeepEqual(normalDesc(init.Model), normalDesc(tp.Model)) {
		return fmt.Errorf("training.stream.initial: %s holds a %s model; the spec's model section describes %s", st.Initial, describe(init.Model), describe(tp.Model))
	}
	if n := init.Preprocess.Features; n != tp.Model.Inputs {
		return fmt.Errorf("training.stream.initial: %s standardizes %d features; the features section makes %d", st.Initial, n, tp.Model.Inputs)
	}
	rows, _ := trainingRows(s, spec, o, spec.Source.Topics, nil, "train")
	std := beam.ParDo(s, &standardizeWithFn{Spec: init.Preprocess}, rows)
	if err := checkSnapshotSpec(spec); err != nil {
		return err
	}
	if len(spec.Inference) > 0 {
		if _, err := CheckInference(context.Background(), spec); err != nil {
			return err
		}
	}
	published := train.Stream(s, train.StreamParams{Params: tp, Window: st.Window.D(), Store: StoreDir(spec), Initial: init.Params, Every: st.Every.D()}, std)
	beam.ParDo0(s, &windowProgressFn{Path: WindowsFile(spec)}, published)
	if spec.Snapshot.Key != "" {
		pre := init.Preprocess
		pre.Names = FeatureNames(spec)
		preJSON, err := json.Marshal(pre)
		if err != nil {
			return err
		}
		beam.ParDo0(s.Scope("Snapshot"), &streamSnapshotFn{Spec: spec.Snapshot, Params: tp, Preprocess: string(preJSON), Name: spec.Name,
			SpecHash: specHash(spec), Version: o.Version}, published)
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

// standardizeWithFn standardizes rows with fixed statistics.
type standardizeWithFn struct{ Spec analyze.Spec }

func (fn *standardizeWithFn) ProcessElement(r featurize.Row, emit func(featurize.Row)) error {
	f, err := fn.Spec.Standardize(nil, r.Features)
	if err != nil {
		return fmt.Errorf("row %s: %w", r.ID, err)
	}
	r.Features = f
	emit(r)
	return nil
}

// windowProgressFn reports each published model.
type windowProgressFn struct{ Path string }

func (fn *windowProgressFn) ProcessElement(_ context.Context, pub train.Published) error {
	from := "the initial model"
	if !pub.Base.IsZero() {
		from = "the model of the window ending " + pub.Base.Format(time.RFC3339)
	}
	fmt.Fprintf(os.Stderr, "muon: window ending %s: trained on %d rows from %s, train loss %.4f; published %s\n",
		pub.Window.Format(time.RFC3339), pub.Rows, from, pub.TrainLoss, train.PublishedFile(pub.Window))
	line, err := json.Marshal(struct {
		Window    time.Time `json:"window"`
		Base      time.Time `json:"base"`
		Rows      int64     `json:"rows"`
		TrainLoss float64   `json:"train_loss"`
		Seconds   float64   `json:"seconds"`
		File      string    `json:"file"`
	}{pub.Window, pub.Base, pub.Rows, pub.TrainLoss, pub.Seconds, train.PublishedFile(pub.Window)})
	if err != nil {
		return err
	}
	return appendLine(fn.Path, line)
}

// appendLine appends a line to a file, creating it and its folder.
func appendLine(path string, line []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// trainingRows reads a train job's rows from topics (featurized as the
// spec says) or from feature archives, and caps their targets. sources is
// their lineage, PCollection<snapshot.Source>: the Kafka offset ranges
// read, marked with use (an archive's files are listed when the snapshot
// is written).
func trainingRows(s beam.Scope, spec *configs.Spec, o Options, topics, archive []string, use string) (rows, sources beam.PCollection) {
	if len(archive) > 0 {
		batches := parquetio.ReadFeatures(s, parquetio.ReadParams{Paths: archive, Dim: len(FeatureNames(spec))})
		rows = relabel(s, spec, beam.ParDo(s, &unbatchFn{}, batches))
		sources = beam.CreateList(s, []snapshot.Source{})
	} else {
		var ranges beam.PCollection
		rows, ranges = featureRows(s, spec, o, topics)
		sources = beam.ParDo(s, &sourceFn{Use: use}, ranges)
	}
	if c := spec.Training.TargetCap; c > 0 {
		rows = beam.ParDo(s, &capFn{Cap: c}, rows)
	}
	return rows, sources
}

// sourceFn is the lineage of an offset range read.
type sourceFn struct{ Use string }

func (fn *sourceFn) ProcessElement(r kafkaio.PartitionRange) snapshot.Source {
	return snapshot.Source{Kind: "kafka", Use: fn.Use, Topic: r.Topic, Partition: r.Partition, From: r.Start, To: r.End}
}

// unbatchFn turns a feature batch back into rows.
type unbatchFn struct{}

func (unbatchFn) ProcessElement(b arrowio.Batch, emit func(featurize.Row)) error {
	vals, n, dim, err := arrowio.Features(b.Record)
	if err != nil {
		return err
	}
	rec := b.Record
	keys, labels, ids := rec.Column(arrowio.KeyIndex), rec.Column(arrowio.LabelIndex), rec.Column(arrowio.IDIndex)
	times, ok := rec.Column(arrowio.TimeIndex).(*array.Timestamp)
	if !ok {
		return fmt.Errorf("feature batch: column time is %s, want a timestamp", rec.Column(arrowio.TimeIndex).DataType())
	}
	unit := times.DataType().(*arrow.TimestampType).Unit
	for i := 0; i < n; i++ {
		r := featurize.Row{
			Key:      keys.ValueStr(i),
			Time:     times.Value(i).ToTime(unit).UTC(),
			Features: append([]float64(nil), vals[i*dim:(i+1)*dim]...),
			ID:       ids.ValueStr(i),
		}
		if !labels.IsNull(i) {
			r.Label = labels.ValueStr(i)
		}
		emit(r)
	}
	return nil
}

// capFn caps numeric targets at Cap; other labels pass (the trainer
// refuses them with the row's id).
type capFn struct{ Cap float64 }

func (fn *capFn) ProcessElement(r featurize.Row, emit func(featurize.Row)) {
	if v, err := strconv.ParseFloat(r.Label, 64); err == nil && v > fn.Cap {
		r.Label = strconv.FormatFloat(fn.Cap, 'g', -1, 64)
	}
	emit(r)
}

// lastPerDevice keeps each device's latest row (by time, then id).
func lastPerDevice(s beam.Scope, rows beam.PCollection) beam.PCollection {
	s = s.Scope("LastPerDevice")
	return beam.ParDo(s, lastRow, beam.GroupByKey(s, beam.ParDo(s, rowKey, rows)))
}

func rowKey(r featurize.Row) (string, featurize.Row) { return r.Key, r }

func lastRow(_ string, iter func(*featurize.Row) bool, emit func(featurize.Row)) {
	var last, r featurize.Row
	first := true
	for iter(&r) {
		if first || r.Time.After(last.Time) || r.Time.Equal(last.Time) && r.ID > last.ID {
			last, first = r, false
		}
	}
	if !first {
		emit(last)
	}
}

// standardizeFn standardizes a row with the statistics of the training
// rows.
type standardizeFn struct{}

func (standardizeFn) ProcessElement(r featurize.Row, sp analyze.Spec, emit func(featurize.Row)) error {
	f, err := sp.Standardize(nil, r.Features)
	if err != nil {
		return fmt.Errorf("row %s: %w", r.ID, err)
	}
	r.Features = f
	emit(r)
	return nil
}

// splitFn holds out a fraction of rows by a hash of Salt and their ids
// (or, ByDevice, their devices: all of a device's rows on one side): the
// same rows in every run. The first output is the rest, the second the
// rows held out.
type splitFn struct {
	Fraction float64
	Salt     string
	ByDevice bool
}

func (fn *splitFn) ProcessElement(r featurize.Row, rest, held func(featurize.Row)) {
	h := fnv.New64a()
	h.Write([]byte(fn.Salt))
	if fn.ByDevice {
		h.Write([]byte(r.Key))
	} else {
		h.Write([]byte(r.ID))
	}
	if float64(h.Sum64()%1_000_000) < fn.Fraction*1_000_000 {
		held(r)
		return
	}
	rest(r)
}

// progressFn reports each epoch as it ends: a line on stderr and a JSON
// line in Path. The rate is the epoch's rows over its slowest shard's
// training time (shards train at once); the pipeline's own time between
// epochs is not in it.
type progressFn struct {
	Path   string
	Epochs int
}

func (fn *progressFn) ProcessElement(_ context.Context, st train.State) error {
	var rate float64
	speed := "no rows trained"
	if st.Seconds > 0 {
		rate = float64(st.Rows) / st.Seconds
		speed = fmt.Sprintf("%.0f samples/s", rate)
	}
	quality := fmt.Sprintf("accuracy %.4f", st.Val.Accuracy)
	if st.Val.Confusion == nil {
		quality = fmt.Sprintf("RMSE %.4f", st.Val.RMSE)
	}
	fmt.Fprintf(os.Stderr, "muon: epoch %d/%d: train loss %.4f on %d rows (%s), validation loss %.4f %s on %d rows%s\n",
		st.Epoch, fn.Epochs, st.TrainLoss, st.Rows, speed, st.Val.Loss, quality, st.Val.N, stopped(st))
	line, err := json.Marshal(struct {
		Epoch      int            `json:"epoch"`
		TrainLoss  float64        `json:"train_loss"`
		Rows       int64          `json:"rows"`
		Seconds    float64        `json:"seconds"`
		PerSecond  float64        `json:"samples_per_second"`
		Validation models.Metrics `json:"validation"`
		Stopped    bool           `json:"stopped"`
	}{st.Epoch, st.TrainLoss, st.Rows, st.Seconds, rate, st.Val, st.Stopped})
	if err != nil {
		return err
	}
	return appendLine(fn.Path, line)
}

func stopped(st train.State) string {
	if st.Stopped {
		return fmt.Sprintf(" (stopped; best epoch %d)", st.Best)
	}
	return ""
}

// TrainedModel is what ModelFile holds.
type TrainedModel struct {
	Model      models.Desc          `json:"model"`
	Params     []float64            `json:"params"`
	Optimizer  models.OptimizerDesc `json:"optimizer"`
	Preprocess analyze.Spec         `json:"preprocess"`
	Epochs     int                  `json:"epochs"`
	// Trained is the last epoch that trained (below Epochs if training
	// stopped early).
	Trained    int            `json:"trained"`
	BestEpoch  int            `json:"best_epoch,omitempty"`
	TrainLoss  float64        `json:"train_loss"`
	Validation models.Metrics `json:"validation"`
	// Test are the metrics on the held-out test set; nil without one.
	Test *models.Metrics `json:"test,omitempty"`
	// TargetCap is the cap on regression targets the model was trained
	// (and tested) with; 0 for none.
	TargetCap float64 `json:"target_cap,omitempty"`
}

// onlyStats reads the statistics of the training rows, a side input with
// one element, or none when the job read no rows from source.
func onlyStats(stats func(*analyze.Spec) bool, source string) (analyze.Spec, error) {
	var sp analyze.Spec
	if !stats(&sp) {
		return sp, fmt.Errorf("the job read no training rows from %s: the topics are empty, or their records are gone "+
			"(Kafka's time retention counts from record timestamps: a replayed recording from long ago is deleted minutes after it is produced unless its topic has retention.ms=-1)", source)
	}
	return sp, nil
}

// writeModelFn writes the trained model.
type writeModelFn struct {
	// Source names what the rows were read from, for errors.
	Source    string
	Path      string
	Params    train.Params
	Names     []string
	TargetCap float64
}

func (fn *writeModelFn) ProcessElement(_ context.Context, st train.State, stats func(*analyze.Spec) bool, test func(*models.Metrics) bool) error {
	sp, err := onlyStats(stats, fn.Source)
	if err != nil {
		return err
	}
	m, err := st.Model(fn.Params.Model)
	if err != nil {
		return err
	}
	sp.Names = fn.Names
	tm := TrainedModel{Model: m.Desc(), Params: m.Params(), Optimizer: fn.Params.Optimizer, Preprocess: sp,
		Epochs: st.Epoch, Trained: st.Trained, TrainLoss: st.TrainLoss, Validation: st.Val}
	if st.BestParams != nil {
		tm.BestEpoch = st.Best
	}
	var m1 models.Metrics
	if test(&m1) {
		tm.Test = &m1
	}
	tm.TargetCap = fn.TargetCap
	b, err := json.Marshal(tm)
	if err != nil {
		return err
	}
	return atomicfile.Write(fn.Path, b)
}
