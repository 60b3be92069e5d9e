package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/internal/atomicfile"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/transforms/analyze"
)

// Metric names, in namespace Namespace. Beam metrics are integers: a
// fraction or a loss is kept in billionths (Scale); a summary reads them
// back with FinalFrom and WindowsFrom.
const (
	Namespace = "train"
	// Epochs counts epochs reported by Progress.
	Epochs = "epochs"
	// Final* are set once by Save, from the model it keeps.
	FinalEpoch     = "final.epoch"
	FinalTrained   = "final.trained"
	FinalBest      = "final.best_epoch"
	FinalTrainLoss = "final.train_loss"
	// ValidationPrefix and TestPrefix name the final model's metrics:
	// <prefix>n, loss, accuracy, balanced_accuracy, rmse, mae and
	// confusion.<true>.<predicted>.
	ValidationPrefix = "validation."
	TestPrefix       = "test."
	// Windows and WindowRows are counted by WindowProgress: models
	// published, and their rows. WindowSeqs is a distribution of the store
	// versions Stream published: the job's summary reads this run's
	// models from the store between its min and max.
	Windows    = "windows"
	WindowRows = "windows.rows"
	WindowSeqs = "windows.seq"
	// CurvePrefix + "<epoch>." + rows, train_loss, validation_loss and
	// validation_metric (accuracy, or RMSE for regression) are an epoch's
	// figures as Progress reports it: the training curve, read back from
	// the runner's metrics by CurveFrom, live and at the end, on any
	// runner.
	CurvePrefix = "curve."
	// Scale is how many units of a Beam metric make 1.
	Scale = 1e9
)

func init() {
	// Called once per epoch, per window or per job: reflection suffices.
	for _, t := range []any{(*progressFn)(nil), (*windowProgressFn)(nil), (*saveFn)(nil)} {
		beam.RegisterType(reflect.TypeOf(t).Elem())
	}
}

// setFloat adds v, in billionths, to the counter ns/name (set once).
func setFloat(ctx context.Context, name string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	beam.NewCounter(Namespace, name).Inc(ctx, int64(math.Round(v*Scale)))
}

func setInt(ctx context.Context, name string, v int64) {
	beam.NewCounter(Namespace, name).Inc(ctx, v)
}

// reportMetrics sets m's metrics under prefix.
func reportMetrics(ctx context.Context, prefix string, m models.Metrics) {
	setInt(ctx, prefix+"n", int64(m.N))
	setFloat(ctx, prefix+"loss", m.Loss)
	setFloat(ctx, prefix+"accuracy", m.Accuracy)
	setFloat(ctx, prefix+"balanced_accuracy", m.BalancedAccuracy)
	setFloat(ctx, prefix+"rmse", m.RMSE)
	setFloat(ctx, prefix+"mae", m.MAE)
	for t, row := range m.Confusion {
		for p, n := range row {
			// Every cell, zeros too, so that the matrix's shape comes back.
			setInt(ctx, fmt.Sprintf("%sconfusion.%d.%d", prefix, t, p), int64(n))
		}
	}
}

// Counters are a job's counters by "namespace/name", as a runner reports
// them.
type Counters map[string]int64

func (c Counters) get(name string) (int64, bool) {
	v, ok := c[Namespace+"/"+name]
	return v, ok
}

func (c Counters) float(name string) float64 {
	v, _ := c.get(name)
	return float64(v) / Scale
}

// metricsFrom reads the metrics reportMetrics set under prefix; false if
// there are none.
func (c Counters) metricsFrom(prefix string) (models.Metrics, bool) {
	n, ok := c.get(prefix + "n")
	if !ok {
		return models.Metrics{}, false
	}
	m := models.Metrics{N: int(n), Loss: c.float(prefix + "loss"), Accuracy: c.float(prefix + "accuracy"),
		BalancedAccuracy: c.float(prefix + "balanced_accuracy"), RMSE: c.float(prefix + "rmse"), MAE: c.float(prefix + "mae")}
	classes := 0
	for k := range c {
		if rest, ok := strings.CutPrefix(k, Namespace+"/"+prefix+"confusion."); ok {
			t, p, _ := strings.Cut(rest, ".")
			ti, err1 := strconv.Atoi(t)
			pi, err2 := strconv.Atoi(p)
			if err1 == nil && err2 == nil {
				classes = max(classes, ti+1, pi+1)
			}
		}
	}
	if classes > 0 {
		m.Confusion = make([][]int, classes)
		for t := range m.Confusion {
			m.Confusion[t] = make([]int, classes)
			for p := range m.Confusion[t] {
				v, _ := c.get(fmt.Sprintf("%sconfusion.%d.%d", prefix, t, p))
				m.Confusion[t][p] = int(v)
			}
		}
	}
	return m, true
}

// Point is one epoch (or round of epochs) of a training curve.
type Point struct {
	Epoch     int     `json:"epoch"`
	Rows      int64   `json:"rows"`
	TrainLoss float64 `json:"train_loss"`
	// ValidationLoss and ValidationMetric (accuracy, or RMSE for a
	// regression) are absent without validation rows.
	ValidationLoss   *float64 `json:"validation_loss,omitempty"`
	ValidationMetric *float64 `json:"validation_metric,omitempty"`
}

// CurveFrom reads the training curve Progress reported from a job's
// counters, by epoch; none if nothing was reported yet.
func CurveFrom(c Counters) []Point {
	byEpoch := map[int]*Point{}
	for k, v := range c {
		rest, ok := strings.CutPrefix(k, Namespace+"/"+CurvePrefix)
		if !ok {
			continue
		}
		e, field, _ := strings.Cut(rest, ".")
		epoch, err := strconv.Atoi(e)
		if err != nil {
			continue
		}
		p := byEpoch[epoch]
		if p == nil {
			p = &Point{Epoch: epoch}
			byEpoch[epoch] = p
		}
		f := float64(v) / Scale
		switch field {
		case "rows":
			p.Rows = v
		case "train_loss":
			p.TrainLoss = f
		case "validation_loss":
			p.ValidationLoss = &f
		case "validation_metric":
			p.ValidationMetric = &f
		}
	}
	out := make([]Point, 0, len(byEpoch))
	for _, p := range byEpoch {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Point) int { return a.Epoch - b.Epoch })
	return out
}

// Final is how the model a bounded train job kept was trained and how it
// measures: kept in its model file, and reported in metrics by Save.
type Final struct {
	Epochs int `json:"epochs"`
	// Trained is the last epoch that trained (below Epochs if training
	// stopped early).
	Trained int `json:"trained"`
	// BestEpoch is the epoch whose model was kept with early stopping.
	BestEpoch int     `json:"best_epoch,omitempty"`
	TrainLoss float64 `json:"train_loss"`
	// Validation are the metrics on the validation rows.
	Validation models.Metrics `json:"validation"`
	// Test are the metrics on the held-out test set; nil without one.
	Test *models.Metrics `json:"test,omitempty"`
}

// FinalFrom reads what Save reported from a job's counters; false if it
// reported nothing (the job trained no model).
func FinalFrom(c Counters) (Final, bool) {
	e, ok := c.get(FinalEpoch)
	if !ok {
		return Final{}, false
	}
	tr, _ := c.get(FinalTrained)
	best, _ := c.get(FinalBest)
	f := Final{Epochs: int(e), Trained: int(tr), BestEpoch: int(best), TrainLoss: c.float(FinalTrainLoss)}
	f.Validation, _ = c.metricsFrom(ValidationPrefix)
	if m, ok := c.metricsFrom(TestPrefix); ok {
		f.Test = &m
	}
	return f, true
}

// Progress reports each epoch as it ends (epochs:
// PCollection<State>): a line on stderr, a JSON line appended to path
// (none if path is ""), and the metric Epochs. total is the number of
// epochs asked for. The rate is the rows of the epochs reported over the
// slowest shard's training time (shards train at once); the pipeline's own
// time between rounds is not in it.
func Progress(s beam.Scope, path string, total int, epochs beam.PCollection) {
	s = s.Scope("train.Progress")
	beam.ParDo0(s, &progressFn{Path: path, Epochs: total}, epochs)
}

type progressFn struct {
	Path   string
	Epochs int
}

func (fn *progressFn) ProcessElement(ctx context.Context, st State) error {
	var rate float64
	speed := "no rows trained"
	if st.Seconds > 0 {
		rate = float64(st.Rows) * float64(max(1, st.Span)) / st.Seconds
		speed = fmt.Sprintf("%.0f samples/s", rate)
	}
	validation := "no validation rows"
	switch {
	case st.Val.N == 0:
	case st.Val.Confusion == nil:
		validation = fmt.Sprintf("validation loss %.4f RMSE %.4f on %d rows", st.Val.Loss, st.Val.RMSE, st.Val.N)
	default:
		validation = fmt.Sprintf("validation loss %.4f accuracy %.4f on %d rows", st.Val.Loss, st.Val.Accuracy, st.Val.N)
	}
	stopped := ""
	if st.Stopped {
		stopped = fmt.Sprintf(" (stopped; best epoch %d)", st.Best)
	}
	epochs := fmt.Sprintf("epoch %d/%d", st.Epoch, fn.Epochs)
	if st.Span > 1 {
		epochs = fmt.Sprintf("epochs %d–%d/%d", st.Epoch-st.Span+1, st.Epoch, fn.Epochs)
	}
	fmt.Fprintf(os.Stderr, "muon: %s: train loss %.4f on %d rows (%s), %s%s\n",
		epochs, st.TrainLoss, st.Rows, speed, validation, stopped)
	setInt(ctx, Epochs, int64(max(1, st.Span)))
	setInt(ctx, fmt.Sprintf("%s%d.rows", CurvePrefix, st.Epoch), st.Rows)
	setFloat(ctx, fmt.Sprintf("%s%d.train_loss", CurvePrefix, st.Epoch), st.TrainLoss)
	if st.Val.N > 0 {
		setFloat(ctx, fmt.Sprintf("%s%d.validation_loss", CurvePrefix, st.Epoch), st.Val.Loss)
		metric := st.Val.Accuracy
		if st.Val.Confusion == nil {
			metric = st.Val.RMSE
		}
		setFloat(ctx, fmt.Sprintf("%s%d.validation_metric", CurvePrefix, st.Epoch), metric)
	}
	if fn.Path == "" {
		return nil
	}
	line, err := json.Marshal(struct {
		Epoch int `json:"epoch"`
		// Span is how many epochs the line reports, up to Epoch: a round
		// of several shards.
		Span       int            `json:"span"`
		TrainLoss  float64        `json:"train_loss"`
		Rows       int64          `json:"rows"`
		Seconds    float64        `json:"seconds"`
		PerSecond  float64        `json:"samples_per_second"`
		Validation models.Metrics `json:"validation"`
		Stopped    bool           `json:"stopped"`
	}{st.Epoch, max(1, st.Span), st.TrainLoss, st.Rows, st.Seconds, rate, st.Val, st.Stopped})
	if err != nil {
		return err
	}
	return appendLine(fn.Path, line)
}

// WindowProgress reports each model a train job on a stream published
// (PCollection<Published>): a line on stderr, a JSON line appended to path
// (none if path is ""), and the Windows metrics.
func WindowProgress(s beam.Scope, path string, published beam.PCollection) {
	s = s.Scope("train.WindowProgress")
	beam.ParDo0(s, &windowProgressFn{Path: path}, published)
}

type windowProgressFn struct{ Path string }

func (fn *windowProgressFn) ProcessElement(ctx context.Context, pub Published) error {
	from := "the initial model"
	if !pub.Base.IsZero() {
		from = "the model of the window ending " + pub.Base.Format(time.RFC3339)
	}
	fmt.Fprintf(os.Stderr, "muon: window ending %s: trained on %d rows from %s, train loss %.4f; published %s\n",
		pub.Window.Format(time.RFC3339), pub.Rows, from, pub.TrainLoss, pub.Version)
	setInt(ctx, Windows, 1)
	setInt(ctx, WindowRows, pub.Rows)
	if fn.Path == "" {
		return nil
	}
	line, err := json.Marshal(struct {
		Window    time.Time `json:"window"`
		Base      time.Time `json:"base"`
		Rows      int64     `json:"rows"`
		TrainLoss float64   `json:"train_loss"`
		Seconds   float64   `json:"seconds"`
		Version   string    `json:"version"`
	}{pub.Window, pub.Base, pub.Rows, pub.TrainLoss, pub.Seconds, pub.Version})
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

// OnlyStats reads the statistics of the training rows, a side input with
// one element, or none when the job read no rows from source.
func OnlyStats(stats func(*analyze.Spec) bool, source string) (analyze.Spec, error) {
	var sp analyze.Spec
	if !stats(&sp) {
		return sp, fmt.Errorf("the job read no training rows from %s: the topics are empty, or their records are gone "+
			"(Kafka's time retention counts from record timestamps: a replayed recording from long ago is deleted minutes after it is produced unless its topic has retention.ms=-1)", source)
	}
	return sp, nil
}

// TrainedModel is the model file Save writes.
type TrainedModel struct {
	Model      models.Desc          `json:"model"`
	Params     []float64            `json:"params"`
	Optimizer  models.OptimizerDesc `json:"optimizer"`
	Preprocess analyze.Spec         `json:"preprocess"`
	Final
	// TargetCap is the cap on regression targets the model was trained
	// (and tested) with; 0 for none.
	TargetCap float64 `json:"target_cap,omitempty"`
}

// ReadTrainedModel reads a model file Save wrote.
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

// SaveParams configures Save.
type SaveParams struct {
	// Path is the model file. Required.
	Path string
	// Train is how the model was trained. Required.
	Train Params
	// Names are the feature names, kept with the preprocessing.
	Names []string
	// TargetCap is the cap on regression targets, 0 for none.
	TargetCap float64
	// Source names what the rows were read from, for errors.
	Source string
}

// Save writes the model a bounded train job keeps to p.Path and reports it
// in the Final metrics: final is PCollection<State> (one element), stats
// PCollection<analyze.Spec> (one element), test PCollection<models.Metrics>
// (none without test rows). It returns PCollection<string>, the path once
// written: as a side input it orders what must come after the file, such
// as publishing the snapshot (a job that cannot write its model must not
// leave a new model serving).
func Save(s beam.Scope, p SaveParams, final, stats, test beam.PCollection) beam.PCollection {
	s = s.Scope("train.Save")
	if p.Path == "" {
		panic("train.Save: SaveParams.Path is required")
	}
	return beam.ParDo(s, &saveFn{P: p}, final, beam.SideInput{Input: stats}, beam.SideInput{Input: test})
}

type saveFn struct{ P SaveParams }

func (fn *saveFn) ProcessElement(ctx context.Context, st State, stats func(*analyze.Spec) bool, test func(*models.Metrics) bool, saved func(string)) error {
	sp, err := OnlyStats(stats, fn.P.Source)
	if err != nil {
		return err
	}
	m, err := st.Model(fn.P.Train.Model)
	if err != nil {
		return err
	}
	sp.Names = fn.P.Names
	tm := TrainedModel{Model: m.Desc(), Params: m.Params(), Optimizer: fn.P.Train.Optimizer, Preprocess: sp,
		Final: Final{Epochs: st.Epoch, Trained: st.Trained, TrainLoss: st.TrainLoss, Validation: st.Val}, TargetCap: fn.P.TargetCap}
	if st.BestParams != nil {
		tm.BestEpoch = st.Best
	}
	var m1 models.Metrics
	if test(&m1) {
		tm.Test = &m1
	}
	b, err := json.Marshal(tm)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(fn.P.Path, b); err != nil {
		return fmt.Errorf("writing the model file: %w", err)
	}
	saved(fn.P.Path)
	setInt(ctx, FinalEpoch, int64(tm.Epochs))
	setInt(ctx, FinalTrained, int64(tm.Trained))
	setInt(ctx, FinalBest, int64(tm.BestEpoch))
	setFloat(ctx, FinalTrainLoss, tm.TrainLoss)
	reportMetrics(ctx, ValidationPrefix, tm.Validation)
	if tm.Test != nil {
		reportMetrics(ctx, TestPrefix, *tm.Test)
	}
	return nil
}
