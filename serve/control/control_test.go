package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/internal/auth"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

const (
	readToken  = "read-token-0123456789"
	writeToken = "write-token-0123456789"
)

func newServer(t *testing.T, state string) (*Server, *httptest.Server) {
	t.Helper()
	tf := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tf, []byte("read "+readToken+"\nwrite "+writeToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	toks, err := auth.Load(tf)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{State: state, Tokens: toks})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return s, hs
}

func call(t *testing.T, hs *httptest.Server, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, hs.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// submit submits req with the write token and returns the run queued.
func submit(t *testing.T, hs *httptest.Server, req SubmitRequest) Run {
	t.Helper()
	code, body := call(t, hs, "POST", "/api/v1/jobs", writeToken, req)
	if code != 201 {
		t.Fatalf("submit: %d %s", code, body)
	}
	var run Run
	if err := json.Unmarshal(body, &run); err != nil {
		t.Fatalf("submit: %s: %v", body, err)
	}
	return run
}

// ingestSpec counts BasicMotions' readings per device on an embedded
// broker: a small job that runs in about a second.
func ingestSpec(out string, bounded bool) string {
	return fmt.Sprintf(`name: ingest
job: ingest
source: {topics: [sensors], format: sensor, bounded: %v}
output: {dir: %s}
replay:
  - {path: %s, period: 100ms}
`, bounded, out, filepath.Join("..", "..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts"))
}

// Every route asks for a token: none or an unknown one is 401, a read
// token on a write route 403; /healthz asks for none.
func TestAuthMatrix(t *testing.T) {
	_, hs := newServer(t, t.TempDir())
	id := "r-20261204T000000.000000Z-00000000"
	for _, rt := range []struct {
		method, path string
		write        bool
	}{
		{"GET", "/api/v1/jobs", false}, {"GET", "/api/v1/jobs/" + id, false}, {"GET", "/api/v1/jobs/" + id + "/logs", false},
		{"GET", "/api/v1/openapi.json", false}, {"GET", "/nowhere", false}, {"GET", "/api/v1/models", false},
		{"GET", "/ui/../api/v1/jobs", false},
		{"POST", "/api/v1/jobs", true}, {"POST", "/api/v1/jobs/" + id + "/cancel", true},
		{"GET", "/api/v1/schedules", false}, {"GET", "/api/v1/schedules/nightly", false}, {"GET", "/metrics", false},
		{"POST", "/api/v1/schedules", true}, {"DELETE", "/api/v1/schedules/nightly", true},
		{"POST", "/api/v1/schedules/nightly/pause", true}, {"POST", "/api/v1/schedules/nightly/resume", true},
		{"POST", "/api/v1/schedules/nightly/backfill", true},
	} {
		for _, tok := range []struct {
			token string
			want  int
		}{{"", 401}, {"not-a-token-at-all-0000", 401}} {
			if code, body := call(t, hs, rt.method, rt.path, tok.token, nil); code != tok.want {
				t.Errorf("%s %s with token %q: %d %s, want %d", rt.method, rt.path, tok.token, code, body, tok.want)
			}
		}
		code, _ := call(t, hs, rt.method, rt.path, readToken, nil)
		if rt.write && code != 403 || !rt.write && (code == 401 || code == 403) {
			t.Errorf("%s %s with a read token: %d", rt.method, rt.path, code)
		}
	}
	if code, _ := call(t, hs, "GET", "/healthz", "", nil); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	// The dashboard's page and files hold no data and need no token; what
	// they show comes from the API, which does.
	for _, path := range []string{"/", "/ui/app.js", "/ui/app.css"} {
		if code, body := call(t, hs, "GET", path, "", nil); code != 200 || len(body) == 0 {
			t.Errorf("%s without a token: %d", path, code)
		}
	}
	if code, _ := call(t, hs, "GET", "/ui/nowhere.js", "", nil); code != 404 {
		t.Errorf("/ui/nowhere.js: %d, want 404", code)
	}
	if code, body := call(t, hs, "GET", "/api/v1/openapi.json", readToken, nil); code != 200 || !json.Valid(body) {
		t.Errorf("openapi.json: %d", code)
	}
}

// A job submitted runs, succeeds and keeps its summary and log; a spec
// that does not check is refused at submission, naming its line; bad
// requests change nothing.
func TestSubmitRunAndRefuse(t *testing.T) {
	s, hs := newServer(t, t.TempDir())
	out := t.TempDir()
	run := submit(t, hs, SubmitRequest{Spec: ingestSpec(out, true), Name: "ingest.yaml"})
	if run.State != Queued || !validID(run.ID) {
		t.Fatalf("submitted run %+v", run)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done, err := s.Wait(ctx, run.ID)
	if err != nil || done.State != Succeeded {
		t.Fatalf("run ended %+v (%v)", done, err)
	}
	code, body := call(t, hs, "GET", "/api/v1/jobs/"+run.ID, readToken, nil)
	var got Run
	if err := json.Unmarshal(body, &got); code != 200 || err != nil || !strings.Contains(string(got.Summary), `"records_read": 4000`) && !strings.Contains(string(got.Summary), `"records_read":4000`) {
		t.Errorf("status %d: %s", code, body)
	}
	code, body = call(t, hs, "GET", "/api/v1/jobs/"+run.ID+"/logs", readToken, nil)
	if code != 200 || !strings.Contains(string(body), "muon serve: summary") {
		t.Errorf("logs %d: %.300s", code, body)
	}

	// A spec that does not check: 422, with its file and line.
	code, body = call(t, hs, "POST", "/api/v1/jobs", writeToken, SubmitRequest{Spec: "name: x\njob: ingest\nsource: {topics: [a], format: sensr}\n", Name: "bad.yaml"})
	if code != 422 || !strings.Contains(string(body), "bad.yaml:3") || !strings.Contains(string(body), "source.format") {
		t.Errorf("a bad spec: %d %s", code, body)
	}
	for name, req := range map[string][]byte{
		"malformed JSON": []byte(`{"spec": `),
		"unknown field":  []byte(`{"spec": "name: x", "runner": "flink"}`),
		"no spec":        []byte(`{"name": "a.yaml"}`),
		"a path as name": []byte(`{"spec": "name: x", "name": "../../etc/passwd"}`),
		"huge body":      append([]byte(`{"spec": "`), bytes.Repeat([]byte("a"), MaxSpecBytes+10)...),
	} {
		if code, body := call(t, hs, "POST", "/api/v1/jobs", writeToken, req); code < 400 || code >= 500 {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	for _, path := range []string{"/api/v1/jobs/..%2F..%2Fmuon.db", "/api/v1/jobs/r-x%2F..%2Fy/logs", "/api/v1/jobs/notanid"} {
		if code, _ := call(t, hs, "GET", path, readToken, nil); code < 400 || code >= 500 {
			t.Errorf("GET %s: %d", path, code)
		}
	}
	_, body = call(t, hs, "GET", "/api/v1/jobs", readToken, nil)
	var list struct{ Jobs []Run }
	if err := json.Unmarshal(body, &list); err != nil || len(list.Jobs) != 1 {
		t.Errorf("after the bad requests: %s", body)
	}
}

// Cancel stops an unbounded job cleanly: it drains, and keeps its
// summary.
func TestCancelUnbounded(t *testing.T) {
	s, hs := newServer(t, t.TempDir())
	run := submit(t, hs, SubmitRequest{Spec: ingestSpec(t.TempDir(), false)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		r, _ := s.store.get(run.ID)
		if r.State == Running {
			break
		}
		if r.Done() {
			t.Fatalf("an unbounded job ended by itself: %+v", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// While it runs, its status and /metrics show what it has read so far.
	for {
		code, body := call(t, hs, "GET", "/api/v1/jobs/"+run.ID, readToken, nil)
		var st RunStatus
		if code != 200 || json.Unmarshal(body, &st) != nil {
			t.Fatalf("status: %d %s", code, body)
		}
		if st.Live != nil && st.Live.Read > 0 && st.Live.KafkaLag != nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no live metrics in a minute: %s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, body := call(t, hs, "GET", "/metrics", readToken, nil)
	for _, want := range []string{`muon_runs{state="running"} 1`, `muon_running_job_records_read_total{job="ingest",kind="ingest"}`, `muon_kafka_lag_records{job="ingest",topic="sensors"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics while the job runs lacks %s", want)
		}
	}
	if code, body := call(t, hs, "POST", "/api/v1/jobs/"+run.ID+"/cancel", writeToken, nil); code != 202 {
		t.Fatalf("cancel: %d %s", code, body)
	}
	done, err := s.Wait(ctx, run.ID)
	if err != nil || done.State != Cancelled || len(done.Summary) == 0 {
		t.Fatalf("after cancel: %+v (%v)", done, err)
	}
	if code, _ := call(t, hs, "POST", "/api/v1/jobs/"+run.ID+"/cancel", writeToken, nil); code != 409 {
		t.Errorf("cancelling an ended run: %d, want 409", code)
	}
}

// A run that was running when the server stopped is interrupted when it
// starts again; a queued one runs.
func TestRestartMarksInterrupted(t *testing.T) {
	state := t.TempDir()
	st, err := openStore(state)
	if err != nil {
		t.Fatal(err)
	}
	running := &Run{ID: "r-20261204T000000.000000Z-00000001", Name: "x", State: Running, Submitted: time.Now().UTC()}
	if err := st.put(running); err != nil {
		t.Fatal(err)
	}
	st.close()
	s, _ := newServer(t, state)
	r, err := s.store.get(running.ID)
	if err != nil || r.State != Interrupted || r.Ended.IsZero() || r.Error == "" {
		t.Fatalf("after a restart: %+v (%v)", r, err)
	}
}

// /metrics speaks Prometheus' text format behind a read token: runs by
// state, what ended runs read, schedules' lag and skipped ticks.
func TestMetrics(t *testing.T) {
	s, hs := newServer(t, t.TempDir())
	run := submit(t, hs, SubmitRequest{Spec: ingestSpec(t.TempDir(), true)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if r, err := s.Wait(ctx, run.ID); err != nil || r.State != Succeeded {
		t.Fatalf("run: %+v %v", r, err)
	}
	if _, err := s.AddSchedule(Schedule{Name: "nightly", Cron: "0 2 * * *", Spec: ingestSpec(t.TempDir(), true)}); err != nil {
		t.Fatal(err)
	}
	if code, _ := call(t, hs, "GET", "/metrics", "", nil); code != 401 {
		t.Errorf("/metrics without a token: %d", code)
	}
	code, body := call(t, hs, "GET", "/metrics", readToken, nil)
	text := string(body)
	for _, want := range []string{
		`muon_runs{state="succeeded"} 1`, `muon_runs{state="running"} 0`,
		`muon_job_records_read_total{job="ingest"} 4000`,
		`muon_schedule_lag_seconds{schedule="nightly"} 0`, `muon_schedule_ticks_skipped_total{schedule="nightly"} 0`,
		`muon_schedule_next_fire_timestamp_seconds{schedule="nightly"}`, "go_goroutines",
	} {
		if code != 200 || !strings.Contains(text, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
}

// Cancel stops a running bounded job on its runner: a training of many
// epochs ends cancelled long before it would have finished.
func TestCancelBounded(t *testing.T) {
	s, hs := newServer(t, t.TempDir())
	out := t.TempDir()
	spec := fmt.Sprintf(`name: long
job: train
source: {topics: [sensors], format: sensor}
features: {kind: cases, channels: [dim0, dim1, dim2, dim3, dim4, dim5], bands: 4}
model: {kind: mlp, hidden: [64], activation: tanh, labels: [Badminton, Running, Standing, Walking]}
training: {epochs: 100000, batch_size: 1, shards: 1, validation: 0.25}
output: {dir: %s}
replay:
  - {path: %s, period: 100ms}
`, out, filepath.Join("..", "..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts"))
	run := submit(t, hs, SubmitRequest{Spec: spec})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		code, body := call(t, hs, "GET", "/api/v1/jobs/"+run.ID, readToken, nil)
		var st RunStatus
		if code != 200 || json.Unmarshal(body, &st) != nil {
			t.Fatalf("status: %d %s", code, body)
		}
		if st.State == Running && st.Live != nil && len(st.Live.Curve) > 0 {
			break // training, epoch by epoch
		}
		if st.Done() || ctx.Err() != nil {
			t.Fatalf("the job is not training: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	asked := time.Now()
	if code, body := call(t, hs, "POST", "/api/v1/jobs/"+run.ID+"/cancel", writeToken, nil); code != 202 {
		t.Fatalf("cancel: %d %s", code, body)
	}
	done, err := s.Wait(ctx, run.ID)
	if err != nil || done.State != Cancelled {
		t.Fatalf("after cancel: %+v (%v)", done, err)
	}
	t.Logf("cancelled in %s", time.Since(asked).Round(time.Millisecond))
}
