package runners

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/metricsx"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
)

// edge is the edge runner's job service in this process, started once:
// prism.Execute submits to it, and live metrics are read from it.
var edge struct {
	once   sync.Once
	client jobpb.JobServiceClient
	err    error
}

// edgeJobService starts prism's job service on a free loopback port and
// points prism.Execute at it (which otherwise starts one of its own on its
// first job and keeps its address to itself), or connects to the one
// already named by --endpoint.
func edgeJobService() (jobpb.JobServiceClient, error) {
	edge.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if *jobopts.Endpoint != "" {
			js, err := DialJobService(*jobopts.Endpoint)
			if err == nil {
				edge.client = js.client
			}
			edge.err = err
			return
		}
		for try := 0; try < 5; try++ {
			port, err := freePort()
			if err != nil {
				edge.err = err
				return
			}
			client, err := startPrism(ctx, port)
			if err != nil {
				edge.err = err
				continue // another process took the port meanwhile
			}
			edge.client, edge.err = client, nil
			*jobopts.Endpoint = fmt.Sprintf("127.0.0.1:%d", port)
			if !jobopts.IsLoopback() {
				*jobopts.EnvironmentType = "loopback"
			}
			return
		}
	})
	return edge.client, edge.err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port for the edge runner: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startPrism starts prism's job service on port; prism panics when it
// cannot listen, which comes back as an error.
func startPrism(ctx context.Context, port int) (client jobpb.JobServiceClient, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("starting the edge runner on port %d: %v", port, r)
		}
	}()
	return prism.CreateJobServer(ctx, prism.Options{Port: port})
}

// cancelEdge cancels the running edge job named name.
func cancelEdge(client jobpb.JobServiceClient, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if id, err := findEdge(ctx, client, name); err == nil && id != "" {
		_, _ = client.Cancel(ctx, &jobpb.CancelJobRequest{JobId: id})
	}
}

// findEdge returns the id of the edge job named name that has not ended,
// "" if there is none.
func findEdge(ctx context.Context, client jobpb.JobServiceClient, name string) (string, error) {
	jobs, err := client.GetJobs(ctx, &jobpb.GetJobsRequest{})
	if err != nil {
		return "", err
	}
	for _, j := range jobs.GetJobInfo() {
		if j.GetJobName() == name && !isTerminal(j.GetState()) {
			return j.GetJobId(), nil
		}
	}
	return "", nil
}

// watchEdge calls o.Live with the metrics of the edge job named name
// while it runs: the newest of that name that has not ended.
func watchEdge(client jobpb.JobServiceClient, name string, o Options) (stop func()) {
	return watch(client, func(ctx context.Context) (string, error) { return findEdge(ctx, client, name) }, o)
}

// watch polls the job service for the metrics of the job find names
// (none yet: "") every o.LiveEvery until stop is called; stop waits for
// the poller to end.
func watch(client jobpb.JobServiceClient, find func(context.Context) (string, error), o Options) (stop func()) {
	every := o.LiveEvery
	if every <= 0 {
		every = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		var id string
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cctx, ccancel := context.WithTimeout(ctx, every+5*time.Second)
			if id == "" {
				id, _ = find(cctx)
			}
			if id != "" {
				m, err := client.GetJobMetrics(cctx, &jobpb.GetJobMetricsRequest{JobId: id})
				if err == nil {
					res := newResult()
					res.JobID = id
					collect(res, *metricsx.FromMonitoringInfos(nil, m.GetMetrics().GetAttempted(), m.GetMetrics().GetCommitted()), true)
					o.Live(res)
				}
			}
			ccancel()
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
