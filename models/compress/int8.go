package compress

import (
	"fmt"
	"math"

	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/snapshot"
	"gonum.org/v1/gonum/mat"
)

// Int8Predictor runs a dense model (softmax, linear or MLP) forward on its
// int8 weights with integer kernels: each layer quantizes its input rows
// to int8 (symmetric, one scale per row, chosen from the row), multiplies
// them with the int8 weights accumulating in int32, and scales the sums
// back by the row's scale times the output channel's, then adds the
// float32 bias. The alternative is to dequantize the weights once at load
// (FromTensors) and predict in float64; BenchmarkPredictInt8 measures
// both. An Int8Predictor is not safe for concurrent use.
type Int8Predictor struct {
	layers  []int8Layer
	act     models.Activation
	softmax bool
	// Buffers, grown to the largest chunk seen.
	in, out []float32
	rs      []float32 // each row's scale
	q       []int8
}

// int8Layer is one dense layer: weights transposed to [out][in] so that
// each output's sum reads both operands in order.
type int8Layer struct {
	in, out int
	w       []int8
	scales  []float32
	bias    []float32
}

// NewInt8Predictor builds the integer-kernel predictor of a snapshot's
// model: desc and its tensors, whose weights must be int8.
func NewInt8Predictor(desc models.Desc, ts []snapshot.Tensor) (*Int8Predictor, error) {
	if desc.Kind == models.CNN {
		return nil, fmt.Errorf("compress: integer kernels cover dense models; a cnn predicts on dequantized weights (FromTensors)")
	}
	m, err := models.New(desc, 1)
	if err != nil {
		return nil, err
	}
	stored, err := matchTensors(m, ts)
	if err != nil {
		return nil, err
	}
	p := &Int8Predictor{act: m.Desc().Activation, softmax: m.Head() == models.SoftmaxHead}
	want := m.Tensors()
	for k := 0; k+1 < len(want); k += 2 {
		wt, w, b := want[k], stored[k], stored[k+1]
		switch {
		case len(wt.Shape) != 2:
			return nil, fmt.Errorf("compress: tensor %s %v is not a dense layer's", w.Name, w.Shape)
		case w.DType != snapshot.Int8:
			return nil, fmt.Errorf("compress: tensor %s is %s; integer kernels need int8 weights", w.Name, w.DType)
		}
		in, out := wt.Shape[0], wt.Shape[1]
		l := int8Layer{in: in, out: out, w: make([]int8, in*out), scales: w.Scales, bias: make([]float32, out)}
		for k, v := range w.I8 {
			at := k
			if w.Sparse() {
				at = int(w.Index[k])
			}
			i, j := at/out, at%out
			l.w[j*in+i] = v
		}
		bias := make([]float64, out)
		if err := dequantize(bias, b); err != nil {
			return nil, err
		}
		for j, v := range bias {
			l.bias[j] = float32(v)
		}
		p.layers = append(p.layers, l)
	}
	return p, nil
}

// Inputs is the number of features a row has.
func (p *Int8Predictor) Inputs() int { return p.layers[0].in }

// Outputs is the number of values a row's prediction has.
func (p *Int8Predictor) Outputs() int { return p.layers[len(p.layers)-1].out }

// int8Chunk is the rows a pass runs through the layers at once.
const int8Chunk = 256

// Predict writes the model's outputs for the rows of x into dst, as
// models.Predictor does: class probabilities for a softmax head, values
// for a squared-error head. dst must be rows × Outputs, or empty.
func (p *Int8Predictor) Predict(dst, x *mat.Dense) {
	if x.IsEmpty() {
		return
	}
	rows, cols := x.Dims()
	if cols != p.Inputs() {
		panic(fmt.Sprintf("compress: shape mismatch: %d features per row, the model takes %d", cols, p.Inputs()))
	}
	k := p.Outputs()
	if dst.IsEmpty() {
		dst.ReuseAs(rows, k)
	}
	if r, c := dst.Dims(); r != rows || c != k {
		panic(fmt.Sprintf("compress: shape mismatch: destination %d×%d for %d rows of %d outputs", r, c, rows, k))
	}
	raw, out := x.RawMatrix(), dst.RawMatrix()
	width := 0
	for _, l := range p.layers {
		width = max(width, l.in, l.out)
	}
	for start := 0; start < rows; start += int8Chunk {
		n := min(int8Chunk, rows-start)
		p.in, p.out = growF32(p.in, n*width), growF32(p.out, n*width)
		for i := 0; i < n; i++ {
			row := raw.Data[(start+i)*raw.Stride:][:cols]
			for j, v := range row {
				p.in[i*cols+j] = float32(v)
			}
		}
		for li := range p.layers {
			l := &p.layers[li]
			p.layer(l, n)
			if li < len(p.layers)-1 {
				activate(p.out[:n*l.out], p.act)
			}
			p.in, p.out = p.out, p.in
		}
		for i := 0; i < n; i++ {
			z := p.in[i*k : (i+1)*k]
			o := out.Data[(start+i)*out.Stride:][:k]
			if p.softmax {
				softmax32(o, z)
			} else {
				for j, v := range z {
					o[j] = float64(v)
				}
			}
		}
	}
}

// layer runs n rows of p.in through l into p.out: it quantizes every row,
// then computes each output channel for four rows at a time, so that each
// weight loaded serves four rows.
func (p *Int8Predictor) layer(l *int8Layer, n int) {
	if cap(p.q) < n*l.in {
		p.q = make([]int8, n*l.in)
	}
	if cap(p.rs) < n {
		p.rs = make([]float32, n)
	}
	q, rs := p.q[:n*l.in], p.rs[:n]
	for r := 0; r < n; r++ {
		x := p.in[r*l.in : (r+1)*l.in]
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		qr := q[r*l.in : (r+1)*l.in]
		if amax == 0 {
			clear(qr)
			rs[r] = 0
			continue
		}
		rs[r] = amax / 127
		inv := 127 / amax
		for i, v := range x {
			qr[i] = int8(roundHalfAway(v * inv))
		}
	}
	in, out := l.in, l.out
	r := 0
	for ; r+4 <= n; r += 4 {
		q0, q1, q2, q3 := q[r*in:(r+1)*in], q[(r+1)*in:(r+2)*in], q[(r+2)*in:(r+3)*in], q[(r+3)*in:(r+4)*in]
		for j := 0; j < out; j++ {
			d0, d1, d2, d3 := dot4Int8(q0, q1, q2, q3, l.w[j*in:(j+1)*in])
			sc, b := l.scales[j], l.bias[j]
			p.out[r*out+j] = float32(d0)*rs[r]*sc + b
			p.out[(r+1)*out+j] = float32(d1)*rs[r+1]*sc + b
			p.out[(r+2)*out+j] = float32(d2)*rs[r+2]*sc + b
			p.out[(r+3)*out+j] = float32(d3)*rs[r+3]*sc + b
		}
	}
	for ; r < n; r++ {
		qr := q[r*in : (r+1)*in]
		for j := 0; j < out; j++ {
			p.out[r*out+j] = float32(dotInt8(qr, l.w[j*in:(j+1)*in]))*rs[r]*l.scales[j] + l.bias[j]
		}
	}
}

// dot4Int8 is dotInt8 of four rows with the same weights.
func dot4Int8(a0, a1, a2, a3, w []int8) (int64, int64, int64, int64) {
	var t0, t1, t2, t3 int64
	for len(w) > 0 {
		n := min(len(w), 1<<16)
		b0, b1, b2, b3 := a0[:n], a1[:n], a2[:n], a3[:n]
		var s0, s1, s2, s3 int32
		for i, v := range w[:n] {
			c := int32(v)
			s0 += int32(b0[i]) * c
			s1 += int32(b1[i]) * c
			s2 += int32(b2[i]) * c
			s3 += int32(b3[i]) * c
		}
		t0, t1, t2, t3 = t0+int64(s0), t1+int64(s1), t2+int64(s2), t3+int64(s3)
		a0, a1, a2, a3, w = a0[n:], a1[n:], a2[n:], a3[n:], w[n:]
	}
	return t0, t1, t2, t3
}

// dotInt8 is the sum of a[i]·b[i], accumulated in int32: with |a|, |b| ≤
// 127 a sum of 65,536 terms stays below 2³⁰, so each such run is added
// into an int64 (models.MaxDim inputs would overflow int32).
func dotInt8(a, b []int8) int64 {
	b = b[:len(a)]
	var total int64
	for len(a) > 0 {
		n := min(len(a), 1<<16)
		var s0, s1, s2, s3 int32
		i := 0
		for ; i+4 <= n; i += 4 {
			s0 += int32(a[i]) * int32(b[i])
			s1 += int32(a[i+1]) * int32(b[i+1])
			s2 += int32(a[i+2]) * int32(b[i+2])
			s3 += int32(a[i+3]) * int32(b[i+3])
		}
		for ; i < n; i++ {
			s0 += int32(a[i]) * int32(b[i])
		}
		total += int64(s0) + int64(s1) + int64(s2) + int64(s3)
		a, b = a[n:], b[n:]
	}
	return total
}

func activate(v []float32, fn models.Activation) {
	switch fn {
	case models.Tanh:
		for i, x := range v {
			v[i] = float32(math.Tanh(float64(x)))
		}
	default:
		for i, x := range v {
			v[i] = max(x, 0)
		}
	}
}

// softmax32 writes the softmax of z into dst.
func softmax32(dst []float64, z []float32) {
	m := z[0]
	for _, v := range z {
		m = max(m, v)
	}
	var sum float64
	for i, v := range z {
		e := math.Exp(float64(v - m))
		dst[i] = e
		sum += e
	}
	for i := range dst {
		dst[i] /= sum
	}
}

func growF32(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

func roundHalfAway(v float32) float32 {
	if v < 0 {
		return -float32(int32(-v + 0.5))
	}
	return float32(int32(v + 0.5))
}
