package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/muonml/muon/internal/auth"
	"github.com/muonml/muon/jobs"
)

// liveMetrics serves muon run's job metrics (jobs.LiveCollector) at
// /metrics behind read tokens, for the job running now.
type liveMetrics struct {
	mu  sync.Mutex
	job *jobs.Live
	srv *http.Server
}

// serveMetrics listens on addr and serves /metrics to the tokens in the
// file tokensPath until close.
func serveMetrics(addr, tokensPath string, out *streams) (*liveMetrics, error) {
	toks, err := auth.Load(tokensPath)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	if beyondLoopback(l.Addr().String()) {
		fmt.Fprintf(out.stderr, "muon: warning: serving metrics on %s, beyond loopback, without TLS\n", l.Addr())
	}
	m := &liveMetrics{}
	metrics := jobs.MetricsHandler(jobs.LiveCollector{Jobs: m.jobs})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if code, err := toks.Check(r, auth.Read); err != nil {
			http.Error(w, err.Error(), code)
			return
		}
		metrics.ServeHTTP(w, r)
	})
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	go func() { _ = m.srv.Serve(l) }()
	fmt.Fprintf(out.stderr, "muon: job metrics at http://%s/metrics\n", l.Addr())
	return m, nil
}

func (m *liveMetrics) set(l *jobs.Live) {
	m.mu.Lock()
	m.job = l
	m.mu.Unlock()
}

func (m *liveMetrics) jobs() []*jobs.Live {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.job == nil {
		return nil
	}
	return []*jobs.Live{m.job}
}

func (m *liveMetrics) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.srv.Shutdown(ctx)
}
