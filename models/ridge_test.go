package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// ridgeDirect solves ridge regression with an intercept by the normal
// equations: centred (XᵀX + aI) w = Xᵀ y.
func ridgeDirect(x *mat.Dense, y *mat.Dense, a float64) (w *mat.Dense, b []float64) {
	n, d := x.Dims()
	_, k := y.Dims()
	xm, ym := colMeans(x), colMeans(y)
	xc, yc := mat.DenseCopyOf(x), mat.DenseCopyOf(y)
	subRows(xc, xm)
	subRows(yc, ym)
	var a2 mat.Dense
	a2.Mul(xc.T(), xc)
	for i := 0; i < d; i++ {
		a2.Set(i, i, a2.At(i, i)+a)
	}
	var rhs mat.Dense
	rhs.Mul(xc.T(), yc)
	w = new(mat.Dense)
	if err := w.Solve(&a2, &rhs); err != nil {
		panic(err)
	}
	b = make([]float64, k)
	for j := range b {
		b[j] = ym[j]
		for i := 0; i < d; i++ {
			b[j] -= xm[i] * w.At(i, j)
		}
	}
	_ = n
	return w, b
}

// FitRidge gives the weights of the normal equations at the penalty whose
// leave-one-out error, computed by refitting without each row, is lowest.
func TestFitRidgeMatchesRefits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, d, k = 30, 8, 3
	x := mat.NewDense(n, d, nil)
	var y Targets
	for i := 0; i < n; i++ {
		c := i % k
		for j := 0; j < d; j++ {
			x.Set(i, j, rng.NormFloat64()+float64(c*(j%3))*0.7)
		}
		y.Classes = append(y.Classes, c)
	}
	targets := mat.NewDense(n, k, nil)
	for i, c := range y.Classes {
		for j := 0; j < k; j++ {
			targets.Set(i, j, -1)
		}
		targets.Set(i, c, 1)
	}
	// Leave-one-out by refitting.
	best, bestA := math.Inf(1), 0.0
	for _, a := range RidgeAlphas {
		var loo float64
		for out := 0; out < n; out++ {
			xs := mat.NewDense(n-1, d, nil)
			ys := mat.NewDense(n-1, k, nil)
			r := 0
			for i := 0; i < n; i++ {
				if i == out {
					continue
				}
				xs.SetRow(r, mat.Row(nil, i, x))
				ys.SetRow(r, mat.Row(nil, i, targets))
				r++
			}
			w, b := ridgeDirect(xs, ys, a)
			for j := 0; j < k; j++ {
				p := b[j]
				for i := 0; i < d; i++ {
					p += x.At(out, i) * w.At(i, j)
				}
				e := p - targets.At(out, j)
				loo += e * e
			}
		}
		if loo < best {
			best, bestA = loo, a
		}
	}
	m, err := New(Desc{Kind: Softmax, Inputs: d, Classes: k}, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, err := FitRidge(m, x, y)
	if err != nil {
		t.Fatal(err)
	}
	if a != bestA {
		t.Fatalf("penalty %g, refits choose %g", a, bestA)
	}
	w, b := ridgeDirect(x, targets, a)
	p := m.Params()
	for i := 0; i < d; i++ {
		for j := 0; j < k; j++ {
			if math.Abs(p[i*k+j]-w.At(i, j)) > 1e-8 {
				t.Fatalf("weight %d,%d: %v, normal equations %v", i, j, p[i*k+j], w.At(i, j))
			}
		}
	}
	for j := 0; j < k; j++ {
		if math.Abs(p[d*k+j]-b[j]) > 1e-8 {
			t.Fatalf("bias %d: %v, normal equations %v", j, p[d*k+j], b[j])
		}
	}
	if acc := Evaluate(m, x, y).Accuracy; acc < 0.8 {
		t.Errorf("training accuracy %.3f", acc)
	}
}

func TestFitRidgeRefuses(t *testing.T) {
	m, _ := New(Desc{Kind: MLP, Inputs: 2, Classes: 2, Hidden: []int{3}, Activation: ReLU, Head: SoftmaxHead}, 1)
	if _, err := FitRidge(m, mat.NewDense(2, 2, []float64{1, 2, 3, 4}), Targets{Classes: []int{0, 1}}); err == nil {
		t.Error("solved an mlp")
	}
	opt, err := NewOptimizer(OptimizerDesc{Kind: Ridge}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("a ridge optimizer took a step")
		}
	}()
	lin, _ := New(Desc{Kind: Linear, Inputs: 3, Outputs: 1}, 1)
	opt.Update(lin, make([]float64, 4))
}
