package control

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"net/http/httptest"

	"github.com/muonml/muon/internal/auth"
)

// clock is a settable clock for schedules.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func at(hhmmss string) time.Time {
	t, err := time.Parse(time.RFC3339, "2026-12-04T"+hhmmss+"Z")
	if err != nil {
		panic(err)
	}
	return t
}

func openAt(t *testing.T, state string, c *clock) *Server {
	t.Helper()
	tf := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tf, []byte("write "+writeToken+"\n"), 0o600)
	toks, err := auth.Load(tf)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{State: state, Tokens: toks, Now: c.now, Every: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tinySpec is a job that runs in a fraction of a second: the seven
// messages of a flaky gateway's capture, ingested.
func tinySpec(out string) string {
	return fmt.Sprintf("name: tiny\njob: ingest\nsource: {topics: [sensors], format: sensor}\noutput: {dir: %s}\nreplay:\n  - {path: %s}\n",
		out, filepath.Join("..", "..", "configs", "testdata", "malformed.jsonl"))
}

// runsOf lists a schedule's runs, oldest first, once every one ended.
func runsOf(t *testing.T, s *Server, name string) []*Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all, err := s.store.list(0)
	if err != nil {
		t.Fatal(err)
	}
	var out []*Run
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Schedule == name {
			r, err := s.Wait(ctx, all[i].ID)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
	}
	return out
}

// A schedule firing every minute fires once per tick, on the tick's id,
// across a restart in the middle; a backfill of 5 ticks makes 5 runs, and
// the same backfill again none.
func TestScheduleTicksAcrossRestart(t *testing.T) {
	state, out := t.TempDir(), t.TempDir()
	c := &clock{t: at("10:00:30")}
	s := openAt(t, state, c)
	if _, err := s.AddSchedule(Schedule{Name: "every-minute", Cron: "* * * * *", Spec: tinySpec(out)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.tick(); err != nil {
		t.Fatal(err)
	}
	c.set(at("10:01:05"))
	s.tick()
	s.tick() // the same tick twice: one run
	if runs := runsOf(t, s, "every-minute"); len(runs) != 1 || runs[0].ID != tickID("every-minute", at("10:01:00")) || runs[0].State != Succeeded {
		t.Fatalf("after 10:01: %d runs %+v", len(runs), runs)
	}
	s.Close()

	c.set(at("10:01:40"))
	s = openAt(t, state, c)
	defer s.Close()
	s.tick()
	c.set(at("10:02:01"))
	s.tick()
	runs := runsOf(t, s, "every-minute")
	if len(runs) != 2 || runs[1].Tick != at("10:02:00") {
		t.Fatalf("after the restart and 10:02: %d runs", len(runs))
	}

	ticks, made, err := s.Backfill("every-minute", at("09:00:00"), at("09:05:00"), true)
	if err != nil || len(ticks) != 5 || len(made) != 0 {
		t.Fatalf("dry run: %v ticks, %v made, %v", ticks, made, err)
	}
	if _, made, err = s.Backfill("every-minute", at("09:00:00"), at("09:05:00"), false); err != nil || len(made) != 5 {
		t.Fatalf("backfill: %d runs, %v", len(made), err)
	}
	if _, made, err = s.Backfill("every-minute", at("09:00:00"), at("09:05:00"), false); err != nil || len(made) != 0 {
		t.Fatalf("the same backfill again made %d runs (%v)", len(made), err)
	}
	if runs := runsOf(t, s, "every-minute"); len(runs) != 7 {
		t.Errorf("%d runs in all, want 2 ticks and 5 backfilled", len(runs))
	}
}

// After downtime, ticks within the catch-up window run and older ones are
// skipped; a paused schedule fires nothing; with overlap skip, a tick
// while the previous run is running is skipped.
func TestScheduleCatchUpPauseAndOverlap(t *testing.T) {
	state, out := t.TempDir(), t.TempDir()
	c := &clock{t: at("08:00:00")}
	s := openAt(t, state, c)
	defer s.Close()
	if _, err := s.AddSchedule(Schedule{Name: "quarterly", Cron: "*/15 * * * *", Spec: tinySpec(out), Overlap: OverlapAllow, CatchUp: Duration(30 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	c.set(at("10:00:00"))
	s.tick()
	runs := runsOf(t, s, "quarterly")
	sc, _ := s.store.getSchedule("quarterly")
	if len(runs) != 3 || runs[0].Tick != at("09:30:00") || sc.Skipped != 5 {
		t.Fatalf("after downtime: %d runs (first %v), %d skipped; want 09:30, 09:45, 10:00 and 5 skipped", len(runs), runs, sc.Skipped)
	}

	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	if code, body := call(t, hs, "POST", "/api/v1/schedules/quarterly/pause", writeToken, nil); code != 200 {
		t.Fatalf("pause: %d %s", code, body)
	}
	c.set(at("10:20:00"))
	s.tick()
	if runs := runsOf(t, s, "quarterly"); len(runs) != 3 {
		t.Errorf("a paused schedule fired: %d runs", len(runs))
	}

	// Overlap skip: an unbounded job runs on, the next tick is skipped.
	if _, err := s.AddSchedule(Schedule{Name: "stream", Cron: "* * * * *", Spec: ingestSpec(t.TempDir(), false)}); err != nil {
		t.Fatal(err)
	}
	c.set(at("10:21:00"))
	s.tick()
	sc, _ = s.store.getSchedule("stream")
	for !s.active(sc.LastRun) || mustGet(t, s, sc.LastRun).State != Running {
		time.Sleep(50 * time.Millisecond)
	}
	c.set(at("10:22:00"))
	s.tick()
	sc, _ = s.store.getSchedule("stream")
	if sc.Skipped != 1 || sc.LastRun != tickID("stream", at("10:21:00")) {
		t.Errorf("overlap skip: %d skipped, last run %s", sc.Skipped, sc.LastRun)
	}
	s.Cancel(sc.LastRun)
	runsOf(t, s, "stream")
}

// A failed run is tried again, Retries times, after a backoff that
// doubles.
func TestScheduleRetries(t *testing.T) {
	c := &clock{t: at("10:00:30")}
	s := openAt(t, t.TempDir(), c)
	defer s.Close()
	failing := fmt.Sprintf("name: missing\njob: ingest\nsource: {topics: [no-such-topic], format: sensor}\noutput: {dir: %s}\n", t.TempDir())
	if _, err := s.AddSchedule(Schedule{Name: "flaky", Cron: "* * * * *", Spec: failing, Retries: 2, Backoff: Duration(10 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	c.set(at("10:01:00"))
	s.tick()
	runsOf(t, s, "flaky")
	// The run's end and its retry are stored together: once the run
	// reads as failed, its retry is due 10 s after the clock it ended at.
	if sc, _ := s.store.getSchedule("flaky"); sc.Attempt != 1 || !sc.Retry.Equal(at("10:01:10")) {
		t.Errorf("after the failed tick: attempt %d, retry at %v; want 1 at 10:01:10", sc.Attempt, sc.Retry)
	}
	for _, step := range []string{"10:01:05", "10:01:11", "10:01:25", "10:01:32", "10:01:59"} {
		c.set(at(step))
		s.tick()
		runsOf(t, s, "flaky")
	}
	runs := runsOf(t, s, "flaky")
	var ids []string
	for _, r := range runs {
		ids = append(ids, strings.TrimPrefix(r.ID, tickID("flaky", at("10:01:00"))))
		if r.State != Failed {
			t.Errorf("run %s: %s", r.ID, r.State)
		}
	}
	if strings.Join(ids, ",") != ",-retry1,-retry2" {
		t.Errorf("runs %q: want the tick and two retries (the second 20 s after the first)", ids)
	}
}

func mustGet(t *testing.T, s *Server, id string) *Run {
	t.Helper()
	r, err := s.store.get(id)
	if err != nil || r == nil {
		t.Fatalf("run %s: %v", id, err)
	}
	return r
}

// A schedule with a window has each tick's run read the archive's
// partitions of [tick − window, tick); a tick whose run cannot start (here
// the archive is missing) leaves a failed run saying why.
func TestScheduleWindow(t *testing.T) {
	c := &clock{t: at("10:00:00")}
	s := openAt(t, t.TempDir(), c)
	defer s.Close()
	dir := t.TempDir()
	spec := fmt.Sprintf(`name: retrain
job: train
source: {archive: [%s], format: sensor}
features: {kind: cases, channels: [dim0], bands: 2}
model: {kind: mlp, hidden: [4], labels: [a, b]}
training: {epochs: 1}
output: {dir: %s}
`, filepath.Join(dir, "features"), filepath.Join(dir, "out"))
	if _, err := s.AddSchedule(Schedule{Name: "daily", Cron: "0 9 * * *", Spec: spec, Window: Duration(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	onTopics := strings.Replace(spec, "archive: ["+filepath.Join(dir, "features")+"]", "topics: [t]", 1)
	if _, err := s.AddSchedule(Schedule{Name: "bad", Cron: "0 9 * * *", Spec: onTopics, Window: Duration(time.Hour)}); err == nil || !strings.Contains(err.Error(), "source.archive") {
		t.Errorf("a window on a spec without an archive: %v", err)
	}
	if _, made, err := s.Backfill("daily", at("09:00:00"), at("09:00:01"), false); err != nil || len(made) != 0 {
		t.Fatalf("backfill: %v %v", made, err)
	}
	runs := runsOf(t, s, "daily")
	if len(runs) != 1 {
		t.Fatalf("%d runs", len(runs))
	}
	r := runs[0]
	want := []string{"source.archive_from=2026-12-03T09:00:00Z", "source.archive_to=2026-12-04T09:00:00Z"}
	if !slices.Equal(r.Set, want) {
		t.Errorf("the tick's overrides %v, want %v", r.Set, want)
	}
	if r.State != Failed || !strings.Contains(r.Error, "source.archive") {
		t.Errorf("a run on a missing archive: %s %q", r.State, r.Error)
	}
}

// A scheduled run that was running when the server stopped is marked
// interrupted when it starts again, and its schedule's retries run it
// again after the backoff.
func TestInterruptedScheduledRunRetries(t *testing.T) {
	state := t.TempDir()
	c := &clock{t: at("10:00:30")}
	s := openAt(t, state, c)
	if _, err := s.AddSchedule(Schedule{Name: "nightly", Cron: "0 2 * * *", Spec: tinySpec(t.TempDir()), Retries: 1, Backoff: Duration(10 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	sc, _ := s.store.getSchedule("nightly")
	id := tickID("nightly", at("10:00:00"))
	sc.LastRun = id
	must(t, s.store.putSchedule(sc))
	must(t, s.store.put(&Run{ID: id, Name: "tiny", Job: "ingest", Spec: sc.Spec, State: Running, Submitted: at("10:00:00"), Schedule: "nightly", Tick: at("10:00:00")}))
	s.Close()

	s = openAt(t, state, c)
	defer s.Close()
	if r := mustGet(t, s, id); r.State != Interrupted {
		t.Fatalf("after the restart: %s", r.State)
	}
	c.set(at("10:00:41"))
	if _, err := s.tick(); err != nil {
		t.Fatal(err)
	}
	runs := runsOf(t, s, "nightly")
	if len(runs) != 2 || runs[1].ID != id+"-retry1" || runs[1].State != Succeeded {
		var got []string
		for _, r := range runs {
			got = append(got, r.ID+" "+r.State)
		}
		t.Errorf("runs %v: want the interrupted run and its retry, succeeded", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
