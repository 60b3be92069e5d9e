package runners

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/util/localonly"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestEdgeListensOnlyForItself runs an edge job that waits in its DoFn and,
// while it waits, checks every listening socket of this process: each is
// bound to 127.0.0.1, and another process can neither list nor submit jobs
// on prism's job service nor talk to its worker endpoint, while this process
// can.
func TestEdgeListensOnlyForItself(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		t.Skip("needs Linux /proc")
	}
	release := make(chan struct{})
	blockRelease = release
	blockStarted = make(chan struct{}, 1)
	p, s := beam.NewPipelineWithRoot()
	beam.ParDo0(s, &blockFn{}, beam.Create(s, 1))
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), p, Options{Kind: Edge})
		done <- err
	}()
	defer func() {
		close(release)
		if err := <-done; err != nil {
			t.Errorf("edge job: %v", err)
		}
	}()
	select {
	case <-blockStarted:
	case err := <-done:
		t.Fatalf("edge job ended before its DoFn ran: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the edge job's DoFn never started")
	}

	listeners := ownListeners(t)
	if len(listeners) < 2 {
		t.Fatalf("found %d listening sockets of this process (%v); an edge job has at least the job service and a worker endpoint", len(listeners), listeners)
	}
	for _, l := range listeners {
		if !strings.HasPrefix(l, "127.0.0.1:") {
			t.Errorf("listening on %s while an edge job runs: want 127.0.0.1 only", l)
		}
	}

	endpoint := *jobopts.Endpoint
	if endpoint == "" {
		t.Fatal("prism set no job service endpoint")
	}
	// This process may use its own job service.
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jobs, err := jobpb.NewJobServiceClient(conn).GetJobs(ctx, &jobpb.GetJobsRequest{})
	if err != nil || len(jobs.GetJobInfo()) == 0 {
		t.Fatalf("this process listing its own edge jobs: %v, %d jobs; want the running job", err, len(jobs.GetJobInfo()))
	}

	// Another process may not, on any of the listening sockets.
	before := localonly.Refused()
	for _, l := range listeners {
		// Dial through loopback, which reaches a wildcard listener too.
		addr := "127.0.0.1:" + l[strings.LastIndex(l, ":")+1:]
		cmd := exec.Command(os.Args[0], "-test.run=^TestLocalOnlyHelperProcess$")
		cmd.Env = append(os.Environ(), "MUON_LOCALONLY_DIAL="+addr)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper process: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "REFUSED") {
			t.Errorf("another process submitting to %s: %s; want it refused", addr, out)
		}
	}
	if got := localonly.Refused() - before; got < int64(len(listeners)) {
		t.Errorf("localonly.Refused grew by %d, want at least %d", got, len(listeners))
	}
}

// TestLocalOnlyHelperProcess is the other process of
// TestEdgeListensOnlyForItself: it tries to list the jobs of, and prepare a
// job on, the job service at $MUON_LOCALONLY_DIAL, and prints REFUSED or
// ACCEPTED.
func TestLocalOnlyHelperProcess(t *testing.T) {
	addr := os.Getenv("MUON_LOCALONLY_DIAL")
	if addr == "" {
		t.Skip("helper process for TestEdgeListensOnlyForItself")
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println("REFUSED", err)
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := jobpb.NewJobServiceClient(conn)
	if _, err := c.GetJobs(ctx, &jobpb.GetJobsRequest{}); err == nil {
		fmt.Println("ACCEPTED GetJobs")
		return
	}
	if _, err := c.Prepare(ctx, &jobpb.PrepareJobRequest{JobName: "intruder"}); err == nil {
		fmt.Println("ACCEPTED Prepare")
		return
	} else {
		fmt.Println("REFUSED", err)
	}
}

// ownListeners lists the local addresses of this process's listening TCP
// sockets (IPv4 and IPv6), from /proc.
func ownListeners(t *testing.T) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		if link, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(link, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, file := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !mine[fields[9]] { // 0A: LISTEN
				continue
			}
			out = append(out, procAddr(fields[1]))
		}
		f.Close()
	}
	return out
}

// procAddr turns /proc/net/tcp's "0100007F:1F90" (or a 32-digit IPv6
// address) into "127.0.0.1:8080"; IPv6 addresses stay hex, which never
// starts with 127.0.0.1.
func procAddr(s string) string {
	ip, port, _ := strings.Cut(s, ":")
	var p int
	fmt.Sscanf(port, "%X", &p)
	if len(ip) != 8 {
		return fmt.Sprintf("[%s]:%d", ip, p)
	}
	var b [4]int
	for i := range 4 {
		fmt.Sscanf(ip[2*i:2*i+2], "%X", &b[3-i])
	}
	return fmt.Sprintf("%d.%d.%d.%d:%d", b[0], b[1], b[2], b[3], p)
}
