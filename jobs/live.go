package jobs

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/decode"
	"github.com/muonml/muon/transforms/featurize"
	"github.com/muonml/muon/transforms/infer"
	"github.com/muonml/muon/transforms/publish"
	"github.com/muonml/muon/transforms/train"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Live holds a running job's metrics so far, as the runner reports them
// (RunOptions.Live): what muon serve answers for a running job and what
// /metrics exposes, for muon serve's jobs and muon run --metrics alike.
// Its methods are safe for concurrent use.
type Live struct {
	name, kind string
	branches   []string
	// Log, if set, gets a line per epoch as the training curve grows:
	// the epochs of a job whose workers print them somewhere else.
	Log    io.Writer
	logged int

	mu      sync.Mutex
	res     *runners.Result
	started time.Time
	history []LiveSample
	// lastHist is the latency histogram at the previous sample.
	lastHist map[string]int64
}

// LiveSample is one point of a running job's throughput and latency.
type LiveSample struct {
	Time time.Time `json:"time"`
	// ReadPerSecond is records read per second since the previous sample.
	ReadPerSecond float64 `json:"read_per_second"`
	// LatencyP99Ms is the p99 latency of the predictions made since the
	// previous sample (0 when there were none).
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	read         int64
}

// liveHistory is how many samples Live keeps: 10 minutes at one a second.
const liveHistory = 600

// NewLive holds the metrics of spec's job once Update gets them.
func NewLive(spec *configs.Spec) *Live {
	l := &Live{name: spec.Name, kind: spec.Job, started: time.Now()}
	for _, b := range spec.Inference {
		l.branches = append(l.branches, b.Name)
	}
	return l
}

// Update takes the job's metrics so far; Run calls it about once a second.
func (l *Live) Update(res *runners.Result) {
	now := time.Now()
	read := res.Counter(kafkaio.ReadNamespace, kafkaio.MetricRecords)
	s := LiveSample{Time: now, read: read}
	// The p99 of the predictions made since the previous sample: the
	// histograms' growth, all branches together.
	hist := map[string]int64{}
	for _, b := range l.branches {
		for k, n := range res.Under(infer.Namespace(b), infer.LatencyCounter) {
			hist[infer.LatencyCounter+k] += n
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.history); n > 0 {
		if prev := l.history[n-1]; now.After(prev.Time) {
			s.ReadPerSecond = float64(read-prev.read) / now.Sub(prev.Time).Seconds()
		}
	}
	delta := map[string]int64{}
	for k, n := range hist {
		delta[k] = n - l.lastHist[k]
	}
	s.LatencyP99Ms = infer.LatencyQuantiles(delta, 0.99)[0]
	l.lastHist = hist
	if len(l.history) == liveHistory {
		l.history = slices.Delete(l.history, 0, 1)
	}
	l.history = append(l.history, s)
	l.res = res
	if l.Log != nil {
		for _, p := range train.CurveFrom(res.Counters) {
			if p.Epoch <= l.logged {
				continue
			}
			l.logged = p.Epoch
			val := ""
			if p.ValidationLoss != nil {
				val = fmt.Sprintf(", validation loss %.4f", *p.ValidationLoss)
			}
			if p.ValidationMetric != nil {
				val += fmt.Sprintf(" (metric %.4f)", *p.ValidationMetric)
			}
			fmt.Fprintf(l.Log, "muon: epoch %d: train loss %.4f on %d rows%s\n", p.Epoch, p.TrainLoss, p.Rows, val)
		}
	}
}

// LiveView is what a running job has done so far.
type LiveView struct {
	Job     string    `json:"job"`
	Kind    string    `json:"kind"`
	Updated time.Time `json:"updated"`
	Seconds float64   `json:"seconds"`
	Read    int64     `json:"records_read"`
	Written int64     `json:"records_written"`
	// DeadLetters by stage: decode, window (late readings) and the infer
	// branches' (infer.<branch>).
	DeadLetters map[string]int64 `json:"dead_letters"`
	// KafkaLag is, by topic, how many records an unbounded read's
	// partitions held past what it had fetched at its last fetch.
	KafkaLag map[string]int64 `json:"kafka_lag,omitempty"`
	Branches []LiveBranch     `json:"inference,omitempty"`
	// Published and Rejected count the snapshots the gate let through and
	// refused.
	Published int64         `json:"snapshots_published"`
	Rejected  int64         `json:"snapshots_rejected"`
	Curve     []train.Point `json:"curve,omitempty"`
	History   []LiveSample  `json:"history,omitempty"`
}

// LiveBranch is an infer branch so far.
type LiveBranch struct {
	Name         string  `json:"name"`
	Predictions  int64   `json:"predictions"`
	ModelVersion int64   `json:"model_version"`
	Batches      int64   `json:"batches"`
	BatchMeanMs  float64 `json:"batch_mean_ms"`
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
}

// View is the job's metrics so far; ok is false before the first Update.
func (l *Live) View() (v LiveView, ok bool) {
	l.mu.Lock()
	res, hist := l.res, slices.Clone(l.history)
	l.mu.Unlock()
	v = LiveView{Job: l.name, Kind: l.kind, Seconds: time.Since(l.started).Seconds(), History: hist}
	if res == nil {
		return v, false
	}
	v.Updated = hist[len(hist)-1].Time
	v.Read = res.Counter(kafkaio.ReadNamespace, kafkaio.MetricRecords)
	v.Written = res.Counter(kafkaio.WriteNamespace, kafkaio.MetricRecords)
	v.DeadLetters = map[string]int64{
		"decode": res.Counter(decode.Namespace, decode.SensorsDead) + res.Counter(decode.Namespace, decode.ImagesDead),
		"window": res.Counter(featurize.Namespace, featurize.WindowsLate),
	}
	for k, g := range res.Gauges {
		rest, ok := strings.CutPrefix(k, kafkaio.ReadNamespace+"/"+kafkaio.MetricLag+"/")
		if !ok {
			continue
		}
		if i := strings.LastIndexByte(rest, '/'); i > 0 {
			if v.KafkaLag == nil {
				v.KafkaLag = map[string]int64{}
			}
			v.KafkaLag[rest[:i]] += g
		}
	}
	for _, b := range l.branches {
		ns := infer.Namespace(b)
		lb := LiveBranch{Name: b, Predictions: res.Counter(ns, infer.MetricPredictions), ModelVersion: res.Gauges[ns+"/"+infer.MetricModelVersion],
			Batches: res.Counter(ns, infer.MetricBatches)}
		if d := res.Dists[ns+"/"+infer.MetricBatchLatencyUs]; d.Count > 0 {
			lb.BatchMeanMs = float64(d.Sum) / float64(d.Count) / 1000
		}
		q := infer.LatencyQuantiles(res.Under(ns, ""), 0.5, 0.99)
		lb.LatencyP50Ms, lb.LatencyP99Ms = q[0], q[1]
		v.DeadLetters[ns] = res.Counter(ns, infer.MetricDeadLetters)
		v.Branches = append(v.Branches, lb)
	}
	v.Published = res.Counter(publish.Namespace, publish.Published)
	v.Rejected = res.Counter(publish.Namespace, publish.Rejected)
	v.Curve = train.CurveFrom(res.Counters)
	return v, true
}

// MetricsHandler serves cs and the Go runtime's and the process's
// metrics in Prometheus' text format: muon serve's /metrics and muon run
// --metrics.
func MetricsHandler(cs ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Timeout: 10 * time.Second})
}

// LiveCollector exposes the metrics of running jobs to Prometheus, with
// the job's name as a label (jobs are few: one runs at a time) and
// nothing per run, per record or per model version.
type LiveCollector struct {
	// Jobs lists the running jobs.
	Jobs func() []*Live
}

var (
	liveReadDesc     = prometheus.NewDesc("muon_running_job_records_read_total", "Records a running job has read from Kafka.", []string{"job", "kind"}, nil)
	liveWrittenDesc  = prometheus.NewDesc("muon_running_job_records_written_total", "Records a running job has written to Kafka (outputs and dead letters).", []string{"job", "kind"}, nil)
	liveDeadDesc     = prometheus.NewDesc("muon_running_job_dead_letters_total", "Dead letters of a running job, by stage (decode, window, infer.<branch>).", []string{"job", "stage"}, nil)
	liveLagDesc      = prometheus.NewDesc("muon_kafka_lag_records", "Records a running unbounded read's topic holds past what it fetched.", []string{"job", "topic"}, nil)
	livePredDesc     = prometheus.NewDesc("muon_infer_predictions_total", "Predictions a running infer job's branch has written.", []string{"job", "branch"}, nil)
	liveBatchDesc    = prometheus.NewDesc("muon_infer_batch_latency_seconds", "Time a running infer branch took to score one batch.", []string{"job", "branch"}, nil)
	liveLatencyDesc  = prometheus.NewDesc("muon_prediction_latency_seconds", "Event time to prediction of a running infer branch's predictions.", []string{"job", "branch"}, nil)
	liveVersionDesc  = prometheus.NewDesc("muon_model_version_serving", "The sequence number of the model version a running infer branch serves.", []string{"job", "branch"}, nil)
	liveGateDesc     = prometheus.NewDesc("muon_gate_outcomes_total", "Snapshots a running job's quality gate published or rejected.", []string{"job", "outcome"}, nil)
	liveEpochDesc    = prometheus.NewDesc("muon_train_epoch", "The last epoch a running train job reported.", []string{"job"}, nil)
	liveLossDesc     = prometheus.NewDesc("muon_train_loss", "The training loss of the last epoch a running train job reported.", []string{"job"}, nil)
	liveValLossDesc  = prometheus.NewDesc("muon_train_validation_loss", "The validation loss of the last epoch a running train job reported.", []string{"job"}, nil)
	liveLatencyLes   = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	liveCollectDescs = []*prometheus.Desc{liveReadDesc, liveWrittenDesc, liveDeadDesc, liveLagDesc, livePredDesc, liveBatchDesc,
		liveLatencyDesc, liveVersionDesc, liveGateDesc, liveEpochDesc, liveLossDesc, liveValLossDesc}
)

// Describe implements prometheus.Collector.
func (c LiveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range liveCollectDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c LiveCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.Jobs() {
		v, ok := l.View()
		if !ok {
			continue
		}
		l.mu.Lock()
		res := l.res
		l.mu.Unlock()
		job := v.Job
		ch <- prometheus.MustNewConstMetric(liveReadDesc, prometheus.CounterValue, float64(v.Read), job, v.Kind)
		ch <- prometheus.MustNewConstMetric(liveWrittenDesc, prometheus.CounterValue, float64(v.Written), job, v.Kind)
		for _, stage := range slices.Sorted(maps.Keys(v.DeadLetters)) {
			ch <- prometheus.MustNewConstMetric(liveDeadDesc, prometheus.CounterValue, float64(v.DeadLetters[stage]), job, stage)
		}
		for topic, n := range v.KafkaLag {
			ch <- prometheus.MustNewConstMetric(liveLagDesc, prometheus.GaugeValue, float64(n), job, topic)
		}
		for _, b := range v.Branches {
			ns := infer.Namespace(b.Name)
			ch <- prometheus.MustNewConstMetric(livePredDesc, prometheus.CounterValue, float64(b.Predictions), job, b.Name)
			ch <- prometheus.MustNewConstMetric(liveVersionDesc, prometheus.GaugeValue, float64(b.ModelVersion), job, b.Name)
			d := res.Dists[ns+"/"+infer.MetricBatchLatencyUs]
			ch <- prometheus.MustNewConstSummary(liveBatchDesc, uint64(d.Count), float64(d.Sum)/1e6, nil, job, b.Name)
			cum, n, sum := infer.LatencyHistogram(res.Under(ns, ""), liveLatencyLes)
			buckets := make(map[float64]uint64, len(cum))
			for i, le := range liveLatencyLes {
				buckets[le] = cum[i]
			}
			ch <- prometheus.MustNewConstHistogram(liveLatencyDesc, n, sum, buckets, job, b.Name)
		}
		if v.Kind == "train" {
			ch <- prometheus.MustNewConstMetric(liveGateDesc, prometheus.CounterValue, float64(v.Published), job, "published")
			ch <- prometheus.MustNewConstMetric(liveGateDesc, prometheus.CounterValue, float64(v.Rejected), job, "rejected")
		}
		if n := len(v.Curve); n > 0 {
			last := v.Curve[n-1]
			ch <- prometheus.MustNewConstMetric(liveEpochDesc, prometheus.GaugeValue, float64(last.Epoch), job)
			ch <- prometheus.MustNewConstMetric(liveLossDesc, prometheus.GaugeValue, last.TrainLoss, job)
			if last.ValidationLoss != nil {
				ch <- prometheus.MustNewConstMetric(liveValLossDesc, prometheus.GaugeValue, *last.ValidationLoss, job)
			}
		}
	}
}
