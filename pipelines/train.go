package pipelines

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/transforms/analyze"
	"github.com/muonml/muon/transforms/batch"
	"github.com/muonml/muon/transforms/featurize"
	"github.com/muonml/muon/transforms/train"
)

func init() {
	register.DoFn3x1[featurize.Row, analyze.Spec, func(featurize.Row), error](&standardizeFn{})
	register.DoFn3x0[featurize.Row, func(featurize.Row), func(featurize.Row)](&splitFn{})
	register.DoFn2x1[context.Context, train.State, error](&progressFn{})
	register.DoFn3x1[context.Context, train.State, analyze.Spec, error](&writeModelFn{})
}

// ModelFile is where a train job writes its model: descriptor, parameters,
// preprocessing statistics and metrics, as JSON (the signed, compressed
// snapshot format replaces it).
func ModelFile(spec *configs.Spec) string { return filepath.Join(spec.Output.Dir, "model.json") }

// EpochsFile is where a train job writes one JSON line per epoch.
func EpochsFile(spec *configs.Spec) string { return filepath.Join(spec.Output.Dir, "epochs.jsonl") }

// TrainParams maps a train job's spec onto train.Params.
func TrainParams(spec *configs.Spec) (train.Params, error) {
	m, t := spec.Model, spec.Training
	d := models.Desc{
		Kind:       models.Kind(m.Kind),
		Inputs:     len(FeatureNames(spec)),
		Hidden:     m.Hidden,
		Activation: models.Activation(m.Activation),
		Filters:    m.Filters,
		Labels:     m.Labels,
	}
	if m.Kind == "mlp" || m.Kind == "cnn" {
		d.Head = models.Head(m.Head)
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
			Momentum: t.Momentum, WeightDecay: t.WeightDecay},
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

// Train builds the train job into s: the features job's rows, standardized
// with statistics of all of them (written with the model), split into
// training and validation rows by a hash of their ids, batched, and trained
// data-parallel (train.DataParallel). Every epoch prints a progress line to
// progress and appends to EpochsFile; the model goes to ModelFile. The
// source must be bounded.
func Train(s beam.Scope, spec *configs.Spec, o Options) error {
	s = s.Scope("pipelines.Train")
	tp, err := TrainParams(spec)
	if err != nil {
		return err
	}
	rows := featureRows(s, spec, o)
	dim := len(FeatureNames(spec))
	stats := analyze.Features(s, dim, rows)
	std := beam.ParDo(s, &standardizeFn{}, rows, beam.SideInput{Input: stats})
	trainRows, valRows := beam.ParDo2(s, &splitFn{Validation: spec.Training.Validation}, std)
	bp := batch.Params{Dim: dim, MaxRows: spec.Batch.MaxRows, Shards: spec.Batch.Shards}
	final, epochs := train.DataParallel(s, tp, batch.Rows(s.Scope("Train"), bp, trainRows), batch.Rows(s.Scope("Validation"), bp, valRows))
	beam.ParDo0(s, &progressFn{Path: EpochsFile(spec), Epochs: tp.Epochs}, epochs)
	beam.ParDo0(s, &writeModelFn{Path: ModelFile(spec), Params: tp, Names: FeatureNames(spec)}, final, beam.SideInput{Input: stats})
	return nil
}

// standardizeFn standardizes a row with the statistics of all rows.
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

// splitFn holds out a fraction of rows for validation by a hash of their
// ids: the same rows in every run.
type splitFn struct{ Validation float64 }

func (fn *splitFn) ProcessElement(r featurize.Row, trainRows, valRows func(featurize.Row)) {
	h := fnv.New64a()
	h.Write([]byte(r.ID))
	if float64(h.Sum64()%1_000_000) < fn.Validation*1_000_000 {
		valRows(r)
		return
	}
	trainRows(r)
}

// progressFn reports each epoch as it ends: a line on stderr and a JSON
// line in Path.
type progressFn struct {
	Path   string
	Epochs int

	last time.Time
}

func (fn *progressFn) ProcessElement(_ context.Context, st train.State) error {
	// An epoch's time is from the previous epoch's report; the first
	// epoch's includes reading the data, so it has no rate.
	now := time.Now()
	var rate float64
	speed := "first epoch"
	if !fn.last.IsZero() {
		rate = float64(st.Rows) / now.Sub(fn.last).Seconds()
		speed = fmt.Sprintf("%.0f samples/s", rate)
	}
	fn.last = now
	fmt.Fprintf(os.Stderr, "muon: epoch %d/%d: train loss %.4f on %d rows (%s), validation loss %.4f accuracy %.4f on %d rows%s\n",
		st.Epoch, fn.Epochs, st.TrainLoss, st.Rows, speed, st.Val.Loss, st.Val.Accuracy, st.Val.N, stopped(st))
	line, err := json.Marshal(struct {
		Epoch      int            `json:"epoch"`
		TrainLoss  float64        `json:"train_loss"`
		Rows       int64          `json:"rows"`
		PerSecond  float64        `json:"samples_per_second"`
		Validation models.Metrics `json:"validation"`
		Stopped    bool           `json:"stopped"`
	}{st.Epoch, st.TrainLoss, st.Rows, rate, st.Val, st.Stopped})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(fn.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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
	BestEpoch  int                  `json:"best_epoch,omitempty"`
	TrainLoss  float64              `json:"train_loss"`
	Validation models.Metrics       `json:"validation"`
}

// writeModelFn writes the trained model.
type writeModelFn struct {
	Path   string
	Params train.Params
	Names  []string
}

func (fn *writeModelFn) ProcessElement(_ context.Context, st train.State, sp analyze.Spec) error {
	m, err := st.Model(fn.Params.Model)
	if err != nil {
		return err
	}
	sp.Names = fn.Names
	tm := TrainedModel{Model: m.Desc(), Params: m.Params(), Optimizer: fn.Params.Optimizer, Preprocess: sp,
		Epochs: st.Epoch, TrainLoss: st.TrainLoss, Validation: st.Val}
	if st.BestParams != nil {
		tm.BestEpoch = st.Best
	}
	b, err := json.Marshal(tm)
	if err != nil {
		return err
	}
	return writeFileAtomic(fn.Path, b)
}
