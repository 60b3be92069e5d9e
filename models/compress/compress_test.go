package compress_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/compress"
	"github.com/muonml/muon/models/snapshot"
	"gonum.org/v1/gonum/mat"
)

func loadOptdigits(tb testing.TB, name string) (*mat.Dense, models.Targets) {
	tb.Helper()
	f, err := os.Open(filepath.Join("..", "..", "..", "shared", "datasets", "optdigits", name))
	if err != nil {
		tb.Skipf("optdigits not found: %v", err)
	}
	defer f.Close()
	var vals []float64
	var classes []int
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ",")
		if len(fields) != 65 {
			continue
		}
		for i, s := range fields {
			v, err := strconv.Atoi(s)
			if err != nil {
				tb.Fatal(err)
			}
			if i == 64 {
				classes = append(classes, v)
			} else {
				vals = append(vals, float64(v)/16)
			}
		}
	}
	return mat.NewDense(len(classes), 64, vals), models.Targets{Classes: classes}
}

// trained is an MLP 64→100→10 trained on optdigits.tra, and the test set.
func trained(tb testing.TB) (*models.Model, *mat.Dense, models.Targets, *mat.Dense, models.Targets) {
	tb.Helper()
	x, y := loadOptdigits(tb, "optdigits.tra")
	xt, yt := loadOptdigits(tb, "optdigits.tes")
	m, err := models.New(models.Desc{Kind: models.MLP, Inputs: 64, Hidden: []int{100}, Activation: models.ReLU, Head: models.SoftmaxHead, Classes: 10}, 1)
	if err != nil {
		tb.Fatal(err)
	}
	opt, err := models.NewOptimizer(models.OptimizerDesc{Kind: models.Adam, LearningRate: 1e-3}, m.NumParams())
	if err != nil {
		tb.Fatal(err)
	}
	tr := models.NewTrainer(m, opt)
	rng := rand.New(rand.NewPCG(1, 1))
	for range 10 {
		tr.Epoch(x, y, 32, rng)
	}
	return m, x, y, xt, yt
}

func predictions(m *models.Model, x *mat.Dense) []int {
	return models.NewPredictor(m).Classify(nil, x)
}

func agreement(a, b []int) float64 {
	same := 0
	for i := range a {
		if a[i] == b[i] {
			same++
		}
	}
	return float64(same) / float64(len(a))
}

func roundTrip(t *testing.T, m *models.Model, dtype snapshot.DType) *models.Model {
	t.Helper()
	ts, err := compress.Tensors(m, dtype)
	if err != nil {
		t.Fatal(err)
	}
	back, err := compress.FromTensors(m.Desc(), ts)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func TestQuantizedModelsAgree(t *testing.T) {
	m, _, _, xt, yt := trained(t)
	float := models.Evaluate(m, xt, yt).Accuracy
	want := predictions(m, xt)
	for _, tt := range []struct {
		dtype     snapshot.DType
		agreement float64
	}{{snapshot.Float32, 0.999}, {snapshot.Float16, 0.999}, {snapshot.Int8, 0.99}} {
		q := roundTrip(t, m, tt.dtype)
		got := agreement(want, predictions(q, xt))
		acc := models.Evaluate(q, xt, yt).Accuracy
		t.Logf("%s: agreement %.4f, accuracy %.4f (float %.4f)", tt.dtype, got, acc, float)
		if got < tt.agreement || float-acc > 0.01 {
			t.Errorf("%s: predictions agree on %.4f of test rows (want ≥ %v), accuracy %.4f against %.4f", tt.dtype, got, tt.agreement, acc, float)
		}
	}
	// Each int8 weight is within half a step of its channel's scale.
	ts, _ := compress.Tensors(m, snapshot.Int8)
	back, _ := compress.FromTensors(m.Desc(), ts)
	mt, bt := m.Tensors(), back.Tensors()
	for k, t0 := range mt {
		if t0.Bias {
			continue
		}
		ch := t0.Shape[len(t0.Shape)-1]
		scales := ts[k].Scales
		for i, v := range t0.Values {
			if d := math.Abs(bt[k].Values[i] - v); d > float64(scales[i%ch])/2*(1+1e-6) {
				t.Fatalf("%s[%d]: %v dequantized to %v, more than half of scale %v", t0.Name, i, v, bt[k].Values[i], scales[i%ch])
			}
		}
	}
}

func TestPruneAndFineTune(t *testing.T) {
	m, x, y, xt, yt := trained(t)
	float := models.Evaluate(m, xt, yt).Accuracy
	mask, err := compress.Prune(m, 0.5, false)
	if err != nil {
		t.Fatal(err)
	}
	if s := compress.Sparsity(m); s < 0.5 {
		t.Fatalf("sparsity %.4f after pruning half", s)
	}
	opt, _ := models.NewOptimizer(models.OptimizerDesc{Kind: models.Adam, LearningRate: 5e-4}, m.NumParams())
	compress.FineTune(m, mask, opt, x, y, 2, 32, rand.New(rand.NewPCG(2, 2)))
	if s := compress.Sparsity(m); s < 0.5 {
		t.Fatalf("fine-tuning revived pruned weights: sparsity %.4f", s)
	}
	pruned := models.Evaluate(m, xt, yt).Accuracy
	q := roundTrip(t, m, snapshot.Int8)
	both := models.Evaluate(q, xt, yt).Accuracy
	t.Logf("float %.4f, pruned 50%% + 2 epochs %.4f, then int8 %.4f", float, pruned, both)
	if float-pruned > 0.01 || float-both > 0.01 {
		t.Errorf("accuracy float %.4f, pruned %.4f, pruned int8 %.4f: more than a point lost", float, pruned, both)
	}
	// A global threshold prunes tensors unevenly; those at least half
	// zero are stored sparse, holding only the kept weights.
	ts, _ := compress.Tensors(m, snapshot.Int8)
	sparse := 0
	for _, st := range ts {
		zeros := 0
		for _, v := range st.I8 {
			if v == 0 {
				zeros++
			}
		}
		if st.Sparse() {
			sparse++
			if 2*len(st.Index) > st.Len() {
				t.Errorf("%s: sparse, yet stores %d of %d", st.Name, len(st.Index), st.Len())
			}
		} else if strings.HasSuffix(st.Name, "weight") && 2*zeros >= st.Len() {
			t.Errorf("%s: %d of %d zero, stored dense", st.Name, zeros, st.Len())
		}
	}
	if sparse == 0 {
		t.Error("no tensor stored sparse after pruning half the weights")
	}
}

func TestPrunePerLayer(t *testing.T) {
	m, err := models.New(models.Desc{Kind: models.CNN, Width: 8, Height: 8, Filters: []int{8}, Hidden: []int{16}, Classes: 10}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compress.Prune(m, 0.3, true); err != nil {
		t.Fatal(err)
	}
	for _, tt := range m.Tensors() {
		zeros := 0
		for _, v := range tt.Values {
			if v == 0 {
				zeros++
			}
		}
		want := int(math.Round(0.3 * float64(len(tt.Values))))
		if tt.Bias {
			want = len(tt.Values) // biases start at zero and are never pruned
		}
		if zeros != want {
			t.Errorf("%s: %d of %d zero, want %d", tt.Name, zeros, len(tt.Values), want)
		}
	}
	// A CNN's 4-dimensional kernels survive quantization shapes intact.
	q := roundTrip(t, m, snapshot.Int8)
	if q.NumParams() != m.NumParams() {
		t.Fatal("parameter count changed")
	}
	if _, err := compress.Prune(m, 1, false); err == nil {
		t.Error("pruned everything")
	}
}

func TestFromTensorsRefusesMismatches(t *testing.T) {
	m, _ := models.New(models.Desc{Kind: models.Softmax, Inputs: 4, Classes: 3}, 1)
	ts, _ := compress.Tensors(m, snapshot.Float32)
	other := models.Desc{Kind: models.Softmax, Inputs: 5, Classes: 3}
	if _, err := compress.FromTensors(other, ts); err == nil {
		t.Error("tensors of another shape accepted")
	}
	if _, err := compress.FromTensors(m.Desc(), ts[:1]); err == nil {
		t.Error("a missing tensor accepted")
	}
}

func TestFloat16(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		bits uint16
	}{
		{0, 0}, {math.Copysign(0, -1), 0x8000}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00},
		{math.Inf(1), 0x7c00}, {math.Inf(-1), 0xfc00}, {0x1p-24, 0x0001}, {0x1p-14, 0x0400}, {0x1p-25, 0}, // ties to even
		{1 + 0x1p-11, 0x3c00}, {1 + 3*0x1p-11, 0x3c02}, {0.1, 0x2e66}, {1023 * 0x1p-24, 0x03ff},
	} {
		if got := compress.Float16(tt.v); got != tt.bits {
			t.Errorf("Float16(%v) = %#04x, want %#04x", tt.v, got, tt.bits)
		}
	}
	if h := compress.Float16(math.NaN()); !math.IsNaN(compress.Float16To64(h)) {
		t.Error("NaN lost")
	}
	// Every finite half converts to float64 and back exactly.
	for h := uint32(0); h < 1<<16; h++ {
		v := compress.Float16To64(uint16(h))
		if math.IsNaN(v) {
			continue
		}
		if back := compress.Float16(v); back != uint16(h) {
			t.Fatalf("%#04x → %v → %#04x", h, v, back)
		}
	}
}

func BenchmarkQuantizeInt8(b *testing.B) {
	m, _ := models.New(models.Desc{Kind: models.MLP, Inputs: 64, Hidden: []int{100}, Activation: models.ReLU, Head: models.SoftmaxHead, Classes: 10}, 1)
	b.ReportAllocs()
	for range b.N {
		if _, err := compress.Tensors(m, snapshot.Int8); err != nil {
			b.Fatal(err)
		}
	}
}

func int8Tensors(t testing.TB, m *models.Model, prune float64) []snapshot.Tensor {
	t.Helper()
	c := m.Clone()
	if prune > 0 {
		if _, err := compress.Prune(c, prune, false); err != nil {
			t.Fatal(err)
		}
	}
	ts, err := compress.Tensors(c, snapshot.Int8)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// The integer kernels predict what the dequantized model predicts, to
// the rounding of the activations to int8.
func TestInt8KernelsAgree(t *testing.T) {
	m, _, _, xt, yt := trained(t)
	float := models.Evaluate(m, xt, yt).Accuracy
	for _, prune := range []float64{0, 0.5} {
		ts := int8Tensors(t, m, prune)
		deq, err := compress.FromTensors(m.Desc(), ts)
		if err != nil {
			t.Fatal(err)
		}
		p, err := compress.NewInt8Predictor(m.Desc(), ts)
		if err != nil {
			t.Fatal(err)
		}
		var got, want mat.Dense
		p.Predict(&got, xt)
		models.NewPredictor(deq).Predict(&want, xt)
		rows, k := got.Dims()
		var worst float64
		classes := make([]int, rows)
		for i := 0; i < rows; i++ {
			for j := 0; j < k; j++ {
				worst = max(worst, math.Abs(got.At(i, j)-want.At(i, j)))
			}
			classes[i] = models.Argmax(got.RawRowView(i))
		}
		right := 0
		for i, c := range classes {
			if c == yt.Classes[i] {
				right++
			}
		}
		acc := float64(right) / float64(rows)
		agree := agreement(classes, predictions(deq, xt))
		t.Logf("pruned %.0f%%: int8 kernels accuracy %.4f (float %.4f), agreement with dequantized %.4f, largest probability difference %.4f", 100*prune, acc, float, agree, worst)
		if agree < 0.99 || float-acc > 0.01 || worst > 0.2 {
			t.Errorf("pruned %.0f%%: agreement %.4f, accuracy %.4f against %.4f, probabilities differ by up to %.4f", 100*prune, agree, acc, float, worst)
		}
	}
}

// A regression model's outputs from the integer kernels are close to the
// dequantized model's.
func TestInt8KernelsRegression(t *testing.T) {
	m, err := models.New(models.Desc{Kind: models.MLP, Inputs: 20, Hidden: []int{32, 16}, Activation: models.Tanh, Head: models.SquaredHead, Outputs: 2}, 3)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	x := mat.NewDense(200, 20, nil)
	for i := 0; i < 200; i++ {
		for j := 0; j < 20; j++ {
			x.Set(i, j, rng.NormFloat64())
		}
	}
	ts := int8Tensors(t, m, 0)
	deq, _ := compress.FromTensors(m.Desc(), ts)
	p, err := compress.NewInt8Predictor(m.Desc(), ts)
	if err != nil {
		t.Fatal(err)
	}
	got, want := mat.Dense{}, mat.Dense{}
	p.Predict(&got, x)
	models.NewPredictor(deq).Predict(&want, x)
	var diff, norm float64
	for i := 0; i < 200; i++ {
		for j := 0; j < 2; j++ {
			diff += math.Abs(got.At(i, j) - want.At(i, j))
			norm += math.Abs(want.At(i, j))
		}
	}
	if diff/norm > 0.02 {
		t.Errorf("outputs differ by %.4f of their size", diff/norm)
	}
}

func TestInt8PredictorRefuses(t *testing.T) {
	m, _, _, _, _ := trained(t)
	f32, _ := compress.Tensors(m, snapshot.Float32)
	if _, err := compress.NewInt8Predictor(m.Desc(), f32); err == nil || !strings.Contains(err.Error(), "int8") {
		t.Errorf("float32 weights: %v", err)
	}
	cnn := models.Desc{Kind: models.CNN, Width: 8, Height: 8, Channels: 1, Filters: []int{4}, Head: models.SoftmaxHead, Classes: 10}
	if _, err := compress.NewInt8Predictor(cnn, nil); err == nil || !strings.Contains(err.Error(), "cnn") {
		t.Errorf("a cnn: %v", err)
	}
}

// BenchmarkPredictInt8 compares batch prediction of the optdigits MLP on
// the test set (1797 rows): float64 weights (what dequantizing at load
// gives), and the int8 integer kernels.
func BenchmarkPredictInt8(b *testing.B) {
	m, _, _, xt, _ := trained(b)
	rows, _ := xt.Dims()
	ts := int8Tensors(b, m, 0)
	deq, err := compress.FromTensors(m.Desc(), ts)
	if err != nil {
		b.Fatal(err)
	}
	ip, err := compress.NewInt8Predictor(m.Desc(), ts)
	if err != nil {
		b.Fatal(err)
	}
	fp := models.NewPredictor(deq)
	var dst mat.Dense
	for _, bb := range []struct {
		name    string
		predict func(dst, x *mat.Dense)
	}{{"dequantized", fp.Predict}, {"int8_kernels", ip.Predict}} {
		b.Run(bb.name, func(b *testing.B) {
			dst.Reset()
			bb.predict(&dst, xt)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				bb.predict(&dst, xt)
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// Shared weights: at most 2^bits values per weight tensor, every weight its
// nearest centroid, and the digits model keeps its accuracy within a
// point at 4 and at 3 bits.
func TestSharedWeights(t *testing.T) {
	m, _, _, xt, yt := trained(t)
	float := models.Evaluate(m, xt, yt).Accuracy
	for _, bits := range []int{4, 3} {
		ts, err := compress.Tensors(m, snapshot.Shared, bits)
		if err != nil {
			t.Fatal(err)
		}
		back, err := compress.FromTensors(m.Desc(), ts)
		if err != nil {
			t.Fatal(err)
		}
		for k, t0 := range m.Tensors() {
			st := ts[k]
			if t0.Bias {
				if st.DType != snapshot.Float16 {
					t.Errorf("bias %s stored as %s", t0.Name, st.DType)
				}
				continue
			}
			if st.DType != snapshot.Shared || len(st.Codebook) > 1<<bits || int(st.Bits) != bits {
				t.Fatalf("%s: %s, %d centroids, %d bits", t0.Name, st.DType, len(st.Codebook), st.Bits)
			}
			for i, v := range t0.Values {
				got := back.Tensors()[k].Values[i]
				for _, c := range st.Codebook {
					if math.Abs(v-float64(c)) < math.Abs(v-got)-1e-6 {
						t.Fatalf("%s[%d] = %v took %v, but centroid %v is nearer", t0.Name, i, v, got, c)
					}
				}
			}
		}
		acc := models.Evaluate(back, xt, yt).Accuracy
		t.Logf("%d-bit shared weights: accuracy %.4f (float %.4f)", bits, acc, float)
		if float-acc > 0.01 {
			t.Errorf("%d-bit shared weights: accuracy %.4f against %.4f", bits, acc, float)
		}
	}
	if _, err := compress.Tensors(m, snapshot.Shared, 9); err == nil {
		t.Error("9-bit codes accepted")
	}
}

func TestKMeans(t *testing.T) {
	values := []float64{-3, -2.9, -3.1, 0.1, 0, -0.1, 5, 5.2, 4.8}
	c, codes := compress.KMeans(values, 3)
	if len(c) != 3 || math.Abs(float64(c[0])+3) > 1e-6 || math.Abs(float64(c[1])) > 1e-6 || math.Abs(float64(c[2])-5) > 1e-6 {
		t.Fatalf("centroids %v, want -3, 0, 5", c)
	}
	for i, want := range []uint8{0, 0, 0, 1, 1, 1, 2, 2, 2} {
		if codes[i] != want {
			t.Fatalf("codes %v", codes)
		}
	}
	// Fewer distinct values than clusters: the empty ones are dropped.
	if c, _ := compress.KMeans([]float64{1, 1, 2}, 16); len(c) != 2 {
		t.Errorf("centroids %v for two distinct values", c)
	}
}

// The digits MLP pruned by half, through a signed snapshot and back,
// predicts exactly what its compressed tensors did before writing (the
// coded layout is lossless), and the file stays under the size measured
// with format version 3: a regression in the coder, the layout's choice
// or the manifest's compression shows here.
func TestSnapshotOfPrunedMLP(t *testing.T) {
	m, _, _, xt, _ := trained(t)
	if _, err := compress.Prune(m, 0.5, false); err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	ring := snapshot.NewKeyring(key.Public().(ed25519.PublicKey))
	for _, tt := range []struct {
		name     string
		dtype    snapshot.DType
		bits     int
		maxBytes int
	}{
		// Measured: int8 5,472 bytes, 3-bit 2,805, 2-bit 2,348 (the
		// tensors and a manifest of the descriptor alone; format
		// version 2 wrote 5,552, 2,885 and 2,428, version 1 6,246,
		// 3,083 and 2,537). The limits are 1% over the measurements,
		// below what version 2 wrote, so that losing version 3's
		// leaner manifest fails here.
		{"int8", snapshot.Int8, 0, 5527},
		{"shared3", snapshot.Shared, 3, 2833},
		{"shared2", snapshot.Shared, 2, 2372},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := compress.Tensors(m, tt.dtype, tt.bits)
			if err != nil {
				t.Fatal(err)
			}
			before, err := compress.FromTensors(m.Desc(), ts)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := snapshot.Write(&buf, snapshot.Manifest{Name: "digits", Version: 1, Model: m.Desc()}, ts, key); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d bytes", tt.name, buf.Len())
			if buf.Len() > tt.maxBytes {
				t.Errorf("%s: %d bytes, measured at most %d", tt.name, buf.Len(), tt.maxBytes)
			}
			s, err := snapshot.Read(bytes.NewReader(buf.Bytes()), ring, snapshot.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			after, err := compress.FromTensors(s.Manifest.Model, s.Tensors)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(before.Params(), after.Params()) {
				t.Fatal("weights differ after the snapshot")
			}
			if a := agreement(predictions(before, xt), predictions(after, xt)); a != 1 {
				t.Fatalf("predictions agree on %.4f of the test rows", a)
			}
		})
	}
}
