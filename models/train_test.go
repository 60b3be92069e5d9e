package models_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/muonml/muon/models"
	"gonum.org/v1/gonum/mat"
)

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

// blobs returns n rows of dim features drawn from classes Gaussian blobs
// of unit deviation whose centres lie 8 apart, with their classes.
func blobs(n, classes, dim int, seed uint64) (*mat.Dense, models.Targets) {
	rng := seeded(seed)
	centres := make([][]float64, classes)
	for c := range centres {
		centres[c] = make([]float64, dim)
		centres[c][c%dim] = 8 * float64(1+c/dim)
	}
	x := mat.NewDense(n, dim, nil)
	y := make([]int, n)
	for i := range y {
		c := rng.IntN(classes)
		y[i] = c
		for j := 0; j < dim; j++ {
			x.Set(i, j, centres[c][j]+rng.NormFloat64())
		}
	}
	return x, models.Targets{Classes: y}
}

// linearData returns n rows of standard normal features and targets
// x·w + b + noise·N(0, 1).
func linearData(n int, w []float64, b, noise float64, seed uint64) (*mat.Dense, models.Targets) {
	rng := seeded(seed)
	x := mat.NewDense(n, len(w), nil)
	y := make([]float64, n)
	for i := range y {
		y[i] = b + noise*rng.NormFloat64()
		for j, wj := range w {
			v := rng.NormFloat64()
			x.Set(i, j, v)
			y[i] += wj * v
		}
	}
	return x, models.Targets{Values: y}
}

// bars returns n h×w images, each with one bright horizontal (class 0) or
// vertical (class 1) bar at a random position on a noisy background.
func bars(n, h, w int, seed uint64) (*mat.Dense, models.Targets) {
	rng := seeded(seed)
	x := mat.NewDense(n, h*w, nil)
	y := make([]int, n)
	for i := range y {
		row := x.RawRowView(i)
		for j := range row {
			row[j] = 0.3 * rng.Float64()
		}
		y[i] = rng.IntN(2)
		if y[i] == 0 {
			r := rng.IntN(h)
			for c := 0; c < w; c++ {
				row[r*w+c] += 1
			}
		} else {
			c := rng.IntN(w)
			for r := 0; r < h; r++ {
				row[r*w+c] += 1
			}
		}
	}
	return x, models.Targets{Classes: y}
}

func mustNew(t testing.TB, d models.Desc, seed uint64) *models.Model {
	t.Helper()
	m, err := models.New(d, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// train runs epochs of Adam from seed and returns the model.
func train(t testing.TB, d models.Desc, x *mat.Dense, y models.Targets, seed uint64, epochs int) *models.Model {
	t.Helper()
	m := mustNew(t, d, seed)
	o := newOptimizer(t, models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.01, WeightDecay: 1e-4}, m.NumParams())
	tr := models.NewTrainer(m, o)
	rng := seeded(seed)
	for range epochs {
		tr.Epoch(x, y, 32, rng)
	}
	return m
}

func TestDeterminism(t *testing.T) {
	x, y := blobs(300, 3, 16, 1)
	descs := []models.Desc{
		{Kind: models.Softmax, Inputs: 16, Classes: 3},
		{Kind: models.MLP, Inputs: 16, Hidden: []int{20, 10}, Activation: models.Tanh, Head: models.SoftmaxHead, Classes: 3},
		// Big enough (32 images × 256 pixels per product) for gonum to
		// multiply in parallel.
		{Kind: models.CNN, Width: 4, Height: 4, Filters: []int{70}, Classes: 3},
	}
	for _, d := range descs {
		t.Run(string(d.Kind), func(t *testing.T) {
			a := train(t, d, x, y, 1, 2)
			b := train(t, d, x, y, 1, 2)
			if !slices.Equal(a.Params(), b.Params()) {
				t.Error("two runs with seed 1 differ")
			}
			c := train(t, d, x, y, 2, 2)
			if slices.Equal(a.Params(), c.Params()) {
				t.Error("runs with seeds 1 and 2 are equal")
			}
		})
	}
	a, b := mustNew(t, descs[1], 5), mustNew(t, descs[1], 5)
	if !slices.Equal(a.Params(), b.Params()) {
		t.Error("New with one seed twice differs")
	}
	if c := mustNew(t, descs[1], 6); slices.Equal(a.Params(), c.Params()) {
		t.Error("New with seeds 5 and 6 is equal")
	}
}

func TestLearnsBlobs(t *testing.T) {
	x, y := blobs(600, 4, 6, 1)
	xt, yt := blobs(400, 4, 6, 2)
	tests := []struct {
		name string
		d    models.Desc
		o    models.OptimizerDesc
	}{
		{"softmax sgd", models.Desc{Kind: models.Softmax, Inputs: 6, Classes: 4},
			models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.05, Momentum: 0.9}},
		{"mlp relu adam", models.Desc{Kind: models.MLP, Inputs: 6, Hidden: []int{16}, Head: models.SoftmaxHead, Classes: 4},
			models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.01}},
		{"mlp tanh sgd", models.Desc{Kind: models.MLP, Inputs: 6, Hidden: []int{16, 8}, Activation: models.Tanh, Head: models.SoftmaxHead, Classes: 4},
			models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.05, Momentum: 0.9, Schedule: models.Schedule{Kind: models.StepDecay, Every: 3, Gamma: 0.5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustNew(t, tt.d, 1)
			tr := models.NewTrainer(m, newOptimizer(t, tt.o, m.NumParams()))
			rng := seeded(1)
			first, _ := tr.Epoch(x, y, 32, rng)
			var last float64
			for range 9 {
				last, _ = tr.Epoch(x, y, 32, rng)
			}
			met := models.Evaluate(m, xt, yt)
			if met.Accuracy < 0.97 || met.BalancedAccuracy < 0.97 || !(last < first) {
				t.Errorf("accuracy %.3f, balanced %.3f, loss %.4f → %.4f; want ≥ 0.97 and falling", met.Accuracy, met.BalancedAccuracy, first, last)
			}
		})
	}
}

func TestLearnsBars(t *testing.T) {
	x, y := bars(400, 8, 8, 1)
	xt, yt := bars(200, 8, 8, 2)
	m := mustNew(t, models.Desc{Kind: models.CNN, Width: 8, Height: 8, Filters: []int{4}, Hidden: []int{8}, Classes: 2}, 1)
	tr := models.NewTrainer(m, newOptimizer(t, models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.01}, m.NumParams()))
	rng := seeded(1)
	for range 10 {
		tr.Epoch(x, y, 32, rng)
	}
	if met := models.Evaluate(m, xt, yt); met.Accuracy < 0.95 {
		t.Errorf("accuracy %.3f, want ≥ 0.95 (confusion %v)", met.Accuracy, met.Confusion)
	}
}

func TestLinearRegressionRecoversCoefficients(t *testing.T) {
	wTrue := []float64{1.5, -2, 0, 0.25}
	const bTrue = -0.75
	x, y := linearData(2000, wTrue, bTrue, 0.1, 1)
	m := mustNew(t, models.Desc{Kind: models.Linear, Inputs: 4}, 1)
	tr := models.NewTrainer(m, newOptimizer(t, models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.02, Momentum: 0.5,
		Schedule: models.Schedule{Kind: models.StepDecay, Every: 5, Gamma: 0.3}}, m.NumParams()))
	rng := seeded(1)
	for range 20 {
		tr.Epoch(x, y, 32, rng)
	}
	want := append(slices.Clone(wTrue), bTrue)
	for i, w := range want {
		// 2000 rows with noise 0.1 pin each coefficient to about 0.1/√2000 ≈ 0.002.
		if got := m.Params()[i]; math.Abs(got-w) > 0.01 {
			t.Errorf("coefficients %v, want %v", m.Params(), want)
			break
		}
	}
	met := models.Evaluate(m, x, y)
	if math.Abs(met.RMSE-0.1) > 0.01 || math.Abs(met.MAE-0.1*math.Sqrt(2/math.Pi)) > 0.01 {
		t.Errorf("RMSE %v, MAE %v, want about 0.1 and 0.08", met.RMSE, met.MAE)
	}
	if math.Abs(met.Loss-met.RMSE*met.RMSE/2) > 1e-12 {
		t.Errorf("loss %v, want RMSE²/2 = %v", met.Loss, met.RMSE*met.RMSE/2)
	}
}

func TestMLPRegression(t *testing.T) {
	// Two targets: sin of the first feature and the product of two.
	rng := seeded(3)
	const n = 1000
	x := mat.NewDense(n, 2, nil)
	y := make([]float64, 2*n)
	for i := 0; i < n; i++ {
		a, b := 2*rng.Float64()-1, 2*rng.Float64()-1
		x.Set(i, 0, a)
		x.Set(i, 1, b)
		y[2*i], y[2*i+1] = math.Sin(3*a), a*b
	}
	m := mustNew(t, models.Desc{Kind: models.MLP, Inputs: 2, Hidden: []int{32, 32}, Activation: models.Tanh, Head: models.SquaredHead, Outputs: 2}, 1)
	tr := models.NewTrainer(m, newOptimizer(t, models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.01}, m.NumParams()))
	for range 40 {
		tr.Epoch(x, models.Targets{Values: y}, 32, rng)
	}
	if met := models.Evaluate(m, x, models.Targets{Values: y}); met.RMSE > 0.05 {
		t.Errorf("RMSE %v, want ≤ 0.05", met.RMSE)
	}
}

func TestEpochLeavesInputsAlone(t *testing.T) {
	x, y := blobs(50, 3, 4, 1)
	x0, y0 := mat.DenseCopyOf(x), slices.Clone(y.Classes)
	m := mustNew(t, models.Desc{Kind: models.Softmax, Inputs: 4, Classes: 3}, 1)
	models.Fit(m, newOptimizer(t, models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.1}, m.NumParams()), x, y, 8, seeded(1))
	if !mat.Equal(x, x0) || !slices.Equal(y.Classes, y0) {
		t.Error("Fit changed its inputs")
	}
}

func TestEpochOrder(t *testing.T) {
	x, y := blobs(50, 3, 4, 1)
	fit := func(x *mat.Dense, rng *rand.Rand, bs int) []float64 {
		m := mustNew(t, models.Desc{Kind: models.Softmax, Inputs: 4, Classes: 3}, 1)
		loss, n := models.Fit(m, newOptimizer(t, models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.1}, m.NumParams()), x, y, bs, rng)
		if n != 50 || !(loss > 0) {
			t.Fatalf("Fit = %v, %d", loss, n)
		}
		return m.Params()
	}
	// Without a source the rows go in order, which Steps over the same
	// batches reproduce.
	m := mustNew(t, models.Desc{Kind: models.Softmax, Inputs: 4, Classes: 3}, 1)
	tr := models.NewTrainer(m, newOptimizer(t, models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.1}, m.NumParams()))
	for start := 0; start < 50; start += 16 {
		end := min(start+16, 50)
		tr.Step(x.Slice(start, end, 0, 4).(*mat.Dense), models.Targets{Classes: y.Classes[start:end]})
	}
	if got := fit(x, nil, 16); !slices.Equal(got, m.Params()) {
		t.Error("unshuffled epoch differs from steps over the batches in order")
	}
	if a, b := fit(x, seeded(1), 16), fit(x, nil, 16); slices.Equal(a, b) {
		t.Error("shuffled and unshuffled epochs agree")
	}
	// A matrix view with a stride wider than its rows trains the same.
	wide := mat.NewDense(50, 6, nil)
	wide.Slice(0, 50, 0, 4).(*mat.Dense).Copy(x)
	if a, b := fit(x, seeded(1), 7), fit(wide.Slice(0, 50, 0, 4).(*mat.Dense), seeded(1), 7); !slices.Equal(a, b) {
		t.Error("strided view trains differently")
	}
	// A batch larger than the data is one step.
	if a, b := fit(x, nil, 50), fit(x, nil, 1000); !slices.Equal(a, b) {
		t.Error("batch size above the row count differs from one full batch")
	}
}

func TestPredict(t *testing.T) {
	rng := seeded(1)
	for _, tt := range []struct {
		d models.Desc
		n int // more than the rows of one forward pass
	}{
		{models.Desc{Kind: models.MLP, Inputs: 5, Hidden: []int{7}, Head: models.SoftmaxHead, Classes: 3}, 600},
		{models.Desc{Kind: models.CNN, Width: 4, Height: 4, Filters: []int{2}, Head: models.SquaredHead, Outputs: 2}, 600},
		// Big images go through in passes of fewer rows.
		{models.Desc{Kind: models.CNN, Width: 64, Height: 48, Filters: []int{16}, Classes: 2}, 40},
	} {
		m := mustNew(t, tt.d, 1)
		n := tt.n
		x := mat.NewDense(n, m.Inputs(), nil)
		for i := 0; i < n; i++ {
			for j := 0; j < m.Inputs(); j++ {
				x.Set(i, j, rng.NormFloat64())
			}
		}
		all := models.Predict(m, x)
		if r, c := all.Dims(); r != n || c != m.Outputs() {
			t.Fatalf("%s: Predict is %d×%d", m, r, c)
		}
		p := models.NewPredictor(m)
		var one mat.Dense
		for i := 0; i < n; i += 1 + n/7 {
			one.Reset()
			p.Predict(&one, x.Slice(i, i+1, 0, m.Inputs()).(*mat.Dense))
			for j := 0; j < m.Outputs(); j++ {
				if math.Abs(one.At(0, j)-all.At(i, j)) > 1e-12 {
					t.Fatalf("%s: row %d alone predicts %v, in a batch %v", m, i, one.RawRowView(0), all.RawRowView(i))
				}
			}
		}
		if m.Head() == models.SoftmaxHead {
			classes := p.Classify(nil, x)
			for i := 0; i < n; i++ {
				row := all.RawRowView(i)
				var sum float64
				for _, v := range row {
					sum += v
				}
				if math.Abs(sum-1) > 1e-12 {
					t.Fatalf("probabilities of row %d sum to %v", i, sum)
				}
				if classes[i] != slices.Index(row, slices.Max(row)) {
					t.Fatalf("row %d: class %d for probabilities %v", i, classes[i], row)
				}
			}
		}
	}
}

func TestPredictPanics(t *testing.T) {
	m := mustNew(t, models.Desc{Kind: models.Linear, Inputs: 3}, 1)
	tests := []struct {
		name string
		f    func()
		want string
	}{
		{"features", func() { models.Predict(m, mat.NewDense(2, 4, nil)) }, "models: shape mismatch"},
		{"destination", func() { models.NewPredictor(m).Predict(mat.NewDense(3, 1, nil), mat.NewDense(2, 3, nil)) }, "models: shape mismatch"},
		{"classify", func() { models.NewPredictor(m).Classify(nil, mat.NewDense(2, 3, nil)) }, "models: Classify needs a softmax head"},
		{"targets", func() {
			models.Fit(m, newOptimizer(t, models.OptimizerDesc{Kind: models.SGD, LearningRate: 1}, 4), mat.NewDense(2, 3, nil), models.Targets{Values: []float64{1}}, 1, nil)
		}, "models: 1 target values"},
		{"batch", func() {
			models.NewTrainer(m, newOptimizer(t, models.OptimizerDesc{Kind: models.SGD, LearningRate: 1}, 4)).Epoch(mat.NewDense(2, 3, nil), models.Targets{Values: []float64{1, 2}}, 0, nil)
		}, "models: batch size 0"},
		{"optimizer", func() {
			models.NewTrainer(m, newOptimizer(t, models.OptimizerDesc{Kind: models.Adam, LearningRate: 1}, 5))
		}, "models: optimizer for 5 parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.HasPrefix(s, tt.want) {
					t.Errorf("panic %v, want %q", r, tt.want)
				}
			}()
			tt.f()
		})
	}
}

func TestCheckData(t *testing.T) {
	clf := mustNew(t, models.Desc{Kind: models.Softmax, Inputs: 2, Classes: 3}, 1)
	reg := mustNew(t, models.Desc{Kind: models.Linear, Inputs: 2, Outputs: 2}, 1)
	x := mat.NewDense(2, 2, []float64{1, 2, 3, 4})
	tests := []struct {
		name string
		m    *models.Model
		x    *mat.Dense
		y    models.Targets
		want string
	}{
		{"classes", clf, x, models.Targets{Classes: []int{0, 2}}, ""},
		{"values", reg, x, models.Targets{Values: []float64{1, 2, 3, 4}}, ""},
		{"empty", clf, &mat.Dense{}, models.Targets{}, ""},
		{"columns", clf, mat.NewDense(2, 3, nil), models.Targets{Classes: []int{0, 0}}, "3 features per row"},
		{"NaN feature", clf, mat.NewDense(1, 2, []float64{0, math.NaN()}), models.Targets{Classes: []int{0}}, "feature 1 of row 0 is NaN"},
		{"few classes", clf, x, models.Targets{Classes: []int{0}}, "one class per row"},
		{"values for classifier", clf, x, models.Targets{Classes: []int{0, 1}, Values: []float64{1, 2}}, "one class per row"},
		{"class range", clf, x, models.Targets{Classes: []int{0, 3}}, "class 3 of row 1"},
		{"negative class", clf, x, models.Targets{Classes: []int{-1, 0}}, "class -1 of row 0"},
		{"few values", reg, x, models.Targets{Values: []float64{1, 2}}, "needs 2 values per row"},
		{"Inf target", reg, x, models.Targets{Values: []float64{1, 2, 3, math.Inf(1)}}, "target 1 of row 1 is +Inf"},
	}
	for _, tt := range tests {
		err := tt.m.CheckData(tt.x, tt.y)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, models.ErrData) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: CheckData = %v, want ErrData containing %q", tt.name, err, tt.want)
		}
	}
}

func TestEmptyData(t *testing.T) {
	m := mustNew(t, models.Desc{Kind: models.Softmax, Inputs: 2, Classes: 3}, 1)
	o := newOptimizer(t, models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.1, Momentum: 0.5}, m.NumParams())
	before := slices.Clone(m.Params())
	if loss, n := models.Fit(m, o, &mat.Dense{}, models.Targets{}, 8, seeded(1)); loss != 0 || n != 0 {
		t.Errorf("Fit on nothing = %v, %d", loss, n)
	}
	if met := models.Evaluate(m, &mat.Dense{}, models.Targets{}); met.N != 0 || met.Loss != 0 || met.Accuracy != 0 {
		t.Errorf("Evaluate on nothing = %+v", met)
	}
	if !slices.Equal(before, m.Params()) || o.Steps() != 0 || o.Epochs() != 1 {
		t.Error("an empty epoch changed the model or stepped")
	}
}

func TestMetrics(t *testing.T) {
	truth := []int{0, 0, 0, 0, 1, 1, 2}
	pred := []int{0, 0, 0, 1, 1, 0, 0}
	c := models.Confusion(4, truth, pred)
	want := [][]int{{3, 1, 0, 0}, {1, 1, 0, 0}, {1, 0, 0, 0}, {0, 0, 0, 0}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Confusion = %v, want %v", c, want)
	}
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"accuracy", models.Accuracy(c), 4.0 / 7},
		// Class 3 never occurs, so it does not count: (3/4 + 1/2 + 0) / 3.
		{"balanced accuracy", models.BalancedAccuracy(c), 1.25 / 3},
		{"accuracy of nothing", models.Accuracy(models.Confusion(2, nil, nil)), 0},
		{"balanced accuracy of nothing", models.BalancedAccuracy(nil), 0},
		{"perfect", models.BalancedAccuracy([][]int{{5, 0}, {0, 1}}), 1},
	}
	for _, tt := range tests {
		if math.Abs(tt.got-tt.want) > 1e-15 {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	// Evaluate agrees with the functions.
	x, y := blobs(100, 3, 2, 1)
	m := mustNew(t, models.Desc{Kind: models.Softmax, Inputs: 2, Classes: 3}, 1)
	models.Fit(m, newOptimizer(t, models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.01}, m.NumParams()), x, y, 10, seeded(1))
	met := models.Evaluate(m, x, y)
	conf := models.Confusion(3, y.Classes, models.NewPredictor(m).Classify(nil, x))
	if !reflect.DeepEqual(met.Confusion, conf) || met.Accuracy != models.Accuracy(conf) || met.BalancedAccuracy != models.BalancedAccuracy(conf) || met.N != 100 {
		t.Errorf("Evaluate = %+v, confusion %v", met, conf)
	}
}
