package infer

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/internal/jsonstr"
	"github.com/muonml/muon/internal/printable"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/transforms/featurize"
	"gonum.org/v1/gonum/mat"
)

func init() {
	register.DoFn4x1[context.Context, arrowio.Batch, func(kafkaio.Record), func(kafkaio.Record), error](&inferFn{})
	register.Emitter1[kafkaio.Record]()
}

// StageInference names inference in dead letters.
const StageInference = "inference"

// DefaultReload is how often a branch checks its store for a new version.
const DefaultReload = time.Second

// Params configure one inference branch.
type Params struct {
	// Name names the branch in metrics ("infer.<name>").
	Name string
	// Store is the model store directory; the newest version that
	// verifies serves.
	Store string
	// Trust are the public key files (or folders of .pub files) whose
	// signatures are accepted.
	Trust []string
	// Names are the features the job makes, in order; a snapshot trained
	// on other features is refused.
	Names []string
	// Topic is where predictions go.
	Topic string
	// Alert, if set, makes this an alert branch: only rows whose score
	// crosses the threshold go to Topic.
	Alert *Alert
	// Reload is how often the store is checked for a new version. Default
	// DefaultReload.
	Reload time.Duration
	// SourceTopic names the dead-letter topic (SourceTopic+suffix) of rows
	// whose id does not name their source record.
	SourceTopic      string
	DeadLetterSuffix string
	// Cluster is the Kafka cluster of a store on Kafka (Store
	// kafka://<topic>).
	Cluster kafkaio.Cluster
}

// Alert is an alert branch's rule: a classifier's score of Label, or a
// regression model's value, at or above Threshold (Below: at or under).
type Alert struct {
	Label     string
	Threshold float64
	Below     bool
}

func (p Params) reload() time.Duration {
	if p.Reload <= 0 {
		return DefaultReload
	}
	return p.Reload
}

// Check loads the newest model p would serve, before a job starts: a
// store with no version that verifies, a snapshot trained on other
// features or an alert label the model does not have fail here.
func Check(ctx context.Context, p Params) (*Model, error) {
	srv, err := sharedServer(p)
	if err != nil {
		return nil, err
	}
	m, err := srv.Current(ctx)
	if err != nil {
		return nil, err
	}
	if a := p.Alert; a != nil && m.Model.Head() == models.SoftmaxHead && labelIndex(m.Manifest.Labels, a.Label) < 0 {
		return nil, fmt.Errorf("alert label %q is not one of the model's classes %q", a.Label, m.Manifest.Labels)
	}
	return m, nil
}

func labelIndex(labels []string, l string) int {
	for i, x := range labels {
		if x == l {
			return i
		}
	}
	return -1
}

// Batches scores feature batches (PCollection<arrowio.Batch>, standardized
// by nothing yet: the snapshot's preprocessing is applied here) with the
// newest verified model of p.Store, and returns the predictions
// (PCollection<kafkaio.Record> for p.Topic, JSON, see Prediction), and the
// dead letters of rows whose batch failed, stage inference.
func Batches(s beam.Scope, p Params, batches beam.PCollection) (predictions, dead beam.PCollection) {
	s = s.Scope("infer." + p.Name)
	return beam.ParDo2(s, &inferFn{Params: p}, batches)
}

// inferFn scores batches with the process's shared Server of its branch.
type inferFn struct {
	Params Params

	srv *Server
	m   metrics
	// work is the MiniRocket scratch of models that make features from
	// series.
	work featurize.RocketWork
	x    mat.Dense
	out  mat.Dense
	buf  []byte
}

type metrics struct {
	rows, batches, predictions, alerts, dead, labelled, correct, loads, refused beam.Counter
	// why counts the refusal reasons reported as counters, at most
	// maxRefusalReasons.
	why             int
	latency, loadUs beam.Distribution
	version         beam.Gauge
	latencies       latencyHist
	byVersion       map[string]beam.Counter
}

func newMetrics(name string) metrics {
	ns := Namespace(name)
	return metrics{
		rows: beam.NewCounter(ns, MetricRows), batches: beam.NewCounter(ns, MetricBatches), predictions: beam.NewCounter(ns, MetricPredictions),
		alerts: beam.NewCounter(ns, MetricAlerts), dead: beam.NewCounter(ns, MetricDeadLetters), labelled: beam.NewCounter(ns, MetricLabelled),
		correct: beam.NewCounter(ns, MetricCorrect), loads: beam.NewCounter(ns, MetricModelLoads), refused: beam.NewCounter(ns, MetricModelsRefused),
		latency: beam.NewDistribution(ns, MetricBatchLatencyUs), loadUs: beam.NewDistribution(ns, MetricModelLoadUs),
		version:   beam.NewGauge(ns, MetricModelVersion),
		latencies: latencyHist{ns: ns}, byVersion: map[string]beam.Counter{},
	}
}

func (fn *inferFn) Setup(ctx context.Context) error {
	fn.m = newMetrics(fn.Params.Name)
	srv, err := sharedServer(fn.Params)
	if err != nil {
		return err
	}
	fn.srv = srv
	return nil
}

func (fn *inferFn) ProcessElement(ctx context.Context, b arrowio.Batch, emit, dead func(kafkaio.Record)) error {
	if b.Rows() == 0 {
		return nil
	}
	start := time.Now()
	m, err := fn.model(ctx)
	if err != nil {
		return err // no model at all: the job cannot go on
	}
	fn.m.batches.Inc(ctx, 1)
	fn.m.rows.Inc(ctx, int64(b.Rows()))
	if err := fn.score(ctx, m, b, emit); err != nil {
		n := fn.deadLetters(b, err, dead)
		fn.m.dead.Inc(ctx, int64(n))
		log.Warnf(ctx, "infer.%s: a batch of %d rows failed with %s and went to the dead letter: %v", fn.Params.Name, b.Rows(), m.Name(), err)
	}
	fn.m.latency.Update(ctx, time.Since(start).Microseconds())
	return nil
}

// model is the serving model; it reports the process's loads and
// refusals since the last call of any DoFn of the branch, once each.
func (fn *inferFn) model(ctx context.Context) (*Model, error) {
	m, err := fn.srv.Current(ctx)
	loaded, refused := fn.srv.drain()
	for _, l := range loaded {
		fn.m.loads.Inc(ctx, 1)
		fn.m.loadUs.Update(ctx, l.Load.Microseconds())
		log.Infof(ctx, "infer.%s: serving %s (%d bytes, loaded in %v)", fn.Params.Name, l.Name(), l.Size, l.Load)
	}
	for _, r := range refused {
		fn.m.refused.Inc(ctx, 1)
		if fn.m.why < maxRefusalReasons {
			fn.m.why++
			// The reason reaches the job's summary as a counter's name.
			beam.NewCounter(Namespace(fn.Params.Name), MetricModelsRefused+"/"+printable.String(r.Error(), 240)).Inc(ctx, 1)
		}
		log.Errorf(ctx, "infer.%s: refused %v; the model before it keeps serving", fn.Params.Name, r)
	}
	if err != nil {
		return nil, err
	}
	fn.m.version.Set(ctx, int64(m.Version.Seq))
	return m, nil
}

// score predicts every row of b with m and emits the predictions.
func (fn *inferFn) score(ctx context.Context, m *Model, b arrowio.Batch, emit func(kafkaio.Record)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	rec := b.Record
	vals, n, dim, err := arrowio.Features(rec)
	if err != nil {
		return err
	}
	if dim != m.Pre.Width() {
		what := "features"
		if m.Pre.Rocket != nil {
			what = "values (MiniRocket series)"
		}
		return fmt.Errorf("rows of %d %s for %s, which takes %d", dim, what, m.Name(), m.Pre.Width())
	}
	keys, labels, ids := rec.Column(arrowio.KeyIndex), rec.Column(arrowio.LabelIndex), rec.Column(arrowio.IDIndex)
	times, ok := rec.Column(arrowio.TimeIndex).(*array.Timestamp)
	if !ok {
		return fmt.Errorf("column time is %s, want a timestamp", rec.Column(arrowio.TimeIndex).DataType())
	}
	unit := times.DataType().(*arrow.TimestampType).Unit

	width := m.Pre.Features
	fn.x.Reset()
	fn.x.ReuseAs(n, width)
	xs := fn.x.RawMatrix().Data
	for i := 0; i < n; i++ {
		if _, err := m.Pre.Preprocess(xs[i*width:(i+1)*width], vals[i*dim:(i+1)*dim], &fn.work); err != nil {
			return fmt.Errorf("row %s: %w", ids.ValueStr(i), err)
		}
	}
	k := m.Model.Outputs()
	fn.out.Reset()
	fn.out.ReuseAs(n, k)
	pred := m.predictor()
	pred.Predict(&fn.out, &fn.x)
	m.preds.Put(pred)

	classifier := m.Model.Head() == models.SoftmaxHead
	alert := fn.Params.Alert
	ai := -1
	if alert != nil && classifier {
		if ai = labelIndex(m.Manifest.Labels, alert.Label); ai < 0 {
			return fmt.Errorf("alert label %q is not one of %s's classes", alert.Label, m.Name())
		}
	}
	now := time.Now()
	name := m.Name()
	var labelled, correct, alerts int64
	for i := 0; i < n; i++ {
		out := fn.out.RawRowView(i)
		// The prediction's id is the row's and the model's: Append joins
		// them.
		p := prediction{
			ID: ids.ValueStr(i), Key: keys.ValueStr(i), Time: times.Value(i).ToTime(unit).UTC(), Model: name,
		}
		if !labels.IsNull(i) {
			p.Truth = labels.ValueStr(i)
		}
		p.Latency = now.Sub(p.Time)
		fn.m.latencies.add(p.Latency)
		if classifier {
			p.Label, p.Labels, p.Scores = m.Manifest.Labels[models.Argmax(out)], m.Manifest.Labels, out
			if p.Truth != "" {
				labelled++
				if p.Truth == p.Label {
					correct++
				}
			}
		} else {
			p.Values = out
		}
		if alert != nil {
			v := out[0]
			if ai >= 0 {
				v = out[ai]
			}
			if !(v >= alert.Threshold && !alert.Below) && !(v <= alert.Threshold && alert.Below) {
				continue
			}
			p.Alert = alertText(alert, v, classifier)
			alerts++
		}
		fn.buf = p.Append(fn.buf[:0])
		emit(kafkaio.Record{Topic: fn.Params.Topic, Key: []byte(p.Key), Value: append([]byte(nil), fn.buf...), Time: p.Time})
	}
	fn.m.predictions.Inc(ctx, int64(n))
	fn.m.latencies.flush(ctx)
	vc, ok := fn.m.byVersion[m.Name()]
	if !ok {
		vc = beam.NewCounter(Namespace(fn.Params.Name), VersionCounter+m.Name())
		fn.m.byVersion[m.Name()] = vc
	}
	vc.Inc(ctx, int64(n))
	fn.m.labelled.Inc(ctx, labelled)
	fn.m.correct.Inc(ctx, correct)
	fn.m.alerts.Inc(ctx, alerts)
	return nil
}

func alertText(a *Alert, v float64, classifier bool) string {
	what := "value"
	if classifier {
		what = "score of " + a.Label
	}
	op := "≥"
	if a.Below {
		op = "≤"
	}
	return fmt.Sprintf("%s %.4g %s %.4g", what, v, op, a.Threshold)
}

// deadLetters sends every row of a failed batch to the dead letter: the
// row (id, key, time, features) as JSON, with the error, stage inference,
// and the source record's coordinates when the row's id names them.
func (fn *inferFn) deadLetters(b arrowio.Batch, cause error, dead func(kafkaio.Record)) int {
	rec := b.Record
	n := b.Rows()
	keys, ids := rec.Column(arrowio.KeyIndex), rec.Column(arrowio.IDIndex)
	vals, _, dim, ferr := arrowio.Features(rec)
	for i := 0; i < n; i++ {
		id := ids.ValueStr(i)
		r := kafkaio.Record{Topic: fn.Params.SourceTopic, Partition: -1, Offset: -1, Key: []byte(keys.ValueStr(i))}
		if src := arrowio.SourceAt(rec, i); src.Topic != "" {
			r.Topic, r.Partition, r.Offset = src.Topic, src.Partition, src.Offset
		}
		v := append(jsonstr.Append([]byte(`{"id":`), id), `,"key":`...)
		v = append(jsonstr.Append(v, keys.ValueStr(i)), `,"features":[`...)
		if ferr == nil {
			for j, x := range vals[i*dim : (i+1)*dim] {
				if j > 0 {
					v = append(v, ',')
				}
				v = appendFloat(v, x)
			}
		}
		r.Value = append(v, "]}"...)
		dead(kafkaio.DeadLetter(r, StageInference, cause, fn.Params.DeadLetterSuffix))
	}
	return n
}

func appendFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', 6, 64)
}

// Metric names of a branch, in namespace Namespace(branch name).
const (
	MetricRows          = "rows"
	MetricBatches       = "batches"
	MetricPredictions   = "predictions"
	MetricAlerts        = "alerts"
	MetricDeadLetters   = "dead_letters"
	MetricLabelled      = "labelled"
	MetricCorrect       = "correct"
	MetricModelLoads    = "model_loads"
	MetricModelsRefused = "models_refused"
	// maxRefusalReasons caps the refusal reasons one DoFn instance reports
	// (MetricModelsRefused + "/" + the error).
	maxRefusalReasons = 32
	// MetricBatchLatencyUs and MetricModelLoadUs are distributions, in
	// microseconds.
	MetricBatchLatencyUs = "batch_latency_us"
	MetricModelLoadUs    = "model_load_us"
	// MetricModelVersion is a gauge: the sequence number serving.
	MetricModelVersion = "model_version"
)

// Namespace is the metrics namespace of the inference branch named branch.
func Namespace(branch string) string { return "infer." + branch }
