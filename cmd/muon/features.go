package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/pipelines"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/analyze"
)

// featureSummary is what a features job made.
type featureSummary struct {
	Kind        string           `json:"kind"`
	Shape       string           `json:"shape"`
	Dim         int              `json:"dim"`
	Rows        int64            `json:"rows"`
	Batches     int64            `json:"batches"`
	Late        int64            `json:"late_readings"`
	LatePartial int64            `json:"partly_late_readings"`
	ArchiveDir  string           `json:"archive_dir"`
	Archive     map[string]files `json:"archive"`
	Preprocess  string           `json:"preprocess_file,omitempty"`
	Labels      map[string]int64 `json:"labels,omitempty"`
}

// files counts the Parquet files under one archive folder.
type files struct {
	Files      int   `json:"files"`
	Bytes      int64 `json:"bytes"`
	Partitions int   `json:"partitions"`
}

// summarizeFeatures gathers what a features job that started at start made.
func summarizeFeatures(spec *configs.Spec, res *runners.Result, start time.Time) (*featureSummary, error) {
	f := spec.Features
	sum := &featureSummary{
		Kind:        f.Kind,
		Dim:         len(pipelines.FeatureNames(spec)),
		Rows:        res.Counter("batch", "rows"),
		Batches:     res.Counter("batch", "batches"),
		Late:        res.Counter("featurize", "windows.late"),
		LatePartial: res.Counter("featurize", "windows.late_partial"),
		ArchiveDir:  spec.Archive.Dir,
		Archive:     map[string]files{},
	}
	switch f.Kind {
	case "images":
		sum.Shape = fmt.Sprintf("images resized to %d×%d, %d features in [0, 1]", f.Image.Width, f.Image.Height, sum.Dim)
	case "readings":
		sum.Shape = fmt.Sprintf("one row per reading, %d features", sum.Dim)
	case "cases":
		sum.Shape = fmt.Sprintf("one row per device over all its readings, %d channels × %d = %d features", len(f.Channels), sum.Dim/len(f.Channels), sum.Dim)
	default:
		w := f.Window
		kind := "fixed"
		if w.Period != w.Size {
			kind = "sliding every " + w.Period.String()
		}
		sum.Shape = fmt.Sprintf("%s windows per device (%s, allowed lateness %s), %d channels × %d = %d features",
			w.Size, kind, w.AllowedLateness, len(f.Channels), sum.Dim/len(f.Channels), sum.Dim)
	}
	for sub, dir := range map[string]string{"features": pipelines.FeaturesArchive(spec), "readings": pipelines.ReadingsArchive(spec)} {
		n, err := countParquet(dir, start)
		if err != nil {
			return nil, err
		}
		if n.Files > 0 {
			sum.Archive[sub] = n
		}
	}
	if spec.Source.IsBounded() {
		b, err := os.ReadFile(pipelines.PreprocessFile(spec))
		switch {
		case errors.Is(err, os.ErrNotExist):
			// no rows, no spec
		case err != nil:
			return nil, err
		default:
			sp, err := analyze.UnmarshalSpec(b)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", pipelines.PreprocessFile(spec), err)
			}
			sum.Preprocess = pipelines.PreprocessFile(spec)
			sum.Labels = map[string]int64{}
			for i, l := range sp.Labels {
				sum.Labels[l] = sp.LabelCounts[i]
			}
		}
	}
	return sum, nil
}

// countParquet counts the Parquet files under dir written since start
// (an archive keeps earlier runs' files), and their hour partitions.
func countParquet(dir string, start time.Time) (files, error) {
	var n files
	parts := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") || filepath.Ext(path) != ".parquet" {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.ModTime().Before(start) {
			return nil
		}
		n.Files++
		n.Bytes += info.Size()
		parts[filepath.Dir(path)] = true
		return nil
	})
	n.Partitions = len(parts)
	return n, err
}

func printFeatures(w io.Writer, f *featureSummary) {
	fmt.Fprintf(w, "  features       %s\n", f.Shape)
	late := ""
	if f.Kind == "windows" {
		late = fmt.Sprintf("; late readings %d (partly late %d)", f.Late, f.LatePartial)
	}
	fmt.Fprintf(w, "  rows           %d in %d Arrow batches%s\n", f.Rows, f.Batches, late)
	for _, sub := range []string{"features", "readings"} {
		if n, ok := f.Archive[sub]; ok {
			fmt.Fprintf(w, "  archive        %s: %s in %s, %.1f MiB → %s\n",
				sub, plural(n.Files, "Parquet file"), plural(n.Partitions, "hour partition"), float64(n.Bytes)/(1<<20), filepath.Join(f.ArchiveDir, sub))
		}
	}
	if f.Preprocess != "" {
		labels := make([]string, 0, len(f.Labels))
		for l := range f.Labels {
			labels = append(labels, l)
		}
		sort.Strings(labels)
		for i, l := range labels {
			labels[i] = fmt.Sprintf("%s %d", l, f.Labels[l])
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
