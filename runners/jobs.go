package runners

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/metricsx"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// JobInfo is a job a job server knows.
type JobInfo struct {
	ID, Name string
	State    string
}

// JobService is a client of a Beam job server (Flink's), for jobs
// submitted with Options.Detach.
type JobService struct {
	conn   *grpc.ClientConn
	client jobpb.JobServiceClient
}

// DialJobService connects to the job server at endpoint (host:port), with
// room for a pipeline's protos both ways.
func DialJobService(endpoint string) (*JobService, error) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return nil, fmt.Errorf("job server %s: %w", endpoint, err)
	}
	return &JobService{conn: conn, client: jobpb.NewJobServiceClient(conn)}, nil
}

// Close closes the connection.
func (s *JobService) Close() error { return s.conn.Close() }

// List lists the jobs, by id.
func (s *JobService) List(ctx context.Context) ([]JobInfo, error) {
	resp, err := s.client.GetJobs(ctx, &jobpb.GetJobsRequest{})
	if err != nil {
		return nil, err
	}
	var out []JobInfo
	for _, j := range resp.GetJobInfo() {
		out = append(out, JobInfo{ID: j.GetJobId(), Name: j.GetJobName(), State: strings.ToLower(j.GetState().String())})
	}
	sort.Slice(out, func(i, k int) bool { return out[i].ID < out[k].ID })
	return out, nil
}

// Status is a job's state and its metrics so far; for a failed job, the
// job server's last error messages.
func (s *JobService) Status(ctx context.Context, id string) (string, *Result, []string, error) {
	st, err := s.client.GetState(ctx, &jobpb.GetJobStateRequest{JobId: id})
	if err != nil {
		return "", nil, nil, err
	}
	res := newResult()
	res.JobID = id
	if m, err := s.client.GetJobMetrics(ctx, &jobpb.GetJobMetricsRequest{JobId: id}); err == nil {
		collect(res, *metricsx.FromMonitoringInfos(nil, m.GetMetrics().GetAttempted(), m.GetMetrics().GetCommitted()), true)
	}
	var msgs []string
	if st.GetState() == jobpb.JobState_FAILED {
		msgs = jobErrors(s.client, id, 3)
	}
	return strings.ToLower(st.GetState().String()), res, msgs, nil
}

// Cancel asks the job server to cancel job id and returns its state.
func (s *JobService) Cancel(ctx context.Context, id string) (string, error) {
	resp, err := s.client.Cancel(ctx, &jobpb.CancelJobRequest{JobId: id})
	if err != nil {
		return "", err
	}
	return strings.ToLower(resp.GetState().String()), nil
}
