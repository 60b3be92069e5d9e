package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/internal/memlimit"
	"github.com/muonml/muon/internal/printable"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/runners"
)

// runHelp is the help of muon run.
const runHelp = `Runs the job a YAML spec describes (see configs/ for examples). The spec is
loaded and validated before anything starts: an unknown field, a wrong type,
a missing required field or a value out of range stops here, naming the
file, line and field path.

  --runner edge    prism, Beam's Go runner, inside this process (alias: direct)
  --runner flink   Apache Flink through Beam's Flink job server at --endpoint
                   (workers run in this process: LOOPBACK)

The spec's job field says what runs:
  ingest     decode and count records per device (configs/ingest.yaml)
  features   decode, cut sensor streams into event-time windows per device
             (or whole cases) or resize images, compute feature rows (or
             MiniRocket's raw series), group them into Arrow record batches
             and archive them as Parquet partitioned by date and hour, or
             day (configs/features.yaml, configs/features-images.yaml)
  train      the features job's rows, standardized, split into training and
             validation rows, trained data-parallel on shards in rounds of
             local SGD (model and training sections), one progress line per
             epoch or round, or solved in closed form (optimizer: ridge);
             MiniRocket features are fitted to the training series
             (configs/train-plaid.yaml); writes model.json and epochs.jsonl
             (configs/train-sensors.yaml); with
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
then stops its sources and drains the pipeline before the summary.`

func runCmd() *command {
	return &command{
		name:  "run",
		usage: "run --config FILE [--config FILE]... [--runner edge|flink] [--endpoint host:port] [--set path=value]...",
		short: "run a job spec on the edge runner or on Flink",
		long:  runHelp,
		flags: func(fs *flag.FlagSet, out *streams) func([]string) error {
			var config stringList
			fs.Var(&config, "config", "job spec `file` (YAML; required; repeat to run several jobs in order)")
			runner := fs.String("runner", "", "edge (alias direct) or flink (default: the spec's runner, else edge)")
			endpoint := fs.String("endpoint", "", "Flink job server `host:port` (default: the spec's endpoint)")
			var sets stringList
			fs.Var(&sets, "set", "override a spec field, `path=value` (repeatable), e.g. --set kafka.brokers=[127.0.0.1:9092]")
			verbose := fs.Bool("verbose", false, "show Beam's and the runner's own logs")
			cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `file` (read it with go tool pprof)")
			detach := fs.Bool("detach", false, "flink: submit the job, print its id and exit while it runs (follow it with muon jobs status ID --endpoint host:port)")
			metricsAddr := fs.String("metrics", "", "serve the running job's metrics in Prometheus' format at http://`address`/metrics (e.g. 127.0.0.1:9464; needs --metrics-tokens)")
			metricsTokens := fs.String("metrics-tokens", "", "`file` of bearer tokens for --metrics, lines \"read TOKEN\" (as muon serve's --tokens)")
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
					o := jobs.RunnerOptions(spec, kind)
					o.Verbose, o.Detach = *verbose, *detach
					if *detach && (kind != runners.Flink || spec.Flink.Environment != string(runners.Process) || len(spec.Kafka.Brokers) == 0) {
						return fmt.Errorf("%w: %s: --detach submits to a Flink cluster and leaves: it needs runner flink, flink.environment: process (workers on the TaskManagers) and kafka.brokers (an embedded broker would go with this process)", errUsage, c)
					}
					opts = append(opts, o)
				}
				if *cpuprofile != "" {
					stop, err := startCPUProfile(*cpuprofile)
					if err != nil {
						return err
					}
					defer stop()
				}
				var live *liveMetrics
				if *metricsAddr != "" || *metricsTokens != "" {
					if *metricsAddr == "" || *metricsTokens == "" {
						return fmt.Errorf("%w: --metrics and --metrics-tokens go together: every endpoint needs a token (a file of lines \"read TOKEN\")", errUsage)
					}
					var err error
					if live, err = serveMetrics(*metricsAddr, *metricsTokens, out); err != nil {
						return err
					}
					defer live.close()
				}
				return runJobs(config, specs, opts, live, out)
			}
		},
	}
}

// runJobs checks every job (jobs.CheckAll), then runs specs one after
// another, sharing one embedded broker among those without brokers when
// there are several, and prints each summary.
func runJobs(config []string, specs []*configs.Spec, opts []runners.Options, live *liveMetrics, out *streams) error {
	if i, err := jobs.CheckAll(context.Background(), specs); err != nil {
		return fmt.Errorf("%s: %w", config[i], err)
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
		ctx, stop := context.WithCancel(context.Background())
		var unlisten func()
		if spec.Source.IsBounded() {
			unlisten = exitOnSignal(spec.Name, out.stderr)
		} else {
			unlisten = stopOnSignal(stop, out.stderr)
		}
		if opts[i].Kind == runners.Edge && spec.Edge.MemoryLimit > 0 {
			// This process runs the job: the spec's budget is its own.
			if l := memlimit.Set(int64(spec.Edge.MemoryLimit)); l.Bytes > 0 {
				fmt.Fprintf(out.stderr, "muon: Go memory limit %s\n", l)
			}
		}
		ro := jobs.RunOptions{Runner: opts[i], Broker: shared, Version: muonVersion(), Progress: out.stderr}
		if live != nil {
			ro.Live = jobs.NewLive(spec)
			live.set(ro.Live)
		}
		sum, err := jobs.Run(ctx, spec, ro)
		unlisten()
		stop()
		if sum != nil {
			printSummary(out.stdout, spec, sum) // also when its source gave up
		}
		if err != nil {
			if len(specs) > 1 {
				return fmt.Errorf("%s: %w", config[i], err)
			}
			return err
		}
	}
	return nil
}

// stopOnSignal calls stop on the first SIGINT or SIGTERM (an unbounded
// job then stops its sources and drains) and exits on the second. The
// returned function stops listening.
func stopOnSignal(stop func(), stderr io.Writer) func() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		stop()
		select {
		case <-sigs:
			fmt.Fprintln(stderr, "muon: aborted")
			os.Exit(130)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// exitOnSignal ends a bounded job on SIGINT or SIGTERM, saying what was
// left undone: a bounded job has no sources to stop, so it cannot drain.
// Snapshots are published whole or not at all. The returned function
// stops listening.
func exitOnSignal(job string, stderr io.Writer) func() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "muon: %v: job %q stopped after %s, before it finished: no summary was written, and a snapshot it had not yet published is not published; run it again to redo it\n",
				sig, job, time.Since(start).Round(time.Millisecond))
			os.Exit(130)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// startCPUProfile profiles the whole process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func printSummary(w io.Writer, spec *configs.Spec, s *jobs.Summary) {
	if s.Detached {
		fmt.Fprintf(w, "%s\n", s.JobID)
		return
	}
	broker := strings.Join(s.Brokers, ",")
	if s.Embedded {
		broker += " (embedded)"
	} else if s.Security != "" && s.Security != "PLAINTEXT" {
		broker += " over " + printable.String(s.Security, 200)
	}
	fmt.Fprintf(w, "\njob %s: done on the %s runner in %.1fs\n", s.Job, s.Runner, s.Seconds)
	fmt.Fprintf(w, "  kafka          %s, topics %s\n", broker, strings.Join(s.Topics, ","))
	if s.Replayed > 0 {
		fmt.Fprintf(w, "  replayed       %d records\n", s.Replayed)
	}
	if s.ConstantFeatures > 0 {
		names := make([]string, len(s.Constant))
		for i, n := range s.Constant {
			names[i] = printable.String(n, 80)
		}
		more := ""
		if int64(len(names)) < s.ConstantFeatures {
			more = ", …"
		}
		fmt.Fprintf(w, "  warning        %d feature(s) constant over the rows analyzed, nothing to learn from: %s%s\n", s.ConstantFeatures, strings.Join(names, ", "), more)
	}
	if s.ShortBands > 0 {
		fmt.Fprintf(w, "  warning        %d row(s) had a channel of fewer than %d values: the FFT of n values has n/2 frequency bins, so some of their %d band energies are zeros; lower features.bands, or make windows or cases longer\n",
			s.ShortBands, 2*spec.Features.Bands, spec.Features.Bands)
	}
	if s.CutSeries > 0 {
		fmt.Fprintf(w, "  warning        %d series longer than features.rocket.length (%d) were cut to their first %d values; raise features.rocket.length to keep them whole\n",
			s.CutSeries, spec.Features.Rocket.Length, spec.Features.Rocket.Length)
	}
	if s.PositionGroup != "" {
		again := ""
		if s.Rereads > 0 {
			again = fmt.Sprintf("; resumed, %d records read again (read after the last commit of the run before)", s.Rereads)
		}
		fmt.Fprintf(w, "  position       committed %d times to group %s%s\n", s.PositionCommits, printable.String(s.PositionGroup, 200), again)
	}
	fmt.Fprintf(w, "  read           %d records (%.0f records/s)\n", s.Read, s.PerSecond)
	if s.PeakRSSMiB > 0 {
		fmt.Fprintf(w, "  memory         %.0f MiB peak resident (this process, so far)\n", s.PeakRSSMiB)
	}
	if s.CPUSeconds > 0 {
		per := ""
		if s.CPUPer1kPredictions > 0 {
			per = fmt.Sprintf(", %.3f s per 1,000 predictions", s.CPUPer1kPredictions)
		}
		fmt.Fprintf(w, "  cpu            %.2f s (this process, user and system%s)\n", s.CPUSeconds, per)
	}
	kind := "readings"
	if spec.Source.Format == "image" {
		kind = "images"
	}
	fmt.Fprintf(w, "  decoded        %d %s\n", s.Decoded, kind)
	fmt.Fprintf(w, "  dead letters   %d → %s\n", s.DeadLetters, strings.Join(s.DLQTopics, ","))
	for _, r := range s.DLQReasons {
		fmt.Fprintf(w, "                 %4d  %s\n", r.Count, printable.String(r.Reason, 200))
	}
	for _, why := range s.GaveUp {
		fmt.Fprintf(w, "  gave up        %s\n", printable.String(why, 240))
	}
	if s.Expired > 0 {
		fmt.Fprintf(w, "  expired        %d records deleted by the broker's retention before the read reached them (lost)\n", s.Expired)
	}
	switch {
	case s.Inference != nil:
		printInference(w, s.Inference)
	case s.Training != nil:
		printTraining(w, s.Training, spec.Model.Labels)
	case s.Stream != nil:
		printStream(w, s.Stream)
	case s.Features != nil:
		printFeatures(w, s.Features)
	case s.CountsTopic != "":
		fmt.Fprintf(w, "  counts         per device and minute → topic %s\n", s.CountsTopic)
	default:
		fmt.Fprintf(w, "  devices        %d → %s\n", s.Devices, s.CountsFile)
		if len(s.DeviceLabels) > 0 && spec.Source.Format != "image" {
			names := make([]string, 0, len(s.DeviceLabels))
			for l := range s.DeviceLabels {
				names = append(names, l)
			}
			sort.Strings(names)
			parts := make([]string, len(names))
			for i, l := range names {
				parts[i] = fmt.Sprintf("%s %d", printable.String(l, 0), s.DeviceLabels[l])
			}
			fmt.Fprintf(w, "  devices/label  %s\n", strings.Join(parts, ", "))
		}
	}
	fmt.Fprintf(w, "  summary        %s\n", filepath.Join(s.OutputDir, "summary.json"))
}
