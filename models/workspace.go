package models

import "gonum.org/v1/gonum/mat"

// workspace holds what one forward and backward pass over a batch needs
// besides the parameters: every layer's output and output gradient and its
// scratch. Buffers grow to the largest batch seen and are then reused, so
// passes over batches no larger than that allocate nothing.
type workspace struct {
	layers  []layer
	offsets []int
	x       []float64 // the input of the last forward
	rows    int
	acts    [][]float64 // acts[i] is the output of layer i
	grads   [][]float64 // grads[i] is ∂loss/∂acts[i]
	scr     []scratch
}

func newWorkspace(m *Model) *workspace {
	n := len(m.layers)
	return &workspace{
		layers:  m.layers,
		offsets: m.offsets,
		acts:    make([][]float64, n),
		grads:   make([][]float64, n),
		scr:     make([]scratch, n),
	}
}

// rowValues is how many values a forward pass holds per row: the outputs
// of every layer and their scratch.
func (w *workspace) rowValues() int {
	n := 0
	for _, l := range w.layers {
		n += l.outSize()
		switch l := l.(type) {
		case *conv:
			n += 9 * l.cin * l.h * l.w
		case *pool:
			n += l.outSize()
		}
	}
	return max(n, 1)
}

// forward runs the layers over x (rows × inputs) and returns the logits or
// raw outputs, which stay valid until the next forward.
func (w *workspace) forward(params, x []float64, rows int) []float64 {
	w.x, w.rows = x, rows
	in := x
	for i, l := range w.layers {
		w.acts[i] = grow(w.acts[i], rows*l.outSize())
		l.forward(params[w.offsets[i]:w.offsets[i+1]], in, w.acts[i], rows, &w.scr[i])
		in = w.acts[i]
	}
	return in
}

// outGrad returns the buffer that backward reads ∂loss/∂outputs from,
// sized for the last forward.
func (w *workspace) outGrad() []float64 {
	last := len(w.layers) - 1
	w.grads[last] = grow(w.grads[last], w.rows*w.layers[last].outSize())
	return w.grads[last]
}

// backward writes into grad the gradient of the loss whose gradient with
// respect to the outputs the caller wrote into outGrad. The gradient with
// respect to the input is not computed.
func (w *workspace) backward(params, grad []float64) {
	for i := len(w.layers) - 1; i >= 0; i-- {
		l := w.layers[i]
		in := w.x
		var dx []float64
		if i > 0 {
			in = w.acts[i-1]
			w.grads[i-1] = grow(w.grads[i-1], w.rows*l.inSize())
			dx = w.grads[i-1]
		}
		lo, hi := w.offsets[i], w.offsets[i+1]
		l.backward(params[lo:hi], in, w.acts[i], w.grads[i], w.rows, &w.scr[i], grad[lo:hi], dx)
	}
}

// rowsOf returns the values of x as a contiguous rows × cols slice: the
// matrix's own storage when it has no gaps between rows (as for a matrix
// over an Arrow values buffer), else a copy in *buf.
func rowsOf(buf *[]float64, x *mat.Dense) (data []float64, rows, cols int) {
	if x.IsEmpty() {
		return nil, 0, 0
	}
	raw := x.RawMatrix()
	if raw.Stride == raw.Cols {
		return raw.Data[:raw.Rows*raw.Cols], raw.Rows, raw.Cols
	}
	*buf = grow(*buf, raw.Rows*raw.Cols)
	for r := 0; r < raw.Rows; r++ {
		copy((*buf)[r*raw.Cols:(r+1)*raw.Cols], raw.Data[r*raw.Stride:])
	}
	return *buf, raw.Rows, raw.Cols
}
