package main

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// benchPredict load-tests muon predict on loopback with the digits MLP:
// first its maximum rate (closed loop, 4 clients, one row a request), then
// half of it as an open loop (requests sent on a fixed schedule, latency
// counted from when each was due, so a stall is not hidden), which gives
// predict.rps and predict.p99_ms, the median of three passes. The load
// generator is this program again, in a process of its own: inside the
// bench, whose heap is large after the other groups, its collector's
// pauses showed up as the server's latency. It shares the two cores with
// the server (pinning each to a core of its own made both slower: the
// generator's client costs about what the server does).
func benchPredict(muon, store, pub, datasets string) {
	dir, err := os.MkdirTemp("", "muon-bench-predict-")
	must(err)
	defer os.RemoveAll(dir)
	tok := make([]byte, 24)
	_, err = rand.Read(tok)
	must(err)
	token := hex.EncodeToString(tok)
	tokens := filepath.Join(dir, "tokens")
	must(os.WriteFile(tokens, []byte("read "+token+"\n"), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(muon, "predict", "--store", store, "--trust", pub, "--tokens", tokens, "--listen", addr)
	stdout, err := cmd.StdoutPipe()
	must(err)
	cmd.Stderr = os.Stderr
	must(cmd.Start())
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	must(err)
	go io.Copy(io.Discard, stdout)
	fmt.Fprintf(os.Stderr, "bench: %s", line)
	i := strings.Index(line, "/v1/models/")
	if i < 0 {
		must(fmt.Errorf("muon predict said %q", line))
	}
	cfg := predictLoad{URL: "http://" + addr + strings.TrimSpace(line[i:]), Token: token,
		Dataset: filepath.Join(datasets, "optdigits", "optdigits.tes")}
	raw, err := json.Marshal(cfg)
	must(err)
	cfgPath := filepath.Join(dir, "load.json")
	must(os.WriteFile(cfgPath, raw, 0o600))
	self, err := os.Executable()
	must(err)
	load := exec.Command(self, "--predict-load", cfgPath)
	load.Stderr = os.Stderr
	out, err := load.Output()
	must(err)
	var res predictResult
	must(json.Unmarshal(out, &res))
	fmt.Fprintf(os.Stderr, "bench: predict: %d requests at %.0f/s (half the maximum %.0f/s), p50 %.2f ms, p99 %.2f ms, %d failed\n",
		res.Requests, res.RPS, res.MaxRPS, res.P50, res.P99, res.Failed)
	if res.Failed > 0 {
		must(fmt.Errorf("predict: %d requests failed", res.Failed))
	}
	bench("predict.max_rps", res.MaxRPS, "requests/s")
	bench("predict.rps", res.RPS, "requests/s")
	bench("predict.p50_ms", res.P50, "ms")
	bench("predict.p99_ms", res.P99, "ms")
}

// predictLoad is what the load generator process is given.
type predictLoad struct {
	URL, Token, Dataset string
}

// predictResult is what it reports, as JSON on stdout.
type predictResult struct {
	MaxRPS, RPS, P50, P99 float64
	Requests              int
	Failed                int64
}

// runPredictLoad is the load generator (bench --predict-load FILE): the
// closed loop for the maximum rate, then the open loop at half of it.
func runPredictLoad(cfgPath string) {
	raw, err := os.ReadFile(cfgPath)
	must(err)
	var cfg predictLoad
	must(json.Unmarshal(raw, &cfg))
	// Request bodies: the test digits, one row each.
	data, err := os.ReadFile(cfg.Dataset)
	must(err)
	var bodies [][]byte
	for _, row := range strings.Split(strings.TrimSpace(string(data)), "\n")[1:] {
		cells := strings.Split(strings.TrimSpace(row), ",")
		if len(cells) < 65 {
			continue
		}
		bodies = append(bodies, []byte(`{"rows": [[`+strings.Join(cells[:64], ",")+`]]}`))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 10 * time.Second}
	var failed atomic.Int64
	call := func(n int) {
		req, _ := http.NewRequest("POST", cfg.URL, bytes.NewReader(bodies[n%len(bodies)]))
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			failed.Add(1)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			failed.Add(1)
		}
	}
	for n := 0; n < 200; n++ { // warm up
		call(n)
	}

	const clients, closedFor = 4, 3 * time.Second
	var done atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(closedFor)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for n := c; time.Now().Before(stop); n += clients {
				call(n)
				done.Add(1)
			}
		}(c)
	}
	wg.Wait()
	maxRPS := float64(done.Load()) / closedFor.Seconds()

	rate := maxRPS / 2
	const openFor, passes = 5 * time.Second, 3
	var runs []predictResult
	for range passes {
		total := int(rate * openFor.Seconds())
		lat := make([]time.Duration, total)
		began := time.Now()
		interval := time.Duration(float64(time.Second) / rate)
		for n := 0; n < total; n++ {
			due := began.Add(time.Duration(n) * interval)
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			wg.Add(1)
			go func(n int, due time.Time) {
				defer wg.Done()
				call(n)
				lat[n] = time.Since(due)
			}(n, due)
		}
		wg.Wait()
		elapsed := time.Since(began)
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		r := predictResult{MaxRPS: maxRPS, RPS: float64(total) / elapsed.Seconds(), P50: q(0.5), P99: q(0.99), Requests: total, Failed: failed.Load()}
		fmt.Fprintf(os.Stderr, "bench: predict: open-loop pass at %.0f/s: p50 %.2f ms, p99 %.2f ms\n", r.RPS, r.P50, r.P99)
		runs = append(runs, r)
	}
	slices.SortFunc(runs, func(a, b predictResult) int { return cmp.Compare(a.P99, b.P99) })
	must(json.NewEncoder(os.Stdout).Encode(runs[passes/2]))
}
