// Package control is muon's control plane: muon serve keeps submitted
// jobs and their history in a database in its state directory, runs them
// one at a time, and serves an HTTP JSON API under /api/v1/ behind bearer
// tokens (internal/auth).
package control

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/internal/auth"
	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/runners"
)

// MaxSpecBytes is the largest request body the API takes.
const MaxSpecBytes = 1 << 20

// Options configure a Server.
type Options struct {
	// State is the directory of the database and the runs' logs. Required.
	State string
	// Tokens check every route but /healthz. Required.
	Tokens *auth.Tokens
	// Version is muon's version, for the lineage of snapshots.
	Version string
	// Log receives a line per run that starts and ends. Default none.
	Log io.Writer
	// Now is the clock of schedules. Default time.Now.
	Now func() time.Time
	// Every is how often schedules are looked at. Default 1s; negative:
	// never (tests call tick).
	Every time.Duration
}

// Server runs submitted jobs one at a time, in this process, and serves
// the API.
type Server struct {
	o     Options
	store *store
	queue chan string
	// sched serializes what reads, changes and stores a schedule: its
	// ticks, a run's end (its retries), pause, resume and removal.
	sched sync.Mutex

	mu      sync.Mutex
	cancels map[string]context.CancelFunc
	live    map[string]*jobs.Live // the running runs' metrics so far

	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	now  func() time.Time
	wake chan struct{}
}

// Open opens (or creates) the state directory, marks the runs that were
// running when the server last stopped interrupted, queues again the ones
// that were queued, and starts the runner.
func Open(o Options) (*Server, error) {
	if o.State == "" || o.Tokens == nil {
		return nil, errors.New("control: a state directory and tokens are required")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Every == 0 {
		o.Every = time.Second
	}
	if err := os.MkdirAll(filepath.Join(o.State, "logs"), 0o700); err != nil {
		return nil, fmt.Errorf("state %s: %w", o.State, err)
	}
	st, err := openStore(o.State)
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, store: st, queue: make(chan string, 1<<16), cancels: map[string]context.CancelFunc{}, live: map[string]*jobs.Live{}, now: o.Now, wake: make(chan struct{}, 1)}
	s.ctx, s.stop = context.WithCancel(context.Background())
	runs, err := st.list(0)
	if err != nil {
		st.close()
		return nil, err
	}
	// Oldest first, so that queued runs keep their order.
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		switch r.State {
		case Running:
			_, err := st.updateThen(r.ID, func(r *Run) error {
				r.State, r.Ended, r.Error = Interrupted, time.Now().UTC(), "the server stopped while the job ran"
				return nil
			}, s.retryIn) // a schedule's retries apply
			if err != nil {
				st.close()
				return nil, err
			}
			fmt.Fprintf(o.Log, "muon serve: run %s (%s) was running when the server stopped: interrupted\n", r.ID, r.Name)
		case Queued:
			s.queue <- r.ID
		}
	}
	s.wg.Add(1)
	go s.runner()
	if o.Every > 0 {
		s.wg.Add(1)
		go s.scheduler()
	}
	return s, nil
}

// scheduler fires the schedules' ticks as they come: it sleeps until the
// soonest next tick (at most Every, which also picks up retries), or until
// a schedule is added or resumed.
func (s *Server) scheduler() {
	defer s.wg.Done()
	for {
		next, err := s.tick()
		if err != nil {
			fmt.Fprintf(s.o.Log, "muon serve: schedules: %v\n", err)
		}
		wait := s.o.Every
		if !next.IsZero() {
			wait = min(wait, max(time.Until(next), time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-s.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// poke wakes the scheduler to look at the schedules again.
func (s *Server) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close stops the runner, cancelling the running job (an unbounded one
// drains and is summarized), and closes the database.
func (s *Server) Close() error {
	s.stop()
	s.wg.Wait()
	return s.store.close()
}

func (s *Server) runner() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case id := <-s.queue:
			s.execute(id)
		}
	}
}

// newID is a run id that sorts by submission time: r-<UTC time>-<random>.
func newID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "r-" + time.Now().UTC().Format("20060102T150405.000000Z") + "-" + hex.EncodeToString(b[:])
}

// parse checks a submitted spec as muon run does, before it is accepted.
func parse(name, spec string, set []string) (*configs.Spec, error) {
	if name == "" {
		name = "spec.yaml"
	}
	sp, err := configs.Parse(name, []byte(spec), set...)
	if err != nil {
		return nil, err
	}
	if _, err := runners.Parse(sp.Runner); err != nil {
		return nil, fmt.Errorf("%s: runner: %w", name, err)
	}
	if _, err := jobs.Check(context.Background(), sp); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return sp, nil
}

// Submit checks a spec and queues it; the error of a spec that does not
// check names file, line and field as muon run does.
func (s *Server) Submit(name, spec string, set []string) (*Run, error) {
	sp, err := parse(name, spec, set)
	if err != nil {
		return nil, err
	}
	r := &Run{ID: newID(), Name: sp.Name, Job: sp.Job, Spec: spec, Set: set, State: Queued, Submitted: time.Now().UTC()}
	if err := s.store.put(r); err != nil {
		return nil, err
	}
	s.queue <- r.ID
	return r, nil
}

// Cancel asks a queued or running run to stop: a queued one is cancelled
// at once; a running unbounded job stops reading, drains and is
// summarized; a running bounded job is cancelled on its runner.
func (s *Server) Cancel(id string) (*Run, error) {
	r, err := s.store.update(id, func(r *Run) error {
		switch r.State {
		case Queued:
			r.State, r.Ended = Cancelled, time.Now().UTC()
		case Running:
			r.CancelAsked = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	cancel := s.cancels[id]
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return r, nil
}

func (s *Server) logPath(id string) string { return filepath.Join(s.o.State, "logs", id+".log") }

// execute runs one queued run to its end.
func (s *Server) execute(id string) {
	r, err := s.store.get(id)
	if err != nil || r == nil || r.State != Queued {
		return // cancelled while queued
	}
	logf, err := os.OpenFile(s.logPath(id), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.finish(id, nil, fmt.Errorf("log: %w", err), false)
		return
	}
	defer logf.Close()
	ctx, cancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	s.cancels[id] = cancel
	s.mu.Unlock()
	defer func() {
		cancel()
		s.mu.Lock()
		delete(s.cancels, id)
		s.mu.Unlock()
	}()
	if _, err := s.store.update(id, func(r *Run) error {
		r.State, r.Started = Running, time.Now().UTC()
		return nil
	}); err != nil {
		return
	}
	fmt.Fprintf(s.o.Log, "muon serve: run %s (%s, job %s) started\n", id, r.Name, r.Job)
	sp, err := parse(r.Name+".yaml", r.Spec, r.Set)
	if err != nil {
		s.finish(id, nil, err, false)
		return
	}
	kind, _ := runners.Parse(sp.Runner)
	live := jobs.NewLive(sp)
	live.Log = logf // the epochs, which the job's workers print elsewhere
	s.mu.Lock()
	s.live[id] = live
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.live, id)
		s.mu.Unlock()
	}()
	sum, err := jobs.Run(ctx, sp, jobs.RunOptions{
		Runner:   jobs.RunnerOptions(sp, kind),
		Version:  s.o.Version,
		Progress: logf,
		Live:     live,
	})
	if sum != nil {
		b, _ := json.MarshalIndent(sum, "", "  ")
		fmt.Fprintf(logf, "muon serve: summary\n%s\n", b)
	}
	if err != nil {
		fmt.Fprintf(logf, "muon serve: the job failed: %v\n", err)
	}
	s.finish(id, sum, err, ctx.Err() != nil)
}

func (s *Server) finish(id string, sum *jobs.Summary, err error, cancelled bool) {
	// The run's end and its schedule's retry are stored together, and
	// no tick changes the schedule in between.
	s.sched.Lock()
	defer s.sched.Unlock()
	r, uerr := s.store.updateThen(id, func(r *Run) error {
		r.Ended = time.Now().UTC()
		if sum != nil {
			b, merr := json.Marshal(sum)
			if merr == nil {
				r.Summary = b
			}
		}
		switch {
		case r.CancelAsked || cancelled && s.ctx.Err() == nil:
			r.State = Cancelled
			if err != nil && !errors.Is(err, context.Canceled) {
				r.Error = err.Error()
			}
		case s.ctx.Err() != nil:
			r.State, r.Error = Interrupted, "the server stopped while the job ran"
		case err != nil:
			r.State, r.Error = Failed, err.Error()
		default:
			r.State = Succeeded
		}
		return nil
	}, s.retryIn)
	if uerr == nil {
		fmt.Fprintf(s.o.Log, "muon serve: run %s (%s) %s\n", id, r.Name, r.State)
	}
}

// Handler is the HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /api/v1/openapi.json", s.auth(auth.Read, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	}))
	mux.HandleFunc("POST /api/v1/jobs", s.auth(auth.Write, s.submit))
	mux.HandleFunc("GET /api/v1/jobs", s.auth(auth.Read, s.list))
	mux.HandleFunc("GET /api/v1/jobs/{id}", s.auth(auth.Read, s.status))
	mux.HandleFunc("POST /api/v1/jobs/{id}/cancel", s.auth(auth.Write, s.cancel))
	mux.HandleFunc("GET /api/v1/jobs/{id}/logs", s.auth(auth.Read, s.logs))
	mux.HandleFunc("GET /api/v1/models", s.auth(auth.Read, s.models))
	metrics := s.metricsHandler()
	mux.HandleFunc("GET /metrics", s.auth(auth.Read, metrics.ServeHTTP))
	mux.HandleFunc("POST /api/v1/schedules", s.auth(auth.Write, s.addSchedule))
	mux.HandleFunc("GET /api/v1/schedules", s.auth(auth.Read, s.listSchedules))
	mux.HandleFunc("GET /api/v1/schedules/{name}", s.auth(auth.Read, s.getSchedule))
	mux.HandleFunc("DELETE /api/v1/schedules/{name}", s.auth(auth.Write, s.removeSchedule))
	mux.HandleFunc("POST /api/v1/schedules/{name}/pause", s.auth(auth.Write, s.pauseSchedule(true)))
	mux.HandleFunc("POST /api/v1/schedules/{name}/resume", s.auth(auth.Write, s.pauseSchedule(false)))
	mux.HandleFunc("POST /api/v1/schedules/{name}/backfill", s.auth(auth.Write, s.backfill))
	ui := dashboard()
	mux.Handle("GET /{$}", ui)
	mux.Handle("GET /ui/{file}", ui)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if code, err := s.o.Tokens.Check(r, auth.Read); err != nil {
			writeError(w, code, err.Error())
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s: see /api/v1/openapi.json", r.Method, r.URL.Path))
	})
	return mux
}

func (s *Server) auth(need auth.Scope, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if code, err := s.o.Tokens.Check(r, need); err != nil {
			writeError(w, code, err.Error())
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// SubmitRequest is the body of POST /api/v1/jobs.
type SubmitRequest struct {
	// Spec is the job spec in YAML, as muon run --config takes it.
	Spec string `json:"spec"`
	// Name names it in errors (e.g. its file name). Default spec.yaml.
	Name string `json:"name,omitempty"`
	// Set are --set overrides, path=value.
	Set []string `json:"set,omitempty"`
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxSpecBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is more than %d bytes", MaxSpecBytes))
		return
	}
	var req SubmitRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`the body is not {"spec": "<YAML>", "name": "...", "set": ["path=value"]}: %v`, err))
		return
	}
	if strings.TrimSpace(req.Spec) == "" {
		writeError(w, http.StatusBadRequest, `no spec: send {"spec": "<the job spec in YAML>"}`)
		return
	}
	if strings.ContainsAny(req.Name, "/\\\x00") || len(req.Name) > 200 {
		writeError(w, http.StatusBadRequest, "name: a file name without a path, up to 200 bytes")
		return
	}
	run, err := s.Submit(req.Name, req.Spec, req.Set)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, run)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "limit: a number from 1 to 10000")
			return
		}
		limit = n
	}
	runs, err := s.store.list(limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	for _, r := range runs {
		r.Spec, r.Summary = "", nil // GET /jobs/{id} has them
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": runs})
}

// validID reports whether id can name a run (and a log file).
func validID(id string) bool {
	if len(id) < 3 || len(id) > 96 || !strings.HasPrefix(id, "r-") {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func (s *Server) run(w http.ResponseWriter, r *http.Request) *Run {
	id := r.PathValue("id")
	if !validID(id) {
		writeError(w, http.StatusBadRequest, "not a run id: ids look like r-20261204T065900.000000Z-0a1b2c3d")
		return nil
	}
	run, err := s.store.get(id)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return nil
	}
	if run == nil {
		writeError(w, http.StatusNotFound, "no run "+id)
	}
	return run
}

// RunStatus is a run with, while it runs, its metrics so far.
type RunStatus struct {
	*Run
	Live *jobs.LiveView `json:"live,omitempty"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	if run := s.run(w, r); run != nil {
		writeJSON(w, http.StatusOK, RunStatus{Run: run, Live: s.liveView(run.ID)})
	}
}

// liveView is run id's metrics so far, nil unless it runs and has some.
func (s *Server) liveView(id string) *jobs.LiveView {
	s.mu.Lock()
	l := s.live[id]
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	v, ok := l.View()
	if !ok {
		return nil
	}
	return &v
}

// running lists the running runs' metrics.
func (s *Server) running() []*jobs.Live {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*jobs.Live, 0, len(s.live))
	for _, l := range s.live {
		out = append(out, l)
	}
	return out
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	run := s.run(w, r)
	if run == nil {
		return
	}
	if run.Done() {
		writeError(w, http.StatusConflict, fmt.Sprintf("run %s has ended (%s)", run.ID, run.State))
		return
	}
	run, err := s.Cancel(run.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, run)
}

// logs writes a run's log; with follow=1 it keeps writing as the log grows
// until the run ends or the client goes.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	run := s.run(w, r)
	if run == nil {
		return
	}
	follow := r.URL.Query().Get("follow") == "1"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	f, err := os.Open(s.logPath(run.ID))
	if errors.Is(err, os.ErrNotExist) && !follow {
		return // not started yet
	}
	var off int64
	flusher, _ := w.(http.Flusher)
	for {
		if f == nil {
			f, _ = os.Open(s.logPath(run.ID))
		}
		if f != nil {
			n, _ := io.Copy(w, io.NewSectionReader(f, off, 1<<62))
			off += n
			if n > 0 && flusher != nil {
				flusher.Flush()
			}
		}
		if !follow {
			break
		}
		cur, err := s.store.get(run.ID)
		if err != nil || cur == nil || cur.Done() {
			if f != nil {
				n, _ := io.Copy(w, io.NewSectionReader(f, off, 1<<62))
				off += n
			}
			break
		}
		select {
		case <-r.Context().Done():
			if f != nil {
				f.Close()
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	if f != nil {
		f.Close()
	}
}

// Wait waits for run id to end, for tests and the CLI's own use.
func (s *Server) Wait(ctx context.Context, id string) (*Run, error) {
	for {
		r, err := s.store.get(id)
		if err != nil || r == nil {
			return r, err
		}
		if r.Done() {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readJSON decodes a request body of at most MaxSpecBytes into v,
// refusing unknown fields; on error it has answered.
func readJSON(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxSpecBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is more than %d bytes", MaxSpecBytes))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the body is not %s: %v", shape, err))
		return false
	}
	return true
}

func (s *Server) addSchedule(w http.ResponseWriter, r *http.Request) {
	var sc Schedule
	if !readJSON(w, r, &sc, `{"name": "nightly", "cron": "0 2 * * *", "tz": "Europe/Berlin", "spec": "<YAML>", "overlap": "skip", "retries": 2, "backoff": "1m", "catch_up": "1h"}`) {
		return
	}
	out, err := s.AddSchedule(sc)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	s.poke()
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) {
	scs, err := s.store.schedules()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	for _, sc := range scs {
		s.withNext(sc)
		sc.Spec = ""
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedules": scs})
}

func (s *Server) schedule(w http.ResponseWriter, r *http.Request) *Schedule {
	name := r.PathValue("name")
	if !scheduleName.MatchString(name) {
		writeError(w, http.StatusBadRequest, "not a schedule name: lowercase letters, digits and dashes")
		return nil
	}
	sc, err := s.store.getSchedule(name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return nil
	}
	if sc == nil {
		writeError(w, http.StatusNotFound, "no schedule "+name)
	}
	return sc
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) {
	if sc := s.schedule(w, r); sc != nil {
		writeJSON(w, http.StatusOK, s.withNext(sc))
	}
}

func (s *Server) removeSchedule(w http.ResponseWriter, r *http.Request) {
	s.sched.Lock()
	defer s.sched.Unlock()
	if sc := s.schedule(w, r); sc != nil {
		if err := s.store.deleteSchedule(sc.Name); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"removed": sc.Name})
	}
}

func (s *Server) pauseSchedule(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.sched.Lock()
		defer s.sched.Unlock()
		sc := s.schedule(w, r)
		if sc == nil {
			return
		}
		sc.Paused = paused
		if !paused && sc.Last.Before(s.now().Add(-time.Duration(sc.CatchUp))) {
			// Resuming does not make up for more than the catch-up window.
			sc.Last = s.now().UTC().Add(-time.Duration(sc.CatchUp))
		}
		if err := s.store.putSchedule(sc); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		s.poke()
		writeJSON(w, http.StatusOK, s.withNext(sc))
	}
}

// BackfillRequest is the body of POST /api/v1/schedules/{name}/backfill.
type BackfillRequest struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	DryRun bool      `json:"dry_run,omitempty"`
}

func (s *Server) backfill(w http.ResponseWriter, r *http.Request) {
	sc := s.schedule(w, r)
	if sc == nil {
		return
	}
	var req BackfillRequest
	if !readJSON(w, r, &req, `{"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z", "dry_run": true}`) {
		return
	}
	ticks, made, err := s.Backfill(sc.Name, req.From, req.To, req.DryRun)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	if ticks == nil {
		ticks = []time.Time{}
	}
	if made == nil {
		made = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ticks": ticks, "runs": made, "dry_run": req.DryRun})
}
