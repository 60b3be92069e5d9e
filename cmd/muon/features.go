package main

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/muonml/muon/internal/printable"
	"github.com/muonml/muon/jobs"
)

func printFeatures(w io.Writer, f *jobs.FeatureSummary) {
	fmt.Fprintf(w, "  features       %s\n", f.Shape)
	late := ""
	if f.Kind == "windows" {
		late = fmt.Sprintf("; late readings %d (partly late %d)", f.Late, f.LatePartial)
	}
	fmt.Fprintf(w, "  rows           %d in %d Arrow batches%s\n", f.Rows, f.Batches, late)
	for _, sub := range []string{"features", "readings"} {
		if n, ok := f.Archive[sub]; ok {
			fmt.Fprintf(w, "  archive        %s: %s in %s, %.1f MiB → %s\n",
				sub, plural(n.Files, "Parquet file"), plural(n.Partitions, n.Partition+" partition"), float64(n.Bytes)/(1<<20), filepath.Join(f.ArchiveDir, sub))
		}
	}
	for _, sub := range []string{"features", "readings"} {
		if n := f.Archive[sub]; n.Small() {
			fmt.Fprintf(w, "  warning        the %s archive got %s for %d rows (%.1f a file) over %s: its event times are sparse, or spread by their producers; ",
				sub, plural(n.Files, "file"), n.Rows, float64(n.Rows)/float64(n.Files), plural(n.Partitions, n.Partition+" partition"))
			if n.Partition == "hour" {
				fmt.Fprintf(w, "set archive.partition: day, or check the producers' timestamps\n")
			} else {
				fmt.Fprintf(w, "check the producers' timestamps\n")
			}
		}
	}
	if f.Preprocess != "" {
		labels := make([]string, 0, len(f.Labels))
		for l := range f.Labels {
			labels = append(labels, l)
		}
		sort.Strings(labels)
		for i, l := range labels {
			labels[i] = fmt.Sprintf("%s %d", printable.String(l, 0), f.Labels[l])
		}
		fmt.Fprintf(w, "  preprocess     %s\n", f.Preprocess)
		if len(labels) > 0 {
			fmt.Fprintf(w, "  rows/label     %s\n", strings.Join(labels, ", "))
		}
	}
}

// plural is "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
