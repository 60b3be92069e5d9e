package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/muonml/muon/internal/printable"
	"github.com/muonml/muon/jobs"
)

func printInference(w io.Writer, bs []jobs.BranchSummary) {
	for _, b := range bs {
		fmt.Fprintf(w, "  branch %-7s %s → topic %s\n", b.Name, printable.String(b.Model, 0), b.Topic)
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
				b.ModelLoads, b.Refused, printable.String(max(b.Final, b.Model), 0), byVersion(b.ByModel))
		}
		for _, why := range b.RefusedWhy {
			fmt.Fprintf(w, "    refused      %s\n", printable.String(why, 240))
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
		vs = append(vs, v{name, jobs.VersionSeq(name), n})
	}
	slices.SortFunc(vs, func(a, b v) int { return cmp.Compare(a.seq, b.seq) })
	parts := make([]string, len(vs))
	for i, x := range vs {
		parts[i] = fmt.Sprintf("%s %d", printable.String(x.name, 0), x.n)
	}
	return strings.Join(parts, ", ")
}
