package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/models/compress"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/transforms/publish"
)

// benchSnapshot measures what the snapshot issue asks: the size of the
// digits MLP's snapshot, int8, 50%-pruned int8 and 50%-pruned shared
// weights of 4, 3 and 2 bits (format version 3: int8 and shared values
// range-coded, the manifest compressed with a dictionary of its field
// names, zstd always), against its float64 weights, its test
// accuracy before and after, the time to verify and load the largest
// example model's snapshot (the defects CNN), and batch prediction with
// int8 integer kernels against float64.
func benchSnapshot(muon string) {
	keys := filepath.Dir(signingKey(muon))

	// One shard, so that every run trains the same model.
	for _, v := range []struct{ name, prune, weights string }{
		{"int8", "0", "int8"}, {"pruned50_int8", "0.5", "int8"},
		{"pruned50_shared4", "0.5", "shared --set snapshot.bits=4"}, {"pruned50_shared3", "0.5", "shared --set snapshot.bits=3"},
		{"pruned50_shared2", "0.5", "shared --set snapshot.bits=2"},
	} {
		set := []string{"training.shards=1", "snapshot.prune=" + v.prune}
		w, bits, _ := strings.Cut(v.weights, " --set ")
		set = append(set, "snapshot.weights="+w)
		if bits != "" {
			set = append(set, bits)
		}
		res, dir := snapshotRun(muon, "configs/train-digits.yaml", set...)
		os.RemoveAll(dir)
		ratio := "snapshot.ratio." + v.name
		if v.prune != "0" {
			ratio += "_zstd"
		}
		fmt.Fprintf(os.Stderr, "bench: digits MLP %s: %d bytes, %s\n", v.name, res.Size, map[bool]string{true: "published", false: "rejected: " + res.Reason}[res.Published])
		bench(ratio, res.Ratio, "x")
		if v.name == "int8" {
			bench("accuracy.optdigits.mlp.float", res.Metrics["float.test"].Accuracy, "fraction")
		}
		bench("accuracy.optdigits.mlp."+v.name, res.Metrics["compressed.test"].Accuracy, "fraction")
	}

	res, dir := snapshotRun(muon, "configs/train-defects.yaml")
	defer os.RemoveAll(dir)
	bench("snapshot.ratio.cnn", res.Ratio, "x")
	bench("accuracy.magnetic_tile.cnn.compressed", res.Metrics["compressed.test"].Accuracy, "fraction")
	shared, sdir := snapshotRun(muon, "configs/train-defects.yaml", "snapshot.weights=shared", "snapshot.bits=4")
	os.RemoveAll(sdir)
	fmt.Fprintf(os.Stderr, "bench: defects CNN, shared 4-bit weights: %d bytes, %s\n", shared.Size, map[bool]string{true: "published", false: "rejected: " + shared.Reason}[shared.Published])
	bench("snapshot.ratio.cnn_shared4", shared.Ratio, "x")
	bench("accuracy.magnetic_tile.cnn.shared4", shared.Metrics["compressed.test"].Accuracy, "fraction")
	ring, err := snapshot.LoadKeyring(keys)
	must(err)
	file, err := os.ReadFile(res.Path)
	must(err)
	load := func() time.Duration {
		start := time.Now()
		s, err := snapshot.Read(bytes.NewReader(file), ring, snapshot.Limits{})
		must(err)
		_, err = compress.FromTensors(s.Manifest.Model, s.Tensors)
		must(err)
		return time.Since(start)
	}
	fastest := load()
	for range 20 {
		fastest = min(fastest, load())
	}
	fmt.Fprintf(os.Stderr, "bench: defects CNN snapshot, %d bytes (%s weights): verified and loaded in %v at best of 21\n", len(file), res.Weights, fastest)
	bench("snapshot.load_verify.ms", float64(fastest.Microseconds())/1000, "ms")

	benchInt8Kernels()
}

// snapshotRun runs a train spec with a snapshot and returns what became
// of it, and the output folder (the caller removes it).
func snapshotRun(muon, config string, set ...string) (publish.Result, string) {
	_, dir, _ := runTrainJob(muon, config, set...) // the store defaults to <output.dir>/store
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	must(err)
	var sum jobs.Summary
	must(json.Unmarshal(b, &sum))
	if sum.Training == nil || sum.Training.Snapshot == nil {
		must(fmt.Errorf("%s: the summary reports no snapshot", config))
	}
	return *sum.Training.Snapshot, dir
}

// benchInt8Kernels runs BenchmarkPredictInt8: batch prediction of the
// digits MLP from dequantized (float64) weights and with int8 integer
// kernels.
func benchInt8Kernels() {
	fmt.Fprintf(os.Stderr, "bench: go test -bench BenchmarkPredictInt8 ./models/compress/\n")
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkPredictInt8$", "-benchtime", "2s", "./models/compress/")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	must(err)
	rate := map[string]float64{}
	for _, m := range regexp.MustCompile(`BenchmarkPredictInt8/(\w+)\S*\s+\d+\s+\S+ ns/op\s+(\S+) rows/s`).FindAllStringSubmatch(string(out), -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		must(err)
		rate[m[1]] = v
	}
	f, i := rate["dequantized"], rate["int8_kernels"]
	if f == 0 || i == 0 {
		must(fmt.Errorf("BenchmarkPredictInt8 printed no rows/s:\n%s", out))
	}
	bench("infer.float.rps", f, "rows/s")
	bench("infer.int8.rps", i, "rows/s")
	bench("infer.int8.vs_float.ratio", i/f, "x")
}
