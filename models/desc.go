package models

import (
	"errors"
	"fmt"
	"slices"
)

// Kind names a model family.
type Kind string

// The model kinds.
const (
	// Softmax is multinomial logistic regression: one dense layer and a
	// softmax cross-entropy head.
	Softmax Kind = "softmax"
	// Linear is linear regression: one dense layer and a squared-error
	// head.
	Linear Kind = "linear"
	// MLP is a multilayer perceptron: dense hidden layers with an
	// activation, then a dense output layer and a head.
	MLP Kind = "mlp"
	// CNN is a small convolutional network for images: per entry of
	// Filters a 3×3 convolution (stride 1, zero padding 1), ReLU and 2×2
	// max-pooling (stride 2), then dense hidden layers as in MLP, a dense
	// output layer and a head.
	CNN Kind = "cnn"
)

// Activation names the nonlinearity of hidden dense layers.
type Activation string

// The activations.
const (
	ReLU Activation = "relu"
	Tanh Activation = "tanh"
)

// Head names the output of a model and the loss it is trained with.
type Head string

// The heads.
const (
	// SoftmaxHead turns the outputs into class probabilities and is trained
	// with the mean softmax cross-entropy.
	SoftmaxHead Head = "softmax"
	// SquaredHead outputs raw values and is trained with the mean over rows
	// of ½‖output − target‖².
	SquaredHead Head = "squared"
)

// Limits that bound what a descriptor may ask for, so that a descriptor read
// from an untrusted snapshot cannot make New allocate without bound.
const (
	// MaxDim is the largest input size, layer width, class count, output
	// count or filter count.
	MaxDim = 1 << 20
	// MaxImageSide is the largest image width or height of a CNN.
	MaxImageSide = 1 << 12
	// MaxLayers is the most hidden layers, and the most convolutions.
	MaxLayers = 64
	// MaxParams is the most parameters a model may have.
	MaxParams = 1 << 27
)

// Sentinel errors; errors returned by this package wrap one of them.
var (
	// ErrDesc means a model descriptor is invalid.
	ErrDesc = errors.New("models: invalid descriptor")
	// ErrParams means a parameter vector does not fit its descriptor.
	ErrParams = errors.New("models: parameters do not fit")
	// ErrOptimizer means an optimizer descriptor, schedule or state is
	// invalid.
	ErrOptimizer = errors.New("models: invalid optimizer")
	// ErrData means features or targets do not fit a model.
	ErrData = errors.New("models: data does not fit")
)

// Desc describes a model: everything but its parameters. It is plain data
// that encodes to JSON and back unchanged, and together with a parameter
// vector it rebuilds a model (FromParams).
//
// Fields a kind does not use must be zero. Zero values that have a default
// are filled in by New and FromParams, and Model.Desc reports the filled-in
// descriptor.
type Desc struct {
	Kind Kind `json:"kind"`
	// Inputs is the number of features per row. For CNN it may be 0, and
	// otherwise must equal Width·Height·Channels.
	Inputs int `json:"inputs,omitempty"`
	// Classes is the number of classes of a softmax head (≥ 2).
	Classes int `json:"classes,omitempty"`
	// Outputs is the number of regression targets of a squared-error head.
	// Default 1.
	Outputs int `json:"outputs,omitempty"`
	// Hidden lists the widths of the hidden dense layers (MLP: at least
	// one; CNN: any number, after the convolutions).
	Hidden []int `json:"hidden,omitempty"`
	// Activation of the hidden dense layers (MLP, CNN). Default ReLU.
	// Convolutions always use ReLU.
	Activation Activation `json:"activation,omitempty"`
	// Head is the output head (MLP, CNN). Softmax and Linear imply theirs;
	// for CNN the default is SoftmaxHead. Required for MLP.
	Head Head `json:"head,omitempty"`
	// Width, Height and Channels are the image size of a CNN. A feature
	// row holds the image row-major with the channels of a pixel adjacent
	// (height × width × channels), as featurize.Images writes grayscale
	// images with Channels = 1. Channels defaults to 1.
	Width    int `json:"width,omitempty"`
	Height   int `json:"height,omitempty"`
	Channels int `json:"channels,omitempty"`
	// Filters lists the output channels of the convolutions of a CNN (at
	// least one). Each 2×2 pooling halves the image, rounding down, so
	// Width and Height must be at least 2^len(Filters).
	Filters []int `json:"filters,omitempty"`
	// Labels optionally names the classes of a softmax head, in class index
	// order; when set it has Classes entries.
	Labels []string `json:"labels,omitempty"`
}

// Validate reports whether d describes a model, after filling in defaults.
// The error wraps ErrDesc and names the offending field.
func (d Desc) Validate() error {
	_, err := d.normalize()
	return err
}

// clone returns a deep copy of d.
func (d Desc) clone() Desc {
	d.Hidden = slices.Clone(d.Hidden)
	d.Filters = slices.Clone(d.Filters)
	d.Labels = slices.Clone(d.Labels)
	return d
}

// NumOutputs is the width of the model's output: Classes for a softmax
// head, Outputs for a squared-error head. It is 0 for an invalid d.
func (d Desc) NumOutputs() int {
	n, err := d.normalize()
	if err != nil {
		return 0
	}
	if n.head() == SoftmaxHead {
		return n.Classes
	}
	return n.Outputs
}

// head returns the head of a normalized descriptor.
func (d Desc) head() Head {
	switch d.Kind {
	case Softmax:
		return SoftmaxHead
	case Linear:
		return SquaredHead
	}
	return d.Head
}

func descErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrDesc}, args...)...)
}

// normalize fills in defaults and checks every field; the result shares no
// slices with d.
func (d Desc) normalize() (Desc, error) {
	d = d.clone()
	switch d.Kind {
	case Softmax, Linear:
		if len(d.Hidden) > 0 {
			return d, descErr("kind %s: hidden must be empty, have %v", d.Kind, d.Hidden)
		}
		if d.Activation != "" {
			return d, descErr("kind %s: activation must be empty, have %q", d.Kind, d.Activation)
		}
		if d.Head != "" && d.Head != d.head() {
			return d, descErr("kind %s: head must be empty or %q, have %q", d.Kind, d.head(), d.Head)
		}
		d.Head = ""
	case MLP:
		if len(d.Hidden) == 0 {
			return d, descErr("kind mlp: hidden needs at least one layer width")
		}
		if d.Head == "" {
			return d, descErr("kind mlp: head is required (%q or %q)", SoftmaxHead, SquaredHead)
		}
	case CNN:
		if d.Head == "" {
			d.Head = SoftmaxHead
		}
	case "":
		return d, descErr("kind is required (%q, %q, %q or %q)", Softmax, Linear, MLP, CNN)
	default:
		return d, descErr("unknown kind %q (want %q, %q, %q or %q)", d.Kind, Softmax, Linear, MLP, CNN)
	}
	if d.Kind == MLP || d.Kind == CNN {
		switch d.Activation {
		case "":
			d.Activation = ReLU
		case ReLU, Tanh:
		default:
			return d, descErr("unknown activation %q (want %q or %q)", d.Activation, ReLU, Tanh)
		}
		switch d.Head {
		case SoftmaxHead, SquaredHead:
		default:
			return d, descErr("unknown head %q (want %q or %q)", d.Head, SoftmaxHead, SquaredHead)
		}
	}
	if len(d.Hidden) > MaxLayers {
		return d, descErr("%d hidden layers, at most %d", len(d.Hidden), MaxLayers)
	}
	for i, h := range d.Hidden {
		if h < 1 || h > MaxDim {
			return d, descErr("hidden[%d] = %d, want 1…%d", i, h, MaxDim)
		}
	}

	if d.Kind == CNN {
		if d.Channels == 0 {
			d.Channels = 1
		}
		if d.Width < 1 || d.Width > MaxImageSide || d.Height < 1 || d.Height > MaxImageSide {
			return d, descErr("kind cnn: image %d×%d, want width and height 1…%d", d.Width, d.Height, MaxImageSide)
		}
		if d.Channels < 1 || d.Channels > MaxDim {
			return d, descErr("kind cnn: channels = %d, want 1…%d", d.Channels, MaxDim)
		}
		if len(d.Filters) == 0 {
			return d, descErr("kind cnn: filters needs at least one convolution")
		}
		if len(d.Filters) > MaxLayers {
			return d, descErr("kind cnn: %d convolutions, at most %d", len(d.Filters), MaxLayers)
		}
		for i, f := range d.Filters {
			if f < 1 || f > MaxDim {
				return d, descErr("filters[%d] = %d, want 1…%d", i, f, MaxDim)
			}
		}
		if d.Width>>len(d.Filters) < 1 || d.Height>>len(d.Filters) < 1 {
			return d, descErr("kind cnn: image %d×%d too small for %d poolings, want sides ≥ %d",
				d.Width, d.Height, len(d.Filters), 1<<len(d.Filters))
		}
		pixels := d.Width * d.Height
		if d.Channels > MaxParams/pixels {
			return d, descErr("kind cnn: %d×%d×%d inputs, at most %d", d.Width, d.Height, d.Channels, MaxParams)
		}
		in := pixels * d.Channels
		if d.Inputs != 0 && d.Inputs != in {
			return d, descErr("kind cnn: inputs = %d, want 0 or width·height·channels = %d", d.Inputs, in)
		}
		d.Inputs = in
	} else {
		if d.Width != 0 || d.Height != 0 || d.Channels != 0 || len(d.Filters) != 0 {
			return d, descErr("kind %s: width, height, channels and filters are for kind cnn", d.Kind)
		}
		if d.Inputs < 1 || d.Inputs > MaxDim {
			return d, descErr("inputs = %d, want 1…%d", d.Inputs, MaxDim)
		}
	}

	switch d.head() {
	case SoftmaxHead:
		if d.Classes < 2 || d.Classes > MaxDim {
			return d, descErr("classes = %d, want 2…%d for a softmax head", d.Classes, MaxDim)
		}
		if d.Outputs != 0 {
			return d, descErr("outputs = %d is for a squared-error head; a softmax head has classes", d.Outputs)
		}
		if len(d.Labels) != 0 && len(d.Labels) != d.Classes {
			return d, descErr("%d labels for %d classes", len(d.Labels), d.Classes)
		}
	case SquaredHead:
		if d.Classes != 0 || len(d.Labels) != 0 {
			return d, descErr("classes and labels are for a softmax head")
		}
		if d.Outputs == 0 {
			d.Outputs = 1
		}
		if d.Outputs < 1 || d.Outputs > MaxDim {
			return d, descErr("outputs = %d, want 1…%d", d.Outputs, MaxDim)
		}
	}

	if _, err := d.countParams(); err != nil {
		return d, err
	}
	return d, nil
}

// countParams counts the parameters of a descriptor whose sizes are
// individually in range, refusing totals above MaxParams without
// overflowing.
func (d Desc) countParams() (int, error) {
	total := 0
	add := func(fanIn, fanOut int) error {
		// fanIn, fanOut ≤ MaxParams < 2^27, so the product fits in int64.
		n := int64(fanIn+1) * int64(fanOut)
		if n > int64(MaxParams-total) {
			return descErr("more than %d parameters", MaxParams)
		}
		total += int(n)
		return nil
	}
	in := d.Inputs
	if d.Kind == CNN {
		w, h, c := d.Width, d.Height, d.Channels
		for _, f := range d.Filters {
			if err := add(9*c, f); err != nil {
				return 0, err
			}
			w, h, c = w/2, h/2, f
		}
		if int64(w)*int64(h)*int64(c) > MaxParams {
			return 0, descErr("more than %d features after the convolutions", MaxParams)
		}
		in = w * h * c
	}
	for _, n := range d.Hidden {
		if err := add(in, n); err != nil {
			return 0, err
		}
		in = n
	}
	out := d.Classes
	if d.head() == SquaredHead {
		out = d.Outputs
	}
	if err := add(in, out); err != nil {
		return 0, err
	}
	return total, nil
}
