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
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/producer/replay"
)

// e2eCopies is how many times the optdigits test split is replayed into
// the e2e topic: 1797 × 60 = 107,820 records.
const e2eCopies = 60

// benchE2E measures the infer job end to end on the edge runner: Kafka →
// decode → features → Arrow batches → inference → Kafka, with the digits
// MLP's pruned int8 snapshot (configs/infer-digits.yaml's features, one
// branch). First a bounded read of records already in the topic
// (unlimited input rate): e2e.edge.rps and the job's peak resident memory,
// edge.rss_mb (with the spec's edge.memory_limit, and without it:
// edge.rss_mb.no_limit). Then an unbounded job fed live at half that rate for
// 20 s: e2e.edge.p99_ms, event time to prediction, read back from the
// predictions topic.
func benchE2E(muon, datasets, kafkaAddr string, soak time.Duration) {
	res, dir := snapshotRun(muon, "configs/train-digits.yaml", "training.shards=1")
	defer os.RemoveAll(dir)
	store, pub := filepath.Dir(res.Path), strings.TrimSuffix(signingKey(muon), ".key")+".pub"

	// Apache Kafka when there is one (make bench starts it): the embedded
	// broker answers a fetch with more than it asks for, which doubles
	// the job's resident memory.
	var brokers []string
	if kafkaAddr != "" {
		brokers = []string{kafkaAddr}
	} else {
		b, err := embedded.Start(embedded.Options{Partitions: 4})
		must(err)
		defer b.Close()
		brokers = []string{b.Addr()}
	}
	fmt.Fprintf(os.Stderr, "bench: e2e on the broker at %s\n", strings.Join(brokers, ","))
	ctx := context.Background()
	// Topic names unique per run: Apache Kafka outlives the bench.
	suffix := fmt.Sprintf("-%d", time.Now().UnixNano()%1e9)
	e2eTopic, liveTopic := "e2e"+suffix, "live"+suffix
	var specs []kafkaio.TopicSpec
	for _, t := range []string{e2eTopic, liveTopic} {
		for _, s := range []string{"", ".dlq", ".predictions", ".flink.predictions", ".flink.predictions.dlq", ".predictions.dlq", ".hand.predictions"} {
			specs = append(specs, kafkaio.TopicSpec{Name: t + s, Partitions: 4})
		}
	}
	must(kafkaio.EnsureTopics(ctx, kafkaio.Plain(brokers...), specs...))
	tes := filepath.Join(datasets, "optdigits", "optdigits.tes")
	paths := make([]string, e2eCopies)
	for i := range paths {
		paths[i] = tes
	}
	sum, err := replay.Replay(ctx, paths, replay.Options{Brokers: brokers, Topic: e2eTopic,
		Recording: recording.Options{Format: "csv", Device: "optdigits", Start: time.Now(), Period: time.Microsecond}})
	must(err)
	fmt.Fprintf(os.Stderr, "bench: e2e: %d optdigits test records in topic %s\n", sum.Records, e2eTopic)

	run := func(topic, out string, set ...string) (jobSummary, float64) {
		args := []string{"run", "--config", "configs/infer-digits.yaml",
			"--set", "kafka.brokers=[" + strings.Join(brokers, ",") + "]", "--set", "source.topics=[" + topic + "]", "--set", "replay=[]",
			"--set", "output.dir=" + out,
			"--set", fmt.Sprintf("inference=[{name: digits, store: %s, trust: [%s], topic: %s.predictions}]", store, pub, topic)}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		fmt.Fprintf(os.Stderr, "bench: %s %s\n", muon, strings.Join(args, " "))
		cmd := exec.Command(muon, args...)
		cmd.Stderr = os.Stderr
		must(cmd.Run())
		raw, err := os.ReadFile(filepath.Join(out, "summary.json"))
		must(err)
		var js jobSummary
		must(json.Unmarshal(raw, &js))
		// The job's own peak (VmHWM), not the child's rusage: Linux counts
		// in a child's ru_maxrss the parent's resident size when it
		// forked, and this process is large after the other groups.
		return js, js.PeakRSSMiB
	}
	work, err := os.MkdirTemp("", "muon-bench-e2e-")
	must(err)
	defer os.RemoveAll(work)

	js, rss := run(e2eTopic, filepath.Join(work, "bounded"))
	if len(js.Inference) != 1 || js.Inference[0].Predictions != sum.Records {
		must(fmt.Errorf("e2e: %d records in, summary %+v", sum.Records, js.Inference))
	}
	rps := float64(js.Inference[0].Predictions) / js.Seconds
	fmt.Fprintf(os.Stderr, "bench: e2e edge: %d predictions in %.2fs, accuracy %.4f, peak RSS %.0f MiB\n", js.Inference[0].Predictions, js.Seconds, js.Inference[0].Accuracy, rss)
	bench("e2e.edge.rps", rps, "records/s")
	bench("edge.rss_mb", rss, "MiB")
	bench("cost.cpu_s_per_1k.edge", js.CPUPer1kPredictions, "s")
	// The spec's edge.memory_limit (a device's budget) against none: the
	// collector then lets the heap grow to twice what is live.
	free, freeRSS := run(e2eTopic, filepath.Join(work, "bounded-no-limit"), "edge.memory_limit=0")
	fmt.Fprintf(os.Stderr, "bench: e2e edge without edge.memory_limit: %d predictions in %.2fs, peak RSS %.0f MiB\n", free.Inference[0].Predictions, free.Seconds, freeRSS)
	bench("edge.rss_mb.no_limit", freeRSS, "MiB")
	bench("e2e.edge.rps.no_limit", float64(free.Inference[0].Predictions)/free.Seconds, "records/s")

	hand := benchHandwritten(brokers, e2eTopic, e2eTopic+".hand.predictions", store, pub)
	if hand.records != sum.Records {
		must(fmt.Errorf("hand-written loop: %d predictions of %d records", hand.records, sum.Records))
	}
	hrps := float64(hand.records) / hand.elapsed.Seconds()
	fmt.Fprintf(os.Stderr, "bench: e2e hand-written Go loop (kafka-go, the same decode and snapshot, acks=all): %d predictions in %.2fs, %.1f CPU-s\n", hand.records, hand.elapsed.Seconds(), hand.cpu.Seconds())
	bench("e2e.handwritten.rps", hrps, "records/s")
	bench("e2e.edge.vs_handwritten", rps/hrps, "x")
	bench("cost.cpu_s_per_1k.handwritten", hand.cpu.Seconds()/float64(hand.records)*1000, "s")

	if ep := os.Getenv("FLINK_ENDPOINT"); ep != "" {
		jvm0 := flinkJVMCPU()
		fj, _ := run(e2eTopic, filepath.Join(work, "flink"), "runner=flink", "endpoint="+ep, "inference=[{name: digits, store: "+store+", trust: ["+pub+"], topic: "+e2eTopic+".flink.predictions}]")
		jvmCPU := flinkJVMCPU() - jvm0
		if len(fj.Inference) != 1 || fj.Inference[0].Predictions != sum.Records {
			must(fmt.Errorf("e2e flink: %d records in, summary %+v", sum.Records, fj.Inference))
		}
		frps := float64(fj.Inference[0].Predictions) / fj.Seconds
		fmt.Fprintf(os.Stderr, "bench: e2e flink: %d predictions in %.2fs (job submission included), accuracy %.4f\n", fj.Inference[0].Predictions, fj.Seconds, fj.Inference[0].Accuracy)
		bench("e2e.flink.rps", frps, "records/s")
		if fj.CPUPer1kPredictions > 0 {
			// The submitting process (LOOPBACK: the Go workers too) and the
			// job server's JVM (Flink's own work).
			bench("cost.cpu_s_per_1k.flink", fj.CPUPer1kPredictions+jvmCPU/float64(fj.Inference[0].Predictions)*1000, "s")
		}
		bench("e2e.flink.vs_edge", frps/rps, "x")
	} else {
		fmt.Fprintln(os.Stderr, "bench: FLINK_ENDPOINT not set: e2e.flink.rps skipped (make bench starts the job server)")
	}

	// The same job on the Flink session cluster (two TaskManagers, each
	// starting muon workers itself), at parallelism 1 and 2.
	if ep := os.Getenv("FLINK_CLUSTER_ENDPOINT"); ep != "" {
		self, err := filepath.Abs(muon)
		must(err)
		var p1 float64
		for _, par := range []int{1, 2} {
			topic := fmt.Sprintf("%s.cluster.p%d", e2eTopic, par)
			cj, _ := run(e2eTopic, filepath.Join(work, fmt.Sprintf("cluster-p%d", par)), "runner=flink", "endpoint="+ep,
				"flink.environment=process", "flink.worker_command="+self, fmt.Sprintf("flink.parallelism=%d", par),
				"inference=[{name: digits, store: "+store+", trust: ["+pub+"], topic: "+topic+".predictions}]")
			if len(cj.Inference) != 1 || cj.Inference[0].Predictions != sum.Records {
				must(fmt.Errorf("e2e flink cluster p%d: %d records in, summary %+v", par, sum.Records, cj.Inference))
			}
			crps := float64(cj.Inference[0].Predictions) / cj.Seconds
			fmt.Fprintf(os.Stderr, "bench: e2e flink cluster, parallelism %d: %d predictions in %.2fs (job submission and the workers' start included)\n", par, cj.Inference[0].Predictions, cj.Seconds)
			bench(fmt.Sprintf("e2e.flink_cluster.rps.p%d", par), crps, "records/s")
			if par == 1 {
				p1 = crps
			} else {
				bench("e2e.flink_cluster.scaling", crps/p1, "x")
			}
		}
	} else {
		fmt.Fprintln(os.Stderr, "bench: FLINK_CLUSTER_ENDPOINT not set: e2e.flink_cluster figures skipped (make bench starts the cluster)")
	}

	// Beam Python beside it: the same records (the topic's message values,
	// dumped to a file), the same task (an MLP of 100 relu units on
	// standardized digits), RunInference with scikit-learn on the
	// DirectRunner.
	if py := os.Getenv("MUON_BEAM_PYTHON"); py != "" {
		recs, err := kafkaio.Tail(ctx, kafkaio.Plain(brokers...), e2eTopic, int(sum.Records))
		must(err)
		var buf []byte
		for _, r := range recs {
			buf = append(append(buf, r.Value...), '\n')
		}
		input := filepath.Join(work, "records.jsonl")
		must(os.WriteFile(input, buf, 0o644))
		// One worker, then one per core (worker processes).
		best := 0.0
		for _, workers := range []int{1, 2} {
			out := filepath.Join(work, fmt.Sprintf("beam-python-%dw", workers))
			cmd := exec.Command(py, "integration/python/beam_infer.py", "--train", filepath.Join(datasets, "optdigits", "optdigits.tra"), "--input", input, "--output", out, "--workers", strconv.Itoa(workers))
			cmd.Stderr = os.Stderr
			fmt.Fprintf(os.Stderr, "bench: %s\n", strings.Join(cmd.Args, " "))
			raw, err := cmd.Output()
			must(err)
			var pr struct {
				Records    int64   `json:"records"`
				Seconds    float64 `json:"seconds"`
				CPUSeconds float64 `json:"cpu_seconds"`
				Accuracy   float64 `json:"accuracy"`
			}
			must(json.Unmarshal(raw, &pr))
			if pr.Records != sum.Records {
				must(fmt.Errorf("beam python (%d workers): %d predictions of %d records", workers, pr.Records, sum.Records))
			}
			prps := float64(pr.Records) / pr.Seconds
			fmt.Fprintf(os.Stderr, "bench: e2e beam python, %d worker(s) (file of the topic's %d records, DirectRunner, RunInference + scikit-learn): %.2fs, %.1f CPU-s, accuracy %.4f\n", workers, pr.Records, pr.Seconds, pr.CPUSeconds, pr.Accuracy)
			name := "e2e.beam_python"
			if workers > 1 {
				name = fmt.Sprintf("e2e.beam_python_%dw", workers)
			}
			bench(name+".rps", prps, "records/s")
			bench(fmt.Sprintf("cost.cpu_s_per_1k.beam_python_%dw", workers), pr.CPUSeconds/float64(pr.Records)*1000, "s")
			best = max(best, prps)
		}
		bench("e2e.ratio", rps/best, "x")
	} else {
		fmt.Fprintln(os.Stderr, "bench: MUON_BEAM_PYTHON not set: e2e.beam_python.rps skipped (integration/python/venv.sh beam makes it)")
	}

	// Live at half the rate: the producer runs beside the job.
	rate := rps / 2
	const seconds = 20
	done := make(chan error, 1)
	go func() {
		time.Sleep(3 * time.Second) // the job starts and reaches the head of the topic
		// One file of the copies: a recording's event times start over
		// with every file.
		live, err := repeatCSV(tes, int(rate*seconds)/1797+1, filepath.Join(work, "live.csv"))
		if err != nil {
			done <- err
			return
		}
		_, err = replay.Replay(ctx, []string{live}, replay.Options{Brokers: brokers, Topic: liveTopic, Rate: rate,
			Recording: recording.Options{Format: "csv", Device: "optdigits", Start: time.Now(), Period: time.Duration(float64(time.Second) / rate)}})
		done <- err
	}()
	live, _ := run(liveTopic, filepath.Join(work, "live"), "source.bounded=false", "source.start=latest", fmt.Sprintf("source.for=%ds", seconds+5), "batch.max_wait=100ms")
	must(<-done)
	br := live.Inference[0]
	fmt.Fprintf(os.Stderr, "bench: e2e edge live at %.0f records/s: %d predictions, latency p50 %.1f ms, p99 %.1f ms\n", rate, br.Predictions, br.LatencyP50, br.LatencyP99)
	bench("e2e.edge.live_rate", rate, "records/s")
	bench("e2e.edge.p50_ms", br.LatencyP50, "ms")
	bench("e2e.edge.p99_ms", br.LatencyP99, "ms")
	benchEdgeBinary(muon)
	benchColdStart(muon, brokers, store, pub, datasets)
	benchPredict(muon, store, pub, datasets)
	if soak > 0 {
		// About half the live job's maximum. With its producer and the
		// broker on the same two cores, an unbounded job sustains about a
		// third of the bounded rate over ten minutes (a soak at a quarter
		// of 7.0e4 records/s scored 1.31e4 a second and fell 2.7 million
		// behind); the 20 s live run above overstates it, its backlog has
		// no time to grow. So the soak runs at a sixth of the bounded rate.
		benchSoak(muon, brokers, store, pub, datasets, rps/6, soak)
	}
}

// jobSummary is the part of an infer job's summary.json the bench reads.
type jobSummary struct {
	Seconds             float64 `json:"seconds"`
	PeakRSSMiB          float64 `json:"peak_rss_mib"`
	CPUPer1kPredictions float64 `json:"cpu_s_per_1k_predictions"`
	Inference           []struct {
		Predictions int64   `json:"predictions"`
		Accuracy    float64 `json:"accuracy"`
		LatencyP50  float64 `json:"latency_p50_ms"`
		LatencyP99  float64 `json:"latency_p99_ms"`
	} `json:"inference"`
}

// repeatCSV writes the CSV file at path n times over to out, its header
// once.
func repeatCSV(path string, n int, out string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	header, body, _ := strings.Cut(string(b), "\n")
	var w strings.Builder
	w.WriteString(header + "\n")
	for i := 0; i < n; i++ {
		w.WriteString(strings.TrimRight(body, "\n") + "\n")
	}
	return out, os.WriteFile(out, []byte(w.String()), 0o644)
}
