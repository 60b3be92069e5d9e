package jobs

import (
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/publish"
	"github.com/muonml/muon/transforms/train"
)

// Summary is what a finished job reports; muon run prints it and writes it
// to <output.dir>/summary.json.
type Summary struct {
	Job    string `json:"job"`
	Kind   string `json:"kind"`
	Runner string `json:"runner"`
	// JobID is the runner's id of a detached job (Detached): it was
	// submitted and runs on; the summary has nothing else.
	JobID    string   `json:"job_id,omitempty"`
	Detached bool     `json:"detached,omitempty"`
	Brokers  []string `json:"brokers"`
	Embedded bool     `json:"embedded_broker"`
	// Security is how muon connected: PLAINTEXT, SSL, SASL_PLAINTEXT or
	// SASL_SSL, with the SASL mechanism and user (never the password).
	Security string   `json:"kafka_security,omitempty"`
	Topics   []string `json:"topics"`
	// Since is where a train job with source.start: previous started.
	Since       *Previous       `json:"since_previous,omitempty"`
	Replayed    int64           `json:"replayed_records,omitempty"`
	Inference   []BranchSummary `json:"inference,omitempty"`
	Read        int64           `json:"records_read"`
	Decoded     int64           `json:"records_decoded"`
	DeadLetters int64           `json:"dead_letters"`
	DLQTopics   []string        `json:"dead_letter_topics"`
	DLQReasons  []Reason        `json:"dead_letter_reasons,omitempty"`
	// ConstantFeatures counts the features constant over the rows the job
	// analyzed (nothing to learn from), Constant names some of them.
	ConstantFeatures int64    `json:"constant_features,omitempty"`
	Constant         []string `json:"constant_feature_names,omitempty"`
	// ShortBands counts rows with a channel of fewer than 2×features.bands
	// values, whose upper band energies are zeros; CutSeries rows of
	// MiniRocket series longer than features.rocket.length, cut.
	ShortBands int64 `json:"rows_with_empty_bands,omitempty"`
	CutSeries  int64 `json:"series_cut,omitempty"`
	// PositionGroup is the consumer group that holds the durable position
	// of an unbounded read; Rereads counts the records it read again after
	// resuming (read by the previous run after its last commit, at least),
	// PositionCommits the commits this run made.
	PositionGroup   string `json:"position_group,omitempty"`
	Rereads         int64  `json:"rereads,omitempty"`
	PositionCommits int64  `json:"position_commits,omitempty"`
	// GaveUp says which partitions' sources stopped because their brokers
	// failed for longer than the read reconnects, and why.
	GaveUp []string `json:"sources_gave_up,omitempty"`
	// Expired counts records a stream never read because the broker's
	// retention deleted them before the read reached them (it went on
	// from the oldest record left).
	Expired int64 `json:"records_expired,omitempty"`
	// Devices, CountsFile and DeviceLabels (devices by their first label)
	// are a bounded ingest job's; CountsTopic an unbounded one's.
	Devices      int64            `json:"devices,omitempty"`
	CountsFile   string           `json:"counts_file,omitempty"`
	DeviceLabels map[string]int64 `json:"devices_by_label,omitempty"`
	CountsTopic  string           `json:"counts_topic,omitempty"`
	Features     *FeatureSummary  `json:"features,omitempty"`
	Training     *TrainSummary    `json:"training,omitempty"`
	Stream       *StreamSummary   `json:"stream_training,omitempty"`
	// Started is when the pipeline was built, just before it ran.
	Started   time.Time `json:"started"`
	Seconds   float64   `json:"seconds"`
	PerSecond float64   `json:"records_per_second"`
	// PeakRSSMiB is the muon process's peak resident memory so far (Linux;
	// 0 elsewhere).
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// CPUSeconds is the CPU time (user and system) this process spent
	// while the job ran: on the edge runner the whole job, on Flink the
	// submitting side and, with LOOPBACK workers, the workers (not the
	// Flink JVMs). CPUPer1kPredictions divides it by an infer job's
	// predictions.
	CPUSeconds          float64          `json:"cpu_seconds"`
	CPUPer1kPredictions float64          `json:"cpu_s_per_1k_predictions,omitempty"`
	Counters            map[string]int64 `json:"counters"`
	// OutputDir is where summary.json goes.
	OutputDir string `json:"output_dir"`
}

// Reason is a kind of dead letter and how many there were.
type Reason struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// TrainSummary is what a bounded train job made.
type TrainSummary struct {
	Model  string `json:"model"`
	Params int    `json:"params"`
	Rows   int64  `json:"rows"`
	train.Final
	TargetCap  float64         `json:"target_cap,omitempty"`
	ModelFile  string          `json:"model_file"`
	Snapshot   *publish.Result `json:"snapshot,omitempty"`
	EpochsFile string          `json:"epochs_file"`
	// Curve is the training curve, from the runner's metrics (the
	// epochs file has the same on the worker's disk).
	Curve []train.Point `json:"curve,omitempty"`
}

// StreamSummary is what a train job on a stream published.
type StreamSummary struct {
	Windows int64  `json:"windows"`
	Rows    int64  `json:"rows"`
	First   string `json:"first_window,omitempty"`
	Last    string `json:"last_window,omitempty"`
	// Chained counts windows that started from a model this run published.
	Chained   int64   `json:"chained"`
	TrainLoss float64 `json:"last_train_loss"`
	Store     string  `json:"store"`
	Newest    string  `json:"newest,omitempty"`
}

// FeatureSummary is what a features job made.
type FeatureSummary struct {
	Kind        string           `json:"kind"`
	Shape       string           `json:"shape"`
	Dim         int              `json:"dim"`
	Rows        int64            `json:"rows"`
	Batches     int64            `json:"batches"`
	Late        int64            `json:"late_readings"`
	LatePartial int64            `json:"partly_late_readings"`
	ArchiveDir  string           `json:"archive_dir"`
	Archive     map[string]Files `json:"archive"`
	Preprocess  string           `json:"preprocess_file,omitempty"`
	Labels      map[string]int64 `json:"labels,omitempty"`
}

// Files counts the Parquet files under one archive folder written by this
// run.
type Files struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Rows is how many rows the files hold, from the writer's metrics.
	Rows int64 `json:"rows"`
	// Partitions counts the partition folders written to; Partition is
	// their span, hour or day (archive.partition).
	Partitions int    `json:"partitions"`
	Partition  string `json:"partition"`
}

// SmallFiles is the mean rows per file under which an archive of at
// least SmallFilesMin files is reported as made of small files.
const (
	SmallFiles    = 100
	SmallFilesMin = 100
)

// Small reports whether the files are many and small: a source sparse in
// time for its partitions, or producers that spread event times.
func (f Files) Small() bool {
	return f.Files >= SmallFilesMin && f.Rows < SmallFiles*int64(f.Files)
}

// BranchSummary is what an infer job's summary says of one branch.
type BranchSummary struct {
	Name  string `json:"name"`
	Topic string `json:"topic"`
	// Model is the version that served at the start, Final the one that
	// served at the end (they differ when a new version was published
	// while the job ran).
	Model string `json:"model"`
	Final string `json:"final_model,omitempty"`
	// Batches is how many batches were scored; BatchMeanMs, BatchMinMs
	// and BatchMaxMs the time scoring one took (the distribution
	// batch_latency_us).
	Batches     int64   `json:"batches"`
	BatchMeanMs float64 `json:"batch_mean_ms"`
	BatchMinMs  float64 `json:"batch_min_ms"`
	BatchMaxMs  float64 `json:"batch_max_ms"`
	// ByModel counts predictions per model version.
	ByModel     map[string]int64 `json:"predictions_by_model,omitempty"`
	Size        int64            `json:"snapshot_bytes"`
	Ratio       float64          `json:"compression_ratio"`
	Weights     string           `json:"weights"`
	Sparsity    float64          `json:"sparsity"`
	Rows        int64            `json:"rows"`
	Predictions int64            `json:"predictions"`
	Alerts      int64            `json:"alerts,omitempty"`
	DeadLetters int64            `json:"dead_letters"`
	Labelled    int64            `json:"labelled"`
	Accuracy    *float64         `json:"accuracy,omitempty"`
	ModelLoads  int64            `json:"model_loads"`
	Refused     int64            `json:"models_refused,omitempty"`
	// RefusedWhy says why each refused version was refused.
	RefusedWhy []string `json:"models_refused_why,omitempty"`
	LoadMs     float64  `json:"model_load_ms"`
	// Latency percentiles of the predictions written (event time to
	// prediction), from the branch's latency histogram.
	LatencyP50 float64 `json:"latency_p50_ms"`
	LatencyP99 float64 `json:"latency_p99_ms"`
	RowsPerSec float64 `json:"rows_per_second"`
}

// deadLetterReasons are the dead letters this run wrote, by reason, most
// frequent first, from the writers' metrics.
func deadLetterReasons(res *runners.Result) []Reason {
	counts := res.Under(kafkaio.DeadLetterNamespace, "")
	out := make([]Reason, 0, len(counts))
	for k, n := range counts {
		out = append(out, Reason{Reason: k, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

// peakRSSKiB is this process's peak resident set size (VmHWM), from
// /proc/self/status; false where there is none.
// cpuSeconds is the user and system CPU time this process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func peakRSSKiB() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
