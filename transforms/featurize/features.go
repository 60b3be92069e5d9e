package featurize

import (
	"fmt"
	"math"
	"math/cmplx"

	"gonum.org/v1/gonum/dsp/fourier"
)

// Statistics per channel before the band energies.
const (
	Mean = iota
	Std
	Min
	Max
	RMS
	Slope
	// NumStats is how many statistics precede the band energies.
	NumStats
)

// StatNames names the statistics in their order.
var StatNames = [NumStats]string{"mean", "std", "min", "max", "rms", "slope"}

// Width is how many features one channel yields with bands band energies.
func Width(bands int) int { return NumStats + bands }

// Names returns the feature names for channels, in row order:
// <channel>.<stat> then <channel>.band<i>.
func Names(channels []string, bands int) []string {
	out := make([]string, 0, len(channels)*Width(bands))
	for _, c := range channels {
		for _, s := range StatNames {
			out = append(out, c+"."+s)
		}
		for b := 0; b < bands; b++ {
			out = append(out, fmt.Sprintf("%s.band%d", c, b))
		}
	}
	return out
}

// Extractor computes channel features. It keeps FFT plans and scratch
// space between calls, so one Extractor serves a worker without allocating
// per window; it is not safe for concurrent use.
type Extractor struct {
	bands  int
	ffts   map[int]*fourier.FFT
	coeffs []complex128
	// short is set when a channel had fewer than 2×bands values, so that
	// some of its bands held no frequency bin and are zeros.
	short bool
}

// NewExtractor returns an Extractor for bands band energies per channel.
// It panics if bands is negative.
func NewExtractor(bands int) *Extractor {
	if bands < 0 {
		panic("featurize: negative band count")
	}
	return &Extractor{bands: bands, ffts: map[int]*fourier.FFT{}}
}

// Channel appends to dst the features of one channel's samples x taken at
// times t (seconds, any origin), and returns the extended slice. x and t
// must have the same length; an empty window yields NaN features. Inputs
// are not modified.
func (e *Extractor) Channel(dst []float64, t, x []float64) []float64 {
	if len(t) != len(x) {
		panic("featurize: time and value lengths differ")
	}
	n := len(x)
	if n == 0 {
		for i := 0; i < Width(e.bands); i++ {
			dst = append(dst, math.NaN())
		}
		return dst
	}
	var sum, sumSq float64
	lo, hi := x[0], x[0]
	for _, v := range x {
		sum += v
		sumSq += v * v
		lo = math.Min(lo, v)
		hi = math.Max(hi, v)
	}
	fn := float64(n)
	mean := sum / fn
	// Two-pass variance: stable where sumSq/n - mean² cancels.
	var ss float64
	for _, v := range x {
		d := v - mean
		ss += d * d
	}
	dst = append(dst, mean, math.Sqrt(ss/fn), lo, hi, math.Sqrt(sumSq/fn), slope(t, x, mean))
	return e.bandEnergies(dst, x)
}

// slope is the least-squares slope of x over t; 0 when t does not vary.
func slope(t, x []float64, xMean float64) float64 {
	var tSum float64
	for _, v := range t {
		tSum += v
	}
	tMean := tSum / float64(len(t))
	var num, den float64
	for i := range t {
		dt := t[i] - tMean
		num += dt * (x[i] - xMean)
		den += dt * dt
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// bandEnergies appends the energies of e.bands equal-width bands of the
// one-sided spectrum of x, without the DC term: bins 1 … n/2 are split into
// e.bands contiguous groups as evenly as possible (bin k goes to band
// ⌊(k−1)·bands/(n/2)⌋), and a band's energy is Σ|X_k|²/n over its bins.
// Bands beyond the number of bins are 0 (and e.short is set).
func (e *Extractor) bandEnergies(dst []float64, x []float64) []float64 {
	if e.bands == 0 {
		return dst
	}
	n := len(x)
	start := len(dst)
	for i := 0; i < e.bands; i++ {
		dst = append(dst, 0)
	}
	half := n / 2
	if half < e.bands {
		e.short = true
	}
	if half == 0 {
		return dst
	}
	fft := e.ffts[n]
	if fft == nil {
		fft = fourier.NewFFT(n)
		e.ffts[n] = fft
	}
	if cap(e.coeffs) < half+1 {
		e.coeffs = make([]complex128, half+1)
	}
	e.coeffs = fft.Coefficients(e.coeffs[:half+1], x)
	bands := dst[start:]
	for k := 1; k <= half; k++ {
		a := cmplx.Abs(e.coeffs[k])
		bands[(k-1)*e.bands/half] += a * a / float64(n)
	}
	return dst
}
