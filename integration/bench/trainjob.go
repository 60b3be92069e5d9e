package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/records"
)

// jobRun is what a `muon run` of a train job measured.
type jobRun struct {
	wall     time.Duration
	rssMiB   float64 // peak resident set of the muon process
	epochs   int     // epochs the job reported
	computeS float64 // summed training time of the epochs
	samples  int64   // rows trained over all epochs
}

// runMeasured runs `muon run` with args, and env added to the bench's
// environment, and reads what epochs.jsonl in out reports. A failed job
// ends the bench with the tail of its stderr.
func runMeasured(muon, out string, env []string, args ...string) jobRun {
	args = append([]string{"run", "--set", "output.dir=" + out}, args...)
	fmt.Fprintf(os.Stderr, "bench: %s %s %s\n", strings.Join(env, " "), muon, strings.Join(args, " "))
	cmd := exec.Command(muon, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		must(fmt.Errorf("%s %s: %v\n%s", muon, strings.Join(args, " "), err, strings.Join(lines[max(0, len(lines)-15):], "\n")))
	}
	r := jobRun{wall: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.rssMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	f, err := os.Open(filepath.Join(out, "epochs.jsonl"))
	must(err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct {
			Rows    int64   `json:"rows"`
			Seconds float64 `json:"seconds"`
			Span    int     `json:"span"`
		}
		must(json.Unmarshal(sc.Bytes(), &e))
		r.epochs += e.Span
		r.computeS += e.Seconds
		r.samples += e.Rows * int64(e.Span)
	}
	must(sc.Err())
	return r
}

// benchTrainJobs measures what a train job costs beyond its compute:
// BasicMotions (40 cases, one batch) trained for 10 and for 200 epochs
// with the example spec's two shards (peak RSS of each, and the overhead,
// wall time minus summed epoch compute, at 200), and a million rows of 64
// features from optdigits on the edge runner.
func benchTrainJobs(muon, datasets string) {
	work, err := os.MkdirTemp("", "muon-bench-trainjob-")
	must(err)
	defer os.RemoveAll(work)
	var e10, e200 jobRun
	for _, n := range []int{10, 200} {
		r := runMeasured(muon, filepath.Join(work, fmt.Sprintf("e%d", n)), nil, "--config", "configs/train-sensors.yaml",
			"--set", "snapshot.key="+signingKey(muon), "--set", fmt.Sprintf("training.epochs=%d", n))
		if r.epochs != n {
			must(fmt.Errorf("train-sensors: %d epochs reported, want %d", r.epochs, n))
		}
		fmt.Fprintf(os.Stderr, "bench: train-sensors, %d epochs: %.2fs, %.1f MiB peak, %.3fs of epoch compute\n", n, r.wall.Seconds(), r.rssMiB, r.computeS)
		if n == 10 {
			e10 = r
		} else {
			e200 = r
		}
	}
	bench("train.rss_mb.e10", e10.rssMiB, "MiB")
	bench("train.rss_mb.e200", e200.rssMiB, "MiB")
	bench("train.rss_mb.e200_vs_e10", e200.rssMiB/e10.rssMiB, "x")
	bench("train.overhead_s", e200.wall.Seconds()-e200.computeS, "s")
	bench("train.overhead_s.e10", e10.wall.Seconds()-e10.computeS, "s")

	const rows = 1_000_000
	archive := filepath.Join(work, "million")
	start := time.Now()
	must(writeMillionRows(datasets, archive, rows))
	fmt.Fprintf(os.Stderr, "bench: %d rows × 64 features of optdigits (optdigits.tra and .tes repeated, each row with its own id) archived in %.1fs\n", rows, time.Since(start).Seconds())
	channels := make([]string, 64)
	for i := range channels {
		channels[i] = "p" + strconv.Itoa(i)
	}
	spec := filepath.Join(work, "million.yaml")
	must(os.WriteFile(spec, []byte(fmt.Sprintf(`name: million
runner: edge
job: train
source: {archive: [%s], format: sensor}
features: {kind: readings, channels: [%s]}
model: {kind: softmax, labels: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]}
training: {epochs: 2, batch_size: 64, shards: 1, validation: 0.01, optimizer: sgd, learning_rate: 0.05, momentum: 0.9}
`, filepath.Join(archive, "features"), strings.Join(channels, ", "))), 0o644))
	// The Go runtime's soft memory limit (GOMEMLIMIT), as a device with
	// 2 GB would set it, and without one: the collector then lets the heap
	// grow to twice what is live.
	limited := runMeasured(muon, filepath.Join(work, "million-out"), []string{"GOMEMLIMIT=1800MiB"}, "--config", spec)
	free := runMeasured(muon, filepath.Join(work, "million-out-free"), nil, "--config", spec)
	for _, r := range []jobRun{limited, free} {
		fmt.Fprintf(os.Stderr, "bench: %d rows: job %.1fs, %.0f MiB peak, %d samples in %.1fs of epoch compute\n", rows, r.wall.Seconds(), r.rssMiB, r.samples, r.computeS)
	}
	bench("train.scale.1m.sps", float64(limited.samples)/limited.computeS, "samples/s")
	bench("train.scale.1m.rss_mb", limited.rssMiB, "MiB")
	bench("train.scale.1m.job_s", limited.wall.Seconds(), "s")
	bench("train.scale.1m.rss_mb_nolimit", free.rssMiB, "MiB")
	bench("train.scale.1m.job_s_nolimit", free.wall.Seconds(), "s")
}

// writeMillionRows archives n feature rows under dir/features: the rows of
// optdigits.tra then .tes over and over, features scaled to [0, 1], each
// with its own id, a second apart.
func writeMillionRows(datasets, dir string, n int) error {
	var xs [][]float64
	var ys []int
	for _, name := range []string{"optdigits.tra", "optdigits.tes"} {
		x, y, err := readOptdigits(filepath.Join(datasets, "optdigits", name))
		if err != nil {
			return err
		}
		r, _ := x.Dims()
		for i := range r {
			row := make([]float64, 64)
			for j := range row {
				row[j] = x.At(i, j) / 16
			}
			xs = append(xs, row)
		}
		ys = append(ys, y...)
	}
	a, err := parquetio.NewFeatureArchive(filepath.Join(dir, "features"), parquetio.FeatureOptions{Dim: 64}, parquetio.ArchiveOptions{MaxFileRows: 100_000})
	if err != nil {
		return err
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rb := arrowio.NewRowBuilder(memory.DefaultAllocator, 64)
	defer rb.Release()
	for i := range n {
		k := i % len(xs)
		rb.Append("optdigits", t0.Add(time.Duration(i)*time.Second), xs[k], strconv.Itoa(ys[k]), fmt.Sprintf("r%07d", i), records.Source{})
		if rb.Len() == 10_000 || i == n-1 {
			b := rb.NewBatch()
			err := a.Write(b)
			b.Record.Release()
			if err != nil {
				a.Abort()
				return err
			}
		}
	}
	_, err = a.Close()
	return err
}
