package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/muonml/muon/transforms/featurize"
	"github.com/muonml/muon/transforms/train"
)

// rocketSets are the UCR/UEA sets the MiniRocket figures train on: the
// folder under the datasets and the files' prefix.
var rocketSets = []struct{ name, dir, prefix string }{
	{"basicmotions", "basicmotions", "BasicMotions"},
	{"arrowhead", "arrowhead", "ArrowHead"},
	{"osuleaf", "osuleaf", "OSULeaf"},
	{"plaid", "plaid", "PLAID"},
}

// readTS reads a .ts file's series: per case, its channels' values.
func readTS(path string) ([][][]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	var out [][][]float64
	data := false
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		switch {
		case s == "" || s[0] == '#':
			continue
		case strings.EqualFold(s, "@data"):
			data = true
			continue
		case !data || s[0] == '@':
			continue
		}
		parts := strings.Split(s, ":")
		var chans [][]float64
		for _, p := range parts[:len(parts)-1] {
			var ch []float64
			for _, v := range strings.Split(p, ",") {
				x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: %v", path, line, err)
				}
				ch = append(ch, x)
			}
			chans = append(chans, ch)
		}
		out = append(out, chans)
	}
	return out, sc.Err()
}

// seriesRows lays cases out as MiniRocket's rows: channels × length
// values, shorter channels ended with NaN.
func seriesRows(cases [][][]float64, length int) [][]float64 {
	out := make([][]float64, len(cases))
	for i, c := range cases {
		row := make([]float64, len(c)*length)
		for ch, xs := range c {
			for t := range length {
				if t < len(xs) {
					row[ch*length+t] = xs[t]
				} else {
					row[ch*length+t] = math.NaN()
				}
			}
		}
		out[i] = row
	}
	return out
}

// aeonResult is a line aeon_minirocket.py prints.
type aeonResult struct {
	Set      string   `json:"set"`
	Aeon     string   `json:"aeon"`
	Accuracy float64  `json:"accuracy"`
	Rate     float64  `json:"transform_cases_per_second"`
	Features int      `json:"features"`
	Unequal  *string  `json:"unequal"`
	Threads  int      `json:"threads"`
	Extra    []string `json:"-"`
}

// benchRocket trains MiniRocket with a ridge classifier through `muon
// run` on each set's train split and measures it on its test split, runs
// aeon's MiniRocket (MUON_AEON_PYTHON) on the same splits, and times the
// transform of PLAID's test cases on one core against aeon's.
func benchRocket(muon, datasets string) {
	work, err := os.MkdirTemp("", "muon-bench-rocket-")
	must(err)
	defer os.RemoveAll(work)
	muonAcc := map[string]float64{}
	for _, set := range rocketSets {
		trainPath := filepath.Join(datasets, set.dir, set.prefix+"_TRAIN.ts")
		testPath := filepath.Join(datasets, set.dir, set.prefix+"_TEST.ts")
		var length, channels int
		for _, p := range []string{trainPath, testPath} {
			cases, err := readTS(p)
			must(err)
			for _, c := range cases {
				channels = len(c)
				for _, ch := range c {
					length = max(length, len(ch))
				}
			}
		}
		names := make([]string, channels)
		for i := range names {
			names[i] = "dim" + strconv.Itoa(i)
		}
		spec := filepath.Join(work, set.name+".yaml")
		out := filepath.Join(work, set.name)
		must(os.WriteFile(spec, []byte(fmt.Sprintf(`name: rocket-%s
runner: edge
job: train
source: {topics: [%s], format: sensor, bounded: true}
features: {kind: rocket, channels: [%s], rocket: {length: %d}}
model: {kind: softmax}
training: {optimizer: ridge, validation: 0, seed: 1, test: {topics: [%s-test]}}
output: {dir: %s}
replay:
  - {path: %s, period: 1ms}
  - {path: %s, period: 1ms, topic: %s-test}
`, set.name, set.name, strings.Join(names, ", "), length, set.name, out, trainPath, testPath, set.name)), 0o644))
		r := runMeasured(muon, out, nil, "--config", spec)
		b, err := os.ReadFile(filepath.Join(out, "model.json"))
		must(err)
		var tm train.TrainedModel
		must(json.Unmarshal(b, &tm))
		if tm.Test == nil || tm.Test.N == 0 {
			must(fmt.Errorf("rocket %s: no test metrics in %s/model.json", set.name, out))
		}
		fmt.Fprintf(os.Stderr, "bench: MiniRocket + ridge on %s (%d channels, series up to %d): test accuracy %.4f on %d cases, job %.1fs, %.0f MiB peak\n",
			set.name, channels, length, tm.Test.Accuracy, tm.Test.N, r.wall.Seconds(), r.rssMiB)
		muonAcc[set.name] = tm.Test.Accuracy
		bench("accuracy."+set.name+".rocket", tm.Test.Accuracy, "fraction")
	}

	// Go's transform alone, one goroutine: PLAID's test cases with a
	// transform fitted to its training cases.
	plaid := rocketSets[3]
	trainCases, err := readTS(filepath.Join(datasets, plaid.dir, plaid.prefix+"_TRAIN.ts"))
	must(err)
	testCases, err := readTS(filepath.Join(datasets, plaid.dir, plaid.prefix+"_TEST.ts"))
	must(err)
	length := 0
	for _, c := range append(trainCases, testCases...) {
		length = max(length, len(c[0]))
	}
	rocket, err := featurize.FitRocket(seriesRows(trainCases, length), 1, length, featurize.RocketParams{Seed: 1})
	must(err)
	rows := seriesRows(testCases, length)
	var w featurize.RocketWork
	var dst []float64
	for _, row := range rows[:20] { // warm up
		dst, err = rocket.TransformWith(&w, dst[:0], row)
		must(err)
	}
	start := time.Now()
	for _, row := range rows {
		dst, _ = rocket.TransformWith(&w, dst[:0], row)
	}
	rate := float64(len(rows)) / time.Since(start).Seconds()
	bench("featurize.rocket.rps", rate, "cases/s")

	py := os.Getenv("MUON_AEON_PYTHON")
	if py == "" {
		fmt.Fprintln(os.Stderr, "bench: MUON_AEON_PYTHON not set: aeon's MiniRocket figures are skipped (export \"$(integration/python/venv.sh aeon)\")")
		return
	}
	args := []string{"integration/python/aeon_minirocket.py", "--seed", "1"}
	for _, set := range rocketSets {
		args = append(args, filepath.Join(datasets, set.dir, set.prefix+"_TRAIN.ts"), filepath.Join(datasets, set.dir, set.prefix+"_TEST.ts"))
	}
	cmd := exec.Command(py, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	fmt.Fprintf(os.Stderr, "bench: %s %s\n", py, strings.Join(args, " "))
	outb, err := cmd.Output()
	if err != nil {
		must(fmt.Errorf("aeon_minirocket.py: %v\n%s", err, stderr.String()))
	}
	var gaps []float64
	for _, line := range bytes.Split(bytes.TrimSpace(outb), []byte("\n")) {
		var a aeonResult
		must(json.Unmarshal(line, &a))
		set := strings.ToLower(a.Set)
		how := ""
		if a.Unequal != nil {
			how = ", unequal lengths: " + *a.Unequal
		}
		fmt.Fprintf(os.Stderr, "bench: aeon %s MiniRocket on %s: test accuracy %.4f, %d features, transform %.1f cases/s%s\n", a.Aeon, set, a.Accuracy, a.Features, a.Rate, how)
		bench("accuracy."+set+".aeon_minirocket", a.Accuracy, "fraction")
		if m, ok := muonAcc[set]; ok {
			gaps = append(gaps, 100*(a.Accuracy-m))
		}
		if set == "plaid" && a.Rate > 0 {
			bench("featurize.rocket.aeon_rps", a.Rate, "cases/s")
			bench("featurize.rocket.vs_aeon", rate/a.Rate, "x")
		}
	}
	if len(gaps) > 0 {
		var sum float64
		for _, g := range gaps {
			sum += g
		}
		bench("accuracy.rocket.mean_gap", sum/float64(len(gaps)), "points")
	}
}
