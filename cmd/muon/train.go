package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/pipelines"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/train"
)

// trainSummary is what a train job made.
type trainSummary struct {
	Model      string                    `json:"model"`
	Params     int                       `json:"params"`
	Rows       int64                     `json:"rows"`
	Epochs     int                       `json:"epochs"`
	Trained    int                       `json:"trained"`
	BestEpoch  int                       `json:"best_epoch,omitempty"`
	TrainLoss  float64                   `json:"train_loss"`
	Validation models.Metrics            `json:"validation"`
	Test       *models.Metrics           `json:"test,omitempty"`
	TargetCap  float64                   `json:"target_cap,omitempty"`
	ModelFile  string                    `json:"model_file"`
	Snapshot   *pipelines.SnapshotResult `json:"snapshot,omitempty"`
	EpochsFile string                    `json:"epochs_file"`
}

func summarizeTraining(spec *configs.Spec, res *runners.Result) (*trainSummary, error) {
	b, err := os.ReadFile(pipelines.ModelFile(spec))
	if err != nil {
		return nil, fmt.Errorf("the train job wrote no model (were there rows? see the dead letters): %w", err)
	}
	var tm pipelines.TrainedModel
	if err := json.Unmarshal(b, &tm); err != nil {
		return nil, fmt.Errorf("%s: %w", pipelines.ModelFile(spec), err)
	}
	m, err := models.FromParams(tm.Model, tm.Params)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pipelines.ModelFile(spec), err)
	}
	tm.Validation.Confusion = nil
	var snap *pipelines.SnapshotResult
	if spec.Snapshot.Key != "" {
		b, err := os.ReadFile(pipelines.SnapshotFile(spec))
		if err != nil {
			return nil, fmt.Errorf("the train job wrote no snapshot result: %w", err)
		}
		snap = &pipelines.SnapshotResult{}
		if err := json.Unmarshal(b, snap); err != nil {
			return nil, fmt.Errorf("%s: %w", pipelines.SnapshotFile(spec), err)
		}
	}
	return &trainSummary{Snapshot: snap, Test: tm.Test, TargetCap: tm.TargetCap, Model: m.String(), Params: m.NumParams(), Rows: res.Counter("batch", "rows"),
		Epochs: tm.Epochs, Trained: tm.Trained, BestEpoch: tm.BestEpoch, TrainLoss: tm.TrainLoss, Validation: tm.Validation,
		ModelFile: pipelines.ModelFile(spec), EpochsFile: pipelines.EpochsFile(spec)}, nil
}

func printMetrics(w io.Writer, name string, m models.Metrics) {
	if m.Confusion == nil && (m.RMSE > 0 || m.MAE > 0) {
		fmt.Fprintf(w, "  %-14s %d rows: RMSE %.4f, MAE %.4f\n", name, m.N, m.RMSE, m.MAE)
		return
	}
	fmt.Fprintf(w, "  %-14s %d rows: accuracy %.4f, balanced accuracy %.4f, loss %.4f\n", name, m.N, m.Accuracy, m.BalancedAccuracy, m.Loss)
}

func printTraining(w io.Writer, t *trainSummary) {
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
		if c := t.Test.Confusion; c != nil && len(c) <= 4 {
			fmt.Fprintf(w, "  confusion      %v (row: true class, column: predicted)\n", t.Test.Confusion)
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

// streamSummary is what a train job on a stream published.
type streamSummary struct {
	Windows int    `json:"windows"`
	Rows    int64  `json:"rows"`
	First   string `json:"first_window,omitempty"`
	Last    string `json:"last_window,omitempty"`
	// Chained counts windows that started from a model this run published.
	Chained   int     `json:"chained"`
	TrainLoss float64 `json:"last_train_loss"`
	Store     string  `json:"store"`
	Newest    string  `json:"newest,omitempty"`
}

func summarizeStream(spec *configs.Spec) (*streamSummary, error) {
	sum := &streamSummary{Store: pipelines.StoreDir(spec)}
	b, err := os.ReadFile(pipelines.WindowsFile(spec))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ours := map[time.Time]bool{}
	var bases []time.Time
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var w struct {
			Window    time.Time `json:"window"`
			Base      time.Time `json:"base"`
			Rows      int64     `json:"rows"`
			TrainLoss float64   `json:"train_loss"`
		}
		if err := json.Unmarshal([]byte(line), &w); err != nil {
			return nil, fmt.Errorf("%s: %w", pipelines.WindowsFile(spec), err)
		}
		sum.Windows++
		sum.Rows += w.Rows
		if f := w.Window.Format(time.RFC3339); sum.First == "" || f < sum.First {
			sum.First = f
		}
		if l := w.Window.Format(time.RFC3339); l > sum.Last {
			sum.Last, sum.TrainLoss = l, w.TrainLoss
		}
		ours[w.Window] = true
		bases = append(bases, w.Base)
	}
	for _, b := range bases {
		if ours[b] {
			sum.Chained++
		}
	}
	if pub, err := train.Latest(sum.Store); err == nil && pub != nil {
		sum.Newest = train.PublishedFile(pub.Window)
	}
	return sum, nil
}

func printStream(w io.Writer, s *streamSummary) {
	if s.Windows == 0 {
		fmt.Fprintf(w, "  training       no window with rows closed; nothing published\n")
		return
	}
	fmt.Fprintf(w, "  training       %d windows (%s … %s) on %d rows, %d started from this run's previous model; last train loss %.4f\n",
		s.Windows, s.First, s.Last, s.Rows, s.Chained, s.TrainLoss)
	fmt.Fprintf(w, "  model store    %s (newest %s)\n", s.Store, s.Newest)
}
