package featurize

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// MiniRocket (Dempster, Schmidt and Webb, KDD 2021): 84 fixed convolution
// kernels of length 9, weights −1 at six positions and 2 at three, at
// dilations spread exponentially over the series' length; each kernel and
// dilation gives features that are the proportion of positive values
// (PPV) of the convolution minus a bias, the biases taken from quantiles
// of the convolution of training series. With several channels, each
// kernel and dilation convolves the sum of a random subset of them.

// Defaults of RocketParams.
const (
	// DefaultRocketFeatures is how many features MiniRocket makes (rounded
	// down to a multiple of 84).
	DefaultRocketFeatures = 10_000
	// DefaultRocketMaxDilations is the most dilations per kernel.
	DefaultRocketMaxDilations = 32
)

// rocketKernels is how many kernels MiniRocket has: the ways of choosing
// the three positions of weight 2 among nine.
const rocketKernels = 84

// rocketTaps is the kernels' length.
const rocketTaps = 9

// kernelTaps lists each kernel's three positions of weight 2, in the
// order of itertools.combinations(range(9), 3).
var kernelTaps = func() [rocketKernels][3]int {
	var out [rocketKernels][3]int
	k := 0
	for a := 0; a < rocketTaps; a++ {
		for b := a + 1; b < rocketTaps; b++ {
			for c := b + 1; c < rocketTaps; c++ {
				out[k] = [3]int{a, b, c}
				k++
			}
		}
	}
	return out
}()

// RocketParams configures FitRocket.
type RocketParams struct {
	// Features is how many features to make, rounded down to a multiple
	// of 84. Default DefaultRocketFeatures.
	Features int
	// MaxDilations is the most dilations per kernel. Default
	// DefaultRocketMaxDilations.
	MaxDilations int
	// Seed seeds the choice of the series each bias is fitted on and of
	// the channels each kernel and dilation convolves.
	Seed uint64
}

func (p *RocketParams) check() error {
	if p.Features == 0 {
		p.Features = DefaultRocketFeatures
	}
	if p.MaxDilations == 0 {
		p.MaxDilations = DefaultRocketMaxDilations
	}
	if p.Features < rocketKernels || p.MaxDilations < 1 {
		return fmt.Errorf("featurize: MiniRocket of %d features (at least %d) and %d dilations per kernel (at least 1)", p.Features, rocketKernels, p.MaxDilations)
	}
	return nil
}

// RocketWidth is how many features MiniRocket makes for p.Features.
func RocketWidth(features int) int {
	if features == 0 {
		features = DefaultRocketFeatures
	}
	return features / rocketKernels * rocketKernels
}

// RocketNames names n MiniRocket features: rocket0, rocket1, ….
func RocketNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("rocket%d", i)
	}
	return out
}

// Rocket is a fitted MiniRocket transform: everything it needs to make
// the same features from a series in training and in serving.
type Rocket struct {
	// Channels is how many channels a series has.
	Channels int `json:"channels"`
	// Length is the length of a series' channels in a row: shorter series
	// end in NaN.
	Length int `json:"length"`
	// Dilations are the dilations, ascending; PerDilation how many
	// features each of a dilation's kernels makes.
	Dilations   []int `json:"dilations"`
	PerDilation []int `json:"features_per_dilation"`
	// Sets lists, for each dilation then kernel, the channels whose sum it
	// convolves.
	Sets [][]int `json:"channel_sets"`
	// Biases are the features' biases, in feature order: dilation, then
	// kernel, then quantile.
	Biases []float64 `json:"biases"`
}

// Width is how many features r makes.
func (r *Rocket) Width() int { return len(r.Biases) }

// Check reports whether r is consistent, as a snapshot must be.
func (r *Rocket) Check() error {
	switch {
	case r.Channels < 1 || r.Length < 1:
		return fmt.Errorf("featurize: MiniRocket of %d channels of %d values", r.Channels, r.Length)
	case len(r.Dilations) == 0 || len(r.Dilations) != len(r.PerDilation):
		return fmt.Errorf("featurize: MiniRocket of %d dilations and %d feature counts", len(r.Dilations), len(r.PerDilation))
	case len(r.Sets) != len(r.Dilations)*rocketKernels:
		return fmt.Errorf("featurize: MiniRocket of %d channel sets for %d kernels and dilations", len(r.Sets), len(r.Dilations)*rocketKernels)
	}
	n := 0
	for i, d := range r.Dilations {
		if d < 1 || r.PerDilation[i] < 1 || i > 0 && d <= r.Dilations[i-1] {
			return fmt.Errorf("featurize: MiniRocket dilation %d of %d features", d, r.PerDilation[i])
		}
		n += rocketKernels * r.PerDilation[i]
	}
	if n != len(r.Biases) {
		return fmt.Errorf("featurize: MiniRocket of %d biases for %d features", len(r.Biases), n)
	}
	for _, set := range r.Sets {
		if len(set) == 0 {
			return errors.New("featurize: MiniRocket with an empty channel set")
		}
		for _, c := range set {
			if c < 0 || c >= r.Channels {
				return fmt.Errorf("featurize: MiniRocket channel %d of %d", c, r.Channels)
			}
		}
	}
	for _, b := range r.Biases {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return errors.New("featurize: MiniRocket bias not finite")
		}
	}
	return nil
}

// seriesLen is the length of a row's series: the values before the
// first NaN of its first channel that has one, at most length.
func seriesLen(row []float64, channels, length int) int {
	n := length
	for c := 0; c < channels; c++ {
		ch := row[c*length : (c+1)*length]
		for t := 0; t < n; t++ {
			if math.IsNaN(ch[t]) {
				n = t
				break
			}
		}
	}
	return n
}

// rocketDilations spreads a kernel's features over dilations from 1 to
// about (length−1)/8, exponentially: the dilations, and how many features
// each makes per kernel.
func rocketDilations(length, perKernel, maxDilations int) (dilations, counts []int) {
	trueMax := min(perKernel, maxDilations)
	multiplier := float64(perKernel) / float64(trueMax)
	maxExponent := math.Log2(float64(length-1) / float64(rocketTaps-1))
	if length <= rocketTaps || maxExponent < 0 {
		maxExponent = 0
	}
	for i := 0; i < trueMax; i++ {
		e := 0.0
		if trueMax > 1 {
			e = maxExponent * float64(i) / float64(trueMax-1)
		}
		d := int(math.Floor(math.Pow(2, e)))
		if n := len(dilations); n > 0 && dilations[n-1] == d {
			counts[n-1]++
			continue
		}
		dilations = append(dilations, d)
		counts = append(counts, 1)
	}
	total := 0
	for i := range counts {
		counts[i] = int(float64(counts[i]) * multiplier)
		total += counts[i]
	}
	for i := 0; total < perKernel; i = (i + 1) % len(counts) {
		counts[i]++
		total++
	}
	return dilations, counts
}

// rocketQuantiles are the quantiles the biases take: the fractional parts
// of i·φ, i = 1, 2, …, a low-discrepancy sequence.
func rocketQuantiles(n int) []float64 {
	phi := (math.Sqrt(5) + 1) / 2
	out := make([]float64, n)
	for i := range out {
		_, out[i] = math.Modf(float64(i+1) * phi)
	}
	return out
}

// FitRocket fits MiniRocket to training series: rows of channels×length
// values, channel after channel, each channel's values in time order and
// a shorter series ending in NaN. The dilations follow length; each
// kernel and dilation draws a series (with PCG(Seed)) and the channels to
// convolve, and its biases are quantiles of that convolution.
func FitRocket(series [][]float64, channels, length int, p RocketParams) (*Rocket, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if channels < 1 || length < 1 {
		return nil, fmt.Errorf("featurize: MiniRocket of %d channels of %d values", channels, length)
	}
	if len(series) == 0 {
		return nil, errors.New("featurize: MiniRocket has no training series to fit its biases to")
	}
	for i, s := range series {
		if len(s) != channels*length {
			return nil, fmt.Errorf("featurize: training series %d has %d values, want %d channels of %d", i, len(s), channels, length)
		}
	}
	perKernel := p.Features / rocketKernels
	r := &Rocket{Channels: channels, Length: length}
	r.Dilations, r.PerDilation = rocketDilations(length, perKernel, p.MaxDilations)
	rng := rand.New(rand.NewPCG(p.Seed, 0x6d696e69726f636b)) // "minirock"
	combos := len(r.Dilations) * rocketKernels
	maxSet := min(channels, rocketTaps)
	for range combos {
		n := int(math.Pow(2, rng.Float64()*math.Log2(float64(maxSet+1))))
		n = max(1, min(n, maxSet))
		set := rng.Perm(channels)[:n]
		slices.Sort(set)
		r.Sets = append(r.Sets, set)
	}
	quantiles := rocketQuantiles(perKernel * rocketKernels)
	r.Biases = make([]float64, 0, len(quantiles))
	var w RocketWork
	q := 0
	for di, d := range r.Dilations {
		for k := 0; k < rocketKernels; k++ {
			s := series[rng.IntN(len(series))]
			n := seriesLen(s, channels, length)
			w.prepare(s, channels, length, n, d)
			conv := w.convolve(s, r.Sets[di*rocketKernels+k], length, n, d, kernelTaps[k])
			sorted := slices.Clone(conv)
			slices.Sort(sorted)
			for range r.PerDilation[di] {
				r.Biases = append(r.Biases, quantile(sorted, quantiles[q]))
				q++
			}
		}
	}
	return r, r.Check()
}

// quantile is the q-quantile of sorted values, interpolated linearly
// between the two nearest ranks (numpy's default); 0 of none.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}

// RocketWork is the scratch of MiniRocket's convolutions, reused from
// series to series.
type RocketWork struct {
	// all holds, for each channel, the sum of the nine values a kernel
	// covers at each time at the prepared dilation (zeros beyond the
	// ends): the part of every kernel's convolution with weight −1.
	all  [][]float64
	conv []float64
}

// prepare computes all for the series' n values of every channel at
// dilation d.
func (w *RocketWork) prepare(row []float64, channels, length, n, d int) {
	if len(w.all) < channels {
		w.all = make([][]float64, channels)
	}
	half := rocketTaps / 2
	for c := 0; c < channels; c++ {
		x := row[c*length : c*length+n]
		a := grow(w.all[c], n)
		w.all[c] = a
		for t := range a {
			var sum float64
			for j := -half; j <= half; j++ {
				if u := t + j*d; u >= 0 && u < n {
					sum += x[u]
				}
			}
			a[t] = sum
		}
	}
}

// convolve returns the convolution, over the series' n values, of the sum
// of its channels in set with the kernel of weight 2 at taps and −1
// elsewhere, at dilation d, centred, with zeros beyond both ends: 3 times
// the three taps' values less the nine's. prepare must have been called
// for the series and d. The result is valid until the next call.
func (w *RocketWork) convolve(row []float64, set []int, length, n, d int, taps [3]int) []float64 {
	w.conv = grow(w.conv, n)
	conv := w.conv
	half := rocketTaps / 2
	for i, c := range set {
		x := row[c*length : c*length+n]
		all := w.all[c]
		if i == 0 {
			for t, a := range all[:n] {
				conv[t] = -a
			}
		} else {
			for t, a := range all[:n] {
				conv[t] -= a
			}
		}
		// Each tap of weight 2 adds 3 times the value it covers, where it
		// lies within the series: t + o in [0, n).
		for _, j := range taps {
			o := (j - half) * d
			lo, hi := max(0, -o), min(n, n-o)
			if lo >= hi {
				continue
			}
			dst, src := conv[lo:hi], x[lo+o:hi+o]
			for t, v := range src {
				dst[t] += 3 * v
			}
		}
	}
	return conv
}

func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

// Transform appends to dst the features of a series, a row of
// Channels×Length values as FitRocket takes, and returns it. A kernel and
// dilation whose index (dilation, then kernel) is even counts positive
// values over the whole convolution; the others only where the kernel
// lies within the series, (9−1)·d/2 values in from either end (all of the
// convolution where the series is too short for that). A series of no
// values makes zeros.
func (r *Rocket) Transform(dst, row []float64) ([]float64, error) {
	if len(row) != r.Channels*r.Length {
		return dst, fmt.Errorf("featurize: a series of %d values for MiniRocket of %d channels of %d", len(row), r.Channels, r.Length)
	}
	var w RocketWork
	return r.transform(&w, dst, row), nil
}

// TransformWith is Transform with scratch that is reused from call to
// call (nil: new scratch); a RocketWork is not safe for concurrent use.
func (r *Rocket) TransformWith(w *RocketWork, dst, row []float64) ([]float64, error) {
	if w == nil {
		return r.Transform(dst, row)
	}
	if len(row) != r.Channels*r.Length {
		return dst, fmt.Errorf("featurize: a series of %d values for MiniRocket of %d channels of %d", len(row), r.Channels, r.Length)
	}
	return r.transform(w, dst, row), nil
}

func (r *Rocket) transform(w *RocketWork, dst, row []float64) []float64 {
	n := seriesLen(row, r.Channels, r.Length)
	b := 0
	for di, d := range r.Dilations {
		pad := (rocketTaps - 1) * d / 2
		w.prepare(row, r.Channels, r.Length, n, d)
		for k := 0; k < rocketKernels; k++ {
			per := r.PerDilation[di]
			if n == 0 {
				for range per {
					dst = append(dst, 0)
				}
				b += per
				continue
			}
			conv := w.convolve(row, r.Sets[di*rocketKernels+k], r.Length, n, d, kernelTaps[k])
			if (di+k)%2 == 1 && n > 2*pad {
				conv = conv[pad : n-pad]
			}
			inv := 1 / float64(len(conv))
			for _, bias := range r.Biases[b : b+per] {
				dst = append(dst, float64(positives(conv, bias))*inv)
			}
			b += per
		}
	}
	return dst
}

// positives counts the values of conv above bias. v > bias is the sign of
// bias − v: counted without a branch the processor would mispredict half
// the time, four at once.
func positives(conv []float64, bias float64) uint64 {
	var c0, c1, c2, c3 uint64
	i := 0
	for ; i+4 <= len(conv); i += 4 {
		c := conv[i : i+4 : i+4]
		c0 += math.Float64bits(bias-c[0]) >> 63
		c1 += math.Float64bits(bias-c[1]) >> 63
		c2 += math.Float64bits(bias-c[2]) >> 63
		c3 += math.Float64bits(bias-c[3]) >> 63
	}
	for ; i < len(conv); i++ {
		c0 += math.Float64bits(bias-conv[i]) >> 63
	}
	return c0 + c1 + c2 + c3
}
