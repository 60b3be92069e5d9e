package models_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/muonml/muon/models"
	"gonum.org/v1/gonum/mat"
)

// optdigitsDir holds the UCI optdigits files (see shared/datasets/README.md).
var optdigitsDir = filepath.Join("..", "..", "shared", "datasets", "optdigits")

// loadOptdigits reads an optdigits file: a header line, then rows of 64
// pixel counts 0…16 and the digit. Features are scaled to [0, 1].
func loadOptdigits(tb testing.TB, name string) (*mat.Dense, models.Targets) {
	tb.Helper()
	f, err := os.Open(filepath.Join(optdigitsDir, name))
	if err != nil {
		tb.Skipf("optdigits not found (see shared/datasets/README.md): %v", err)
	}
	defer f.Close()
	var values []float64
	var classes []int
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for line := 2; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		fields := strings.Split(text, ",")
		if len(fields) != 65 {
			tb.Fatalf("%s:%d: %d fields, want 65", name, line, len(fields))
		}
		for i, s := range fields {
			v, err := strconv.Atoi(s)
			if err != nil {
				tb.Fatalf("%s:%d: %v", name, line, err)
			}
			if i == 64 {
				classes = append(classes, v)
			} else {
				values = append(values, float64(v)/16)
			}
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return mat.NewDense(len(classes), 64, values), models.Targets{Classes: classes}
}

// TestOptdigitsSoftmax trains softmax regression on the UCI digits (3,823
// training rows by 30 writers) and tests it on the 1,797 rows of 13 other
// writers.
func TestOptdigitsSoftmax(t *testing.T) {
	x, y := loadOptdigits(t, "optdigits.tra")
	xt, yt := loadOptdigits(t, "optdigits.tes")
	if r, _ := x.Dims(); r != 3823 {
		t.Fatalf("%d training rows, want 3823", r)
	}
	m := mustNew(t, models.Desc{Kind: models.Softmax, Inputs: 64, Classes: 10}, 1)
	if err := m.CheckData(x, y); err != nil {
		t.Fatal(err)
	}
	o := newOptimizer(t, models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.1, Momentum: 0.9, WeightDecay: 1e-4}, m.NumParams())
	tr := models.NewTrainer(m, o)
	rng := seeded(1)
	for range 5 {
		tr.Epoch(x, y, 32, rng)
	}
	met := models.Evaluate(m, xt, yt)
	if met.Accuracy < 0.90 {
		t.Errorf("test accuracy %.4f, want ≥ 0.90", met.Accuracy)
	}
	t.Logf("softmax, 5 epochs: test accuracy %.4f, balanced %.4f, loss %.4f", met.Accuracy, met.BalancedAccuracy, met.Loss)
}

// TestOptdigitsSurvey reports test accuracies of several models; it is for
// people comparing settings, and runs only when MUON_OPTDIGITS_SURVEY is set.
func TestOptdigitsSurvey(t *testing.T) {
	if os.Getenv("MUON_OPTDIGITS_SURVEY") == "" {
		t.Skip("set MUON_OPTDIGITS_SURVEY=1 to run")
	}
	x, y := loadOptdigits(t, "optdigits.tra")
	xt, yt := loadOptdigits(t, "optdigits.tes")
	tests := []struct {
		d      models.Desc
		o      models.OptimizerDesc
		epochs int
	}{
		{models.Desc{Kind: models.Softmax, Inputs: 64, Classes: 10},
			models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.1, Momentum: 0.9, WeightDecay: 1e-4}, 20},
		{models.Desc{Kind: models.Softmax, Inputs: 64, Classes: 10},
			models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.01, WeightDecay: 1e-4, Schedule: models.Schedule{Kind: models.Cosine, Length: 20}}, 20},
		{models.Desc{Kind: models.MLP, Inputs: 64, Hidden: []int{100}, Head: models.SoftmaxHead, Classes: 10},
			models.OptimizerDesc{Kind: models.Adam, LearningRate: 1e-3, WeightDecay: 1e-4}, 30},
		{models.Desc{Kind: models.MLP, Inputs: 64, Hidden: []int{100}, Activation: models.Tanh, Head: models.SoftmaxHead, Classes: 10},
			models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4, Schedule: models.Schedule{Kind: models.Cosine, Length: 30}}, 30},
		{models.Desc{Kind: models.CNN, Width: 8, Height: 8, Filters: []int{16}, Hidden: []int{64}, Classes: 10},
			models.OptimizerDesc{Kind: models.Adam, LearningRate: 2e-3, WeightDecay: 1e-4, Schedule: models.Schedule{Kind: models.Cosine, Length: 20}}, 20},
	}
	for _, tt := range tests {
		m := mustNew(t, tt.d, 1)
		tr := models.NewTrainer(m, newOptimizer(t, tt.o, m.NumParams()))
		rng := seeded(1)
		var loss float64
		for range tt.epochs {
			loss, _ = tr.Epoch(x, y, 32, rng)
		}
		met := models.Evaluate(m, xt, yt)
		t.Logf("%s, %s lr=%g, %d epochs: train loss %.4f, test accuracy %.4f, balanced %.4f",
			m, tt.o.Kind, tt.o.LearningRate, tt.epochs, loss, met.Accuracy, met.BalancedAccuracy)
	}
}
