package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/producer/replay"
)

// soakWarmup is left out of the slope: the job fills its buffers and the
// Go heap finds its size.
const soakWarmup = 2 * time.Minute

// benchSoak runs an unbounded edge infer job for d while a producer feeds
// it at rate (about half the live job's maximum), samples the job's resident
// memory every second, and reports the slope after the warm-up
// (edge.soak.rss_slope_mb_per_min, goal < 1) with the first and last
// samples, and how many produced records the job had not scored when it
// ended (edge.soak.unscored: the figure is steady-state memory only if
// the job kept up). The topic keeps at most 256 MiB a partition, so a long soak does
// not fill the disk.
func benchSoak(muon string, brokers []string, store, pub, datasets string, rate float64, d time.Duration) {
	ctx := context.Background()
	topic := fmt.Sprintf("soak-%d", time.Now().UnixNano()%1e9)
	limits := map[string]string{"retention.bytes": strconv.Itoa(256 << 20), "segment.bytes": strconv.Itoa(64 << 20)}
	must(kafkaio.EnsureTopics(ctx, kafkaio.Plain(brokers...), kafkaio.TopicSpec{Name: topic, Partitions: 4, Configs: limits},
		kafkaio.TopicSpec{Name: topic + ".dlq", Partitions: 4}, kafkaio.TopicSpec{Name: topic + ".predictions", Partitions: 4, Configs: limits},
		kafkaio.TopicSpec{Name: topic + ".predictions.dlq", Partitions: 4}))
	out, err := os.MkdirTemp("", "muon-bench-soak-")
	must(err)
	defer os.RemoveAll(out)
	cmd := exec.Command(muon, "run", "--config", "configs/infer-digits.yaml",
		"--set", "kafka.brokers=["+strings.Join(brokers, ",")+"]", "--set", "source.topics=["+topic+"]", "--set", "replay=[]",
		"--set", "source.bounded=false", "--set", "source.start=latest", "--set", fmt.Sprintf("source.for=%ds", int((d+10*time.Second).Seconds())),
		"--set", "batch.max_wait=100ms", "--set", "output.dir="+out,
		"--set", fmt.Sprintf("inference=[{name: digits, store: %s, trust: [%s], topic: %s.predictions}]", store, pub, topic))
	logPath := filepath.Join(out, "job.log")
	logFile, err := os.Create(logPath)
	must(err)
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	must(cmd.Start())
	pid := cmd.Process.Pid

	stop := time.Now().Add(d)
	produced := make(chan error, 1)
	var sent int64
	go func() {
		time.Sleep(3 * time.Second)
		tes := filepath.Join(datasets, "optdigits", "optdigits.tes")
		for time.Now().Before(stop) {
			// 10 s of records a call, at the rate, with event times from now.
			copies := int(rate*10)/1797 + 1
			paths := make([]string, copies)
			for i := range paths {
				paths[i] = tes
			}
			sum, err := replay.Replay(ctx, paths, replay.Options{Brokers: brokers, Topic: topic, Rate: rate,
				Recording: recording.Options{Format: "csv", Device: "optdigits", Start: time.Now(), Period: time.Duration(float64(time.Second) / rate)}})
			sent += sum.Records
			if err != nil {
				produced <- err
				return
			}
		}
		produced <- nil
	}()

	type sample struct{ t, mb float64 }
	var samples []sample
	began := time.Now()
	tick := time.NewTicker(time.Second)
	for now := range tick.C {
		if now.After(stop) {
			break
		}
		if kb, ok := vmRSS(pid); ok {
			samples = append(samples, sample{now.Sub(began).Minutes(), kb / 1024})
		}
	}
	tick.Stop()
	must(<-produced)
	if err := cmd.Wait(); err != nil {
		tail, _ := os.ReadFile(logPath)
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		must(fmt.Errorf("the soaked job: %v\n%s", err, tail))
	}
	// A job that fell behind its producer holds more than a steady one:
	// the figure is only steady-state memory if it kept up.
	raw, err := os.ReadFile(filepath.Join(out, "summary.json"))
	must(err)
	var js jobSummary
	must(json.Unmarshal(raw, &js))
	if len(js.Inference) != 1 {
		must(fmt.Errorf("soak: summary %s", raw))
	}
	unscored := sent - js.Inference[0].Predictions
	fmt.Fprintf(os.Stderr, "bench: soak: %d records produced, %d scored by the end\n", sent, js.Inference[0].Predictions)
	bench("edge.soak.unscored", float64(unscored), "records")
	var xs, ys []float64
	for _, s := range samples {
		if s.t >= soakWarmup.Minutes() {
			xs, ys = append(xs, s.t), append(ys, s.mb)
		}
	}
	if len(xs) < 10 {
		must(fmt.Errorf("soak: %d samples after the warm-up; run it longer than %v", len(xs), soakWarmup))
	}
	slope := leastSquaresSlope(xs, ys)
	fmt.Fprintf(os.Stderr, "bench: soak %v at %.0f records/s: RSS %.0f MiB after the warm-up, %.0f MiB at the end, slope %.2f MiB/min over %d samples\n",
		d, rate, ys[0], ys[len(ys)-1], slope, len(ys))
	bench("edge.soak.rss_slope_mb_per_min", slope, "MiB/min")
	bench("edge.soak.rss_end_mb", ys[len(ys)-1], "MiB")
}

// vmRSS is a process's resident size in KiB.
func vmRSS(pid int) (float64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return n, err == nil
		}
	}
	return 0, false
}

func leastSquaresSlope(xs, ys []float64) float64 {
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	n := float64(len(xs))
	mx, my = mx/n, my/n
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	return num / den
}
