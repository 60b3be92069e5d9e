package featurize_test

import (
	"bufio"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/muonml/muon/transforms/featurize"
)

// reference computes one channel's features directly from their
// definitions, with a naive DFT: what Extractor.Channel must agree with.
func reference(t, x []float64, bands int) []float64 {
	n := float64(len(x))
	var mean, lo, hi, sq float64
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range x {
		mean += v / n
		lo = math.Min(lo, v)
		hi = math.Max(hi, v)
		sq += v * v / n
	}
	var variance float64
	for _, v := range x {
		variance += (v - mean) * (v - mean) / n
	}
	var tm float64
	for _, v := range t {
		tm += v / n
	}
	var cov, vt float64
	for i := range t {
		cov += (t[i] - tm) * (x[i] - mean)
		vt += (t[i] - tm) * (t[i] - tm)
	}
	slope := 0.0
	if vt != 0 {
		slope = cov / vt
	}
	out := []float64{mean, math.Sqrt(variance), lo, hi, math.Sqrt(sq), slope}
	energy := make([]float64, bands)
	half := len(x) / 2
	for k := 1; k <= half && bands > 0; k++ {
		var c complex128
		for j, v := range x {
			c += complex(v, 0) * cmplx.Exp(complex(0, -2*math.Pi*float64(k*j)/n))
		}
		b := (k - 1) * bands / half
		energy[b] += cmplx.Abs(c) * cmplx.Abs(c) / n
	}
	return append(out, energy...)
}

func near(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func TestChannelMatchesDefinitions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	tests := []struct {
		name  string
		n     int
		bands int
	}{
		{"one sample", 1, 4},
		{"two samples", 2, 4},
		{"odd length", 37, 5},
		{"basicmotions window", 100, 8},
		{"more bands than bins", 6, 8},
		{"no bands", 50, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := make([]float64, tt.n)
			xs := make([]float64, tt.n)
			for i := range xs {
				ts[i] = float64(i) * 0.1
				xs[i] = 3*math.Sin(float64(i)*0.7) + rng.NormFloat64()
			}
			e := featurize.NewExtractor(tt.bands)
			got := e.Channel(nil, ts, xs)
			want := reference(ts, xs, tt.bands)
			if len(got) != featurize.Width(tt.bands) || len(got) != len(want) {
				t.Fatalf("%d features, want %d", len(got), len(want))
			}
			for i := range got {
				if !near(got[i], want[i]) {
					t.Errorf("feature %d = %.15g, want %.15g", i, got[i], want[i])
				}
			}
			// The same extractor gives the same answer again (scratch reuse).
			again := e.Channel(nil, ts, xs)
			for i := range got {
				if got[i] != again[i] {
					t.Fatalf("second call differs at %d", i)
				}
			}
		})
	}
}

func TestChannelEdgeCases(t *testing.T) {
	e := featurize.NewExtractor(2)
	if f := e.Channel(nil, nil, nil); len(f) != featurize.Width(2) || !math.IsNaN(f[0]) {
		t.Errorf("empty window: %v, want %d NaNs", f, featurize.Width(2))
	}
	f := e.Channel(nil, []float64{5, 5, 5}, []float64{1, 2, 3})
	if f[featurize.Slope] != 0 {
		t.Errorf("slope with one timestamp = %v, want 0", f[featurize.Slope])
	}
	// A pure tone lands in the band that holds its frequency.
	n := 64
	ts := make([]float64, n)
	xs := make([]float64, n)
	for i := range xs {
		ts[i] = float64(i)
		xs[i] = math.Cos(2 * math.Pi * 24 * float64(i) / float64(n)) // bin 24 of 32
	}
	f = featurize.NewExtractor(4).Channel(nil, ts, xs)
	bands := f[featurize.NumStats:]
	if bands[2] < 0.99*(bands[0]+bands[1]+bands[2]+bands[3]) {
		t.Errorf("tone energy spread over bands %v, want it in band 2", bands)
	}
	defer func() {
		if recover() == nil {
			t.Error("mismatched lengths did not panic")
		}
	}()
	e.Channel(nil, []float64{1}, []float64{1, 2})
}

func TestNames(t *testing.T) {
	got := strings.Join(featurize.Names([]string{"ax", "gy"}, 2), ",")
	want := "ax.mean,ax.std,ax.min,ax.max,ax.rms,ax.slope,ax.band0,ax.band1,gy.mean,gy.std,gy.min,gy.max,gy.rms,gy.slope,gy.band0,gy.band1"
	if got != want {
		t.Errorf("Names = %s\nwant %s", got, want)
	}
}

// On every channel of every BasicMotions case, the features equal the
// reference computation to 1e-9.
func TestBasicMotionsCases(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("dataset not available: %v", err)
	}
	defer f.Close()
	e := featurize.NewExtractor(8)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	data, cases := false, 0
	for sc.Scan() {
		line := sc.Text()
		if !data {
			data = strings.EqualFold(strings.TrimSpace(line), "@data")
			continue
		}
		dims := strings.Split(line, ":")
		for _, dim := range dims[:len(dims)-1] {
			var xs, ts []float64
			for i, s := range strings.Split(dim, ",") {
				v, err := strconv.ParseFloat(s, 64)
				if err != nil {
					t.Fatal(err)
				}
				xs = append(xs, v)
				ts = append(ts, float64(i)/10)
			}
			got := e.Channel(nil, ts, xs)
			want := reference(ts, xs, 8)
			for i := range got {
				if !near(got[i], want[i]) {
					t.Fatalf("case %d: feature %d = %.15g, want %.15g", cases+1, i, got[i], want[i])
				}
			}
		}
		cases++
	}
	if cases != 40 {
		t.Errorf("%d cases, want 40", cases)
	}
}

func BenchmarkChannel(b *testing.B) {
	const n = 100 // a 10 s window at 10 Hz
	ts := make([]float64, n)
	xs := make([]float64, n)
	for i := range xs {
		ts[i] = float64(i) / 10
		xs[i] = math.Sin(float64(i))
	}
	e := featurize.NewExtractor(8)
	dst := make([]float64, 0, featurize.Width(8))
	b.ReportAllocs()
	b.SetBytes(n * 8)
	for b.Loop() {
		dst = e.Channel(dst[:0], ts, xs)
	}
}
