package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/internal/auth"
	"github.com/muonml/muon/serve/control"
)

// muon jobs and muon schedule against a muon serve: flags before and after
// names, the answers printed, and the server's refusals passed on.
func TestJobsAndScheduleClients(t *testing.T) {
	t.Setenv("MUON_TOKEN", "")
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte("write write-token-0123456789\nread read-token-0123456789\n"), 0o600)
	toks, err := auth.Load(tokens)
	if err != nil {
		t.Fatal(err)
	}
	s, err := control.Open(control.Options{State: filepath.Join(dir, "state"), Tokens: toks})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer func() { hs.Close(); s.Close() }()
	wt, rt := filepath.Join(dir, "wt"), filepath.Join(dir, "rt")
	os.WriteFile(wt, []byte("write-token-0123456789\n"), 0o600)
	os.WriteFile(rt, []byte("read-token-0123456789"), 0o600)
	spec := filepath.Join(dir, "tiny.yaml")
	os.WriteFile(spec, []byte("name: tiny\njob: ingest\nsource: {topics: [sensors], format: sensor}\noutput: {dir: "+filepath.Join(dir, "out")+"}\nreplay:\n  - {path: "+filepath.Join("..", "..", "configs", "testdata", "malformed.jsonl")+"}\n"), 0o600)

	code, out, errs := runMuon(t, "jobs", "submit", "--server", hs.URL, "--config", spec, "--token-file", wt)
	if code != 0 || !strings.Contains(out, "\tqueued\ttiny") {
		t.Fatalf("jobs submit: %d %q %q", code, out, errs)
	}
	id := strings.Fields(out)[0]
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		_, out, _ = runMuon(t, "jobs", "status", id, "--server", hs.URL, "--token-file", rt)
		if strings.Contains(out, "state      succeeded") {
			break
		}
		if time.Now().After(deadline) || strings.Contains(out, "failed") {
			t.Fatalf("jobs status: %s", out)
		}
	}
	if _, out, _ := runMuon(t, "jobs", "list", "--server", hs.URL, "--token-file", rt); !strings.Contains(out, id+"\tsucceeded") {
		t.Errorf("jobs list: %q", out)
	}
	if _, out, _ := runMuon(t, "jobs", "logs", "--server", hs.URL, id, "--token-file", rt); !strings.Contains(out, "muon serve: summary") {
		t.Errorf("jobs logs: %.200q", out)
	}
	// A read token cannot submit: the server's answer is passed on.
	if code, _, errs := runMuon(t, "jobs", "submit", "--server", hs.URL, "--config", spec, "--token-file", rt); code == 0 || !strings.Contains(errs, "403") {
		t.Errorf("a read token submitted: %d %q", code, errs)
	}
	code, out, errs = runMuon(t, "schedule", "add", "nightly", "--server", hs.URL, "--token-file", wt, "--cron", "0 2 * * *", "--tz", "Europe/Berlin", "--config", spec)
	if code != 0 || !strings.Contains(out, "nightly\t0 2 * * *\tEurope/Berlin\tnext ") {
		t.Fatalf("schedule add: %d %q %q", code, out, errs)
	}
	if _, out, _ := runMuon(t, "schedule", "backfill", "nightly", "--server", hs.URL, "--token-file", wt, "--from", "2026-12-01T00:00:00Z", "--to", "2026-12-04T00:00:00Z", "--dry-run"); !strings.Contains(out, "3 ticks (dry run: nothing queued)") {
		t.Errorf("schedule backfill: %q", out)
	}
	if _, out, _ := runMuon(t, "schedule", "pause", "nightly", "--server", hs.URL, "--token-file", wt); !strings.Contains(out, "\tpaused\t") {
		t.Errorf("schedule pause: %q", out)
	}
	if code, _, errs := runMuon(t, "schedule", "add", "bad", "--server", hs.URL, "--token-file", wt, "--cron", "61 * * * *", "--config", spec); code == 0 || !strings.Contains(errs, "end of range (61)") {
		t.Errorf("a bad cron: %d %q", code, errs)
	}
	if code, _, errs := runMuon(t, "jobs", "list", "--server", hs.URL); code == 0 || !strings.Contains(errs, "--token-file") {
		t.Errorf("no token: %d %q", code, errs)
	}
}
