package models

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// RidgeAlphas are the penalties FitRidge chooses among, by leave-one-out
// error: 10⁻³ to 10³, ten of them evenly spaced in the exponent, as
// scikit-learn's RidgeClassifierCV.
var RidgeAlphas = func() []float64 {
	out := make([]float64, 10)
	for i := range out {
		out[i] = math.Pow(10, -3+6*float64(i)/9)
	}
	return out
}()

// MaxRidgeRows is the most rows FitRidge solves for: it factors the rows'
// n×n Gram matrix.
const MaxRidgeRows = 20_000

// FitRidge sets the weights of a softmax or linear model to the ridge
// regression of its targets on x, with an intercept (the bias, not
// penalized): for a softmax head the targets are +1 for a row's class and
// −1 for the others, as scikit-learn's RidgeClassifier; for a linear model
// its values. The penalty is the one of RidgeAlphas with the lowest
// leave-one-out squared error, computed exactly from an eigendecomposition
// of the centred rows' Gram matrix. It returns that penalty. The order of
// the rows does not matter.
func FitRidge(m *Model, x *mat.Dense, y Targets) (alpha float64, err error) {
	if k := m.Desc().Kind; k != Softmax && k != Linear {
		return 0, fmt.Errorf("models: ridge solves softmax and linear models, not %s", k)
	}
	if err := m.CheckData(x, y); err != nil {
		return 0, err
	}
	if x.IsEmpty() {
		return 0, fmt.Errorf("models: ridge needs at least one row")
	}
	n, d := x.Dims()
	if n > MaxRidgeRows {
		return 0, fmt.Errorf("models: ridge solves for at most %d rows (it factors their %d×%d Gram matrix), this data has %d: train with sgd or adam", MaxRidgeRows, n, n, n)
	}
	k := m.Outputs()
	targets := mat.NewDense(n, k, nil)
	if m.Head() == SoftmaxHead {
		for i, c := range y.Classes {
			for j := 0; j < k; j++ {
				targets.Set(i, j, -1)
			}
			targets.Set(i, c, 1)
		}
	} else {
		copy(targets.RawMatrix().Data, y.Values)
	}
	// Centre rows and targets: the intercept is then the targets' mean
	// less the rows' mean times the weights.
	xm, ym := colMeans(x), colMeans(targets)
	xc := mat.DenseCopyOf(x)
	subRows(xc, xm)
	yc := mat.DenseCopyOf(targets)
	subRows(yc, ym)

	var gram mat.SymDense
	gram.SymOuterK(1, xc)
	var eig mat.EigenSym
	if !eig.Factorize(&gram, true) {
		return 0, fmt.Errorf("models: ridge: the Gram matrix of %d rows does not factor", n)
	}
	vals := eig.Values(nil)
	var q mat.Dense
	eig.VectorsTo(&q)
	var qty mat.Dense
	qty.Mul(q.T(), yc)

	// For each penalty a: dual coefficients c = Q diag(1/(λ+a)) Qᵀ y, and
	// the leave-one-out residual of row i is c_i / ((G+aI)⁻¹)_ii.
	best := math.Inf(1)
	var coef mat.Dense
	scaled := mat.NewDense(n, k, nil)
	var c mat.Dense
	q2 := mat.DenseCopyOf(&q)
	q2.Apply(func(_, _ int, v float64) float64 { return v * v }, q2)
	inv := make([]float64, n)
	diag := mat.NewVecDense(n, nil)
	for _, a := range RidgeAlphas {
		for i := range inv {
			inv[i] = 1 / (max(vals[i], 0) + a)
		}
		for i := 0; i < n; i++ {
			for j := 0; j < k; j++ {
				scaled.Set(i, j, qty.At(i, j)*inv[i])
			}
		}
		c.Mul(&q, scaled)
		diag.MulVec(q2, mat.NewVecDense(n, inv))
		var loo float64
		for i := 0; i < n; i++ {
			g := diag.AtVec(i)
			for j := 0; j < k; j++ {
				e := c.At(i, j) / g
				loo += e * e
			}
		}
		if loo < best {
			best, alpha = loo, a
			coef.CloneFrom(&c)
		}
	}
	// Weights xcᵀ c (d×k), then the intercept.
	var w mat.Dense
	w.Mul(xc.T(), &coef)
	p := m.params
	for i := 0; i < d; i++ {
		for j := 0; j < k; j++ {
			p[i*k+j] = w.At(i, j)
		}
	}
	for j := 0; j < k; j++ {
		b := ym[j]
		for i := 0; i < d; i++ {
			b -= xm[i] * w.At(i, j)
		}
		p[d*k+j] = b
	}
	return alpha, nil
}

func colMeans(a *mat.Dense) []float64 {
	r, c := a.Dims()
	out := make([]float64, c)
	raw := a.RawMatrix()
	for i := 0; i < r; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+c]
		for j, v := range row {
			out[j] += v
		}
	}
	for j := range out {
		out[j] /= float64(r)
	}
	return out
}

func subRows(a *mat.Dense, v []float64) {
	r, c := a.Dims()
	raw := a.RawMatrix()
	for i := 0; i < r; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+c]
		for j := range row {
			row[j] -= v[j]
		}
	}
}
