package runners

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/metricsx"
	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/util/localonly"
)

// Kind names a runner.
type Kind string

const (
	// Edge runs the pipeline on prism inside this process: no JVM, no
	// Python, no Docker.
	Edge Kind = "edge"
	// Flink submits the pipeline to a Beam Flink job server.
	Flink Kind = "flink"
)

// Environment is where a Flink job's SDK workers run.
type Environment string

const (
	// Loopback workers run in the submitting process.
	Loopback Environment = "loopback"
	// Process workers are started by each TaskManager.
	Process Environment = "process"
)

// ErrUnknownRunner means a runner name is not one muon knows.
var ErrUnknownRunner = errors.New("unknown runner")

// Parse maps a runner name to its Kind. "direct" and "prism" are aliases of
// "edge".
func Parse(name string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "edge", "direct", "prism", "":
		return Edge, nil
	case "flink":
		return Flink, nil
	}
	return "", fmt.Errorf("%w %q: use edge (alias direct) or flink", ErrUnknownRunner, name)
}

// Options configures Run.
type Options struct {
	Kind Kind
	// Endpoint is the Flink job server's host:port (required for Flink).
	Endpoint string
	// JobName names the job on the runner. Default: generated.
	JobName string
	// Parallelism is the Flink parallelism. Default: the job server's.
	Parallelism int
	// Environment is where a Flink job's Go workers run: Loopback (in
	// this process; the default) or Process (the TaskManagers start
	// WorkerCommand as each worker's boot program).
	Environment Environment
	// WorkerCommand is muon's path on the TaskManagers' machines, for
	// Process. Default: this binary's own path.
	WorkerCommand string
	// CheckpointInterval turns Flink's checkpointing on. Default off.
	CheckpointInterval time.Duration
	// Detach submits a Flink job and returns once it runs, without
	// waiting for it to end: Result.JobID names it. It needs Process
	// workers (loopback workers live in this process).
	Detach bool
	// Verbose keeps Beam's and prism's own logging. Default: only errors
	// returned by Run.
	Verbose bool
	// Live, if set, receives the job's metrics so far about every
	// LiveEvery while it runs (from the runner's job service: committed
	// values of finished bundles, tentative ones of running bundles), on
	// a goroutine of its own. Each call gets a new Result.
	Live func(*Result)
	// LiveEvery is how often Live is called. Default 1s.
	LiveEvery time.Duration
}

// Result is what a finished job leaves.
type Result struct {
	JobID    string
	Elapsed  time.Duration
	Counters map[string]int64 // "namespace/name" → committed or attempted value
	Dists    map[string]metrics.DistributionValue
	// Gauges are the gauges' last values, "namespace/name" → value.
	Gauges map[string]int64
	// Refused counts connections the edge runner's endpoints refused
	// during the job because another process made them.
	Refused int64
}

// Counter returns a counter's value, 0 if it was never incremented.
func (r *Result) Counter(namespace, name string) int64 {
	return r.Counters[namespace+"/"+name]
}

// Under returns the counters of namespace whose names start with prefix,
// by the rest of their names: the labelled counters a stage reports (one
// per label, per model version, per histogram bucket).
func (r *Result) Under(namespace, prefix string) map[string]int64 {
	out := map[string]int64{}
	for k, v := range r.Counters {
		if rest, ok := strings.CutPrefix(k, namespace+"/"+prefix); ok {
			out[rest] = v
		}
	}
	return out
}

// Names returns, sorted, the rest of the names of namespace's counters
// that start with prefix: the reasons a stage reports as counter names.
func (r *Result) Names(namespace, prefix string) []string {
	var out []string
	for name := range r.Under(namespace, prefix) {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Run runs p to completion on the chosen runner.
func Run(ctx context.Context, p *beam.Pipeline, o Options) (*Result, error) {
	if !beam.Initialized() {
		beam.Init()
	}
	quiet(o.Verbose)
	if o.Kind == "" {
		o.Kind = Edge
	}
	if o.JobName == "" {
		// A name of its own, by which the job service finds it.
		o.JobName = fmt.Sprintf("muon-%d", time.Now().UnixNano())
	}
	*jobopts.JobName = o.JobName
	start := time.Now()
	res := newResult()
	switch o.Kind {
	case Edge, "":
		refused := localonly.Refused()
		if o.Live != nil || ctx.Done() != nil {
			client, err := edgeJobService()
			if err != nil {
				return res, fmt.Errorf("%s job: %w", o.Kind, err)
			}
			if o.Live != nil {
				stop := watchEdge(client, o.JobName, o)
				defer stop()
			}
			// Cancelling ctx cancels the job on the runner.
			stop := context.AfterFunc(ctx, func() { cancelEdge(client, o.JobName) })
			defer stop()
		}
		pr, err := prism.Execute(ctx, p)
		res.Elapsed = time.Since(start)
		res.Refused = localonly.Refused() - refused
		if err != nil {
			if ctx.Err() != nil {
				return res, fmt.Errorf("%s job: cancelled: %w", o.Kind, context.Cause(ctx))
			}
			// The result of a failed job may carry no metrics.
			return res, fmt.Errorf("%s job: %w", o.Kind, condense(err, o.Verbose))
		}
		res.JobID = pr.JobID()
		collect(res, pr.Metrics(), false)
		return res, nil
	case Flink:
		if o.Endpoint == "" {
			return nil, errors.New("the flink runner needs the job server's address: pass --endpoint host:port (see integration/flink/README.md to start one)")
		}
		job, err := submitFlink(ctx, p, o.Endpoint, o)
		if err != nil {
			return res, fmt.Errorf("%s job: %w", o.Kind, err)
		}
		defer job.stop()
		res.JobID = job.id
		if o.Detach {
			res.Elapsed = time.Since(start)
			return res, awaitRunning(ctx, job.client, job.id)
		}
		if o.Live != nil {
			stop := watch(job.client, func(context.Context) (string, error) { return job.id, nil }, o)
			defer stop()
		}
		final, err := awaitDone(ctx, job.client, job.id)
		res.Elapsed = time.Since(start)
		if final != nil {
			collect(res, *final, false)
		}
		if err != nil {
			return res, fmt.Errorf("%s job: %w", o.Kind, condense(err, o.Verbose))
		}
		return res, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownRunner, o.Kind)
}

// awaitDone polls the job server until job is in a terminal state and
// returns its final metrics, or an error unless it is DONE: with the
// job's last error messages when it failed. A cancelled ctx cancels the
// job.
func awaitDone(ctx context.Context, client jobpb.JobServiceClient, job string) (*metrics.Results, error) {
	for {
		st, err := client.GetState(ctx, &jobpb.GetJobStateRequest{JobId: job})
		if err != nil {
			if ctx.Err() != nil {
				return nil, cancelJob(ctx, client, job)
			}
			return nil, fmt.Errorf("job %s state: %w", job, err)
		}
		switch st.GetState() {
		case jobpb.JobState_DONE:
			m, err := client.GetJobMetrics(ctx, &jobpb.GetJobMetricsRequest{JobId: job})
			if err != nil {
				return nil, fmt.Errorf("job %s metrics: %w", job, err)
			}
			return metricsx.FromMonitoringInfos(nil, m.GetMetrics().GetAttempted(), m.GetMetrics().GetCommitted()), nil
		case jobpb.JobState_FAILED, jobpb.JobState_CANCELLED, jobpb.JobState_DRAINED, jobpb.JobState_UPDATED:
			msgs := jobErrors(client, job, 3)
			if len(msgs) == 0 {
				return nil, fmt.Errorf("job %s ended %s; the job server's log says why", job, st.GetState())
			}
			return nil, fmt.Errorf("job %s ended %s: %s", job, st.GetState(), strings.Join(msgs, "\n"))
		}
		select {
		case <-ctx.Done():
			return nil, cancelJob(ctx, client, job)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// cancelJob asks the job server to cancel job, whose wait ctx ended, and
// returns ctx's error.
func cancelJob(ctx context.Context, client jobpb.JobServiceClient, job string) error {
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client.Cancel(cctx, &jobpb.CancelJobRequest{JobId: job})
	return ctx.Err()
}

func newResult() *Result {
	return &Result{Counters: map[string]int64{}, Dists: map[string]metrics.DistributionValue{}, Gauges: map[string]int64{}}
}

// collect adds m's metrics to res: committed values where the runner has
// them, else attempted ones; live, the larger of the two (a running
// bundle's counts are attempted until it commits).
func collect(res *Result, m metrics.Results, live bool) {
	all := m.AllMetrics()
	at := map[string]time.Time{}
	for _, g := range all.Gauges() {
		v := g.Committed
		if v.Timestamp.IsZero() || g.Attempted.Timestamp.After(v.Timestamp) {
			v = g.Attempted
		}
		k := g.Key.Namespace + "/" + g.Key.Name
		if t, ok := at[k]; !ok || v.Timestamp.After(t) {
			res.Gauges[k], at[k] = v.Value, v.Timestamp
		}
	}
	for _, c := range all.Counters() {
		k := c.Key.Namespace + "/" + c.Key.Name
		v := c.Committed
		if v == 0 || live && c.Attempted > v {
			v = c.Attempted
		}
		res.Counters[k] += v
	}
	for _, d := range all.Distributions() {
		k := d.Key.Namespace + "/" + d.Key.Name
		v := d.Committed
		if v.Count == 0 || live && d.Attempted.Count > v.Count {
			v = d.Attempted
		}
		res.Dists[k] = v
	}
}

// CounterNames lists the counters in r, sorted.
func (r *Result) CounterNames() []string {
	names := make([]string, 0, len(r.Counters))
	for k := range r.Counters {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// quiet silences Beam's and prism's informational logging, which prints
// whole pipeline protos; errors still come back from Run.
func quiet(verbose bool) {
	if verbose {
		return
	}
	beamlog.SetLogger(discardLogger{})
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4})))
	stdlog.SetOutput(io.Discard)
}

type discardLogger struct{}

func (discardLogger) Log(context.Context, beamlog.Severity, int, string) {}

// failedDoFn finds the DoFn Beam's failure report blames: "DoFn[UID:2,
// PID:e3, Name: github.com/.../pkg.fooFn] failed:".
var failedDoFn = regexp.MustCompile(`DoFn\[[^\]]*Name: ([^\]]+)\] failed:\s*`)

// failedPhase finds the bundle phase a report names ("while executing
// FinishBundle for Plan[...]").
var failedPhase = regexp.MustCompile(`while executing (\w+) for Plan`)

// condense puts the cause of a failed job first: Beam's report is the
// whole execution plan, with the DoFn's own error at the end after
// "caused by:". Unless verbose, the plan is left out.
func condense(err error, verbose bool) error {
	msg := err.Error()
	i := strings.LastIndex(msg, "caused by:")
	if i < 0 {
		return err
	}
	cause := strings.TrimSpace(msg[i+len("caused by:"):])
	where := ""
	if m := failedDoFn.FindStringSubmatchIndex(cause); m != nil {
		name := cause[m[2]:m[3]]
		where = " in " + name[strings.LastIndex(name, "/")+1:]
		cause = strings.TrimSpace(cause[m[1]:])
	}
	if m := failedPhase.FindStringSubmatch(msg); m != nil {
		where += " (" + m[1] + ")"
	}
	if verbose {
		return fmt.Errorf("failed%s: %s\n\nthe runner's report:\n%w", where, cause, err)
	}
	return &failure{msg: fmt.Sprintf("failed%s: %s (--verbose adds the runner's whole report)", where, cause), err: err}
}

// failure is a condensed job failure; the runner's report stays
// reachable through errors.Unwrap.
type failure struct {
	msg string
	err error
}

func (f *failure) Error() string { return f.msg }
func (f *failure) Unwrap() error { return f.err }
