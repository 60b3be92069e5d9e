package featurize

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/muonml/muon/records"
)

func TestKernelTaps(t *testing.T) {
	seen := map[[3]int]bool{}
	for _, k := range kernelTaps {
		if !(0 <= k[0] && k[0] < k[1] && k[1] < k[2] && k[2] < rocketTaps) || seen[k] {
			t.Fatalf("kernel %v repeated or out of order", k)
		}
		seen[k] = true
	}
	if len(seen) != 84 || kernelTaps[0] != [3]int{0, 1, 2} || kernelTaps[83] != [3]int{6, 7, 8} {
		t.Errorf("%d kernels, first %v, last %v", len(seen), kernelTaps[0], kernelTaps[83])
	}
}

// The dilations spread a kernel's features exponentially up to the
// length's receptive field; every feature is given out.
func TestRocketDilations(t *testing.T) {
	for _, tt := range []struct{ length, perKernel, max int }{{251, 119, 32}, {1344, 119, 32}, {100, 119, 32}, {9, 119, 32}, {2, 119, 32}, {5000, 20, 32}} {
		ds, counts := rocketDilations(tt.length, tt.perKernel, tt.max)
		sum := 0
		for i, d := range ds {
			sum += counts[i]
			if i > 0 && d <= ds[i-1] || d < 1 || counts[i] < 1 {
				t.Errorf("length %d: dilations %v, counts %v", tt.length, ds, counts)
			}
		}
		top := max(1, (tt.length-1)/(rocketTaps-1))
		if sum != tt.perKernel || ds[0] != 1 || ds[len(ds)-1] > top || len(ds) > min(tt.max, tt.perKernel) {
			t.Errorf("length %d: dilations %v (top %d), counts %v summing to %d, want %d", tt.length, ds, top, counts, sum, tt.perKernel)
		}
	}
}

// brute is the convolution of x with the kernel of weight 2 at taps and −1
// elsewhere, at dilation d, centred, zeros beyond the ends.
func brute(x []float64, d int, taps [3]int) []float64 {
	out := make([]float64, len(x))
	for t := range x {
		for j := 0; j < rocketTaps; j++ {
			w := -1.0
			if slices.Contains(taps[:], j) {
				w = 2
			}
			if u := t + (j-4)*d; u >= 0 && u < len(x) {
				out[t] += w * x[u]
			}
		}
	}
	return out
}

func series(rng *rand.Rand, channels, length, n int) []float64 {
	row := make([]float64, channels*length)
	for c := 0; c < channels; c++ {
		walk := 0.0
		for t := 0; t < length; t++ {
			if t >= n {
				row[c*length+t] = math.NaN()
				continue
			}
			walk += rng.NormFloat64()
			row[c*length+t] = walk
		}
	}
	return row
}

// Every feature is the proportion of a brute-force convolution above its
// bias: over the whole series for even (dilation, kernel) indexes, over the
// part the kernel covers for odd ones; channels in a set are summed.
func TestRocketTransformMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const channels, length = 3, 60
	var train [][]float64
	for range 20 {
		train = append(train, series(rng, channels, length, 40+rng.IntN(21)))
	}
	r, err := FitRocket(train, channels, length, RocketParams{Features: 84 * 6, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{60, 37, 3} {
		row := series(rng, channels, length, n)
		got, err := r.Transform(nil, row)
		if err != nil || len(got) != r.Width() {
			t.Fatalf("Transform: %d features, %v", len(got), err)
		}
		f := 0
		for di, d := range r.Dilations {
			pad := 4 * d
			for k := 0; k < 84; k++ {
				sum := make([]float64, n)
				for _, c := range r.Sets[di*84+k] {
					for i := 0; i < n; i++ {
						sum[i] += row[c*length+i]
					}
				}
				conv := brute(sum, d, kernelTaps[k])
				if (di+k)%2 == 1 && n > 2*pad {
					conv = conv[pad : n-pad]
				}
				for range r.PerDilation[di] {
					pos := 0
					for _, v := range conv {
						if v > r.Biases[f] {
							pos++
						}
					}
					if want := float64(pos) / float64(len(conv)); math.Abs(got[f]-want) > 1e-12 {
						t.Fatalf("series of %d: feature %d (dilation %d, kernel %v): %v, by definition %v", n, f, d, kernelTaps[k], got[f], want)
					}
					f++
				}
			}
		}
	}
}

// The biases are quantiles of training convolutions, so a training series
// gives features strictly between 0 and 1 for most kernels; fitting is
// deterministic by seed, and the channel sets change with it.
func TestFitRocketIsDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var train [][]float64
	for range 30 {
		train = append(train, series(rng, 4, 80, 80))
	}
	a, err := FitRocket(train, 4, 80, RocketParams{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := FitRocket(train, 4, 80, RocketParams{Seed: 1})
	c, _ := FitRocket(train, 4, 80, RocketParams{Seed: 2})
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	jc, _ := json.Marshal(c)
	if string(ja) != string(jb) || string(ja) == string(jc) {
		t.Error("the same seed gave another fit, or another seed the same")
	}
	if a.Width() != 9996 {
		t.Errorf("%d features, want 9996", a.Width())
	}
	sizes := map[int]int{}
	for _, s := range a.Sets {
		sizes[len(s)]++
	}
	if len(sizes) < 2 || sizes[1] == 0 {
		t.Errorf("channel set sizes %v: want sets of one to four channels", sizes)
	}
	f, _ := a.Transform(nil, train[0])
	inside := 0
	for _, v := range f {
		if v > 0 && v < 1 {
			inside++
		}
	}
	if inside < len(f)/2 {
		t.Errorf("%d of %d features strictly between 0 and 1 on a training series", inside, len(f))
	}
	var round Rocket
	if err := json.Unmarshal(ja, &round); err != nil || round.Check() != nil {
		t.Fatalf("round trip: %v, %v", err, round.Check())
	}
	g, _ := round.Transform(nil, train[0])
	if !slices.Equal(f, g) {
		t.Error("a Rocket read back from JSON makes other features")
	}
}

func TestRocketRefuses(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	train := [][]float64{series(rng, 1, 30, 30)}
	if _, err := FitRocket(nil, 1, 30, RocketParams{}); err == nil {
		t.Error("fitted to no series")
	}
	if _, err := FitRocket(train, 2, 30, RocketParams{}); err == nil {
		t.Error("fitted to a series of the wrong width")
	}
	if _, err := FitRocket(train, 1, 30, RocketParams{Features: 50}); err == nil {
		t.Error("fitted 50 features")
	}
	r, err := FitRocket(train, 1, 30, RocketParams{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Transform(nil, make([]float64, 31)); err == nil {
		t.Error("transformed a series of 31 values for a length of 30")
	}
	for name, bad := range map[string]func(r *Rocket){
		"bias":     func(r *Rocket) { r.Biases[3] = math.NaN() },
		"channel":  func(r *Rocket) { r.Sets[0] = []int{1} },
		"biases":   func(r *Rocket) { r.Biases = r.Biases[1:] },
		"dilation": func(r *Rocket) { r.Dilations[0] = 0 },
	} {
		c := *r
		c.Biases, c.Sets, c.Dilations = slices.Clone(r.Biases), slices.Clone(r.Sets), slices.Clone(r.Dilations)
		bad(&c)
		if c.Check() == nil {
			t.Errorf("Check took a Rocket with a bad %s", name)
		}
	}
}

func BenchmarkRocketTransform(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	var train [][]float64
	for range 20 {
		train = append(train, series(rng, 1, 500, 500))
	}
	r, err := FitRocket(train, 1, 500, RocketParams{})
	if err != nil {
		b.Fatal(err)
	}
	var w RocketWork
	var dst []float64
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = r.TransformWith(&w, dst[:0], train[0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "series/s")
}

// A row maker of raw series keeps each channel's first length values in
// time order, ends shorter ones with NaN and reports a cut; one of band
// energies reports channels too short for every band to hold a bin.
func TestRowMakerSeriesAndShortBands(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var rs []records.Reading
	for i := range 6 {
		rs = append(rs, records.Reading{Device: "d", Time: t0.Add(time.Duration(i) * time.Second),
			Values: []records.Value{{Name: "a", Value: float64(i)}, {Name: "b", Value: float64(10 * i)}}})
	}
	m := newRowMaker([]string{"b", "a"}, 0)
	m.length = 4
	row, _ := m.features(rs, t0)
	want := []float64{0, 10, 20, 30, 0, 1, 2, 3}
	if !slices.Equal(row, want) || !m.cut {
		t.Errorf("series row %v (cut %v), want %v, cut", row, m.cut, want)
	}
	m.length = 8
	row, _ = m.features(rs, t0)
	if m.cut || row[5] != 50 || !math.IsNaN(row[6]) || !math.IsNaN(row[7]) || row[8] != 0 || len(row) != 16 {
		t.Errorf("padded series row %v (cut %v)", row, m.cut)
	}

	bands := newRowMaker([]string{"a"}, 3)
	if bands.features(rs, t0); bands.short {
		t.Error("6 values (3 bins) reported short for 3 bands")
	}
	bands = newRowMaker([]string{"a"}, 4)
	if bands.features(rs, t0); !bands.short {
		t.Error("6 values (3 bins) not reported short for 4 bands")
	}
}

// ValueNames keeps the first MaxNames names in sorted order however the
// readings are split, and counts the rest.
func TestValueNames(t *testing.T) {
	var fn namesFn
	a, b := fn.CreateAccumulator(), fn.CreateAccumulator()
	for i := 99; i >= 0; i-- {
		r := records.Reading{Values: []records.Value{{Name: fmt.Sprintf("v%03d", i)}, {Name: "v000"}}}
		if i%2 == 0 {
			a = fn.AddInput(a, r)
		} else {
			b = fn.AddInput(b, r)
		}
	}
	got := fn.ExtractOutput(fn.MergeAccumulators(a, b))
	if len(got.Names) != MaxNames || got.Names[0] != "v000" || got.Names[MaxNames-1] != fmt.Sprintf("v%03d", MaxNames-1) || !slices.IsSorted(got.Names) || got.More == 0 {
		t.Errorf("names %v…, %d more", got.Names[:3], got.More)
	}
}
