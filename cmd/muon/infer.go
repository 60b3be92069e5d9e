package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/pipelines"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/infer"
)

// branchSummary is what an infer job's summary says of one branch.
type branchSummary struct {
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
	LoadMs      float64          `json:"model_load_ms"`
	// Latency percentiles of the predictions written (event time to
	// prediction), from the branch's latency histogram.
	LatencyP50 float64 `json:"latency_p50_ms"`
	LatencyP99 float64 `json:"latency_p99_ms"`
	RowsPerSec float64 `json:"rows_per_second"`
}

// summarizeInference gathers each branch's figures from the job's
// metrics and the models it served.
func summarizeInference(spec *configs.Spec, served []*infer.Model, res *runners.Result) []branchSummary {
	var out []branchSummary
	for i, p := range pipelines.InferParams(spec) {
		ns := "infer." + p.Name
		m := served[i]
		b := branchSummary{
			Name: p.Name, Topic: p.Topic, Model: m.Name(), Size: m.Size, Ratio: m.Ratio,
			Weights: m.Manifest.Compression.Weights, Sparsity: m.Manifest.Compression.Sparsity,
			Rows: res.Counter(ns, "rows"), Predictions: res.Counter(ns, "predictions"), Alerts: res.Counter(ns, "alerts"),
			DeadLetters: res.Counter(ns, "dead_letters"), Labelled: res.Counter(ns, "labelled"),
			ModelLoads: res.Counter(ns, "model_loads"), Refused: res.Counter(ns, "models_refused"),
		}
		if b.Labelled > 0 {
			acc := float64(res.Counter(ns, "correct")) / float64(b.Labelled)
			b.Accuracy = &acc
		}
		b.Batches = res.Counter(ns, "batches")
		if d, ok := res.Dists[ns+"/batch_latency_us"]; ok && d.Count > 0 {
			b.BatchMeanMs, b.BatchMinMs, b.BatchMaxMs = float64(d.Sum)/float64(d.Count)/1000, float64(d.Min)/1000, float64(d.Max)/1000
		}
		if d, ok := res.Dists[ns+"/model_load_us"]; ok && d.Count > 0 {
			b.LoadMs = float64(d.Sum) / float64(d.Count) / 1000
		}
		if s := res.Elapsed.Seconds(); s > 0 {
			b.RowsPerSec = float64(b.Rows) / s
		}
		// Latencies and versions come from the branch's metrics: its
		// latency histogram (within 2.2 %) and its predictions per version.
		own := map[string]int64{}
		var finalSeq uint64
		for k, v := range res.Counters {
			name, ok := strings.CutPrefix(k, ns+"/")
			if !ok {
				continue
			}
			own[name] = v
			if ver, ok := strings.CutPrefix(name, infer.VersionCounter); ok && v > 0 {
				if b.ByModel == nil {
					b.ByModel = map[string]int64{}
				}
				b.ByModel[ver] = v
				if seq := versionSeq(ver); seq > finalSeq && ver != b.Model {
					finalSeq, b.Final = seq, ver
				}
			}
		}
		if q := infer.LatencyQuantiles(own, 0.5, 0.99); len(q) == 2 {
			b.LatencyP50, b.LatencyP99 = q[0], q[1]
		}
		out = append(out, b)
	}
	return out
}

func printInference(w io.Writer, bs []branchSummary) {
	for _, b := range bs {
		fmt.Fprintf(w, "  branch %-7s %s → topic %s\n", b.Name, b.Model, b.Topic)
		fmt.Fprintf(w, "    snapshot     %d bytes, %s, %.0f%% pruned, %.1f× smaller than float64 (loaded in %.1f ms)\n", b.Size, b.Weights, 100*b.Sparsity, b.Ratio, b.LoadMs)
		line := fmt.Sprintf("%d rows → %d predictions", b.Rows, b.Predictions)
		if b.Alerts > 0 || b.Predictions < b.Rows-b.DeadLetters {
			line = fmt.Sprintf("%d rows → %d alerts", b.Rows, b.Alerts)
		}
		fmt.Fprintf(w, "    scored       %s (%.0f rows/s), %d dead letters\n", line, b.RowsPerSec, b.DeadLetters)
		if b.Accuracy != nil {
			fmt.Fprintf(w, "    accuracy     %.4f on %d labelled rows\n", *b.Accuracy, b.Labelled)
		}
		if b.Batches > 0 {
			fmt.Fprintf(w, "    batches      %d, %.0f rows each on average, scored in %.2f ms on average (min %.2f, max %.2f)\n",
				b.Batches, float64(b.Rows)/float64(b.Batches), b.BatchMeanMs, b.BatchMinMs, b.BatchMaxMs)
		}
		fmt.Fprintf(w, "    latency      p50 %.1f ms, p99 %.1f ms (event time → prediction)\n", b.LatencyP50, b.LatencyP99)
		if b.Final != "" || b.ModelLoads > 1 || b.Refused > 0 {
			fmt.Fprintf(w, "    models       %d loaded, %d refused; serving %s at the end; predictions by version %s\n",
				b.ModelLoads, b.Refused, max(b.Final, b.Model), byVersion(b.ByModel))
		}
	}
}

// byVersion lists predictions per version, oldest version first.
func byVersion(m map[string]int64) string {
	type v struct {
		name string
		seq  uint64
		n    int64
	}
	var vs []v
	for name, n := range m {
		vs = append(vs, v{name, versionSeq(name), n})
	}
	slices.SortFunc(vs, func(a, b v) int { return cmp.Compare(a.seq, b.seq) })
	parts := make([]string, len(vs))
	for i, x := range vs {
		parts[i] = fmt.Sprintf("%s %d", x.name, x.n)
	}
	return strings.Join(parts, ", ")
}

// versionSeq is the sequence number of a model version name@seq, 0 if
// it has none.
func versionSeq(version string) uint64 {
	i := strings.LastIndexByte(version, '@')
	if i < 0 {
		return 0
	}
	seq, _ := strconv.ParseUint(version[i+1:], 10, 64)
	return seq
}
