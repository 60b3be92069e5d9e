package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/internal/atomicfile"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/producer/replay"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/analyze"
	"github.com/muonml/muon/transforms/decode"
	"github.com/muonml/muon/transforms/featurize"
	"github.com/muonml/muon/transforms/infer"
	"github.com/muonml/muon/transforms/publish"
)

// RunOptions configure Run.
type RunOptions struct {
	// Runner is where the pipeline runs.
	Runner runners.Options
	// Broker, if not nil, is the embedded broker a spec without brokers
	// uses (shared by several jobs); nil starts one for the job.
	Broker *embedded.Broker
	// Version is muon's version, for the lineage of snapshots.
	Version string
	// Progress receives progress lines (replays, the job running).
	Progress io.Writer
	// Live, if set, receives the job's metrics about once a second while
	// its pipeline runs.
	Live *Live
}

// Check checks spec's job before anything starts: the kind exists and what
// it needs is there.
func Check(ctx context.Context, spec *configs.Spec) (Job, error) {
	j, err := For(spec.Job)
	if err != nil {
		return nil, err
	}
	return j, j.Check(ctx, spec)
}

// CheckAll checks the jobs of specs, run in this order, before the first
// starts: a missing key, trust file or store, or a read-only store, of any
// of them fails before anything runs. An infer branch reading a store an
// earlier train job publishes to has its trust files loaded now and its
// model checked when its job starts.
func CheckAll(ctx context.Context, specs []*configs.Spec) (int, error) {
	published := map[string]bool{}
	for i, spec := range specs {
		j, err := For(spec.Job)
		if err != nil {
			return i, err
		}
		if spec.Job == "infer" {
			err = checkBranches(ctx, spec, published)
		} else {
			err = j.Check(ctx, spec)
		}
		if err != nil {
			return i, err
		}
		if spec.Job == "train" && spec.Snapshot.Key != "" {
			published[filepath.Clean(spec.Snapshot.Store)] = true
		}
	}
	return 0, nil
}

// checkBranches checks an infer job's branches, those on a store in
// published only as far as their trust files.
func checkBranches(ctx context.Context, spec *configs.Spec, published map[string]bool) error {
	for i, p := range InferParams(spec, spec.Kafka.Brokers) {
		var err error
		// A store on the job's embedded broker exists once the job runs.
		if published[filepath.Clean(p.Store)] || modelstore.IsKafka(p.Store) && len(spec.Kafka.Brokers) == 0 {
			_, err = snapshot.LoadKeyring(p.Trust...)
		} else {
			_, err = infer.Check(ctx, p)
		}
		if err != nil {
			return fmt.Errorf("inference[%d] (%s): %w", i, p.Name, err)
		}
	}
	return nil
}

// Run runs spec's job: it starts an embedded broker if the spec names
// none, creates the topics, replays recordings into them, builds the
// pipeline, runs it on o.Runner and summarizes the run. Cancelling ctx
// stops an unbounded job's sources; the pipeline then drains and the job
// is summarized as usual. A bounded job is cancelled on its runner and
// returns ctx's error.
func Run(ctx context.Context, spec *configs.Spec, o RunOptions) (*Summary, error) {
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	job, err := Check(ctx, spec)
	if err != nil {
		return nil, err
	}
	brokers := spec.Kafka.Brokers
	embeddedBroker := len(brokers) == 0
	if embeddedBroker && o.Broker != nil {
		brokers = []string{o.Broker.Addr()}
	} else if embeddedBroker {
		b, err := embedded.Start(embedded.Options{Partitions: spec.Kafka.Partitions})
		if err != nil {
			return nil, err
		}
		defer b.Close()
		brokers = []string{b.Addr()}
		fmt.Fprintf(progress, "muon: embedded Kafka broker on %s\n", b.Addr())
	}
	read := readTopics(spec)
	topics := make([]kafkaio.TopicSpec, 0, 2*len(read))
	var dlqs []string
	replayed := map[string]bool{}
	for _, r := range spec.Replay {
		replayed[r.Topic] = true
	}
	for _, t := range read {
		dlqs = append(dlqs, t+spec.Decode.DeadLetterSuffix)
		topics = append(topics, kafkaio.TopicSpec{Name: t + spec.Decode.DeadLetterSuffix, Partitions: spec.Kafka.Partitions})
		// A stream waits for its producers, and a replay fills its topic;
		// a bounded read of a topic that does not exist is a mistake.
		if !spec.Source.IsBounded() || replayed[t] {
			topics = append(topics, kafkaio.TopicSpec{Name: t, Partitions: spec.Kafka.Partitions})
		} else if _, err := kafkaio.Partitions(ctx, spec.Kafka.Cluster(brokers), t); err != nil {
			return nil, fmt.Errorf("source topic %q: %w", t, err)
		}
	}
	for _, t := range job.Outputs(spec) {
		topics = append(topics, kafkaio.TopicSpec{Name: t, Partitions: spec.Kafka.Partitions})
	}
	if err := kafkaio.EnsureTopics(ctx, spec.Kafka.Cluster(brokers), topics...); err != nil {
		return nil, err
	}

	sum := &Summary{Job: spec.Name, Kind: spec.Job, Runner: string(o.Runner.Kind), Brokers: brokers, Embedded: embeddedBroker, Security: spec.Kafka.Security().String(),
		Topics: read, DLQTopics: dlqs, OutputDir: spec.Output.Dir}
	if sum.Replayed, err = replayAll(ctx, spec, brokers, progress); err != nil {
		return nil, err
	}
	if spec.Source.Start == "previous" {
		if spec, sum.Since, err = resolvePrevious(ctx, spec, spec.Kafka.Cluster(brokers), progress); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(spec.Output.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("output dir: %w", err)
	}

	opts := Options{Brokers: brokers, Version: o.Version}
	if !spec.Source.IsBounded() {
		opts.StopFile = filepath.Join(spec.Output.Dir, ".stop")
		_ = os.Remove(opts.StopFile)
		defer os.Remove(opts.StopFile)
		if spec.Source.For > 0 {
			opts.Until = time.Now().Add(spec.Source.For.D())
		}
		// The sources stop themselves when the stop file appears: the
		// runner's own context is never cancelled, since cancelling a
		// streaming job on prism panics inside prism's worker.
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-ctx.Done():
				fmt.Fprintln(progress, "muon: stopping sources and draining the pipeline (signal again to abort)")
				_ = os.WriteFile(opts.StopFile, nil, 0o644)
			case <-done:
			}
		}()
	}

	var acks []beam.PCollection
	if spec.Source.Resumes() && o.Runner.Kind == runners.Edge {
		opts.Group, opts.acks = PositionGroup(spec), &acks
	}
	sum.Started = time.Now()
	p, s := beam.NewPipelineWithRoot()
	if err := job.Build(s, spec, opts); err != nil {
		return nil, err
	}
	if len(acks) > 0 {
		kafkaio.CommitPositions(s, kafkaio.PositionParams{Brokers: brokers, Security: spec.Kafka.Security(), Group: opts.Group, Slack: positionSlack(spec)}, acks...)
		sum.PositionGroup = opts.Group
	}
	mode := "bounded"
	if !spec.Source.IsBounded() {
		mode = "unbounded"
	}
	fmt.Fprintf(progress, "muon: running job %q (%s read of %s) on the %s runner\n", spec.Name, mode, strings.Join(spec.Source.Topics, ","), o.Runner.Kind)
	done := make(chan struct{})
	go running(progress, done)
	cpu0 := cpuSeconds()
	if o.Live != nil {
		o.Runner.Live = o.Live.Update
	}
	// A bounded job is cancelled on its runner with ctx; an unbounded one's
	// sources stop (above) and it drains, since cancelling a streaming job
	// on prism panics inside prism's worker.
	runCtx := context.WithoutCancel(ctx)
	if spec.Source.IsBounded() {
		runCtx = ctx
	}
	res, err := runners.Run(runCtx, p, o.Runner)
	sum.CPUSeconds = cpuSeconds() - cpu0
	close(done)
	if o.Live != nil && err == nil {
		o.Live.Update(res) // the final figures
	}
	if res != nil && res.Refused > 0 {
		fmt.Fprintf(progress, "muon: warning: the edge runner refused %d connection(s) from other processes to its endpoints\n", res.Refused)
	}
	if err != nil {
		return nil, err
	}
	if o.Runner.Detach {
		sum.JobID, sum.Detached = res.JobID, true
		fmt.Fprintf(progress, "muon: job %s runs on the Flink cluster behind %s; follow it with muon jobs status %s --endpoint %s\n", res.JobID, o.Runner.Endpoint, res.JobID, o.Runner.Endpoint)
		return sum, nil
	}

	sum.Read = res.Counter(kafkaio.ReadNamespace, kafkaio.MetricRecords)
	sum.Decoded = res.Counter(decode.Namespace, decode.SensorsOK) + res.Counter(decode.Namespace, decode.ImagesOK)
	sum.DeadLetters = res.Counter(decode.Namespace, decode.SensorsDead) + res.Counter(decode.Namespace, decode.ImagesDead) + res.Counter(featurize.Namespace, featurize.WindowsLate)
	sum.Counters = res.Counters
	sum.Seconds = res.Elapsed.Seconds()
	if sum.Seconds > 0 {
		sum.PerSecond = float64(sum.Read) / sum.Seconds
	}
	if kb, ok := peakRSSKiB(); ok {
		sum.PeakRSSMiB = float64(kb) / 1024
	}
	if err := job.Summarize(context.WithoutCancel(ctx), spec, res, sum); err != nil {
		return nil, afterPublish(spec, res, err)
	}
	var preds int64
	for _, b := range sum.Inference {
		preds += b.Predictions
	}
	if preds > 0 {
		sum.CPUPer1kPredictions = sum.CPUSeconds / float64(preds) * 1000
	}
	sum.DLQReasons = deadLetterReasons(res)
	sum.GaveUp = res.Names(kafkaio.ReadNamespace, kafkaio.MetricGaveUp+"/")
	sum.Rereads = res.Counter(kafkaio.PositionNamespace, kafkaio.MetricRereads)
	sum.Expired = res.Counter(kafkaio.ReadNamespace, kafkaio.MetricExpired)
	sum.ConstantFeatures = res.Counter(analyze.Namespace, analyze.MetricConstantFeatures)
	sum.Constant = res.Names(analyze.Namespace, analyze.MetricConstant+"/")
	sum.ShortBands = res.Counter(featurize.Namespace, featurize.BandsShort)
	sum.CutSeries = res.Counter(featurize.Namespace, featurize.SeriesCut)
	sum.PositionCommits = res.Counter(kafkaio.PositionNamespace, kafkaio.MetricCommits)
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(SummaryFile(spec), append(b, '\n')); err != nil {
		return nil, afterPublish(spec, res, fmt.Errorf("writing the summary: %w", err))
	}
	if len(sum.GaveUp) > 0 {
		return sum, fmt.Errorf("%w: %s", ErrGaveUp, strings.Join(sum.GaveUp, "; "))
	}
	return sum, nil
}

// ErrGaveUp means a stream's source stopped because its brokers failed for
// longer than it reconnects (kafkaio.Params.ReconnectFor): the job drained
// and was summarized, but did not run as long as asked.
var ErrGaveUp = errors.New("the source gave up on brokers that kept failing")

// afterPublish says plainly, in an error after the pipeline ran, that the
// job published a model that now serves: the job failed, its model did
// not.
func afterPublish(spec *configs.Spec, res *runners.Result, err error) error {
	n := res.Counter(publish.Namespace, publish.Published)
	switch {
	case n == 0:
		return err
	case spec.Source.IsBounded():
		v := modelstore.Version{Seq: uint64(res.Counter(publish.Namespace, publish.Version)), Name: spec.Name}
		return fmt.Errorf("the job published %s to %s, which now serves, but it did not finish: %w", v, spec.Snapshot.Store, err)
	}
	return fmt.Errorf("the job published %d snapshot(s) of %s to %s, the newest of which now serves, but it did not finish: %w", n, spec.Name, spec.Snapshot.Store, err)
}

// SummaryFile is where Run writes a job's summary, as JSON.
func SummaryFile(spec *configs.Spec) string { return filepath.Join(spec.Output.Dir, "summary.json") }

// replayAll produces the spec's replay recordings into their topics,
// before the job reads; it returns how many records it produced.
func replayAll(ctx context.Context, spec *configs.Spec, brokers []string, progress io.Writer) (int64, error) {
	var n int64
	for _, r := range spec.Replay {
		if r.Live {
			r.Start = time.Now().UTC()
			if r.Rate == 0 {
				r.Rate = 1 / r.Period.D().Seconds() // event times keep pace with the clock
			}
		}
		o := replay.Options{
			Brokers: brokers, Security: spec.Kafka.Security(), Topic: r.Topic, Rate: r.Rate, Progress: progress,
			Recording: recording.Options{Start: r.Start, Period: r.Period.D(), Device: r.Device, Exclude: r.Exclude, Format: r.Format, RUL: r.RUL},
		}
		s, err := replay.Replay(ctx, []string{r.Path}, o)
		if err != nil {
			return n, fmt.Errorf("replay %s: %w", r.Path, err)
		}
		n += s.Records
		fmt.Fprintf(progress, "muon: replayed %s into %s: %s\n", r.Path, r.Topic, s)
	}
	return n, nil
}

// running prints a line every 5 s until done closes.
func running(w io.Writer, done <-chan struct{}) {
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

// RunnerOptions are the runner options spec asks for, on runner kind.
func RunnerOptions(spec *configs.Spec, kind runners.Kind) runners.Options {
	return runners.Options{Kind: kind, Endpoint: spec.Endpoint, JobName: spec.Name,
		Environment: runners.Environment(spec.Flink.Environment), WorkerCommand: spec.Flink.WorkerCommand,
		Parallelism: spec.Flink.Parallelism, CheckpointInterval: spec.Flink.CheckpointInterval.D()}
}
