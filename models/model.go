package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

// Model is a model of any kind: its descriptor, its layers and all its
// parameters in one flat vector.
//
// The flat vector holds each layer's tensors in layer order (Tensors lists
// them); a dense layer stores its weights as an inputs × outputs matrix,
// row-major, then its biases. Models of one descriptor therefore average,
// compare and serialize as plain []float64.
//
// A model is not safe for concurrent use while a Trainer updates it; any
// number of Predictors may read one model at once.
type Model struct {
	desc    Desc
	params  []float64
	layers  []layer
	offsets []int // offsets[i] is where layer i's parameters start
	tensors []Tensor
}

// Tensor is one named block of a model's parameters.
type Tensor struct {
	// Name is the layer name and role, e.g. "conv0.weight", "dense1.bias",
	// "output.weight".
	Name string
	// Shape: [inputs, outputs] for a dense weight matrix; [3, 3, in
	// channels, out channels] for a convolution kernel, the output channel
	// varying fastest; [outputs] for biases.
	Shape []int
	// Bias marks biases, which weight decay leaves alone.
	Bias bool
	// Offset is where the tensor starts in Params.
	Offset int
	// Values is the tensor's slice of Params, row-major: writing to it
	// changes the model.
	Values []float64
}

// New returns a model of the descriptor d with freshly initialized
// parameters: hidden dense layers followed by ReLU and convolutions He
// normal, tanh layers and output layers of MLP and CNN Glorot uniform,
// Softmax and Linear all zero (the usual start of a convex problem, so for
// them the seed does not matter); biases zero. The same d and seed give
// bit-identical parameters.
func New(d Desc, seed uint64) (*Model, error) {
	m, err := build(d)
	if err != nil {
		return nil, err
	}
	m.params = make([]float64, m.offsets[len(m.layers)])
	rng := rand.New(rand.NewPCG(seed, seed))
	for i, l := range m.layers {
		l.initParams(m.params[m.offsets[i]:m.offsets[i+1]], rng)
	}
	m.bindTensors()
	return m, nil
}

// FromParams returns a model of the descriptor d with a copy of params,
// which must have NumParams values, all finite. Errors wrap ErrDesc or
// ErrParams.
func FromParams(d Desc, params []float64) (*Model, error) {
	m, err := build(d)
	if err != nil {
		return nil, err
	}
	if n := m.offsets[len(m.layers)]; len(params) != n {
		return nil, fmt.Errorf("%w: %d values for a %s model of %d parameters", ErrParams, len(params), m.desc.Kind, n)
	}
	for i, v := range params {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: parameter %d is %v", ErrParams, i, v)
		}
	}
	m.params = slices.Clone(params)
	m.bindTensors()
	return m, nil
}

// NumParams returns how many parameters a model of d has, or an error
// wrapping ErrDesc.
func NumParams(d Desc) (int, error) {
	n, err := d.normalize()
	if err != nil {
		return 0, err
	}
	return n.countParams()
}

// build validates d and lays out the model's layers, without parameters.
func build(d Desc) (*Model, error) {
	d, err := d.normalize()
	if err != nil {
		return nil, err
	}
	m := &Model{desc: d}
	names := []string{}
	add := func(l layer, name string) {
		m.layers = append(m.layers, l)
		names = append(names, name)
	}
	in := d.Inputs
	if d.Kind == CNN {
		h, w, c := d.Height, d.Width, d.Channels
		for i, f := range d.Filters {
			// ReLU is monotone, so it commutes with max-pooling: applied
			// after the pool it computes the same on a quarter of the values.
			add(&conv{h: h, w: w, cin: c, cout: f}, "conv"+strconv.Itoa(i))
			add(&pool{h: h, w: w, c: f}, "")
			h, w, c = h/2, w/2, f
			add(&activation{size: h * w * f, fn: ReLU}, "")
		}
		in = h * w * c
	}
	hiddenInit := initHe
	if d.Activation == Tanh {
		hiddenInit = initGlorot
	}
	for i, n := range d.Hidden {
		add(&dense{in: in, out: n, init: hiddenInit}, "dense"+strconv.Itoa(i))
		add(&activation{size: n, fn: d.Activation}, "")
		in = n
	}
	outInit := initGlorot
	if d.Kind == Softmax || d.Kind == Linear {
		outInit = initZero
	}
	add(&dense{in: in, out: d.NumOutputs(), init: outInit}, "output")

	m.offsets = make([]int, len(m.layers)+1)
	for i, l := range m.layers {
		m.offsets[i+1] = m.offsets[i] + l.numParams()
		for _, t := range l.tensors(names[i]) {
			t.Offset += m.offsets[i]
			m.tensors = append(m.tensors, t)
		}
	}
	return m, nil
}

// bindTensors points the tensors' Values at m.params.
func (m *Model) bindTensors() {
	for i := range m.tensors {
		t := &m.tensors[i]
		n := 1
		for _, s := range t.Shape {
			n *= s
		}
		t.Values = m.params[t.Offset : t.Offset+n : t.Offset+n]
	}
}

// Desc returns the model's descriptor with defaults filled in.
func (m *Model) Desc() Desc { return m.desc.clone() }

// Inputs returns the number of features per row.
func (m *Model) Inputs() int { return m.desc.Inputs }

// Outputs returns the number of values per row of Predict: classes or
// regression targets.
func (m *Model) Outputs() int { return m.layers[len(m.layers)-1].outSize() }

// Head returns the model's head.
func (m *Model) Head() Head { return m.desc.head() }

// NumParams returns the length of Params.
func (m *Model) NumParams() int { return len(m.params) }

// Params returns the model's parameter vector itself, not a copy: writing
// to it changes the model, which is how parameters are averaged or loaded
// in place. Its layout is fixed by the descriptor (see Tensors).
func (m *Model) Params() []float64 { return m.params }

// Tensors lists the parameter blocks in Params order. The Values alias the
// model; the Shapes are the caller's.
func (m *Model) Tensors() []Tensor {
	ts := slices.Clone(m.tensors)
	for i := range ts {
		ts[i].Shape = slices.Clone(ts[i].Shape)
	}
	return ts
}

// Clone returns a deep copy of m.
func (m *Model) Clone() *Model {
	c := *m
	c.desc = m.desc.clone()
	c.params = slices.Clone(m.params)
	c.tensors = slices.Clone(m.tensors)
	c.bindTensors()
	return &c
}

// String describes the model's layers, e.g. "mlp 64→100(relu)→10 softmax" or
// "cnn 8×8×1→conv3×3(8)→pool2×2→10 softmax" (width × height × channels).
func (m *Model) String() string {
	s := string(m.desc.Kind) + " " + strconv.Itoa(m.desc.Inputs)
	if m.desc.Kind == CNN {
		s = fmt.Sprintf("cnn %d×%d×%d", m.desc.Width, m.desc.Height, m.desc.Channels)
	}
	for i, l := range m.layers {
		switch l := l.(type) {
		case *conv:
			s += fmt.Sprintf("→conv3×3(%d)", l.cout)
		case *pool:
			s += "→pool2×2"
		case *dense:
			s += "→" + strconv.Itoa(l.out)
		case *activation:
			// Convolutions always use ReLU; name only dense activations.
			if _, afterPool := m.layers[i-1].(*pool); !afterPool {
				s += "(" + string(l.fn) + ")"
			}
		}
	}
	return s + " " + string(m.desc.head())
}
