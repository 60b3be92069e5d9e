package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/muonml/muon/serve/control"
)

// benchServe starts `muon serve` on a free loopback port and measures how
// long a submitted small job waits to start (50 submissions, each after
// the one before ended: no queueing in the figure) and how many
// GET /api/v1/jobs it answers a second under a bounded load of 4
// clients.
func benchServe(muon string) {
	work, err := os.MkdirTemp("", "muon-bench-serve-")
	must(err)
	defer os.RemoveAll(work)
	const token = "bench-write-token-0123456789"
	tokens := filepath.Join(work, "tokens")
	must(os.WriteFile(tokens, []byte("write "+token+"\n"), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(muon, "serve", "--state", filepath.Join(work, "state"), "--tokens", tokens, "--listen", addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	must(cmd.Start())
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	base := "http://" + addr
	call := func(method, path string, body any, into any) error {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, b)
		}
		if into == nil {
			_, err := io.Copy(io.Discard, resp.Body)
			return err
		}
		return json.NewDecoder(resp.Body).Decode(into)
	}
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if call("GET", "/api/v1/jobs", nil, nil) == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			must(fmt.Errorf("muon serve did not answer in 30 s:\n%s", stderr.String()))
		}
	}
	spec := fmt.Sprintf(`name: tiny
job: ingest
source: {topics: [sensors], format: sensor}
output: {dir: %s}
replay:
  - {path: configs/testdata/malformed.jsonl}
`, filepath.Join(work, "out"))
	var waits []float64
	for range 50 {
		var run control.Run
		must(call("POST", "/api/v1/jobs", control.SubmitRequest{Spec: spec, Name: "tiny.yaml"}, &run))
		for {
			var cur control.Run
			must(call("GET", "/api/v1/jobs/"+run.ID, nil, &cur))
			if cur.Done() {
				if cur.State != control.Succeeded {
					must(fmt.Errorf("run %s: %s: %s", cur.ID, cur.State, cur.Error))
				}
				waits = append(waits, float64(cur.Started.Sub(cur.Submitted).Microseconds())/1000)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	sort.Float64s(waits)
	q := func(p float64) float64 { return waits[min(len(waits)-1, int(p*float64(len(waits))))] }
	fmt.Fprintf(os.Stderr, "bench: muon serve: 50 small ingest jobs, submission to start p50 %.1f ms, p99 %.1f ms\n", q(0.5), q(0.99))
	bench("serve.submit_to_start_ms.p50", q(0.5), "ms")
	bench("serve.submit_to_start_ms.p99", q(0.99), "ms")

	var n atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(5 * time.Second)
	var failed atomic.Value
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := call("GET", "/api/v1/jobs", nil, nil); err != nil {
					failed.Store(err.Error())
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		must(fmt.Errorf("GET /api/v1/jobs under load: %s", strings.TrimSpace(f.(string))))
	}
	bench("serve.api.rps", float64(n.Load())/5, "requests/s")

	// A schedule firing every second for 12 s: how late each run starts
	// after its tick.
	must(call("POST", "/api/v1/schedules", control.Schedule{Name: "every-second", Cron: "@every 1s", Spec: spec}, nil))
	time.Sleep(12 * time.Second)
	must(call("DELETE", "/api/v1/schedules/every-second", nil, nil))
	time.Sleep(2 * time.Second)
	var list struct{ Jobs []control.Run }
	must(call("GET", "/api/v1/jobs?limit=1000", nil, &list))
	var delays []float64
	for _, r := range list.Jobs {
		if r.Schedule == "every-second" && !r.Started.IsZero() {
			delays = append(delays, float64(r.Started.Sub(r.Tick).Microseconds())/1000)
		}
	}
	if len(delays) < 8 {
		must(fmt.Errorf("a schedule firing every second made %d runs in 12 s", len(delays)))
	}
	sort.Float64s(delays)
	fmt.Fprintf(os.Stderr, "bench: muon serve: a schedule every second, %d runs, tick to start p50 %.1f ms, max %.1f ms\n", len(delays), delays[len(delays)/2], delays[len(delays)-1])
	bench("schedule.fire_delay_ms.p50", delays[len(delays)/2], "ms")
	bench("schedule.fire_delay_ms.p99", delays[min(len(delays)-1, int(0.99*float64(len(delays))))], "ms")
}
