package models

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// A Predictor runs at most predictChunk rows through the layers at once,
// and fewer when their buffers (a CNN's im2col columns above all) would
// pass predictBudget values, so that its memory is bounded whatever the
// size of the input.
const (
	predictChunk  = 256
	predictBudget = 1 << 21
)

// Predictor runs a model forward. It owns the buffers that needs, so
// after its first full chunk of rows it allocates nothing. A Predictor is
// not safe for concurrent use; any number of Predictors may share a model
// that nothing updates meanwhile.
type Predictor struct {
	m     *Model
	ws    *workspace
	xbuf  []float64
	chunk int // rows per forward pass
}

// NewPredictor returns a predictor for m.
func NewPredictor(m *Model) *Predictor {
	ws := newWorkspace(m)
	return &Predictor{m: m, ws: ws, chunk: max(1, min(predictChunk, predictBudget/ws.rowValues()))}
}

// chunks calls fn with the logits of each chunk of the rows of x and the
// index of the chunk's first row.
func (p *Predictor) chunks(x *mat.Dense, fn func(start, rows int, logits []float64)) {
	if x.IsEmpty() {
		return
	}
	rows, cols := x.Dims()
	if cols != p.m.Inputs() {
		panic(fmt.Sprintf("models: shape mismatch: %d features per row, the model takes %d", cols, p.m.Inputs()))
	}
	raw := x.RawMatrix()
	defer func() { p.ws.x = nil }() // do not keep the caller's matrix alive
	for start := 0; start < rows; start += p.chunk {
		n := min(p.chunk, rows-start)
		var xs []float64
		if raw.Stride == cols {
			xs = raw.Data[start*cols : (start+n)*cols]
		} else {
			p.xbuf = grow(p.xbuf, n*cols)
			xs = p.xbuf
			for i := 0; i < n; i++ {
				copy(xs[i*cols:(i+1)*cols], raw.Data[(start+i)*raw.Stride:])
			}
		}
		fn(start, n, p.ws.forward(p.m.params, xs, n))
	}
}

// Predict writes the model's outputs for the rows of x into dst: class
// probabilities for a softmax head, values for a squared-error head. dst
// must be rows × Outputs, or empty, in which case it is resized.
func (p *Predictor) Predict(dst, x *mat.Dense) {
	k := p.m.Outputs()
	if x.IsEmpty() {
		return
	}
	rows, _ := x.Dims()
	if dst.IsEmpty() {
		dst.ReuseAs(rows, k)
	}
	if r, c := dst.Dims(); r != rows || c != k {
		panic(fmt.Sprintf("models: shape mismatch: destination %d×%d for %d rows of %d outputs", r, c, rows, k))
	}
	out := dst.RawMatrix()
	softmax := p.m.Head() == SoftmaxHead
	p.chunks(x, func(start, n int, z []float64) {
		if softmax {
			softmaxRows(z, z, n, k)
		}
		for i := 0; i < n; i++ {
			copy(out.Data[(start+i)*out.Stride:(start+i)*out.Stride+k], z[i*k:(i+1)*k])
		}
	})
}

// Classify writes the most probable class of each row of x into dst, which
// it returns resliced (grown if too short). The model must have a softmax
// head; ties go to the lower class.
func (p *Predictor) Classify(dst []int, x *mat.Dense) []int {
	if p.m.Head() != SoftmaxHead {
		panic("models: Classify needs a softmax head")
	}
	rows := 0
	if !x.IsEmpty() {
		rows, _ = x.Dims()
	}
	if cap(dst) < rows {
		dst = make([]int, rows)
	}
	dst = dst[:rows]
	k := p.m.Outputs()
	p.chunks(x, func(start, n int, z []float64) {
		for i := 0; i < n; i++ {
			dst[start+i] = Argmax(z[i*k : (i+1)*k])
		}
	})
	return dst
}

// Argmax returns the index of the first largest value of v: the class a
// row of probabilities or logits predicts, ties to the lower class.
func Argmax(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// Evaluate returns the model's metrics on x, y: the mean loss, and for a
// softmax head accuracy, balanced accuracy and the confusion matrix, for a
// squared-error head RMSE and MAE.
func (p *Predictor) Evaluate(x *mat.Dense, y Targets) Metrics {
	rows, cols := 0, p.m.Inputs()
	if !x.IsEmpty() {
		rows, cols = x.Dims()
	}
	p.m.checkShapes(rows, cols, y)
	k := p.m.Outputs()
	met := Metrics{N: rows}
	var loss float64
	if p.m.Head() == SoftmaxHead {
		met.Confusion = make([][]int, k)
		for i := range met.Confusion {
			met.Confusion[i] = make([]int, k)
		}
		p.chunks(x, func(start, n int, z []float64) {
			classes := y.Classes[start : start+n]
			loss += softmaxCrossEntropy(nil, z, n, k, classes) * float64(n)
			for i, c := range classes {
				met.Confusion[c][Argmax(z[i*k:(i+1)*k])]++
			}
		})
		met.Accuracy = Accuracy(met.Confusion)
		met.BalancedAccuracy = BalancedAccuracy(met.Confusion)
	} else {
		var sq, abs float64
		p.chunks(x, func(start, n int, z []float64) {
			t := y.Values[start*k : (start+n)*k]
			for i, v := range z[:n*k] {
				d := v - t[i]
				sq += d * d
				abs += math.Abs(d)
			}
		})
		if rows > 0 {
			loss = 0.5 * sq
			met.RMSE = math.Sqrt(sq / float64(rows*k))
			met.MAE = abs / float64(rows*k)
		}
	}
	if rows > 0 {
		met.Loss = loss / float64(rows)
	}
	return met
}

// Predict returns m's outputs for the rows of x; see Predictor.Predict.
func Predict(m *Model, x *mat.Dense) *mat.Dense {
	var dst mat.Dense
	NewPredictor(m).Predict(&dst, x)
	return &dst
}

// Evaluate returns m's metrics on x, y; see Predictor.Evaluate.
func Evaluate(m *Model, x *mat.Dense, y Targets) Metrics {
	return NewPredictor(m).Evaluate(x, y)
}
