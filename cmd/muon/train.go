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
	Model      string         `json:"model"`
	Params     int            `json:"params"`
	Rows       int64          `json:"rows"`
	Epochs     int            `json:"epochs"`
	BestEpoch  int            `json:"best_epoch,omitempty"`
	TrainLoss  float64        `json:"train_loss"`
	Validation models.Metrics `json:"validation"`
	ModelFile  string         `json:"model_file"`
	EpochsFile string         `json:"epochs_file"`
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
	return &trainSummary{Model: m.String(), Params: m.NumParams(), Rows: res.Counter("batch", "rows"),
		Epochs: tm.Epochs, BestEpoch: tm.BestEpoch, TrainLoss: tm.TrainLoss, Validation: tm.Validation,
		ModelFile: pipelines.ModelFile(spec), EpochsFile: pipelines.EpochsFile(spec)}, nil
}

func printTraining(w io.Writer, t *trainSummary) {
	fmt.Fprintf(w, "  model          %s, %d parameters\n", t.Model, t.Params)
	best := ""
	if t.BestEpoch > 0 {
		best = fmt.Sprintf(", kept epoch %d (early stopping)", t.BestEpoch)
	}
	fmt.Fprintf(w, "  training       %d epochs on %d rows (train and validation), last train loss %.4f%s\n", t.Epochs, t.Rows, t.TrainLoss, best)
	v := t.Validation
	if v.RMSE > 0 || v.MAE > 0 {
		fmt.Fprintf(w, "  validation     %d rows: RMSE %.4f, MAE %.4f\n", v.N, v.RMSE, v.MAE)
	} else {
		fmt.Fprintf(w, "  validation     %d rows: accuracy %.4f, balanced accuracy %.4f, loss %.4f\n", v.N, v.Accuracy, v.BalancedAccuracy, v.Loss)
	}
	fmt.Fprintf(w, "  model file     %s (epochs: %s)\n", t.ModelFile, t.EpochsFile)
}
