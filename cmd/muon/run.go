package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/io/recording"
	"github.com/muonml/muon/io/replay"
	"github.com/muonml/muon/pipelines"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/infer"
)

func runCmd() *command {
	return &command{
		name:  "run",
		usage: "run --config FILE [--config FILE]... [--runner edge|flink] [--endpoint host:port] [--set path=value]...",
		short: "run a job spec on the edge runner or on Flink",
		long: `Runs the job a YAML spec describes (see configs/ for examples). The spec is
loaded and validated before anything starts: an unknown field, a wrong type,
a missing required field or a value out of range stops here, naming the
file, line and field path.

  --runner edge    prism, Beam's Go runner, inside this process (alias: direct)
  --runner flink   Apache Flink through Beam's Flink job server at --endpoint
                   (workers run in this process: LOOPBACK)

The spec's job field says what runs:
  ingest     decode and count records per device (configs/ingest.yaml)
  features   decode, cut sensor streams into event-time windows per device
             (or whole cases) or resize images, compute feature rows, group
             them into Arrow record batches and archive them as Parquet
             partitioned by date and hour (configs/features.yaml,
             configs/features-images.yaml)
  train      the features job's rows, standardized, split into training and
             validation rows, trained data-parallel on shards (model and
             training sections), one progress line per epoch; writes
             model.json and epochs.jsonl (configs/train-sensors.yaml); with
             a snapshot section, compresses, signs and publishes the model
             to a store if it passes the quality gate (configs/train-digits.yaml)
             On an unbounded source: trains the newest model per event-time
             window and publishes each window's model (and, with a snapshot
             section, a signed snapshot), scoring the same rows with any
             inference branches beside (configs/train-engines-stream.yaml)
  infer      the features job's rows in Arrow batches, fanned out to every
             inference branch: each scores them with the newest verified
             snapshot of its store (picking up new versions as they are
             published) and writes predictions, or alerts, to its own topic
             (configs/infer-digits.yaml)

Several --config files run one after another in this process, sharing one
embedded broker (specs without kafka.brokers): make run trains and publishes
with configs/train-digits.yaml, then scores with configs/infer-digits.yaml.
Every spec is loaded and checked before the first starts.

With no kafka.brokers in the spec, muon starts an embedded Kafka broker in
this process for the job. Before reading, the spec's replay section (if any)
produces recordings into the source topics. A bounded job ends by itself and
prints a summary; an unbounded one runs until source.for elapses or Ctrl-C,
then stops its sources and drains the pipeline before the summary.`,
		flags: func(fs *flag.FlagSet, out *streams) func([]string) error {
			var config stringList
			fs.Var(&config, "config", "job spec `file` (YAML; required; repeat to run several jobs in order)")
			runner := fs.String("runner", "", "edge (alias direct) or flink (default: the spec's runner, else edge)")
			endpoint := fs.String("endpoint", "", "Flink job server `host:port` (default: the spec's endpoint)")
			var sets stringList
			fs.Var(&sets, "set", "override a spec field, `path=value` (repeatable), e.g. --set kafka.brokers=[127.0.0.1:9092]")
			verbose := fs.Bool("verbose", false, "show Beam's and the runner's own logs")
			cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `file` (read it with go tool pprof)")
			return func(args []string) error {
				if len(args) > 0 {
					return fmt.Errorf("%w: unexpected arguments %v", errUsage, args)
				}
				if len(config) == 0 {
					return fmt.Errorf("%w: --config is required", errUsage)
				}
				var specs []*configs.Spec
				var opts []runners.Options
				for _, c := range config {
					spec, err := configs.Load(c, sets...)
					if err != nil {
						return err
					}
					if *runner != "" {
						spec.Runner = *runner
					}
					if *endpoint != "" {
						spec.Endpoint = *endpoint
					}
					kind, err := runners.Parse(spec.Runner)
					if err != nil {
						return fmt.Errorf("%w: %s: %v", errUsage, c, err)
					}
					if kind == runners.Edge && spec.Training.Stream.Every > 0 {
						return fmt.Errorf("%s: training.stream.every: the edge runner has no processing-time triggers; its windows fire as the watermark passes their end: remove every, or run on flink", c)
					}
					specs = append(specs, spec)
					opts = append(opts, runners.Options{Kind: kind, Endpoint: spec.Endpoint, JobName: spec.Name, Verbose: *verbose})
				}
				if *cpuprofile != "" {
					f, err := os.Create(*cpuprofile)
					if err != nil {
						return err
					}
					if err := pprof.StartCPUProfile(f); err != nil {
						f.Close()
						return err
					}
					defer func() {
						pprof.StopCPUProfile()
						f.Close()
					}()
				}
				var shared *embedded.Broker
				for i, spec := range specs {
					if len(specs) > 1 && len(spec.Kafka.Brokers) == 0 && shared == nil {
						b, err := embedded.Start(embedded.Options{Partitions: spec.Kafka.Partitions})
						if err != nil {
							return err
						}
						defer b.Close()
						shared = b
						fmt.Fprintf(out.stderr, "muon: embedded Kafka broker on %s, shared by %d jobs\n", b.Addr(), len(specs))
					}
					if len(specs) > 1 {
						fmt.Fprintf(out.stderr, "muon: job %d of %d: %s (%s)\n", i+1, len(specs), spec.Name, config[i])
					}
					if err := runJob(spec, opts[i], shared, out.stdout, out.stderr); err != nil {
						if len(specs) > 1 {
							return fmt.Errorf("%s: %w", config[i], err)
						}
						return err
					}
				}
				return nil
			}
		},
	}
}

// jobSummary is what a finished job reports, printed and written to
// <output.dir>/summary.json.
type jobSummary struct {
	Job         string          `json:"job"`
	Runner      string          `json:"runner"`
	Brokers     []string        `json:"brokers"`
	Embedded    bool            `json:"embedded_broker"`
	Topics      []string        `json:"topics"`
	Replayed    int64           `json:"replayed_records,omitempty"`
	Inference   []branchSummary `json:"inference,omitempty"`
	Read        int64           `json:"records_read"`
	Decoded     int64           `json:"records_decoded"`
	DeadLetters int64           `json:"dead_letters"`
	DLQTopics   []string        `json:"dead_letter_topics"`
	DLQReasons  []reason        `json:"dead_letter_reasons,omitempty"`
	Devices     int             `json:"devices,omitempty"`
	CountsFile  string          `json:"counts_file,omitempty"`
	Features    *featureSummary `json:"features,omitempty"`
	Training    *trainSummary   `json:"training,omitempty"`
	Stream      *streamSummary  `json:"stream_training,omitempty"`
	Seconds     float64         `json:"seconds"`
	PerSecond   float64         `json:"records_per_second"`
	// PeakRSSMiB is the muon process's peak resident memory so far (Linux;
	// 0 elsewhere).
	PeakRSSMiB float64          `json:"peak_rss_mib"`
	Counters   map[string]int64 `json:"counters"`
}

// runJob runs one spec; shared, if not nil, is the embedded broker of a
// spec without brokers.
func runJob(spec *configs.Spec, ro runners.Options, shared *embedded.Broker, stdout, stderr io.Writer) error {
	ctx := context.Background()
	if err := pipelines.CheckFiles(spec); err != nil {
		return err
	}
	brokers := spec.Kafka.Brokers
	embeddedBroker := len(brokers) == 0
	if embeddedBroker && shared != nil {
		brokers = []string{shared.Addr()}
	} else if embeddedBroker {
		b, err := embedded.Start(embedded.Options{Partitions: spec.Kafka.Partitions})
		if err != nil {
			return err
		}
		defer b.Close()
		brokers = []string{b.Addr()}
		fmt.Fprintf(stderr, "muon: embedded Kafka broker on %s\n", b.Addr())
	}
	read := spec.Source.Topics
	if spec.Job == "train" {
		read = append(slices.Clip(read), spec.Training.Test.Topics...)
	}
	topics := make([]kafkaio.TopicSpec, 0, 2*len(read))
	var dlqs []string
	for _, t := range read {
		dlqs = append(dlqs, t+spec.Decode.DeadLetterSuffix)
		topics = append(topics, kafkaio.TopicSpec{Name: t, Partitions: spec.Kafka.Partitions}, kafkaio.TopicSpec{Name: t + spec.Decode.DeadLetterSuffix, Partitions: spec.Kafka.Partitions})
	}
	for _, b := range spec.Inference {
		topics = append(topics, kafkaio.TopicSpec{Name: b.Topic, Partitions: spec.Kafka.Partitions})
	}
	if !spec.Source.IsBounded() && spec.Job == "ingest" {
		topics = append(topics, kafkaio.TopicSpec{Name: pipelines.CountsTopic(spec), Partitions: spec.Kafka.Partitions})
	}
	if err := kafkaio.EnsureTopics(ctx, brokers, topics...); err != nil {
		return err
	}

	sum := jobSummary{Job: spec.Name, Runner: string(ro.Kind), Brokers: brokers, Embedded: embeddedBroker, Topics: read, DLQTopics: dlqs}
	for _, r := range spec.Replay {
		if r.Live {
			r.Start = time.Now().UTC()
			if r.Rate == 0 {
				r.Rate = 1 / r.Period.D().Seconds() // event times keep pace with the clock
			}
		}
		o := replay.Options{
			Brokers: brokers, Topic: r.Topic, Rate: r.Rate, Progress: stderr,
			Recording: recording.Options{Start: r.Start, Period: r.Period.D(), Device: r.Device, Exclude: r.Exclude, Format: r.Format, RUL: r.RUL},
		}
		s, err := replay.Replay(ctx, []string{r.Path}, o)
		if err != nil {
			return fmt.Errorf("replay %s: %w", r.Path, err)
		}
		sum.Replayed += s.Records
		fmt.Fprintf(stderr, "muon: replayed %s into %s: %s\n", r.Path, r.Topic, s)
	}

	if err := os.MkdirAll(spec.Output.Dir, 0o755); err != nil {
		return fmt.Errorf("output dir: %w", err)
	}
	countsFile := pipelines.CountsFile(spec)
	_ = os.Remove(countsFile)
	_ = os.Remove(pipelines.PreprocessFile(spec))

	opts := pipelines.Options{Brokers: brokers, Version: muonVersion()}
	if !spec.Source.IsBounded() {
		stopFile := filepath.Join(spec.Output.Dir, ".stop")
		_ = os.Remove(stopFile)
		defer os.Remove(stopFile)
		opts.StopFile = stopFile
		if spec.Source.For > 0 {
			opts.Until = time.Now().Add(spec.Source.For.D())
		}
		sigs := make(chan os.Signal, 2)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
		go func() {
			<-sigs
			fmt.Fprintln(stderr, "muon: stopping sources and draining the pipeline (signal again to abort)")
			_ = os.WriteFile(stopFile, nil, 0o644)
			<-sigs
			fmt.Fprintln(stderr, "muon: aborted")
			os.Exit(130)
		}()
	}

	started := time.Now()
	var served []*infer.Model
	p, s := beam.NewPipelineWithRoot()
	switch spec.Job {
	case "features":
		pipelines.Features(s, spec, opts)
	case "train":
		_ = os.Remove(pipelines.EpochsFile(spec))
		_ = os.Remove(pipelines.ModelFile(spec))
		_ = os.Remove(pipelines.WindowsFile(spec)) // the model store stays: a new run continues from its newest model
		_ = os.Remove(pipelines.SnapshotFile(spec))
		if err := pipelines.Train(s, spec, opts); err != nil {
			return err
		}
	case "infer":
		var err error
		if served, err = pipelines.CheckInference(ctx, spec); err != nil {
			return err
		}
		for i, m := range served {
			fmt.Fprintf(stderr, "muon: branch %s serves %s from %s\n", spec.Inference[i].Name, m.Name(), spec.Inference[i].Store)
		}
		if err := pipelines.Infer(s, spec, opts); err != nil {
			return err
		}
	default:
		pipelines.Ingest(s, spec, opts)
	}

	mode := "bounded"
	if !spec.Source.IsBounded() {
		mode = "unbounded"
	}
	fmt.Fprintf(stderr, "muon: running job %q (%s read of %s) on the %s runner\n", spec.Name, mode, strings.Join(spec.Source.Topics, ","), ro.Kind)
	done := make(chan struct{})
	go progress(stderr, done)
	res, err := runners.Run(ctx, p, ro)
	close(done)
	if res != nil && res.Refused > 0 {
		fmt.Fprintf(stderr, "muon: warning: the edge runner refused %d connection(s) from other processes to its endpoints\n", res.Refused)
	}
	if err != nil {
		return err
	}

	sum.Read = res.Counter("kafkaio.Read", "records")
	sum.Decoded = res.Counter("decode", "sensor.ok") + res.Counter("decode", "image.ok")
	sum.DeadLetters = res.Counter("decode", "sensor.dead") + res.Counter("decode", "image.dead") + res.Counter("featurize", "windows.late")
	sum.Counters = res.Counters
	sum.Seconds = res.Elapsed.Seconds()
	if sum.Seconds > 0 {
		sum.PerSecond = float64(sum.Read) / sum.Seconds
	}
	if kb, ok := peakRSSKiB(); ok {
		sum.PeakRSSMiB = float64(kb) / 1024
	}
	if sum.DeadLetters > 0 {
		sum.DLQReasons = deadLetterReasons(ctx, brokers, dlqs)
	}
	var devices [][]string
	switch {
	case spec.Job == "train" && !spec.Source.IsBounded():
		if sum.Stream, err = summarizeStream(spec); err != nil {
			return err
		}
	case spec.Job == "train":
		if sum.Training, err = summarizeTraining(spec, res); err != nil {
			return err
		}
	case spec.Job == "infer":
		sum.Inference = summarizeInference(spec, served, res)
		for _, b := range sum.Inference {
			sum.DeadLetters += b.DeadLetters
		}
	case spec.Job == "features":
		if sum.Features, err = summarizeFeatures(spec, res, started); err != nil {
			return err
		}
	case spec.Source.IsBounded():
		devices, err = readCounts(countsFile)
		if err != nil {
			return err
		}
		sum.Devices = len(devices)
		sum.CountsFile = countsFile
	}
	if err := writeJSON(filepath.Join(spec.Output.Dir, "summary.json"), sum); err != nil {
		return err
	}
	printSummary(stdout, spec, &sum, devices)
	return nil
}

// reason is a kind of dead letter and how many there were.
type reason struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// deadLetterReasons tallies the newest dead letters by the kind of error
// their header names (the message up to its detail), most frequent first.
func deadLetterReasons(ctx context.Context, brokers, topics []string) []reason {
	counts := map[string]int{}
	for _, t := range topics {
		recs, err := kafkaio.Tail(ctx, brokers, t, 10000)
		if err != nil {
			continue
		}
		for _, r := range recs {
			e, _ := r.Header(kafkaio.HeaderError)
			stage, _ := r.Header(kafkaio.HeaderStage)
			counts[string(stage)+": "+errorKind(string(e))]++
		}
	}
	out := make([]reason, 0, len(counts))
	for k, n := range counts {
		out = append(out, reason{Reason: k, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

// errorKind keeps the first two parts of a wrapped error message
// ("message: invalid JSON"), dropping per-record detail.
func errorKind(msg string) string {
	parts := strings.SplitN(msg, ": ", 3)
	if len(parts) >= 2 {
		return parts[0] + ": " + parts[1]
	}
	return msg
}

func progress(w io.Writer, done <-chan struct{}) {
	start := time.Now()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			fmt.Fprintf(w, "muon: job running, %s elapsed\n", time.Since(start).Round(time.Second))
		}
	}
}

// readCounts reads the per-device counts file; a job that decoded nothing
// writes none.
func readCounts(path string) ([][]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) > 0 {
		rows = rows[1:]
	}
	return rows, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func printSummary(w io.Writer, spec *configs.Spec, s *jobSummary, devices [][]string) {
	broker := strings.Join(s.Brokers, ",")
	if s.Embedded {
		broker += " (embedded)"
	}
	fmt.Fprintf(w, "\njob %s: done on the %s runner in %.1fs\n", s.Job, s.Runner, s.Seconds)
	fmt.Fprintf(w, "  kafka          %s, topics %s\n", broker, strings.Join(s.Topics, ","))
	if s.Replayed > 0 {
		fmt.Fprintf(w, "  replayed       %d records\n", s.Replayed)
	}
	fmt.Fprintf(w, "  read           %d records (%.0f records/s)\n", s.Read, s.PerSecond)
	if s.PeakRSSMiB > 0 {
		fmt.Fprintf(w, "  memory         %.0f MiB peak resident (this process, so far)\n", s.PeakRSSMiB)
	}
	kind := "readings"
	if spec.Source.Format == "image" {
		kind = "images"
	}
	fmt.Fprintf(w, "  decoded        %d %s\n", s.Decoded, kind)
	fmt.Fprintf(w, "  dead letters   %d → %s\n", s.DeadLetters, strings.Join(s.DLQTopics, ","))
	for _, r := range s.DLQReasons {
		fmt.Fprintf(w, "                 %4d  %s\n", r.Count, r.Reason)
	}
	if s.Inference != nil {
		printInference(w, s.Inference)
	} else if s.Training != nil {
		printTraining(w, s.Training)
	} else if s.Stream != nil {
		printStream(w, s.Stream)
	} else if s.Features != nil {
		printFeatures(w, s.Features)
	} else if spec.Source.IsBounded() {
		fmt.Fprintf(w, "  devices        %d → %s\n", s.Devices, s.CountsFile)
		labels := map[string]int{}
		for _, d := range devices {
			if len(d) >= 5 && d[4] != "" {
				labels[d[4]]++
			}
		}
		if len(labels) > 0 && spec.Source.Format != "image" {
			names := make([]string, 0, len(labels))
			for l := range labels {
				names = append(names, l)
			}
			sort.Strings(names)
			parts := make([]string, len(names))
			for i, l := range names {
				parts[i] = fmt.Sprintf("%s %d", l, labels[l])
			}
			fmt.Fprintf(w, "  devices/label  %s\n", strings.Join(parts, ", "))
		}
	} else {
		fmt.Fprintf(w, "  counts         per device and minute → topic %s\n", pipelines.CountsTopic(spec))
	}
	fmt.Fprintf(w, "  summary        %s\n", filepath.Join(spec.Output.Dir, "summary.json"))
}

// peakRSSKiB is this process's peak resident set size (VmHWM), from
// /proc/self/status; false where there is none.
func peakRSSKiB() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
