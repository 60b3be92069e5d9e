package runners

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/container/tools"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/xlangx"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/hooks"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/universal/extworker"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/universal/runnerlib"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
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
	loop, err := extworker.StartLoopback(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("starting the loopback worker: %w", err)
	}
	job := &flinkJob{}
	var conn *grpc.ClientConn
	var worker string
	job.stop = func() {
		loop.Stop(context.Background())
		if conn != nil {
			conn.Close()
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
	env, err := graphx.CreateEnvironment(ctx, "beam:env:external:v1", loop.EnvironmentConfig)
	if err != nil {
		return fail(err)
	}
	pipe, err := graphx.Marshal(edges, &graphx.Options{Environment: env, PipelineResourceHints: jobopts.GetPipelineResourceHints()})
	if err != nil {
		return fail(fmt.Errorf("building the pipeline: %w", err))
	}
	// In loopback the worker binary is never run; the environment still
	// names one.
	f, err := os.CreateTemp("", "muon-loopback-*")
	if err != nil {
		return fail(err)
	}
	worker = f.Name()
	f.Close()
	if err := runnerlib.UpdateGoEnvironmentWorker(worker, pipe); err != nil {
		return fail(err)
	}

	conn, err = grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return fail(fmt.Errorf("job server %s: %w", endpoint, err))
	}
	job.client = jobpb.NewJobServiceClient(conn)

	parallelism := o.Parallelism
	if parallelism <= 0 {
		parallelism = -1 // the job server's default
	}
	hooks.SerializeHooksToOptions()
	beam.PipelineOptions.LoadOptionsFromFlags(nil)
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
