package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/pipelines"
	"github.com/muonml/muon/runners"
)

// trainSummary is what a train job made.
type trainSummary struct {
	Model      string          `json:"model"`
	Params     int             `json:"params"`
	Rows       int64           `json:"rows"`
	Epochs     int             `json:"epochs"`
	Trained    int             `json:"trained"`
	BestEpoch  int             `json:"best_epoch,omitempty"`
	TrainLoss  float64         `json:"train_loss"`
	Validation models.Metrics  `json:"validation"`
	Test       *models.Metrics `json:"test,omitempty"`
	TargetCap  float64         `json:"target_cap,omitempty"`
	ModelFile  string          `json:"model_file"`
	EpochsFile string          `json:"epochs_file"`
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
	return &trainSummary{Test: tm.Test, TargetCap: tm.TargetCap, Model: m.String(), Params: m.NumParams(), Rows: res.Counter("batch", "rows"),
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
}
