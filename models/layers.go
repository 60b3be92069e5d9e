package models

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/floats"
)

// A layer maps a batch of rows, each of inSize values, to a batch of rows of
// outSize values. Layers hold only their shape: parameters, outputs and
// scratch space are passed in, so one layer value serves every model of
// its descriptor and every goroutine.
//
// Batches are row-major []float64 of rows × size values. Image layers see
// each row as height × width × channels with the channels of a pixel
// adjacent, so a batch of images is also a (rows·height·width) × channels
// matrix, which is what makes convolution one matrix product.
type layer interface {
	inSize() int
	outSize() int
	numParams() int
	// initParams fills p (numParams values) with initial parameters.
	initParams(p []float64, rng *rand.Rand)
	// tensors describes p as named tensors with offsets relative to p.
	tensors(name string) []Tensor
	// forward writes the outputs y of the inputs x.
	forward(p, x, y []float64, rows int, s *scratch)
	// backward writes the gradient g (numParams values) of a scalar
	// function of y given dy = ∂f/∂y, and, when dx is not nil, dx = ∂f/∂x.
	// x and y are what the last forward call saw and wrote, with the same
	// scratch, which backward may overwrite.
	backward(p, x, y, dy []float64, rows int, s *scratch, g, dx []float64)
}

// scratch is per-layer working memory that survives from forward to
// backward: im2col columns of a convolution, argmax indexes of a pooling.
type scratch struct {
	col []float64
	arg []int
}

// grow returns b resliced to n values, reallocating only when it is too
// small: after the largest batch has been seen, no call allocates.
func grow(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}

func growInts(b []int, n int) []int {
	if cap(b) < n {
		return make([]int, n)
	}
	return b[:n]
}

// general views a row-major slice as a BLAS matrix.
func general(data []float64, rows, cols int) blas64.General {
	return blas64.General{Rows: rows, Cols: cols, Stride: cols, Data: data[:rows*cols]}
}

// gemm computes c = op(a)·op(b) + beta·c like blas64.Gemm, in pieces small
// enough that gonum multiplies each on the calling goroutine: its Dgemm
// starts goroutines, which allocate, once c spans four 64×64 blocks. The
// parallelism of training is across shards, not inside a product, and each
// element's sum runs in the same order either way.
func gemm(tA, tB blas.Transpose, a, b blas64.General, beta float64, c blas64.General) {
	const block, colStep = 64, 3 * 64
	m, n := c.Rows, c.Cols
	rowStep := block * max(1, 3/((min(n, colStep)+block-1)/block))
	if m <= rowStep && n <= colStep {
		blas64.Gemm(tA, tB, 1, a, b, beta, c)
		return
	}
	for i0 := 0; i0 < m; i0 += rowStep {
		rows := min(rowStep, m-i0)
		as := a
		if tA == blas.NoTrans {
			as.Rows, as.Data = rows, a.Data[i0*a.Stride:]
		} else {
			as.Cols, as.Data = rows, a.Data[i0:]
		}
		for j0 := 0; j0 < n; j0 += colStep {
			cols := min(colStep, n-j0)
			bs := b
			if tB == blas.NoTrans {
				bs.Cols, bs.Data = cols, b.Data[j0:]
			} else {
				bs.Rows, bs.Data = cols, b.Data[j0*b.Stride:]
			}
			cs := blas64.General{Rows: rows, Cols: cols, Stride: c.Stride, Data: c.Data[i0*c.Stride+j0:]}
			blas64.Gemm(tA, tB, 1, as, bs, beta, cs)
		}
	}
}

// initKind is how a layer's weights start; biases always start at zero.
type initKind uint8

const (
	// initZero starts at zero, the usual start of convex models.
	initZero initKind = iota
	// initHe draws from N(0, 2/fanIn), for layers followed by ReLU.
	initHe
	// initGlorot draws from U(±√(6/(fanIn+fanOut))), for layers followed
	// by tanh or a head.
	initGlorot
)

func initWeights(w []float64, fanIn, fanOut int, kind initKind, rng *rand.Rand) {
	switch kind {
	case initZero:
		clear(w)
	case initHe:
		std := math.Sqrt(2 / float64(fanIn))
		for i := range w {
			w[i] = std * rng.NormFloat64()
		}
	case initGlorot:
		limit := math.Sqrt(6 / float64(fanIn+fanOut))
		for i := range w {
			w[i] = limit * (2*rng.Float64() - 1)
		}
	default:
		panic(fmt.Sprintf("models: unknown init %d", kind))
	}
}

// setRows sets every row of y (rows × len(b)) to b.
func setRows(y, b []float64, rows int) {
	n := len(b)
	for r := 0; r < rows; r++ {
		copy(y[r*n:(r+1)*n], b)
	}
}

// sumRows writes the column sums of dy (rows × len(g)) into g.
func sumRows(g, dy []float64, rows int) {
	n := len(g)
	clear(g)
	if n >= 16 {
		for r := 0; r < rows; r++ {
			floats.Add(g, dy[r*n:(r+1)*n])
		}
		return
	}
	// Narrow rows, as of convolutions: a call per row would cost more
	// than the additions.
	for r := 0; r < rows; r++ {
		for j, v := range dy[r*n : (r+1)*n] {
			g[j] += v
		}
	}
}

// dense is a fully connected layer y = x·W + b with W of in × out values,
// row-major, followed by b.
type dense struct {
	in, out int
	init    initKind
}

func (l *dense) inSize() int    { return l.in }
func (l *dense) outSize() int   { return l.out }
func (l *dense) numParams() int { return (l.in + 1) * l.out }

func (l *dense) initParams(p []float64, rng *rand.Rand) {
	initWeights(p[:l.in*l.out], l.in, l.out, l.init, rng)
	clear(p[l.in*l.out:])
}

func (l *dense) tensors(name string) []Tensor {
	return []Tensor{
		{Name: name + ".weight", Shape: []int{l.in, l.out}, Offset: 0},
		{Name: name + ".bias", Shape: []int{l.out}, Bias: true, Offset: l.in * l.out},
	}
}

func (l *dense) forward(p, x, y []float64, rows int, _ *scratch) {
	w, b := p[:l.in*l.out], p[l.in*l.out:l.numParams()]
	setRows(y, b, rows)
	gemm(blas.NoTrans, blas.NoTrans, general(x, rows, l.in), general(w, l.in, l.out), 1, general(y, rows, l.out))
}

func (l *dense) backward(p, x, _, dy []float64, rows int, _ *scratch, g, dx []float64) {
	w := p[:l.in*l.out]
	gw, gb := g[:l.in*l.out], g[l.in*l.out:l.numParams()]
	gemm(blas.Trans, blas.NoTrans, general(x, rows, l.in), general(dy, rows, l.out), 0, general(gw, l.in, l.out))
	sumRows(gb, dy, rows)
	if dx != nil {
		gemm(blas.NoTrans, blas.Trans, general(dy, rows, l.out), general(w, l.in, l.out), 0, general(dx, rows, l.in))
	}
}

// activation applies an elementwise nonlinearity to size values per row.
type activation struct {
	size int
	fn   Activation
}

func (l *activation) inSize() int                      { return l.size }
func (l *activation) outSize() int                     { return l.size }
func (l *activation) numParams() int                   { return 0 }
func (l *activation) initParams([]float64, *rand.Rand) {}
func (l *activation) tensors(string) []Tensor          { return nil }

func (l *activation) forward(_, x, y []float64, rows int, _ *scratch) {
	n := rows * l.size
	x, y = x[:n], y[:n]
	switch l.fn {
	case ReLU:
		for i, v := range x {
			y[i] = max(v, 0)
		}
	case Tanh:
		for i, v := range x {
			y[i] = math.Tanh(v)
		}
	default:
		panic(fmt.Sprintf("models: unknown activation %q", l.fn))
	}
}

// backward needs only y: ReLU′ is 1 where y > 0, tanh′ is 1 − y².
func (l *activation) backward(_, _, y, dy []float64, rows int, _ *scratch, _, dx []float64) {
	if dx == nil {
		return
	}
	n := rows * l.size
	y, dy, dx = y[:n], dy[:n], dx[:n]
	switch l.fn {
	case ReLU:
		// y ≥ 0, so y > 0 exactly when its bits are not all zero; the mask
		// keeps the loop free of branches that random signs would
		// mispredict.
		for i, v := range y {
			b := math.Float64bits(v)
			mask := -((b | -b) >> 63)
			dx[i] = math.Float64frombits(math.Float64bits(dy[i]) & mask)
		}
	case Tanh:
		for i, v := range y {
			dx[i] = dy[i] * (1 - v*v)
		}
	}
}

// conv is a 3×3 convolution, stride 1, zero padding 1, from cin to cout
// channels of an h × w image. Its weights are a (3·3·cin) × cout matrix
// whose rows run over (ky, kx, cin), followed by cout biases; forward
// builds the matching im2col matrix, one row per output pixel, and
// multiplies.
type conv struct {
	h, w, cin, cout int
}

func (l *conv) inSize() int    { return l.h * l.w * l.cin }
func (l *conv) outSize() int   { return l.h * l.w * l.cout }
func (l *conv) numParams() int { return (9*l.cin + 1) * l.cout }

func (l *conv) initParams(p []float64, rng *rand.Rand) {
	k := 9 * l.cin
	initWeights(p[:k*l.cout], k, l.cout, initHe, rng)
	clear(p[k*l.cout:])
}

func (l *conv) tensors(name string) []Tensor {
	k := 9 * l.cin
	return []Tensor{
		{Name: name + ".weight", Shape: []int{3, 3, l.cin, l.cout}, Offset: 0},
		{Name: name + ".bias", Shape: []int{l.cout}, Bias: true, Offset: k * l.cout},
	}
}

func (l *conv) forward(p, x, y []float64, rows int, s *scratch) {
	k := 9 * l.cin
	pixels := rows * l.h * l.w
	s.col = grow(s.col, pixels*k)
	l.im2col(s.col, x, rows)
	w, b := p[:k*l.cout], p[k*l.cout:l.numParams()]
	setRows(y, b, pixels)
	gemm(blas.NoTrans, blas.NoTrans, general(s.col, pixels, k), general(w, k, l.cout), 1, general(y, pixels, l.cout))
}

func (l *conv) backward(p, x, _, dy []float64, rows int, s *scratch, g, dx []float64) {
	k := 9 * l.cin
	pixels := rows * l.h * l.w
	w := p[:k*l.cout]
	gw, gb := g[:k*l.cout], g[k*l.cout:l.numParams()]
	gemm(blas.Trans, blas.NoTrans, general(s.col, pixels, k), general(dy, pixels, l.cout), 0, general(gw, k, l.cout))
	sumRows(gb, dy, pixels)
	if dx == nil {
		return
	}
	// The columns are no longer needed: reuse them for ∂f/∂columns.
	gemm(blas.NoTrans, blas.Trans, general(dy, pixels, l.cout), general(w, k, l.cout), 0, general(s.col, pixels, k))
	l.col2im(dx, s.col, rows)
}

// im2col writes one row of 3·3·cin values per pixel of every image of x:
// the pixel's neighbourhood, zero outside the image.
func (l *conv) im2col(col, x []float64, rows int) {
	h, w, c := l.h, l.w, l.cin
	k := 9 * c
	for img := 0; img < rows; img++ {
		src := x[img*h*w*c : (img+1)*h*w*c]
		dst := col[img*h*w*k : (img+1)*h*w*k]
		for yy := 0; yy < h; yy++ {
			for xx := 0; xx < w; xx++ {
				d := dst[(yy*w+xx)*k : (yy*w+xx+1)*k]
				for ky := 0; ky < 3; ky++ {
					seg := d[ky*3*c : (ky+1)*3*c]
					sy := yy + ky - 1
					if sy < 0 || sy >= h {
						clear(seg)
						continue
					}
					row := src[sy*w*c : (sy+1)*w*c]
					if xx >= 1 && xx+1 < w {
						// The three source pixels are adjacent.
						copy(seg, row[(xx-1)*c:(xx+2)*c])
						continue
					}
					for kx := 0; kx < 3; kx++ {
						sx := xx + kx - 1
						if sx < 0 || sx >= w {
							clear(seg[kx*c : (kx+1)*c])
						} else {
							copy(seg[kx*c:(kx+1)*c], row[sx*c:(sx+1)*c])
						}
					}
				}
			}
		}
	}
}

// col2im is the adjoint of im2col: it sums every column entry into the
// input value it was copied from, and writes the sums into dx.
func (l *conv) col2im(dx, col []float64, rows int) {
	h, w, c := l.h, l.w, l.cin
	k := 9 * c
	clear(dx[:rows*h*w*c])
	for img := 0; img < rows; img++ {
		dst := dx[img*h*w*c : (img+1)*h*w*c]
		src := col[img*h*w*k : (img+1)*h*w*k]
		for yy := 0; yy < h; yy++ {
			for xx := 0; xx < w; xx++ {
				s := src[(yy*w+xx)*k : (yy*w+xx+1)*k]
				for ky := 0; ky < 3; ky++ {
					sy := yy + ky - 1
					if sy < 0 || sy >= h {
						continue
					}
					seg := s[ky*3*c : (ky+1)*3*c]
					row := dst[sy*w*c : (sy+1)*w*c]
					if xx >= 1 && xx+1 < w {
						floats.Add(row[(xx-1)*c:(xx+2)*c], seg)
						continue
					}
					for kx := 0; kx < 3; kx++ {
						sx := xx + kx - 1
						if sx >= 0 && sx < w {
							floats.Add(row[sx*c:(sx+1)*c], seg[kx*c:(kx+1)*c])
						}
					}
				}
			}
		}
	}
}

// pool is 2×2 max-pooling with stride 2 of an h × w × c image; an odd last
// row or column is dropped. forward remembers where each maximum came from
// (the first of equal values), and backward sends the gradient there.
type pool struct {
	h, w, c int
}

func (l *pool) inSize() int                      { return l.h * l.w * l.c }
func (l *pool) outSize() int                     { return (l.h / 2) * (l.w / 2) * l.c }
func (l *pool) numParams() int                   { return 0 }
func (l *pool) initParams([]float64, *rand.Rand) {}
func (l *pool) tensors(string) []Tensor          { return nil }

func (l *pool) forward(_, x, y []float64, rows int, s *scratch) {
	h, w, c := l.h, l.w, l.c
	oh, ow := h/2, w/2
	s.arg = growInts(s.arg, rows*oh*ow*c)
	arg := s.arg
	o := 0
	for img := 0; img < rows; img++ {
		base := img * h * w * c
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				i0 := base + (2*oy*w+2*ox)*c
				i1, i2 := i0+c, i0+w*c
				i3 := i2 + c
				for ch := 0; ch < c; ch++ {
					best, at := x[i0+ch], i0+ch
					if v := x[i1+ch]; v > best {
						best, at = v, i1+ch
					}
					if v := x[i2+ch]; v > best {
						best, at = v, i2+ch
					}
					if v := x[i3+ch]; v > best {
						best, at = v, i3+ch
					}
					y[o] = best
					arg[o] = at
					o++
				}
			}
		}
	}
}

func (l *pool) backward(_, _, _, dy []float64, rows int, s *scratch, _, dx []float64) {
	if dx == nil {
		return
	}
	clear(dx[:rows*l.inSize()])
	for i, at := range s.arg[:rows*l.outSize()] {
		dx[at] += dy[i]
	}
}
