package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/muonml/muon/transforms/train"
)

// accuracyRuns are the example train specs whose held-out test metrics
// `make bench` reports, with the overrides that pick each model.
var accuracyRuns = []struct {
	name, config string
	set          []string
}{
	// optdigits on one shard (serial minibatch SGD, the same model every
	// run); the spec's two shards beside it for the MLP.
	{"optdigits.softmax", "configs/train-digits.yaml", []string{"training.shards=1", "model.kind=softmax", "model.hidden=[]",
		"training.optimizer=sgd", "training.learning_rate=0.1", "training.momentum=0.9", "training.epochs=20"}},
	{"optdigits.mlp", "configs/train-digits.yaml", []string{"training.shards=1"}},
	{"optdigits.mlp_2shards", "configs/train-digits.yaml", nil},
	{"optdigits.cnn", "configs/train-digits.yaml", []string{"training.shards=1", "model.kind=cnn", "model.filters=[16]", "model.hidden=[64]",
		"training.learning_rate=0.002", "training.schedule=cosine", "training.epochs=20", "training.weight_decay=0.001"}},
	{"basicmotions.mlp", "configs/train-sensors.yaml", nil},
	{"magnetic_tile.cnn", "configs/train-defects.yaml", nil},
	{"cmapss_fd001.mlp", "configs/train-engines.yaml", nil},
	{"plaid.rocket_ridge", "configs/train-plaid.yaml", nil},
}

// runTrainJob runs `muon run` on a train spec with its output in a
// temporary folder (the caller removes it) and returns the model file, the
// folder and the job's wall time. The specs name their datasets relative
// to the repository root, where `make bench` runs. A failed job ends the
// bench with the tail of its stderr.
func runTrainJob(muon, config string, set ...string) (train.TrainedModel, string, time.Duration) {
	dir, err := os.MkdirTemp("", "muon-bench-train-")
	must(err)
	args := []string{"run", "--config", config, "--set", "output.dir=" + dir, "--set", "snapshot.key=" + signingKey(muon)}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	fmt.Fprintf(os.Stderr, "bench: %s %s\n", muon, strings.Join(args, " "))
	var stderr bytes.Buffer
	cmd := exec.Command(muon, args...)
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		must(fmt.Errorf("%s %s: %v\n%s", muon, strings.Join(args, " "), err, strings.Join(lines[max(0, len(lines)-15):], "\n")))
	}
	took := time.Since(start)
	b, err := os.ReadFile(filepath.Join(dir, "model.json"))
	must(err)
	var tm train.TrainedModel
	must(json.Unmarshal(b, &tm))
	return tm, dir, took
}

// benchAccuracy trains every example and reports its test metrics.
func benchAccuracy(muon string) {
	for _, r := range accuracyRuns {
		tm, dir, took := runTrainJob(muon, r.config, r.set...)
		os.RemoveAll(dir)
		if tm.Test == nil || tm.Test.N == 0 {
			must(fmt.Errorf("%s: no test metrics in model.json: does the spec still name a test split?", r.config))
		}
		fmt.Fprintf(os.Stderr, "bench: %s (%s %s): %d test rows in %.1fs\n", r.name, r.config, strings.Join(r.set, " "), tm.Test.N, took.Seconds())
		if tm.Test.Confusion == nil {
			bench("rmse."+r.name, tm.Test.RMSE, "cycles")
			continue
		}
		bench("accuracy."+r.name, tm.Test.Accuracy, "fraction")
		if r.name == "magnetic_tile.cnn" {
			bench("balanced_accuracy."+r.name, tm.Test.BalancedAccuracy, "fraction")
		}
	}
}

// benchScaling trains the digits MLP with one shard and with two and
// compares the training rates the epochs report (rows over the slowest
// shard's time; the first epoch or round, which warms up, is left out), and the
// jobs' wall times, which include reading and featurizing. The hidden
// layer is widened to 256 so that training, not the pipeline around it,
// is most of an epoch. Two shards train averaged models, so their result
// differs from one shard's; only the speed is compared here.
func benchScaling(muon string) {
	const epochs = 20
	rate := func(shards string) (float64, time.Duration) {
		_, dir, took := runTrainJob(muon, "configs/train-digits.yaml", "training.shards="+shards,
			fmt.Sprintf("training.epochs=%d", epochs), "model.hidden=[256]")
		defer os.RemoveAll(dir)
		f, err := os.Open(filepath.Join(dir, "epochs.jsonl"))
		must(err)
		defer f.Close()
		var rows int64
		var secs float64
		var seen int
		sc := bufio.NewScanner(f)
		for first := true; sc.Scan(); first = false {
			// A line reports an epoch, or with several shards a round of
			// Span epochs.
			var e struct {
				Rows    int64   `json:"rows"`
				Seconds float64 `json:"seconds"`
				Span    int     `json:"span"`
			}
			must(json.Unmarshal(sc.Bytes(), &e))
			seen += e.Span
			if !first {
				rows, secs = rows+e.Rows*int64(e.Span), secs+e.Seconds
			}
		}
		must(sc.Err())
		if seen != epochs || !(secs > 0) {
			must(fmt.Errorf("digits MLP on %s shard(s): %d epochs in %s/epochs.jsonl (%d rows in %gs after the first line), want %d", shards, seen, dir, rows, secs, epochs))
		}
		fmt.Fprintf(os.Stderr, "bench: digits MLP on %s shard(s): %.0f samples/s after the first epoch or round, job %.1fs\n", shards, float64(rows)/secs, took.Seconds())
		return float64(rows) / secs, took
	}
	r1, t1 := rate("1")
	r2, t2 := rate("2")
	bench("train.pipeline_mlp_1shard.sps", r1, "samples/s")
	bench("train.pipeline_mlp_2shards.sps", r2, "samples/s")
	bench("train.scaling.2shards", r2/r1, "x")
	bench("train.scaling.2shards_job", t1.Seconds()/t2.Seconds(), "x")
}

var benchKey string

// signingKey is the key the bench's train jobs sign snapshots with (the
// example specs name keys/muon.key): a new key pair, made once per bench
// run in a temporary folder that main removes.
func signingKey(muon string) string {
	if benchKey != "" {
		return benchKey
	}
	dir, err := os.MkdirTemp("", "muon-bench-keys-")
	must(err)
	out, err := exec.Command(muon, "models", "keygen", "--dir", dir, "--name", "bench").CombinedOutput()
	if err != nil {
		must(fmt.Errorf("muon models keygen: %v\n%s", err, out))
	}
	benchKey = filepath.Join(dir, "bench.key")
	return benchKey
}
