package models

import (
	"fmt"
	"math"
	"slices"
)

// OptimizerKind names an update rule.
type OptimizerKind string

// The optimizers.
const (
	// SGD is stochastic gradient descent with optional (Nesterov) momentum:
	// v ← μv + g, p ← p − η·v (Nesterov: p ← p − η·(g + μv)).
	SGD OptimizerKind = "sgd"
	// Adam is Kingma and Ba's Adam with bias correction:
	// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
	// p ← p − η·m̂ / (√v̂ + ε).
	Adam OptimizerKind = "adam"
	// Ridge takes no steps: a softmax or linear model's weights are solved
	// in closed form as ridge regression (FitRidge), once, on all the
	// training rows. An optimizer of this kind has no state and its
	// Update panics.
	Ridge OptimizerKind = "ridge"
)

// DefaultOptimizer is the update rule of a spec that names none.
const DefaultOptimizer = Adam

// DefaultLearningRate is the base rate of kind for a spec that names none:
// 0.001 for Adam, 0.01 for SGD (whose steps are not normalized).
func DefaultLearningRate(kind OptimizerKind) float64 {
	if kind == SGD {
		return 0.01
	}
	return 0.001
}

// Adam defaults, used where OptimizerDesc leaves Beta1, Beta2 or Epsilon
// zero.
const (
	DefaultBeta1   = 0.9
	DefaultBeta2   = 0.999
	DefaultEpsilon = 1e-8
)

// OptimizerDesc configures an Optimizer. It is plain data that encodes to
// JSON and back unchanged.
type OptimizerDesc struct {
	Kind OptimizerKind `json:"kind"`
	// LearningRate is the base rate η, > 0; Schedule scales it.
	LearningRate float64 `json:"learning_rate"`
	// Momentum μ of SGD, in [0, 1). Default 0, plain SGD.
	Momentum float64 `json:"momentum,omitempty"`
	// Nesterov selects Nesterov momentum for SGD.
	Nesterov bool `json:"nesterov,omitempty"`
	// Beta1, Beta2 and Epsilon of Adam; zero means DefaultBeta1,
	// DefaultBeta2 and DefaultEpsilon.
	Beta1   float64 `json:"beta1,omitempty"`
	Beta2   float64 `json:"beta2,omitempty"`
	Epsilon float64 `json:"epsilon,omitempty"`
	// WeightDecay λ ≥ 0 adds λ·w to the gradient of every weight (the
	// gradient of λ/2·‖w‖²), biases excepted. It is L2 regularization
	// applied inside the update, so with Adam it is scaled like the
	// gradient (Adam with L2, not AdamW).
	WeightDecay float64 `json:"weight_decay,omitempty"`
	// Schedule scales LearningRate over epochs or steps; default constant.
	Schedule Schedule `json:"schedule,omitzero"`
}

// Validate reports whether d configures an optimizer; the error wraps
// ErrOptimizer.
func (d OptimizerDesc) Validate() error {
	_, err := d.normalize()
	return err
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func (d OptimizerDesc) normalize() (OptimizerDesc, error) {
	bad := func(format string, args ...any) (OptimizerDesc, error) {
		return d, fmt.Errorf("%w: "+format, append([]any{ErrOptimizer}, args...)...)
	}
	switch d.Kind {
	case SGD:
		if !(d.Momentum >= 0 && d.Momentum < 1) {
			return bad("momentum = %v, want in [0, 1)", d.Momentum)
		}
		if d.Nesterov && d.Momentum == 0 {
			return bad("nesterov needs momentum > 0")
		}
		if d.Beta1 != 0 || d.Beta2 != 0 || d.Epsilon != 0 {
			return bad("beta1, beta2 and epsilon are for adam")
		}
	case Adam:
		if d.Momentum != 0 || d.Nesterov {
			return bad("momentum and nesterov are for sgd")
		}
		if d.Beta1 == 0 {
			d.Beta1 = DefaultBeta1
		}
		if d.Beta2 == 0 {
			d.Beta2 = DefaultBeta2
		}
		if d.Epsilon == 0 {
			d.Epsilon = DefaultEpsilon
		}
		if !(d.Beta1 > 0 && d.Beta1 < 1) || !(d.Beta2 > 0 && d.Beta2 < 1) {
			return bad("beta1 = %v, beta2 = %v, want both in (0, 1)", d.Beta1, d.Beta2)
		}
		if !(d.Epsilon > 0) || !finite(d.Epsilon) {
			return bad("epsilon = %v, want > 0", d.Epsilon)
		}
	case Ridge:
		if d.Momentum != 0 || d.Nesterov || d.Beta1 != 0 || d.Beta2 != 0 || d.Epsilon != 0 || d.WeightDecay != 0 || d.Schedule.Kind != "" {
			return bad("ridge is solved in closed form: momentum, nesterov, betas, epsilon, weight decay and schedules are for sgd and adam")
		}
		return d, nil
	case "":
		return bad("kind is required (%q, %q or %q)", SGD, Adam, Ridge)
	default:
		return bad("unknown kind %q (want %q, %q or %q)", d.Kind, SGD, Adam, Ridge)
	}
	if !(d.LearningRate > 0) || !finite(d.LearningRate) {
		return bad("learning rate = %v, want > 0", d.LearningRate)
	}
	if !(d.WeightDecay >= 0) || !finite(d.WeightDecay) {
		return bad("weight decay = %v, want ≥ 0", d.WeightDecay)
	}
	if err := d.Schedule.Validate(); err != nil {
		return d, err
	}
	if d.Schedule.Kind == "" {
		d.Schedule.Kind = Constant
	}
	if d.Schedule.Unit == "" {
		d.Schedule.Unit = PerEpoch
	}
	return d, nil
}

// Optimizer updates a model's parameters from gradients. It keeps the
// per-parameter state of its rule (SGD velocity, Adam moments) and counts
// steps and epochs for the schedule and for Adam's bias correction.
type Optimizer struct {
	desc   OptimizerDesc
	steps  int64
	epochs int64
	slots  [][]float64
}

// OptimizerState is an optimizer's mutable state as plain data, to
// serialize, to average across shards, or to continue training from.
type OptimizerState struct {
	// Steps counts updates; Epochs counts EndEpoch calls.
	Steps  int64 `json:"steps"`
	Epochs int64 `json:"epochs"`
	// Slots holds per-parameter vectors in Params order: for SGD with
	// momentum the velocity, for Adam the first then the second moment;
	// none for SGD without momentum.
	Slots [][]float64 `json:"slots"`
}

// NewOptimizer returns an optimizer for models of numParams parameters,
// with zero state. The error wraps ErrOptimizer.
func NewOptimizer(d OptimizerDesc, numParams int) (*Optimizer, error) {
	d, err := d.normalize()
	if err != nil {
		return nil, err
	}
	if numParams < 0 || numParams > MaxParams {
		return nil, fmt.Errorf("%w: %d parameters, want 0…%d", ErrOptimizer, numParams, MaxParams)
	}
	o := &Optimizer{desc: d, slots: make([][]float64, d.numSlots())}
	for i := range o.slots {
		o.slots[i] = make([]float64, numParams)
	}
	return o, nil
}

func (d OptimizerDesc) numSlots() int {
	switch {
	case d.Kind == Adam:
		return 2
	case d.Momentum > 0:
		return 1
	}
	return 0
}

// Desc returns the optimizer's descriptor with defaults filled in.
func (o *Optimizer) Desc() OptimizerDesc { return o.desc }

// Rate returns the learning rate the next update uses.
func (o *Optimizer) Rate() float64 {
	t := o.epochs
	if o.desc.Schedule.Unit == PerStep {
		t = o.steps
	}
	return o.desc.LearningRate * o.desc.Schedule.Factor(t)
}

// Steps returns the number of updates done.
func (o *Optimizer) Steps() int64 { return o.steps }

// Epochs returns the number of epochs ended.
func (o *Optimizer) Epochs() int64 { return o.epochs }

// EndEpoch counts one epoch; Trainer.Epoch calls it after its last step.
func (o *Optimizer) EndEpoch() { o.epochs++ }

// State returns a copy of the optimizer's state.
func (o *Optimizer) State() OptimizerState {
	s := OptimizerState{Steps: o.steps, Epochs: o.epochs, Slots: make([][]float64, len(o.slots))}
	for i, v := range o.slots {
		s.Slots[i] = slices.Clone(v)
	}
	return s
}

// SetState replaces the optimizer's state with a copy of s, which must
// have the number of slots of the optimizer's kind, each of the optimizer's
// parameter count, all finite (and Adam's second moments ≥ 0). The error
// wraps ErrOptimizer.
func (o *Optimizer) SetState(s OptimizerState) error {
	if s.Steps < 0 || s.Epochs < 0 {
		return fmt.Errorf("%w: state with %d steps, %d epochs", ErrOptimizer, s.Steps, s.Epochs)
	}
	if len(s.Slots) != len(o.slots) {
		return fmt.Errorf("%w: state with %d slots, %s needs %d", ErrOptimizer, len(s.Slots), o.desc.Kind, len(o.slots))
	}
	n := o.numParams()
	for i, v := range s.Slots {
		if len(v) != n {
			return fmt.Errorf("%w: state slot %d has %d values, want %d", ErrOptimizer, i, len(v), n)
		}
		for j, x := range v {
			if !finite(x) || (o.desc.Kind == Adam && i == 1 && x < 0) {
				return fmt.Errorf("%w: state slot %d value %d is %v", ErrOptimizer, i, j, x)
			}
		}
	}
	o.steps, o.epochs = s.Steps, s.Epochs
	for i, v := range s.Slots {
		copy(o.slots[i], v)
	}
	return nil
}

// Clone returns a deep copy of o.
func (o *Optimizer) Clone() *Optimizer {
	c := *o
	c.slots = make([][]float64, len(o.slots))
	for i, v := range o.slots {
		c.slots[i] = slices.Clone(v)
	}
	return &c
}

// numParams is the parameter count the optimizer was made for; without
// slots it is unknown and any count fits.
func (o *Optimizer) numParams() int {
	if len(o.slots) == 0 {
		return -1
	}
	return len(o.slots[0])
}

// Update applies one step to m's parameters given grad, the gradient of
// the loss with respect to m.Params(). grad is not modified. It panics if
// the lengths differ from the optimizer's.
func (o *Optimizer) Update(m *Model, grad []float64) {
	p := m.params
	if len(grad) != len(p) {
		panic(fmt.Sprintf("models: gradient of %d values for %d parameters", len(grad), len(p)))
	}
	if n := o.numParams(); n >= 0 && n != len(p) {
		panic(fmt.Sprintf("models: optimizer for %d parameters updating a model of %d", n, len(p)))
	}
	if o.desc.Kind == Ridge {
		panic("models: a ridge model is solved (FitRidge), not stepped")
	}
	lr := o.Rate()
	o.steps++
	for _, t := range m.tensors {
		lo, hi := t.Offset, t.Offset+len(t.Values)
		decay := o.desc.WeightDecay
		if t.Bias {
			decay = 0
		}
		switch {
		case o.desc.Kind == Adam:
			o.adam(p[lo:hi], grad[lo:hi], o.slots[0][lo:hi], o.slots[1][lo:hi], lr, decay)
		case len(o.slots) == 1:
			o.momentum(p[lo:hi], grad[lo:hi], o.slots[0][lo:hi], lr, decay)
		default:
			sgd(p[lo:hi], grad[lo:hi], lr, decay)
		}
	}
}

func sgd(p, g []float64, lr, decay float64) {
	g = g[:len(p)]
	for i, w := range p {
		p[i] = w - lr*(g[i]+decay*w)
	}
}

func (o *Optimizer) momentum(p, g, v []float64, lr, decay float64) {
	mu := o.desc.Momentum
	g, v = g[:len(p)], v[:len(p)]
	if o.desc.Nesterov {
		for i, w := range p {
			gi := g[i] + decay*w
			vi := mu*v[i] + gi
			v[i] = vi
			p[i] = w - lr*(gi+mu*vi)
		}
		return
	}
	for i, w := range p {
		vi := mu*v[i] + g[i] + decay*w
		v[i] = vi
		p[i] = w - lr*vi
	}
}

func (o *Optimizer) adam(p, g, m, v []float64, lr, decay float64) {
	b1, b2, eps := o.desc.Beta1, o.desc.Beta2, o.desc.Epsilon
	t := float64(o.steps)
	c1 := 1 - math.Pow(b1, t)
	c2 := math.Sqrt(1 - math.Pow(b2, t))
	// w − (lr/c1)·m/(√v/c2 + ε) = w − (lr·c2/c1)·m/(√v + ε·c2): one
	// division and one square root a parameter.
	step, epsC := lr*c2/c1, eps*c2
	a1, a2 := 1-b1, 1-b2
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for i, w := range p {
		gi := g[i] + decay*w
		mi := b1*m[i] + a1*gi
		vi := b2*v[i] + a2*gi*gi
		m[i], v[i] = mi, vi
		p[i] = w - step*mi/(math.Sqrt(vi)+epsC)
	}
}
