package models_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/muonml/muon/models"
	"gonum.org/v1/gonum/mat"
)

func TestScheduleFactor(t *testing.T) {
	tests := []struct {
		name string
		s    models.Schedule
		t    int64
		want float64
	}{
		{"zero value", models.Schedule{}, 1000, 1},
		{"constant", models.Schedule{Kind: models.Constant}, 7, 1},
		{"step at 0", models.Schedule{Kind: models.StepDecay, Every: 3, Gamma: 0.5}, 0, 1},
		{"step before first period", models.Schedule{Kind: models.StepDecay, Every: 3, Gamma: 0.5}, 2, 1},
		{"step at first period", models.Schedule{Kind: models.StepDecay, Every: 3, Gamma: 0.5}, 3, 0.5},
		{"step after three periods", models.Schedule{Kind: models.StepDecay, Every: 3, Gamma: 0.5}, 10, 0.125},
		{"step gamma 1", models.Schedule{Kind: models.StepDecay, Every: 1, Gamma: 1}, 10, 1},
		{"step negative t", models.Schedule{Kind: models.StepDecay, Every: 1, Gamma: 0.5}, -3, 1},
		{"cosine start", models.Schedule{Kind: models.Cosine, Length: 10}, 0, 1},
		{"cosine middle", models.Schedule{Kind: models.Cosine, Length: 10}, 5, 0.5},
		{"cosine quarter", models.Schedule{Kind: models.Cosine, Length: 12}, 3, 0.5 + 0.5*math.Sqrt2/2},
		{"cosine end", models.Schedule{Kind: models.Cosine, Length: 10}, 10, 0},
		{"cosine past end", models.Schedule{Kind: models.Cosine, Length: 10, Floor: 0.1}, 50, 0.1},
		{"cosine middle with floor", models.Schedule{Kind: models.Cosine, Length: 10, Floor: 0.2}, 5, 0.6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := tt.s.Factor(tt.t); math.Abs(got-tt.want) > 1e-15 {
				t.Errorf("Factor(%d) = %v, want %v", tt.t, got, tt.want)
			}
		})
	}
}

func TestScheduleValidate(t *testing.T) {
	tests := []struct {
		s    models.Schedule
		want string
	}{
		{models.Schedule{Kind: "linear"}, `unknown schedule "linear"`},
		{models.Schedule{Unit: "batch"}, `schedule unit "batch"`},
		{models.Schedule{Gamma: 0.5}, "constant schedule with"},
		{models.Schedule{Kind: models.StepDecay, Gamma: 0.5}, "every = 0"},
		{models.Schedule{Kind: models.StepDecay, Every: 2}, "gamma = 0"},
		{models.Schedule{Kind: models.StepDecay, Every: 2, Gamma: 1.5}, "gamma = 1.5"},
		{models.Schedule{Kind: models.StepDecay, Every: 2, Gamma: math.NaN()}, "gamma = NaN"},
		{models.Schedule{Kind: models.Cosine}, "length = 0"},
		{models.Schedule{Kind: models.Cosine, Length: 3, Floor: -0.1}, "floor = -0.1"},
		{models.Schedule{Kind: models.Cosine, Length: 3, Every: 1}, "cosine schedule with every"},
	}
	for _, tt := range tests {
		err := tt.s.Validate()
		if !errors.Is(err, models.ErrOptimizer) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want ErrOptimizer containing %q", tt.s, err, tt.want)
		}
	}
}

func TestOptimizerValidate(t *testing.T) {
	tests := []struct {
		d    models.OptimizerDesc
		want string
	}{
		{models.OptimizerDesc{LearningRate: 0.1}, "kind is required"},
		{models.OptimizerDesc{Kind: "rmsprop", LearningRate: 0.1}, `unknown kind "rmsprop"`},
		{models.OptimizerDesc{Kind: models.SGD}, "learning rate = 0"},
		{models.OptimizerDesc{Kind: models.SGD, LearningRate: math.Inf(1)}, "learning rate = +Inf"},
		{models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.1, Momentum: 1}, "momentum = 1"},
		{models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.1, Nesterov: true}, "nesterov needs momentum"},
		{models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.1, Beta1: 0.5}, "are for adam"},
		{models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.1, Momentum: 0.5}, "are for sgd"},
		{models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.1, Beta2: 1}, "beta2 = 1"},
		{models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.1, Epsilon: -1}, "epsilon = -1"},
		{models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.1, WeightDecay: -1}, "weight decay = -1"},
		{models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.1, Schedule: models.Schedule{Kind: models.Cosine}}, "length = 0"},
	}
	for _, tt := range tests {
		err := tt.d.Validate()
		if !errors.Is(err, models.ErrOptimizer) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want ErrOptimizer containing %q", tt.d, err, tt.want)
		}
		if _, err := models.NewOptimizer(tt.d, 3); !errors.Is(err, models.ErrOptimizer) {
			t.Errorf("NewOptimizer(%+v) error = %v, want ErrOptimizer", tt.d, err)
		}
	}
}

func TestOptimizerDescJSON(t *testing.T) {
	d := models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4,
		Schedule: models.Schedule{Kind: models.Cosine, Unit: models.PerStep, Length: 1000, Floor: 0.01}}
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back models.OptimizerDesc
	if err := json.Unmarshal(data, &back); err != nil || !reflect.DeepEqual(back, d) {
		t.Fatalf("round trip of %+v = %+v, %v", d, back, err)
	}
	o, err := models.NewOptimizer(models.OptimizerDesc{Kind: models.Adam, LearningRate: 1e-3}, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := models.OptimizerDesc{Kind: models.Adam, LearningRate: 1e-3, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8,
		Schedule: models.Schedule{Kind: models.Constant, Unit: models.PerEpoch}}
	if got := o.Desc(); got != want {
		t.Errorf("Desc() = %+v, want %+v", got, want)
	}
	data, _ = json.Marshal(models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.1})
	if want := `{"kind":"sgd","learning_rate":0.1}`; string(data) != want {
		t.Errorf("JSON = %s, want %s", data, want)
	}
}

// oneWeight returns a linear model y = w·x + b with w = 1, b = 1.
func oneWeight(t *testing.T) *models.Model {
	t.Helper()
	m, err := models.FromParams(models.Desc{Kind: models.Linear, Inputs: 1}, []float64{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newOptimizer(t testing.TB, d models.OptimizerDesc, n int) *models.Optimizer {
	t.Helper()
	o, err := models.NewOptimizer(d, n)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestUpdateRules checks the arithmetic of each rule on a weight and a
// bias with fixed gradients, against values worked out by hand.
func TestUpdateRules(t *testing.T) {
	const lr = 0.1
	g := []float64{0.5, -2}
	tests := []struct {
		name string
		d    models.OptimizerDesc
		want [][]float64 // parameters after each of the steps
	}{
		{"sgd", models.OptimizerDesc{Kind: models.SGD, LearningRate: lr},
			[][]float64{{0.95, 1.2}, {0.9, 1.4}}},
		{"sgd weight decay", models.OptimizerDesc{Kind: models.SGD, LearningRate: lr, WeightDecay: 0.5},
			// w ← w − 0.1·(0.5 + 0.5w); the bias is not decayed.
			[][]float64{{0.9, 1.2}, {0.805, 1.4}}},
		{"momentum", models.OptimizerDesc{Kind: models.SGD, LearningRate: lr, Momentum: 0.5},
			// v = 0.5, 0.75 (weight); −2, −3 (bias).
			[][]float64{{0.95, 1.2}, {0.875, 1.5}}},
		{"nesterov", models.OptimizerDesc{Kind: models.SGD, LearningRate: lr, Momentum: 0.5, Nesterov: true},
			// step uses g + μv: 0.75, 0.875 (weight); −3, −3.5 (bias).
			[][]float64{{0.925, 1.3}, {0.8375, 1.65}}},
		{"adam", models.OptimizerDesc{Kind: models.Adam, LearningRate: lr, Epsilon: 1e-300},
			// With a constant gradient m̂ = g and v̂ = g², so each step is lr·sign(g).
			[][]float64{{0.9, 1.1}, {0.8, 1.2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := oneWeight(t)
			o := newOptimizer(t, tt.d, 2)
			for i, want := range tt.want {
				o.Update(m, g)
				for j, w := range want {
					if got := m.Params()[j]; math.Abs(got-w) > 1e-12 {
						t.Errorf("step %d: params %v, want %v", i+1, m.Params(), want)
						break
					}
				}
			}
			if o.Steps() != int64(len(tt.want)) {
				t.Errorf("Steps() = %d, want %d", o.Steps(), len(tt.want))
			}
			if g[0] != 0.5 || g[1] != -2 {
				t.Errorf("Update changed the gradient to %v", g)
			}
		})
	}
}

func TestWeightDecayShrinksWeights(t *testing.T) {
	for _, kind := range []models.OptimizerKind{models.SGD, models.Adam} {
		t.Run(string(kind), func(t *testing.T) {
			m, err := models.New(models.Desc{Kind: models.MLP, Inputs: 4, Hidden: []int{8}, Head: models.SquaredHead}, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, tn := range m.Tensors() {
				if tn.Bias {
					for i := range tn.Values {
						tn.Values[i] = 0.5
					}
				}
			}
			before := m.Clone()
			o := newOptimizer(t, models.OptimizerDesc{Kind: kind, LearningRate: 0.01, WeightDecay: 0.1}, m.NumParams())
			zero := make([]float64, m.NumParams())
			for range 50 {
				o.Update(m, zero)
			}
			for i, tn := range m.Tensors() {
				old := before.Tensors()[i]
				norm, oldNorm := mat.Norm(mat.NewVecDense(len(tn.Values), slices.Clone(tn.Values)), 2), mat.Norm(mat.NewVecDense(len(old.Values), old.Values), 2)
				if tn.Bias {
					if !slices.Equal(tn.Values, old.Values) {
						t.Errorf("%s changed under weight decay alone", tn.Name)
					}
					continue
				}
				if !(norm < 0.99*oldNorm) {
					t.Errorf("%s: norm %v → %v, want it to shrink", tn.Name, oldNorm, norm)
				}
				if kind == models.SGD {
					// Plain SGD with zero gradient scales weights by (1 − ηλ) per step.
					want := oldNorm * math.Pow(1-0.01*0.1, 50)
					if math.Abs(norm-want) > 1e-12*want {
						t.Errorf("%s: norm %v, want %v", tn.Name, norm, want)
					}
				}
			}
		})
	}
}

func TestOptimizerRate(t *testing.T) {
	o := newOptimizer(t, models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.4,
		Schedule: models.Schedule{Kind: models.StepDecay, Every: 2, Gamma: 0.5}}, 2)
	m := oneWeight(t)
	want := []float64{0.4, 0.4, 0.2, 0.2, 0.1}
	for epoch, w := range want {
		if got := o.Rate(); math.Abs(got-w) > 1e-15 {
			t.Errorf("epoch %d: Rate() = %v, want %v", epoch, got, w)
		}
		o.Update(m, []float64{0, 0}) // steps do not move an epoch schedule
		o.Update(m, []float64{0, 0})
		o.EndEpoch()
	}
	o = newOptimizer(t, models.OptimizerDesc{Kind: models.Adam, LearningRate: 1,
		Schedule: models.Schedule{Kind: models.Cosine, Unit: models.PerStep, Length: 4}}, 2)
	for step, w := range []float64{1, 0.5 + 0.5*math.Sqrt2/2, 0.5, 0.5 - 0.5*math.Sqrt2/2, 0, 0} {
		if got := o.Rate(); math.Abs(got-w) > 1e-15 {
			t.Errorf("step %d: Rate() = %v, want %v", step, got, w)
		}
		o.Update(m, []float64{1, 1})
	}
}

func TestOptimizerState(t *testing.T) {
	for _, d := range []models.OptimizerDesc{
		{Kind: models.SGD, LearningRate: 0.05},
		{Kind: models.SGD, LearningRate: 0.05, Momentum: 0.9},
		{Kind: models.Adam, LearningRate: 0.01},
	} {
		t.Run(string(d.Kind), func(t *testing.T) {
			x, y := blobs(200, 3, 4, 2)
			m, err := models.New(models.Desc{Kind: models.MLP, Inputs: 4, Hidden: []int{6}, Head: models.SoftmaxHead, Classes: 3}, 1)
			if err != nil {
				t.Fatal(err)
			}
			o := newOptimizer(t, d, m.NumParams())
			models.Fit(m, o, x, y, 16, seeded(1))

			// Continue from serialized state in a second model and optimizer.
			data, err := json.Marshal(o.State())
			if err != nil {
				t.Fatal(err)
			}
			var s models.OptimizerState
			if err := json.Unmarshal(data, &s); err != nil {
				t.Fatal(err)
			}
			m2, err := models.FromParams(m.Desc(), m.Params())
			if err != nil {
				t.Fatal(err)
			}
			o2 := newOptimizer(t, d, m2.NumParams())
			if err := o2.SetState(s); err != nil {
				t.Fatal(err)
			}
			models.Fit(m, o, x, y, 16, seeded(2))
			models.Fit(m2, o2, x, y, 16, seeded(2))
			if !slices.Equal(m.Params(), m2.Params()) {
				t.Error("training resumed from state differs from training straight on")
			}
			if o2.Steps() != o.Steps() || o2.Epochs() != 2 {
				t.Errorf("steps %d, %d; epochs %d, want 2", o.Steps(), o2.Steps(), o2.Epochs())
			}
			c := o.Clone()
			if !reflect.DeepEqual(c.State(), o.State()) {
				t.Error("Clone state differs")
			}
		})
	}
}

func TestOptimizerSetStateErrors(t *testing.T) {
	o := newOptimizer(t, models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.1}, 3)
	ok := func() models.OptimizerState {
		return models.OptimizerState{Steps: 2, Epochs: 1, Slots: [][]float64{{1, 2, 3}, {1, 2, 3}}}
	}
	if err := o.SetState(ok()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*models.OptimizerState)
	}{
		{"negative steps", func(s *models.OptimizerState) { s.Steps = -1 }},
		{"one slot", func(s *models.OptimizerState) { s.Slots = s.Slots[:1] }},
		{"short slot", func(s *models.OptimizerState) { s.Slots[1] = s.Slots[1][:2] }},
		{"NaN", func(s *models.OptimizerState) { s.Slots[0][1] = math.NaN() }},
		{"negative second moment", func(s *models.OptimizerState) { s.Slots[1][2] = -1 }},
	}
	for _, tt := range tests {
		s := ok()
		tt.change(&s)
		if err := o.SetState(s); !errors.Is(err, models.ErrOptimizer) {
			t.Errorf("%s: SetState error = %v, want ErrOptimizer", tt.name, err)
		}
	}
	if got := o.State(); !reflect.DeepEqual(got, ok()) {
		t.Errorf("failed SetState calls changed the state to %+v", got)
	}
}

// TestConvergence trains least squares on a convex problem with a known
// minimum, with each optimizer.
func TestConvergence(t *testing.T) {
	wTrue := []float64{2, -3, 0.5}
	const bTrue = 1.25
	x, y := linearData(512, wTrue, bTrue, 0, 5)
	tests := []struct {
		name   string
		d      models.OptimizerDesc
		epochs int
	}{
		{"sgd momentum", models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.01, Momentum: 0.9}, 40},
		{"sgd nesterov", models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.01, Momentum: 0.9, Nesterov: true}, 40},
		{"adam", models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.05,
			Schedule: models.Schedule{Kind: models.Cosine, Length: 60}}, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := models.New(models.Desc{Kind: models.Linear, Inputs: 3}, 1)
			if err != nil {
				t.Fatal(err)
			}
			o := newOptimizer(t, tt.d, m.NumParams())
			tr := models.NewTrainer(m, o)
			rng := seeded(1)
			var loss float64
			for range tt.epochs {
				loss, _ = tr.Epoch(x, y, 16, rng)
			}
			want := append(slices.Clone(wTrue), bTrue)
			for i, w := range want {
				if got := m.Params()[i]; math.Abs(got-w) > 1e-3 {
					t.Errorf("params %v, want %v (last epoch loss %g)", m.Params(), want, loss)
					break
				}
			}
		})
	}
}
