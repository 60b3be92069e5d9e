package models_test

import (
	"encoding/json"
	"fmt"
	"log"
	"math/rand/v2"

	"github.com/muonml/muon/models"
	"gonum.org/v1/gonum/mat"
)

// Example trains softmax regression on two well separated clusters and
// evaluates it.
func Example() {
	rng := rand.New(rand.NewPCG(1, 1))
	const n = 200
	x := mat.NewDense(n, 2, nil)
	y := make([]int, n)
	for i := range y {
		y[i] = i % 2
		centre := 4*float64(y[i]) - 2 // −2 or +2
		x.Set(i, 0, centre+rng.NormFloat64())
		x.Set(i, 1, centre+rng.NormFloat64())
	}

	m, err := models.New(models.Desc{Kind: models.Softmax, Inputs: 2, Classes: 2, Labels: []string{"low", "high"}}, 1)
	if err != nil {
		log.Fatal(err)
	}
	opt, err := models.NewOptimizer(models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.1, Momentum: 0.9}, m.NumParams())
	if err != nil {
		log.Fatal(err)
	}
	tr := models.NewTrainer(m, opt)
	for range 5 {
		tr.Epoch(x, models.Targets{Classes: y}, 16, rng)
	}
	met := models.Evaluate(m, x, models.Targets{Classes: y})
	fmt.Printf("%s: %d rows, accuracy %.2f\n", m, met.N, met.Accuracy)
	fmt.Println("confusion:", met.Confusion)
	// Output:
	// softmax 2→2 softmax: 200 rows, accuracy 0.99
	// confusion: [[99 1] [1 99]]
}

func ExampleNew() {
	d := models.Desc{Kind: models.CNN, Width: 8, Height: 8, Filters: []int{8}, Hidden: []int{32}, Classes: 10}
	m, err := models.New(d, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m)
	fmt.Println(m.NumParams(), "parameters")
	data, _ := json.Marshal(m.Desc())
	fmt.Println(string(data))
	// Output:
	// cnn 8×8×1→conv3×3(8)→pool2×2→32(relu)→10 softmax
	// 4538 parameters
	// {"kind":"cnn","inputs":64,"classes":10,"hidden":[32],"activation":"relu","head":"softmax","width":8,"height":8,"channels":1,"filters":[8]}
}

func ExampleDesc_Validate() {
	err := models.Desc{Kind: models.MLP, Inputs: 64, Hidden: []int{100, 0}, Head: models.SoftmaxHead, Classes: 10}.Validate()
	fmt.Println(err)
	// Output:
	// models: invalid descriptor: hidden[1] = 0, want 1…1048576
}

// ExampleFromParams averages the models of two data-parallel shards,
// weighted by how many rows each trained on, and rebuilds a model from the
// average.
func ExampleFromParams() {
	d := models.Desc{Kind: models.Linear, Inputs: 2}
	a, _ := models.FromParams(d, []float64{1, 2, 0.5}) // weights 1, 2; bias 0.5
	b, _ := models.FromParams(d, []float64{3, 2, 1.5})
	rowsA, rowsB := 300.0, 100.0

	avg := make([]float64, a.NumParams())
	for i := range avg {
		avg[i] = (rowsA*a.Params()[i] + rowsB*b.Params()[i]) / (rowsA + rowsB)
	}
	m, err := models.FromParams(d, avg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Params())
	fmt.Println(models.Predict(m, mat.NewDense(1, 2, []float64{1, 1})).At(0, 0))

	_, err = models.FromParams(d, avg[:2])
	fmt.Println(err)
	// Output:
	// [1.5 2 0.75]
	// 4.25
	// models: parameters do not fit: 2 values for a linear model of 3 parameters
}

func ExampleModel_Tensors() {
	m, _ := models.New(models.Desc{Kind: models.MLP, Inputs: 4, Hidden: []int{3}, Head: models.SquaredHead}, 1)
	for _, t := range m.Tensors() {
		fmt.Println(t.Name, t.Shape, t.Offset, t.Bias)
	}
	// Output:
	// dense0.weight [4 3] 0 false
	// dense0.bias [3] 12 true
	// output.weight [3 1] 15 false
	// output.bias [1] 18 true
}

func ExampleSchedule_Factor() {
	step := models.Schedule{Kind: models.StepDecay, Every: 10, Gamma: 0.5}
	cosine := models.Schedule{Kind: models.Cosine, Length: 20, Floor: 0.1}
	for _, epoch := range []int64{0, 5, 10, 20, 30} {
		fmt.Printf("epoch %2d: step %.3f, cosine %.3f\n", epoch, step.Factor(epoch), cosine.Factor(epoch))
	}
	// Output:
	// epoch  0: step 1.000, cosine 1.000
	// epoch  5: step 1.000, cosine 0.868
	// epoch 10: step 0.500, cosine 0.550
	// epoch 20: step 0.250, cosine 0.100
	// epoch 30: step 0.125, cosine 0.100
}

// ExampleOptimizer_State continues training elsewhere from a serialized
// optimizer state.
func ExampleOptimizer_State() {
	d := models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.01}
	m, _ := models.FromParams(models.Desc{Kind: models.Linear, Inputs: 1}, []float64{0, 0})
	opt, _ := models.NewOptimizer(d, m.NumParams())
	opt.Update(m, []float64{2, -1})
	opt.EndEpoch()

	data, _ := json.Marshal(opt.State())
	var s models.OptimizerState
	_ = json.Unmarshal(data, &s)
	fmt.Printf("%d step, %d epoch, %d slots of %d values\n", s.Steps, s.Epochs, len(s.Slots), len(s.Slots[0]))

	resumed, _ := models.NewOptimizer(d, m.NumParams())
	if err := resumed.SetState(s); err != nil {
		log.Fatal(err)
	}
	fmt.Println(resumed.Steps(), resumed.Epochs(), resumed.Rate())
	// Output:
	// 1 step, 1 epoch, 2 slots of 2 values
	// 1 1 0.01
}

func ExamplePredictor_Classify() {
	// Two classes split by the sign of the one feature.
	m, _ := models.FromParams(models.Desc{Kind: models.Softmax, Inputs: 1, Classes: 2}, []float64{-1, 1, 0, 0})
	p := models.NewPredictor(m)
	x := mat.NewDense(3, 1, []float64{-2, 0.5, 3})
	fmt.Println(p.Classify(nil, x))
	var probs mat.Dense
	p.Predict(&probs, x)
	fmt.Printf("%.3f\n", mat.Formatted(&probs))
	// Output:
	// [0 1 1]
	// ⎡0.982  0.018⎤
	// ⎢0.269  0.731⎥
	// ⎣0.002  0.998⎦
}
