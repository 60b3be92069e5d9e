package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/muonml/muon/models"
	"gonum.org/v1/gonum/mat"
)

// The settings of the train figures, the same on both sides.
const (
	trainEpochs  = 20
	trainBatch   = 32
	trainSeed    = 1
	trainRepeats = 3 // each side reports its fastest run, each from the same seed
	// sklearnScript and venvScript are relative to the repository root,
	// where `make bench` runs.
	sklearnScript = "integration/python/train_sklearn.py"
	venvScript    = "integration/python/venv.sh"
)

// trainModel is one model of the train figures: muon's descriptor and
// optimizer, and the scikit-learn estimator that train_sklearn.py sets up
// to match under the same name.
type trainModel struct {
	name string
	desc models.Desc
	opt  models.OptimizerDesc
}

var trainModels = []trainModel{
	{"softmax", models.Desc{Kind: models.Softmax, Inputs: 64, Classes: 10},
		models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.01}},
	// scikit-learn's MLPClassifier adds L2 alpha=0.0001 to the loss summed
	// over a batch, λ = alpha/32 ≈ 3e-6 in muon's terms; muon runs without.
	{"mlp", models.Desc{Kind: models.MLP, Inputs: 64, Classes: 10, Hidden: []int{100}, Activation: models.ReLU, Head: models.SoftmaxHead},
		models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.001}},
}

// sklearnResult is the JSON line train_sklearn.py prints.
type sklearnResult struct {
	Sklearn string       `json:"sklearn"`
	Threads int          `json:"threads"`
	Rows    int          `json:"rows"`
	Softmax *sklearnFigs `json:"softmax"`
	// SoftmaxFit is SGDClassifier.fit: per-sample SGD with no Python
	// between minibatches, scikit-learn's fastest path.
	SoftmaxFit *sklearnFigs `json:"softmax_fit"`
	MLP        *sklearnFigs `json:"mlp"`
}

type sklearnFigs struct {
	SPS      float64 `json:"sps"`
	Seconds  float64 `json:"seconds"`
	Accuracy float64 `json:"accuracy"`
}

// model returns the figures train_sklearn.py printed under name (one of
// its --models), nil if it printed none.
func (r sklearnResult) model(name string) *sklearnFigs {
	switch name {
	case "softmax":
		return r.Softmax
	case "softmax_fit":
		return r.SoftmaxFit
	case "mlp":
		return r.MLP
	}
	return nil
}

// benchTrain measures training samples/s on optdigits for muon's softmax
// regression and MLP and for scikit-learn's SGDClassifier and
// MLPClassifier with the same data, standardization, epochs, batch size
// and hidden sizes, in the same run.
//
// Threads: muon's Trainer multiplies on the calling goroutine, and is timed
// with GOMAXPROCS 1. scikit-learn's headline figures run with its BLAS and
// OpenMP pools capped at one thread, so the ratio is one core against one
// core. On the 2-core bench machine, letting MLPClassifier's OpenBLAS use
// both cores changed its samples/s by less than 3% either way (products of
// 32-row batches are too small for a second thread to pay), so the cap
// costs scikit-learn nothing; train.sklearn_mlp_2threads.sps keeps that
// figure in view. SGDClassifier runs no BLAS threads at all.
func benchTrain(datasets string) {
	dir := filepath.Join(datasets, "optdigits")
	trainPath, testPath := filepath.Join(dir, "optdigits.tra"), filepath.Join(dir, "optdigits.tes")
	x, y, err := readOptdigits(trainPath)
	must(err)
	xt, yt, err := readOptdigits(testPath)
	must(err)
	mean, std := columnStats(x)
	x, xt = standardized(x, mean, std), standardized(xt, mean, std)
	rows, _ := x.Dims()

	type muonFigs struct{ sps, accuracy float64 }
	muon := map[string]muonFigs{}
	for _, tm := range trainModels {
		fmt.Fprintf(os.Stderr, "bench: train %s on optdigits with muon: %d rows, %d epochs, batches of %d, best of %d\n",
			tm.name, rows, trainEpochs, trainBatch, trainRepeats)
		var best time.Duration
		var m *models.Model
		for range trainRepeats {
			var d time.Duration
			m, d = trainMuon(tm, x, y)
			if best == 0 || d < best {
				best = d
			}
		}
		muon[tm.name] = muonFigs{
			sps:      float64(trainEpochs*rows) / best.Seconds(),
			accuracy: models.Evaluate(m, xt, models.Targets{Classes: yt}).Accuracy,
		}
	}

	sk, sk2, err := runSklearn(trainPath, testPath, rows)
	if err != nil {
		for _, tm := range trainModels {
			bench("train."+tm.name+".sps", muon[tm.name].sps, "samples/s")
		}
		must(fmt.Errorf("train: no scikit-learn figures: %w", err))
	}
	for _, tm := range trainModels {
		mu, ref := muon[tm.name], sk.model(tm.name)
		fmt.Fprintf(os.Stderr, "bench: train %s: test accuracy on optdigits.tes: muon %.4f, scikit-learn %s %.4f\n",
			tm.name, mu.accuracy, sk.Sklearn, ref.Accuracy)
		bench("train."+tm.name+".sps", mu.sps, "samples/s")
		bench("train.sklearn_"+tm.name+".sps", ref.SPS, "samples/s")
		bench("train."+tm.name+".ratio", mu.sps/ref.SPS, "x")
	}
	if f := sk.SoftmaxFit; f != nil {
		fmt.Fprintf(os.Stderr, "bench: train softmax: scikit-learn SGDClassifier.fit (per-sample, no minibatches) test accuracy %.4f\n", f.Accuracy)
		bench("train.sklearn_softmax_fit.sps", f.SPS, "samples/s")
		bench("train.softmax.ratio_fit", muon["softmax"].sps/f.SPS, "x")
	}
	bench("train.sklearn_mlp_2threads.sps", sk2.MLP.SPS, "samples/s")
}

// trainMuon trains a fresh model of tm for trainEpochs epochs and returns it
// with the wall time of the epochs alone.
func trainMuon(tm trainModel, x *mat.Dense, y []int) (*models.Model, time.Duration) {
	m, err := models.New(tm.desc, trainSeed)
	must(err)
	opt, err := models.NewOptimizer(tm.opt, m.NumParams())
	must(err)
	tr := models.NewTrainer(m, opt)
	rng := rand.New(rand.NewPCG(trainSeed, trainSeed))
	targets := models.Targets{Classes: y}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	start := time.Now()
	for range trainEpochs {
		tr.Epoch(x, targets, trainBatch, rng)
	}
	return m, time.Since(start)
}

// runSklearn runs train_sklearn.py twice with the venv's Python: both
// models on one thread, and the MLP with two.
func runSklearn(trainPath, testPath string, rows int) (one, two sklearnResult, err error) {
	py, err := benchPython()
	if err != nil {
		return one, two, err
	}
	run := func(threads int, names string) (sklearnResult, error) {
		fmt.Fprintf(os.Stderr, "bench: train %s on optdigits with scikit-learn, %d thread(s), best of %d\n", names, threads, trainRepeats)
		var r sklearnResult
		cmd := exec.Command(py, sklearnScript, trainPath, testPath,
			"--epochs", strconv.Itoa(trainEpochs), "--batch", strconv.Itoa(trainBatch), "--seed", strconv.Itoa(trainSeed),
			"--repeats", strconv.Itoa(trainRepeats), "--threads", strconv.Itoa(threads), "--models", names)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return r, fmt.Errorf("%s %s: %w", py, sklearnScript, err)
		}
		if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
			return r, fmt.Errorf("%s printed %q, not its JSON line: %w", sklearnScript, out, err)
		}
		if r.Rows != rows {
			return r, fmt.Errorf("%s trained on %d rows, muon on %d", sklearnScript, r.Rows, rows)
		}
		for _, name := range strings.Split(names, ",") {
			if f := r.model(name); f == nil || !(f.SPS > 0) {
				return r, fmt.Errorf("%s printed no samples/s for %s: %s", sklearnScript, name, out)
			}
		}
		return r, nil
	}
	if one, err = run(1, "softmax,softmax_fit,mlp"); err != nil {
		return one, two, err
	}
	two, err = run(2, "mlp")
	return one, two, err
}

// benchPython returns the Python of integration/python/venv.sh: MUON_PYTHON
// when set (make bench exports it), otherwise what venv.sh prints.
func benchPython() (string, error) {
	if py := os.Getenv("MUON_PYTHON"); py != "" {
		return py, nil
	}
	cmd := exec.Command(venvScript)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s could not make the Python venv (%w, see above): fix that, or set MUON_PYTHON to a Python with scikit-learn", venvScript, err)
	}
	py, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "MUON_PYTHON=")
	if !ok || py == "" {
		return "", fmt.Errorf("%s printed %q, want MUON_PYTHON=<path>", venvScript, out)
	}
	return py, nil
}

// readOptdigits reads a UCI optdigits file: rows of 64 pixel counts 0…16
// and the digit 0…9. This copy starts with a header line, which is
// skipped.
func readOptdigits(path string) (*mat.Dense, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("optdigits (see shared/datasets/README.md): %w", err)
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.FieldsPerRecord = 65
	r.ReuseRecord = true
	var values []float64
	var classes []int
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		if _, err := strconv.Atoi(rec[0]); err != nil && line == 1 {
			continue // the header
		}
		for i, s := range rec {
			v, err := strconv.Atoi(s)
			if err != nil {
				return nil, nil, fmt.Errorf("%s:%d: field %d: %w", path, line, i+1, err)
			}
			if i < 64 && (v < 0 || v > 16) || i == 64 && (v < 0 || v > 9) {
				return nil, nil, fmt.Errorf("%s:%d: field %d is %d, out of range", path, line, i+1, v)
			}
			if i == 64 {
				classes = append(classes, v)
			} else {
				values = append(values, float64(v))
			}
		}
	}
	if len(classes) == 0 {
		return nil, nil, fmt.Errorf("%s: no rows", path)
	}
	return mat.NewDense(len(classes), 64, values), classes, nil
}

// columnStats returns the mean and population standard deviation of each
// column of x, as scikit-learn's StandardScaler computes them.
func columnStats(x *mat.Dense) (mean, std []float64) {
	rows, cols := x.Dims()
	mean, std = make([]float64, cols), make([]float64, cols)
	for j := range cols {
		col := mat.Col(nil, j, x)
		var s float64
		for _, v := range col {
			s += v
		}
		mean[j] = s / float64(rows)
		var ss float64
		for _, v := range col {
			ss += (v - mean[j]) * (v - mean[j])
		}
		std[j] = math.Sqrt(ss / float64(rows))
	}
	return mean, std
}

// standardized returns x with each column shifted by mean and scaled by
// std; columns whose std is 0 (pixels always blank in the training set)
// become 0.
func standardized(x *mat.Dense, mean, std []float64) *mat.Dense {
	rows, cols := x.Dims()
	z := mat.NewDense(rows, cols, nil)
	for i := range rows {
		for j := range cols {
			if std[j] > 0 {
				z.Set(i, j, (x.At(i, j)-mean[j])/std[j])
			}
		}
	}
	return z
}
