package models

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Targets are what a model learns to output for the rows of a feature
// matrix: class indexes for a softmax head, values for a squared-error
// head. Exactly one of the fields is used, by the model's head.
type Targets struct {
	// Classes holds one class index in [0, classes) per row.
	Classes []int
	// Values holds rows × outputs values, row-major; with one output, one
	// value per row.
	Values []float64
}

// CheckData reports whether x and y fit m: x has m.Inputs() columns, y has
// a target per row for m's head, class indexes are in range, and every
// feature and target value is finite. The error wraps ErrData. Trainer and
// Predictor panic on what CheckData reports about shapes and classes, so
// call it on data that was not checked upstream.
func (m *Model) CheckData(x *mat.Dense, y Targets) error {
	rows, cols := 0, m.Inputs()
	if !x.IsEmpty() {
		rows, cols = x.Dims()
	}
	if cols != m.Inputs() {
		return fmt.Errorf("%w: %d features per row, the model takes %d", ErrData, cols, m.Inputs())
	}
	for r := 0; r < rows; r++ {
		for c, v := range x.RawRowView(r) {
			if !finite(v) {
				return fmt.Errorf("%w: feature %d of row %d is %v", ErrData, c, r, v)
			}
		}
	}
	switch m.Head() {
	case SoftmaxHead:
		if len(y.Classes) != rows || y.Values != nil {
			return fmt.Errorf("%w: a softmax head needs one class per row: %d rows, %d classes, %d values",
				ErrData, rows, len(y.Classes), len(y.Values))
		}
		k := m.Outputs()
		for r, c := range y.Classes {
			if c < 0 || c >= k {
				return fmt.Errorf("%w: class %d of row %d, want 0…%d", ErrData, c, r, k-1)
			}
		}
	case SquaredHead:
		if len(y.Values) != rows*m.Outputs() || y.Classes != nil {
			return fmt.Errorf("%w: a squared-error head needs %d values per row: %d rows, %d values, %d classes",
				ErrData, m.Outputs(), rows, len(y.Values), len(y.Classes))
		}
		for i, v := range y.Values {
			if !finite(v) {
				return fmt.Errorf("%w: target %d of row %d is %v", ErrData, i%m.Outputs(), i/m.Outputs(), v)
			}
		}
	}
	return nil
}

// checkShapes panics where CheckData would report a shape or class error.
func (m *Model) checkShapes(rows, cols int, y Targets) {
	if rows == 0 {
		cols = m.Inputs()
	}
	if cols != m.Inputs() {
		panic(fmt.Sprintf("models: shape mismatch: %d features per row, the model takes %d", cols, m.Inputs()))
	}
	switch m.Head() {
	case SoftmaxHead:
		if len(y.Classes) != rows {
			panic(fmt.Sprintf("models: %d classes for %d rows", len(y.Classes), rows))
		}
		k := m.Outputs()
		for r, c := range y.Classes {
			if c < 0 || c >= k {
				panic(fmt.Sprintf("models: class %d of row %d out of range [0, %d)", c, r, k))
			}
		}
	case SquaredHead:
		if len(y.Values) != rows*m.Outputs() {
			panic(fmt.Sprintf("models: %d target values for %d rows of %d outputs", len(y.Values), rows, m.Outputs()))
		}
	}
}

// Trainer trains one model with one optimizer by minibatch gradient
// descent. It owns the buffers a step needs, so after the first batch of
// the largest size no step allocates. A Trainer is not safe for concurrent
// use, and nothing else may update its model meanwhile.
type Trainer struct {
	m     *Model
	opt   *Optimizer
	ws    *workspace
	grad  []float64
	xbuf  []float64 // rows of a shuffled batch, or a gap-free copy of x
	cbuf  []int
	vbuf  []float64
	order []int
}

// NewTrainer returns a trainer that updates m with opt.
func NewTrainer(m *Model, opt *Optimizer) *Trainer {
	if n := opt.numParams(); n >= 0 && n != m.NumParams() {
		panic(fmt.Sprintf("models: optimizer for %d parameters, model has %d", n, m.NumParams()))
	}
	return &Trainer{m: m, opt: opt, ws: newWorkspace(m), grad: make([]float64, m.NumParams())}
}

// Model returns the model the trainer updates.
func (t *Trainer) Model() *Model { return t.m }

// Optimizer returns the trainer's optimizer.
func (t *Trainer) Optimizer() *Optimizer { return t.opt }

// Gradient writes into dst (NumParams values) the gradient with respect to
// the parameters of the model's mean loss over the rows of x, and returns
// that loss. Weight decay is not included: it belongs to the optimizer.
// The model is not changed.
func (t *Trainer) Gradient(dst []float64, x *mat.Dense, y Targets) float64 {
	if len(dst) != len(t.grad) {
		panic(fmt.Sprintf("models: gradient destination of %d values for %d parameters", len(dst), len(t.grad)))
	}
	xs, rows, cols := rowsOf(&t.xbuf, x)
	t.m.checkShapes(rows, cols, y)
	if rows == 0 {
		clear(dst)
		return 0
	}
	return t.gradient(dst, xs, rows, y.Classes, y.Values)
}

// gradient is Gradient on checked, contiguous rows.
func (t *Trainer) gradient(dst, x []float64, rows int, classes []int, values []float64) float64 {
	p := t.m.params
	out := t.ws.forward(p, x, rows)
	dz := t.ws.outGrad()
	var loss float64
	if t.m.Head() == SoftmaxHead {
		loss = softmaxCrossEntropy(dz, out, rows, t.m.Outputs(), classes)
	} else {
		loss = squaredError(dz, out, rows, t.m.Outputs(), values)
	}
	t.ws.backward(p, dst)
	t.ws.x = nil // do not keep the caller's matrix alive
	return loss
}

// Step takes one optimizer step on the batch x, y and returns the batch's
// mean loss before the step. An empty x changes nothing and returns 0.
func (t *Trainer) Step(x *mat.Dense, y Targets) float64 {
	xs, rows, cols := rowsOf(&t.xbuf, x)
	t.m.checkShapes(rows, cols, y)
	if rows == 0 {
		return 0
	}
	loss := t.gradient(t.grad, xs, rows, y.Classes, y.Values)
	t.opt.Update(t.m, t.grad)
	return loss
}

// Epoch runs one epoch of minibatch gradient descent over x, y: the rows in
// an order shuffled with rng (in their given order when rng is nil), in
// batches of batchSize rows (the last may be smaller), one optimizer step
// per batch; then it ends the optimizer's epoch. It returns the mean over
// rows of the loss each batch had before its step, and the number of rows.
// The same model, optimizer state, data and rng state give bit-identical
// parameters.
func (t *Trainer) Epoch(x *mat.Dense, y Targets, batchSize int, rng *rand.Rand) (loss float64, n int) {
	return t.EpochFrom(x, y, nil, batchSize, rng)
}

// EpochFrom is Epoch over the rows of x taken in the order base (a
// permutation of its rows; nil is their own order) before rng shuffles
// them: the same as Epoch over a copy of x with its rows in that order,
// without the copy.
func (t *Trainer) EpochFrom(x *mat.Dense, y Targets, base []int, batchSize int, rng *rand.Rand) (loss float64, n int) {
	if batchSize < 1 {
		panic(fmt.Sprintf("models: batch size %d, want ≥ 1", batchSize))
	}
	rows, cols := 0, t.m.Inputs()
	if !x.IsEmpty() {
		rows, cols = x.Dims()
	}
	t.m.checkShapes(rows, cols, y)
	if rows == 0 {
		t.opt.EndEpoch()
		return 0, 0
	}
	raw := x.RawMatrix()
	if cap(t.order) < rows {
		t.order = make([]int, rows)
	}
	order := t.order[:rows]
	switch {
	case base == nil:
		for i := range order {
			order[i] = i
		}
	case len(base) != rows:
		panic(fmt.Sprintf("models: a row order of %d rows for %d rows", len(base), rows))
	default:
		copy(order, base)
	}
	if rng != nil {
		// Fisher–Yates, spelled out so that the order depends only on rng.
		for i := rows - 1; i > 0; i-- {
			j := rng.IntN(i + 1)
			order[i], order[j] = order[j], order[i]
		}
	}
	bs := min(batchSize, rows)
	k := t.m.Outputs()
	t.xbuf = grow(t.xbuf, bs*cols)
	classes := t.m.Head() == SoftmaxHead
	if classes {
		t.cbuf = growInts(t.cbuf, bs)
	} else {
		t.vbuf = grow(t.vbuf, bs*k)
	}
	var sum float64
	for start := 0; start < rows; start += bs {
		idx := order[start:min(start+bs, rows)]
		nb := len(idx)
		xb := t.xbuf[:nb*cols]
		for i, r := range idx {
			copy(xb[i*cols:(i+1)*cols], raw.Data[r*raw.Stride:r*raw.Stride+cols])
		}
		var batchLoss float64
		if classes {
			cb := t.cbuf[:nb]
			for i, r := range idx {
				cb[i] = y.Classes[r]
			}
			batchLoss = t.gradient(t.grad, xb, nb, cb, nil)
		} else {
			vb := t.vbuf[:nb*k]
			for i, r := range idx {
				copy(vb[i*k:(i+1)*k], y.Values[r*k:(r+1)*k])
			}
			batchLoss = t.gradient(t.grad, xb, nb, nil, vb)
		}
		t.opt.Update(t.m, t.grad)
		sum += batchLoss * float64(nb)
	}
	t.opt.EndEpoch()
	return sum / float64(rows), rows
}

// Fit runs one epoch of minibatch training of m with opt over x, y; see
// Trainer.Epoch. To train several epochs without reallocating buffers, use
// a Trainer.
func Fit(m *Model, opt *Optimizer, x *mat.Dense, y Targets, batchSize int, rng *rand.Rand) (loss float64, n int) {
	return NewTrainer(m, opt).Epoch(x, y, batchSize, rng)
}
