package models

import "fmt"

// Metrics summarizes a model's quality on labelled data. The fields that
// do not apply to the model's head are zero.
type Metrics struct {
	// N is the number of rows.
	N int `json:"n"`
	// Loss is the mean loss the model is trained on (cross-entropy, or
	// ½ squared error summed over outputs), without weight decay.
	Loss float64 `json:"loss"`
	// Accuracy is the fraction of rows classified correctly.
	Accuracy float64 `json:"accuracy"`
	// BalancedAccuracy is the mean recall over the classes that occur.
	BalancedAccuracy float64 `json:"balanced_accuracy"`
	// Confusion[t][p] counts rows of class t predicted as p.
	Confusion [][]int `json:"confusion,omitempty"`
	// RMSE and MAE are the root mean squared and mean absolute errors over
	// all outputs of all rows.
	RMSE float64 `json:"rmse"`
	MAE  float64 `json:"mae"`
}

// Confusion returns the classes × classes confusion matrix of predicted
// against true classes: [t][p] counts rows of class t predicted as p. It
// panics if the slices differ in length or hold a class out of range.
func Confusion(classes int, truth, pred []int) [][]int {
	if len(truth) != len(pred) {
		panic(fmt.Sprintf("models: %d true classes, %d predicted", len(truth), len(pred)))
	}
	c := make([][]int, classes)
	for i := range c {
		c[i] = make([]int, classes)
	}
	for i, t := range truth {
		p := pred[i]
		if t < 0 || t >= classes || p < 0 || p >= classes {
			panic(fmt.Sprintf("models: row %d: class %d predicted as %d, want 0…%d", i, t, p, classes-1))
		}
		c[t][p]++
	}
	return c
}

// Accuracy returns the fraction of a confusion matrix on its diagonal, or
// 0 for no rows.
func Accuracy(confusion [][]int) float64 {
	var right, all int
	for t, row := range confusion {
		for p, n := range row {
			all += n
			if p == t {
				right += n
			}
		}
	}
	if all == 0 {
		return 0
	}
	return float64(right) / float64(all)
}

// BalancedAccuracy returns the mean over the true classes that occur of
// the fraction of their rows classified correctly (the macro-averaged
// recall, as scikit-learn's balanced_accuracy_score), or 0 for no rows.
func BalancedAccuracy(confusion [][]int) float64 {
	var sum float64
	var present int
	for t, row := range confusion {
		var all int
		for _, n := range row {
			all += n
		}
		if all == 0 {
			continue
		}
		present++
		sum += float64(row[t]) / float64(all)
	}
	if present == 0 {
		return 0
	}
	return sum / float64(present)
}
