package models

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Gradient checks compare analytic gradients with central differences
// (f(θ+h) − f(θ−h)) / 2h. With h = 1e-5 the truncation error is O(h²) ≈
// 1e-10 times the third derivative and the rounding error about
// 1e-16·|f|/h ≈ 1e-10, so agreement to gradTol relative (plus gradAbs for
// gradients near zero) leaves a wide margin, while a wrong gradient is off
// by O(1).
const (
	gradStep = 1e-5
	gradTol  = 1e-6
	gradAbs  = 1e-8
)

// gradClose reports whether an analytic gradient a matches a numeric n.
func gradClose(a, n float64) bool {
	return math.Abs(a-n) <= gradTol*max(math.Abs(a), math.Abs(n))+gradAbs
}

func normals(rng *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * rng.NormFloat64()
	}
	return v
}

func dot(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// checkLayer checks a layer's parameter and input gradients for the scalar
// f(p, x) = Σ r ⊙ forward(p, x) with random p, x and r.
func checkLayer(t *testing.T, l layer, rows int, rng *rand.Rand) {
	t.Helper()
	p := normals(rng, l.numParams(), 0.5)
	x := normals(rng, rows*l.inSize(), 1)
	r := normals(rng, rows*l.outSize(), 1)
	y := make([]float64, rows*l.outSize())
	var s scratch
	f := func() float64 {
		l.forward(p, x, y, rows, &s)
		return dot(r, y)
	}
	f()
	g := make([]float64, l.numParams())
	dx := make([]float64, len(x))
	l.backward(p, x, y, r, rows, &s, g, dx)

	check := func(what string, v, analytic []float64) {
		t.Helper()
		bad := 0
		for i := range v {
			orig := v[i]
			v[i] = orig + gradStep
			fp := f()
			v[i] = orig - gradStep
			fm := f()
			v[i] = orig
			num := (fp - fm) / (2 * gradStep)
			if !gradClose(analytic[i], num) {
				if bad++; bad <= 5 {
					t.Errorf("%s[%d]: analytic %.10g, numeric %.10g", what, i, analytic[i], num)
				}
			}
		}
	}
	check("∂f/∂p", p, g)
	check("∂f/∂x", x, dx)
}

func TestLayerGradients(t *testing.T) {
	tests := []struct {
		name string
		l    layer
		rows int
	}{
		{"dense 1×1", &dense{in: 1, out: 1}, 1},
		{"dense 5→3", &dense{in: 5, out: 3}, 4},
		{"dense 7→11", &dense{in: 7, out: 11}, 3},
		{"relu", &activation{size: 6, fn: ReLU}, 3},
		{"tanh", &activation{size: 6, fn: Tanh}, 3},
		{"conv 3×3×1→2", &conv{h: 3, w: 3, cin: 1, cout: 2}, 2},
		{"conv 5×4×2→3", &conv{h: 5, w: 4, cin: 2, cout: 3}, 2},
		{"conv 1×6×3→1", &conv{h: 1, w: 6, cin: 3, cout: 1}, 1},
		{"conv 2×2×1→1", &conv{h: 2, w: 2, cin: 1, cout: 1}, 3},
		{"pool 4×4×1", &pool{h: 4, w: 4, c: 1}, 2},
		{"pool 5×3×2 (odd sides)", &pool{h: 5, w: 3, c: 2}, 2},
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkLayer(t, tt.l, tt.rows, rng) })
	}
}

// checkLoss checks the gradient a loss writes into dz against central
// differences of its value with respect to the outputs z.
func checkLoss(t *testing.T, z []float64, loss func(dz []float64) float64) {
	t.Helper()
	dz := make([]float64, len(z))
	loss(dz)
	for i := range z {
		orig := z[i]
		z[i] = orig + gradStep
		fp := loss(nil)
		z[i] = orig - gradStep
		fm := loss(nil)
		z[i] = orig
		if num := (fp - fm) / (2 * gradStep); !gradClose(dz[i], num) {
			t.Errorf("∂loss/∂z[%d]: analytic %.10g, numeric %.10g", i, dz[i], num)
		}
	}
}

func TestHeadGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	const rows, k = 5, 4
	t.Run("softmax cross-entropy", func(t *testing.T) {
		z := normals(rng, rows*k, 3)
		y := []int{0, 3, 1, 1, 2}
		checkLoss(t, z, func(dz []float64) float64 { return softmaxCrossEntropy(dz, z, rows, k, y) })
	})
	t.Run("softmax cross-entropy, large logits", func(t *testing.T) {
		z := normals(rng, rows*k, 3)
		for i := range z {
			z[i] += 800 // exp would overflow without the shift
		}
		y := []int{2, 2, 0, 3, 1}
		checkLoss(t, z, func(dz []float64) float64 { return softmaxCrossEntropy(dz, z, rows, k, y) })
	})
	t.Run("squared error", func(t *testing.T) {
		z := normals(rng, rows*k, 2)
		target := normals(rng, rows*k, 2)
		checkLoss(t, z, func(dz []float64) float64 { return squaredError(dz, z, rows, k, target) })
	})
}

func TestSoftmaxCrossEntropyValues(t *testing.T) {
	tests := []struct {
		z    []float64
		y    int
		want float64
	}{
		{[]float64{0, 0}, 0, math.Ln2},
		{[]float64{1000, 0}, 0, 0},
		{[]float64{1000, 0}, 1, 1000},
		{[]float64{-1000, -1000, -1000}, 2, math.Log(3)},
		{[]float64{1, 2, 3}, 2, math.Log(math.Exp(-2) + math.Exp(-1) + 1)},
	}
	for _, tt := range tests {
		got := softmaxCrossEntropy(nil, tt.z, 1, len(tt.z), []int{tt.y})
		if math.Abs(got-tt.want) > 1e-12*max(1, tt.want) {
			t.Errorf("cross-entropy(%v, %d) = %v, want %v", tt.z, tt.y, got, tt.want)
		}
	}
}

// modelDescs are small models of every kind and head, for checks that
// walk all of them.
var modelDescs = []Desc{
	{Kind: Softmax, Inputs: 5, Classes: 3},
	{Kind: Linear, Inputs: 4},
	{Kind: Linear, Inputs: 4, Outputs: 2},
	{Kind: MLP, Inputs: 5, Hidden: []int{6}, Head: SoftmaxHead, Classes: 3},
	{Kind: MLP, Inputs: 4, Hidden: []int{5, 3}, Activation: Tanh, Head: SquaredHead, Outputs: 2},
	{Kind: MLP, Inputs: 3, Hidden: []int{4, 4}, Activation: ReLU, Head: SquaredHead},
	{Kind: CNN, Width: 4, Height: 6, Channels: 2, Filters: []int{3}, Classes: 3},
	{Kind: CNN, Width: 5, Height: 4, Filters: []int{2, 3}, Hidden: []int{4}, Activation: Tanh, Classes: 2},
	{Kind: CNN, Width: 4, Height: 4, Filters: []int{2}, Head: SquaredHead},
}

// randomBatch returns rows of random features and matching random targets
// for m.
func randomBatch(m *Model, rows int, rng *rand.Rand) (*mat.Dense, Targets) {
	x := mat.NewDense(rows, m.Inputs(), normals(rng, rows*m.Inputs(), 1))
	if m.Head() == SoftmaxHead {
		c := make([]int, rows)
		for i := range c {
			c[i] = rng.IntN(m.Outputs())
		}
		return x, Targets{Classes: c}
	}
	return x, Targets{Values: normals(rng, rows*m.Outputs(), 1)}
}

func TestModelGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, d := range modelDescs {
		m, err := New(d, 1)
		if err != nil {
			t.Fatalf("%+v: %v", d, err)
		}
		t.Run(m.String(), func(t *testing.T) {
			p := m.Params()
			copy(p, normals(rng, len(p), 0.5))
			x, y := randomBatch(m, 3, rng)
			tr := NewTrainer(m, mustOptimizer(t, OptimizerDesc{Kind: SGD, LearningRate: 0.1}, m))
			g := make([]float64, len(p))
			loss := tr.Gradient(g, x, y)
			if ev := Evaluate(m, x, y).Loss; math.Abs(ev-loss) > 1e-12*max(1, loss) {
				t.Errorf("Gradient loss %v, Evaluate loss %v", loss, ev)
			}
			scratch := make([]float64, len(p))
			bad := 0
			for i := range p {
				orig := p[i]
				p[i] = orig + gradStep
				fp := tr.Gradient(scratch, x, y)
				p[i] = orig - gradStep
				fm := tr.Gradient(scratch, x, y)
				p[i] = orig
				if num := (fp - fm) / (2 * gradStep); !gradClose(g[i], num) {
					if bad++; bad <= 5 {
						t.Errorf("∂loss/∂p[%d]: analytic %.10g, numeric %.10g", i, g[i], num)
					}
				}
			}
		})
	}
}

func mustOptimizer(t testing.TB, d OptimizerDesc, m *Model) *Optimizer {
	t.Helper()
	o, err := NewOptimizer(d, m.NumParams())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestConvForward compares the im2col convolution with the textbook sum
// over the 3×3 neighbourhood.
func TestConvForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, l := range []*conv{{h: 5, w: 4, cin: 2, cout: 3}, {h: 1, w: 1, cin: 1, cout: 2}, {h: 3, w: 7, cin: 1, cout: 1}} {
		const rows = 2
		p := normals(rng, l.numParams(), 1)
		x := normals(rng, rows*l.inSize(), 1)
		y := make([]float64, rows*l.outSize())
		l.forward(p, x, y, rows, &scratch{})
		k := 9 * l.cin
		for n := 0; n < rows; n++ {
			for yy := 0; yy < l.h; yy++ {
				for xx := 0; xx < l.w; xx++ {
					for o := 0; o < l.cout; o++ {
						want := p[k*l.cout+o]
						for ky := 0; ky < 3; ky++ {
							for kx := 0; kx < 3; kx++ {
								sy, sx := yy+ky-1, xx+kx-1
								if sy < 0 || sy >= l.h || sx < 0 || sx >= l.w {
									continue
								}
								for c := 0; c < l.cin; c++ {
									in := x[((n*l.h+sy)*l.w+sx)*l.cin+c]
									want += in * p[((ky*3+kx)*l.cin+c)*l.cout+o]
								}
							}
						}
						got := y[((n*l.h+yy)*l.w+xx)*l.cout+o]
						if math.Abs(got-want) > 1e-12*max(1, math.Abs(want)) {
							t.Errorf("%+v: out[%d,%d,%d,%d] = %v, want %v", *l, n, yy, xx, o, got, want)
						}
					}
				}
			}
		}
	}
}

func TestPoolForward(t *testing.T) {
	l := &pool{h: 3, w: 4, c: 2}
	// One image, channels interleaved: channel 0 holds 0…11, channel 1
	// holds their negatives; the third row is dropped.
	x := make([]float64, l.inSize())
	for i := 0; i < 12; i++ {
		x[2*i], x[2*i+1] = float64(i), -float64(i)
	}
	y := make([]float64, l.outSize())
	var s scratch
	l.forward(nil, x, y, 1, &s)
	want := []float64{5, 0, 7, -2}
	for i := range want {
		if y[i] != want[i] {
			t.Fatalf("pool = %v, want %v", y, want)
		}
	}
	dx := make([]float64, len(x))
	l.backward(nil, x, y, []float64{1, 2, 3, 4}, 1, &s, nil, dx)
	wantDx := make([]float64, len(x))
	wantDx[2*5], wantDx[2*0+1], wantDx[2*7], wantDx[2*2+1] = 1, 2, 3, 4
	for i := range wantDx {
		if dx[i] != wantDx[i] {
			t.Fatalf("pool backward = %v, want %v", dx, wantDx)
		}
	}
}

// TestGemmPieces checks that multiplying in serial pieces gives what one
// gonum product gives, for shapes that cut rows, columns or both.
func TestGemmPieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	shapes := []struct{ m, n, k int }{{1, 1, 1}, {3, 5, 2}, {192, 64, 3}, {193, 64, 3}, {500, 9, 4}, {130, 100, 5}, {70, 200, 3}, {300, 450, 2}}
	trans := []blas.Transpose{blas.NoTrans, blas.Trans}
	for _, s := range shapes {
		for _, tA := range trans {
			for _, tB := range trans {
				for _, beta := range []float64{0, 1} {
					a := blas64.General{Rows: s.m, Cols: s.k, Stride: s.k, Data: normals(rng, s.m*s.k, 1)}
					if tA == blas.Trans {
						a.Rows, a.Cols, a.Stride = s.k, s.m, s.m
					}
					b := blas64.General{Rows: s.k, Cols: s.n, Stride: s.n, Data: normals(rng, s.k*s.n, 1)}
					if tB == blas.Trans {
						b.Rows, b.Cols, b.Stride = s.n, s.k, s.k
					}
					c0 := normals(rng, s.m*s.n, 1)
					want := blas64.General{Rows: s.m, Cols: s.n, Stride: s.n, Data: slices.Clone(c0)}
					got := blas64.General{Rows: s.m, Cols: s.n, Stride: s.n, Data: slices.Clone(c0)}
					blas64.Gemm(tA, tB, 1, a, b, beta, want)
					gemm(tA, tB, a, b, beta, got)
					if !slices.Equal(got.Data, want.Data) {
						t.Errorf("%d×%d×%d tA=%c tB=%c beta=%v: pieces differ from one product", s.m, s.n, s.k, tA, tB, beta)
					}
				}
			}
		}
	}
}
