package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/muonml/muon/internal/printable"

	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/models"
)

func printMetrics(w io.Writer, name string, m models.Metrics) {
	if m.N == 0 {
		fmt.Fprintf(w, "  %-14s no rows\n", name)
		return
	}
	if m.Confusion == nil && (m.RMSE > 0 || m.MAE > 0) {
		fmt.Fprintf(w, "  %-14s %d rows: RMSE %.4f, MAE %.4f\n", name, m.N, m.RMSE, m.MAE)
		return
	}
	fmt.Fprintf(w, "  %-14s %d rows: accuracy %.4f, balanced accuracy %.4f, loss %.4f\n", name, m.N, m.Accuracy, m.BalancedAccuracy, m.Loss)
}

func printTraining(w io.Writer, t *jobs.TrainSummary, labels []string) {
	fmt.Fprintf(w, "  model          %s, %d parameters\n", t.Model, t.Params)
	epochs := fmt.Sprintf("%d epochs", t.Epochs)
	if t.Trained < t.Epochs {
		epochs = fmt.Sprintf("%d of %d epochs (stopped early)", t.Trained, t.Epochs)
	}
	best := ""
	if t.BestEpoch > 0 {
		best = fmt.Sprintf(", kept epoch %d (lowest validation loss)", t.BestEpoch)
	}
	trainRows := t.Rows - int64(t.Validation.N)
	if t.Test != nil {
		trainRows -= int64(t.Test.N)
	}
	fmt.Fprintf(w, "  training       %s on %d rows, last train loss %.4f%s\n", epochs, trainRows, t.TrainLoss, best)
	printMetrics(w, "validation", t.Validation)
	if t.Test != nil {
		printMetrics(w, "test", *t.Test)
		if c := t.Test.Confusion; c != nil {
			printConfusion(w, c, labels)
		}
	}
	if t.TargetCap > 0 {
		fmt.Fprintf(w, "  targets        capped at %g\n", t.TargetCap)
	}
	fmt.Fprintf(w, "  model file     %s (epochs: %s)\n", t.ModelFile, t.EpochsFile)
	if s := t.Snapshot; s != nil {
		what := fmt.Sprintf("%s, %.0f%% pruned, %d bytes (%.1f× smaller than float64), signed by %s", s.Weights, 100*s.Sparsity, s.Size, s.Ratio, s.Signer)
		if s.Published {
			fmt.Fprintf(w, "  snapshot       published %s: %s → %s\n", s.Version, what, s.Path)
		} else {
			fmt.Fprintf(w, "  snapshot       REJECTED %s: %s\n                 %s → %s\n", s.Version, s.Reason, what, s.Path)
		}
	}
}

// maxConfusionClasses is the most classes whose confusion matrix the
// summary prints; summary.json always has it whole.
const maxConfusionClasses = 20

// printConfusion prints a confusion matrix as a table: a row per true
// class, a column per predicted class, headed by the labels (cut to 6
// characters) when there are as many as classes.
func printConfusion(w io.Writer, c [][]int, labels []string) {
	if len(c) > maxConfusionClasses {
		fmt.Fprintf(w, "  confusion      %d classes: in summary.json (training.test.confusion)\n", len(c))
		return
	}
	name := func(i int) string {
		if len(labels) == len(c) {
			return printable.String(labels[i], 6)
		}
		return strconv.Itoa(i)
	}
	width := 4
	for i := range c {
		width = max(width, len(name(i)))
		for _, n := range c[i] {
			width = max(width, len(strconv.Itoa(n)))
		}
	}
	fmt.Fprintf(w, "  confusion      (row: true class, column: predicted)\n")
	var b strings.Builder
	b.WriteString("                 " + strings.Repeat(" ", width))
	for j := range c {
		fmt.Fprintf(&b, " %*s", width, name(j))
	}
	fmt.Fprintln(w, b.String())
	for i, row := range c {
		b.Reset()
		fmt.Fprintf(&b, "                 %*s", width, name(i))
		for _, n := range row {
			fmt.Fprintf(&b, " %*d", width, n)
		}
		fmt.Fprintln(w, b.String())
	}
}

func printStream(w io.Writer, s *jobs.StreamSummary) {
	if s.Windows == 0 {
		fmt.Fprintf(w, "  training       no window with rows closed; nothing published\n")
		return
	}
	fmt.Fprintf(w, "  training       %d windows (%s … %s) on %d rows, %d started from this run's previous model; last train loss %.4f\n",
		s.Windows, s.First, s.Last, s.Rows, s.Chained, s.TrainLoss)
	fmt.Fprintf(w, "  model store    %s (newest %s)\n", s.Store, s.Newest)
}
