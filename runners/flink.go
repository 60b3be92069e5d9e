package runners

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/container/tools"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/xlangx"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/hooks"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/protox"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/universal/extworker"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/universal/runnerlib"
)

// flinkJob is a job submitted to a Flink job server, running in loopback:
// its SDK harness runs in this process until stop.
type flinkJob struct {
	id     string
	client jobpb.JobServiceClient
	stop   func()
}

// submitFlink submits p to the Flink job server at endpoint with its SDK
// harness in this process (loopback), and returns without waiting. It is
// Beam's universal runner's submission, kept here so that Run can wait,
// cancel and read the job's error messages on the same connection.
func submitFlink(ctx context.Context, p *beam.Pipeline, endpoint string, o Options) (*flinkJob, error) {
	edges, _, err := p.Build()
	if err != nil {
		return nil, err
	}
	if o.Environment == "" {
		o.Environment = Loopback
	}
	if o.Detach && o.Environment != Process {
		return nil, errors.New("a detached job needs process workers (flink.environment: process): loopback workers live in the submitting process")
	}
	job := &flinkJob{}
	var js *JobService
	var worker string
	var loop *extworker.Loopback
	job.stop = func() {
		if loop != nil {
			loop.Stop(context.Background())
		}
		if js != nil {
			js.Close()
		}
		if worker != "" {
			os.Remove(worker)
		}
	}
	fail := func(err error) (*flinkJob, error) {
		job.stop()
		return nil, err
	}
	xlangx.ResolveArtifacts(ctx, edges, nil)
	var env *pipepb.Environment
	switch o.Environment {
	case Loopback:
		if loop, err = extworker.StartLoopback(ctx, 0); err != nil {
			return fail(fmt.Errorf("starting the loopback worker: %w", err))
		}
		if env, err = graphx.CreateEnvironment(ctx, "beam:env:external:v1", loop.EnvironmentConfig); err != nil {
			return fail(err)
		}
	case Process:
		if env, err = processEnvironment(ctx, o.WorkerCommand); err != nil {
			return fail(err)
		}
	default:
		return fail(fmt.Errorf("unknown flink environment %q: loopback or process", o.Environment))
	}
	pipe, err := graphx.Marshal(edges, &graphx.Options{Environment: env, PipelineResourceHints: jobopts.GetPipelineResourceHints()})
	if err != nil {
		return fail(fmt.Errorf("building the pipeline: %w", err))
	}
	// The worker binary is never fetched (loopback workers are this
	// process; process workers run muon from WorkerCommand); the
	// environment still names one.
	f, err := os.CreateTemp("", "muon-worker-*")
	if err != nil {
		return fail(err)
	}
	worker = f.Name()
	f.Close()
	if err := runnerlib.UpdateGoEnvironmentWorker(worker, pipe); err != nil {
		return fail(err)
	}

	if js, err = DialJobService(endpoint); err != nil {
		return fail(err)
	}
	job.client = js.client

	parallelism := o.Parallelism
	if parallelism <= 0 {
		parallelism = -1 // the job server's default
	}
	hooks.SerializeHooksToOptions()
	beam.PipelineOptions.LoadOptionsFromFlags(nil)
	if o.CheckpointInterval > 0 {
		beam.PipelineOptions.Set("checkpointing_interval", fmt.Sprint(o.CheckpointInterval.Milliseconds()))
	}
	opts, err := tools.OptionsToProto(runtime.RawOptionsWrapper{
		Options:     beam.PipelineOptions.Export(),
		AppName:     jobopts.GetJobName(),
		Experiments: append(jobopts.GetExperiments(), "beam_fn_api"),
		Parallelism: parallelism,
	})
	if err != nil {
		return fail(err)
	}
	prep, err := job.client.Prepare(ctx, &jobpb.PrepareJobRequest{Pipeline: pipe, PipelineOptions: opts, JobName: jobopts.GetJobName()})
	if err != nil {
		return fail(fmt.Errorf("job server %s refused the job: %w (is it a Beam Flink job server? integration/flink/start.sh starts one)", endpoint, err))
	}
	token, err := runnerlib.Stage(ctx, prep.GetPreparationId(), prep.GetArtifactStagingEndpoint().GetUrl(), worker, prep.GetStagingSessionToken())
	if err != nil {
		return fail(fmt.Errorf("staging the job's artifacts: %w", err))
	}
	run, err := job.client.Run(ctx, &jobpb.RunJobRequest{PreparationId: prep.GetPreparationId(), RetrievalToken: token})
	if err != nil {
		return fail(fmt.Errorf("starting the job: %w", err))
	}
	job.id = run.GetJobId()
	return job, nil
}

// processEnvironment is a PROCESS environment whose workers the
// TaskManagers start by running command (muon's boot: see cmd/muon).
func processEnvironment(ctx context.Context, command string) (*pipepb.Environment, error) {
	if command == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("flink.worker_command: none given, and this binary's path is unknown: %w", err)
		}
		command = self
	}
	if !filepath.IsAbs(command) {
		return nil, fmt.Errorf("flink.worker_command %q: an absolute path on the TaskManagers' machines", command)
	}
	// The external environment's capabilities and dependencies (the Go
	// SDK's), with the process payload.
	env, err := graphx.CreateEnvironment(ctx, "beam:env:external:v1", func(context.Context) string { return "" })
	if err != nil {
		return nil, err
	}
	env.Urn = "beam:env:process:v1"
	env.Payload = protox.MustEncode(&pipepb.ProcessPayload{Command: command})
	return env, nil
}

// awaitRunning waits until a submitted job runs (or has already ended
// well), for a detached submission.
func awaitRunning(ctx context.Context, client jobpb.JobServiceClient, job string) error {
	for {
		st, err := client.GetState(ctx, &jobpb.GetJobStateRequest{JobId: job})
		if err != nil {
			return fmt.Errorf("job %s state: %w", job, err)
		}
		switch st.GetState() {
		case jobpb.JobState_RUNNING, jobpb.JobState_DONE:
			return nil
		case jobpb.JobState_FAILED, jobpb.JobState_CANCELLED, jobpb.JobState_DRAINED, jobpb.JobState_UPDATED:
			msgs := jobErrors(client, job, 3)
			return fmt.Errorf("job %s ended %s: %s", job, st.GetState(), strings.Join(msgs, "\n"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// jobErrors returns the error messages the job server reported for job,
// newest last, at most max of them.
func jobErrors(client jobpb.JobServiceClient, job string, max int) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	stream, err := client.GetMessageStream(ctx, &jobpb.JobMessagesRequest{JobId: job})
	if err != nil {
		return nil
	}
	var out []string
	for {
		msg, err := stream.Recv()
		if err != nil {
			break
		}
		m := msg.GetMessageResponse()
		if m == nil || m.GetImportance() < jobpb.JobMessage_JOB_MESSAGE_WARNING {
			if st := msg.GetStateResponse(); st != nil && isTerminal(st.GetState()) {
				break
			}
			continue
		}
		out = append(out, strings.TrimSpace(m.GetMessageText()))
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}

func isTerminal(s jobpb.JobState_Enum) bool {
	switch s {
	case jobpb.JobState_DONE, jobpb.JobState_FAILED, jobpb.JobState_CANCELLED, jobpb.JobState_DRAINED, jobpb.JobState_UPDATED:
		return true
	}
	return false
}
