package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/internal/auth"
	"github.com/muonml/muon/internal/printable"
	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/serve/control"
	"github.com/muonml/muon/serve/predict"
)

func serveCmd() *command {
	return &command{
		name:  "serve",
		usage: "serve --state DIR --tokens FILE [--listen 127.0.0.1:8080] [--tls-cert F --tls-key F]",
		short: "run submitted jobs and keep their history, behind an HTTP API",
		long: `Runs the jobs submitted to it, one at a time, in this process (on the edge
runner, or on Flink as a spec's runner says), until Ctrl-C (SIGINT) or
SIGTERM. Runs and their history live in a bbolt database in --state (a
single file, crash-safe transactions, nothing else to run), with each run's
log beside it, so they survive a restart: a run that was running when the
server stopped is marked interrupted; queued runs run.

  POST /api/v1/jobs               {"spec": "<YAML>", "name": "f.yaml", "set": ["path=value"]}
                                  checked as muon run checks it: errors name
                                  file, line and field (422); queued (201)
  GET  /api/v1/jobs               the runs, newest first (?limit=N)
  GET  /api/v1/jobs/ID            a run: state, times, spec, summary
  POST /api/v1/jobs/ID/cancel     cancel: an unbounded job drains and keeps
                                  its summary
  GET  /api/v1/jobs/ID/logs       its log (?follow=1 streams until it ends)
  POST /api/v1/schedules          {"name": "nightly", "cron": "0 2 * * *", "tz": "Europe/Berlin",
                                  "spec": "<YAML>", "overlap": "skip", "retries": 2,
                                  "backoff": "1m", "catch_up": "1h"}
  GET  /api/v1/schedules[/NAME]   schedules, with their next tick
  POST /api/v1/schedules/NAME/pause | resume | backfill {"from", "to", "dry_run"}
  DELETE /api/v1/schedules/NAME   remove a schedule (its runs stay)
  GET  /metrics                   Prometheus text format: runs by state, what
                                  ended runs read, schedules' lag and skips
  GET  /api/v1/openapi.json       the API in OpenAPI 3.1
  GET  /healthz                   no token needed

Every other route needs "Authorization: Bearer TOKEN" with a token of
--tokens, a file of lines "read TOKEN" or "write TOKEN" (at least 16
characters): none or an unknown one is 401, a read token on a write route
403. Paths in specs (replays, output folders, keys) are relative to the
server's working folder. It listens on 127.0.0.1 unless told otherwise; use
--tls-cert and --tls-key to serve HTTPS beyond loopback. muon jobs and
muon schedule are its command-line clients.`,
		flags: func(fs *flag.FlagSet, out *streams) func([]string) error {
			listen := fs.String("listen", "127.0.0.1:8080", "`address` to serve on")
			state := fs.String("state", "", "`folder` of the database and the runs' logs (required)")
			tokens := fs.String("tokens", "", "`file` of bearer tokens, lines \"read TOKEN\" or \"write TOKEN\" (required)")
			cert := fs.String("tls-cert", "", "TLS certificate `file` (with --tls-key: serve HTTPS)")
			key := fs.String("tls-key", "", "TLS private key `file`")
			return func(args []string) error {
				switch {
				case len(args) > 0:
					return fmt.Errorf("%w: unexpected arguments %v", errUsage, args)
				case *state == "":
					return fmt.Errorf("%w: --state is required (a folder for the database and the logs)", errUsage)
				case *tokens == "":
					return fmt.Errorf("%w: --tokens is required: every call needs a bearer token (a file of lines \"write TOKEN\")", errUsage)
				case (*cert == "") != (*key == ""):
					return fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
				}
				toks, err := auth.Load(*tokens)
				if err != nil {
					return err
				}
				s, err := control.Open(control.Options{State: *state, Tokens: toks, Version: muonVersion(), Log: out.stderr})
				if err != nil {
					return err
				}
				defer s.Close()
				l, err := net.Listen("tcp", *listen)
				if err != nil {
					return err
				}
				if beyondLoopback(l.Addr().String()) && *cert == "" {
					fmt.Fprintf(out.stderr, "muon serve: warning: serving on %s, beyond loopback, without TLS: tokens and specs cross the network in the clear; add --tls-cert and --tls-key\n", l.Addr())
				}
				scheme := "http"
				if *cert != "" {
					scheme = "https"
				}
				fmt.Fprintf(out.stdout, "muon serve: serving %s://%s/api/v1/jobs (state %s)\n", scheme, l.Addr(), *state)
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
				return predict.Serve(ctx, srv, func() error {
					if *cert != "" {
						return srv.ServeTLS(l, *cert, *key)
					}
					return srv.Serve(l)
				})
			}
		},
	}
}

func jobsCmd() *command {
	return &command{
		name:  "jobs",
		usage: "jobs submit|list|status|cancel|logs [ARGS] --server URL --token-file FILE | jobs list|status|cancel [ID] --endpoint host:port",
		short: "submit, list, follow and cancel the jobs of a muon serve",
		long: `The command-line client of muon serve:

  jobs submit --config F [--set path=value ...]   check and queue a spec; prints its run id
  jobs list [--limit N]                           the runs, newest first
  jobs status ID                                  a run: state, times, error, summary
  jobs cancel ID                                  cancel a queued or running run
  jobs logs ID [--follow]                         its log; --follow streams until it ends

--server is the server's URL (default http://127.0.0.1:8080, or $MUON_SERVER);
--token-file a file holding the bearer token (or $MUON_TOKEN holds it).

With --endpoint host:port, list, status and cancel speak to a Beam job
server (Flink's) instead: the jobs muon run --detach submitted to a Flink
cluster, by the job id it printed. status gives the job's state and what its
metrics say so far (records read and written, dead letters, predictions).`,
		flags: func(fs *flag.FlagSet, out *streams) func([]string) error {
			server := fs.String("server", envOr("MUON_SERVER", "http://127.0.0.1:8080"), "muon serve's `URL`")
			tokenFile := fs.String("token-file", "", "`file` holding the bearer token (default: $MUON_TOKEN)")
			var config stringList
			fs.Var(&config, "config", "spec `file` to submit")
			var sets stringList
			fs.Var(&sets, "set", "override a spec field, `path=value` (repeatable)")
			limit := fs.Int("limit", 100, "most runs to list")
			follow := fs.Bool("follow", false, "logs: keep streaming until the run ends")
			endpoint := fs.String("endpoint", "", "a Beam job server's `host:port` (Flink's): list, status and cancel the jobs it runs (those muon run --detach submitted) instead of a muon serve's")
			return func(args []string) error {
				if len(args) == 0 {
					return fmt.Errorf("%w: jobs needs a verb: submit, list, status, cancel or logs", errUsage)
				}
				rest, err := parseInterleaved(fs, args[1:])
				if err != nil {
					return err
				}
				verb := args[0]
				if *endpoint != "" {
					return runnerJobs(verb, rest, *endpoint, out)
				}
				c, err := newJobsClient(*server, *tokenFile)
				if err != nil {
					return err
				}
				needID := func() (string, error) {
					if len(rest) != 1 {
						return "", fmt.Errorf("%w: jobs %s takes one run id", errUsage, verb)
					}
					return rest[0], nil
				}
				switch verb {
				case "submit":
					if len(config) != 1 || len(rest) > 0 {
						return fmt.Errorf("%w: jobs submit takes one --config", errUsage)
					}
					spec, err := os.ReadFile(config[0])
					if err != nil {
						return err
					}
					var run control.Run
					if err := c.do("POST", "/api/v1/jobs", control.SubmitRequest{Spec: string(spec), Name: filepath.Base(config[0]), Set: sets}, &run); err != nil {
						return err
					}
					fmt.Fprintf(out.stdout, "%s\t%s\t%s\n", run.ID, run.State, printable.String(run.Name, 80))
				case "list":
					var list struct{ Jobs []control.Run }
					if err := c.do("GET", fmt.Sprintf("/api/v1/jobs?limit=%d", *limit), nil, &list); err != nil {
						return err
					}
					for _, r := range list.Jobs {
						fmt.Fprintf(out.stdout, "%s\t%-11s\t%s\t%s\t%s\n", r.ID, r.State, r.Job, printable.String(r.Name, 60), r.Submitted.Format(time.RFC3339))
					}
				case "status":
					id, err := needID()
					if err != nil {
						return err
					}
					var run control.RunStatus
					if err := c.do("GET", "/api/v1/jobs/"+id, nil, &run); err != nil {
						return err
					}
					printRun(out.stdout, run.Run)
					if run.Live != nil {
						printLive(out.stdout, run.Live)
					}
				case "cancel":
					id, err := needID()
					if err != nil {
						return err
					}
					var run control.Run
					if err := c.do("POST", "/api/v1/jobs/"+id+"/cancel", nil, &run); err != nil {
						return err
					}
					fmt.Fprintf(out.stdout, "%s\t%s (cancel asked)\n", run.ID, run.State)
				case "logs":
					id, err := needID()
					if err != nil {
						return err
					}
					path := "/api/v1/jobs/" + id + "/logs"
					if *follow {
						path += "?follow=1"
					}
					return c.stream(path, out.stdout)
				default:
					return fmt.Errorf("%w: unknown verb %q: want submit, list, status, cancel or logs", errUsage, verb)
				}
				return nil
			}
		},
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// runnerJobs lists, shows or cancels the jobs of the Beam job server at
// endpoint.
func runnerJobs(verb string, rest []string, endpoint string, out *streams) error {
	js, err := runners.DialJobService(endpoint)
	if err != nil {
		return err
	}
	defer js.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	needID := func() (string, error) {
		if len(rest) != 1 {
			return "", fmt.Errorf("%w: jobs %s --endpoint takes one job id", errUsage, verb)
		}
		return rest[0], nil
	}
	switch verb {
	case "list":
		list, err := js.List(ctx)
		if err != nil {
			return fmt.Errorf("job server %s: %w", endpoint, err)
		}
		for _, j := range list {
			fmt.Fprintf(out.stdout, "%s\t%-9s\t%s\n", j.ID, j.State, printable.String(j.Name, 80))
		}
	case "status":
		id, err := needID()
		if err != nil {
			return err
		}
		state, res, msgs, err := js.Status(ctx, id)
		if err != nil {
			return fmt.Errorf("job server %s: job %s: %w", endpoint, id, err)
		}
		fmt.Fprintf(out.stdout, "job        %s\nstate      %s\n", id, state)
		for _, m := range msgs {
			fmt.Fprintf(out.stdout, "error      %s\n", printable.String(m, 2000))
		}
		l := jobs.NewLive(&configs.Spec{Name: id})
		l.Update(res)
		if v, ok := l.View(); ok {
			printLive(out.stdout, &v)
		}
		for _, name := range res.CounterNames() {
			if strings.HasPrefix(name, "infer.") && strings.HasSuffix(name, "/predictions") {
				fmt.Fprintf(out.stdout, "predicted  %s: %d\n", printable.String(strings.TrimSuffix(strings.TrimPrefix(name, "infer."), "/predictions"), 80), res.Counters[name])
			}
		}
	case "cancel":
		id, err := needID()
		if err != nil {
			return err
		}
		state, err := js.Cancel(ctx, id)
		if err != nil {
			return fmt.Errorf("job server %s: cancelling %s: %w", endpoint, id, err)
		}
		fmt.Fprintf(out.stdout, "%s\t%s\n", id, state)
	default:
		return fmt.Errorf("%w: with --endpoint, jobs takes list, status or cancel, not %q", errUsage, verb)
	}
	return nil
}

// printLive prints a running job's metrics so far.
func printLive(w io.Writer, l *jobs.LiveView) {
	var dead int64
	for _, n := range l.DeadLetters {
		dead += n
	}
	fmt.Fprintf(w, "so far     %d records read, %d written, %d dead letters\n", l.Read, l.Written, dead)
	if n := len(l.History); n > 1 {
		fmt.Fprintf(w, "rate       %.0f records/s\n", l.History[n-1].ReadPerSecond)
	}
	for _, t := range slices.Sorted(maps.Keys(l.KafkaLag)) {
		fmt.Fprintf(w, "kafka lag  %s: %d records\n", printable.String(t, 200), l.KafkaLag[t])
	}
	for _, b := range l.Branches {
		fmt.Fprintf(w, "branch     %s: %d predictions by version %d, p99 latency %.1f ms\n", printable.String(b.Name, 80), b.Predictions, b.ModelVersion, b.LatencyP99Ms)
	}
	if n := len(l.Curve); n > 0 {
		fmt.Fprintf(w, "training   epoch %d: train loss %.4f\n", l.Curve[n-1].Epoch, l.Curve[n-1].TrainLoss)
	}
}

func printRun(w io.Writer, r *control.Run) {
	fmt.Fprintf(w, "run        %s\n", r.ID)
	fmt.Fprintf(w, "job        %s (%s)\n", printable.String(r.Name, 80), r.Job)
	fmt.Fprintf(w, "state      %s\n", r.State)
	fmt.Fprintf(w, "submitted  %s\n", r.Submitted.Format(time.RFC3339))
	if !r.Started.IsZero() {
		fmt.Fprintf(w, "started    %s\n", r.Started.Format(time.RFC3339))
	}
	if !r.Ended.IsZero() {
		fmt.Fprintf(w, "ended      %s (%s)\n", r.Ended.Format(time.RFC3339), r.Ended.Sub(r.Started).Round(time.Millisecond))
	}
	if r.Error != "" {
		fmt.Fprintf(w, "error      %s\n", printable.String(r.Error, 2000))
	}
	if len(r.Summary) > 0 {
		var b bytes.Buffer
		if json.Indent(&b, r.Summary, "", "  ") == nil {
			// Line by line: labels in a summary come from messages.
			for i, line := range strings.Split(b.String(), "\n") {
				lead := "           "
				if i == 0 {
					lead = "summary    "
				}
				fmt.Fprintf(w, "%s%s\n", lead, printable.String(line, 2000))
			}
		}
	}
}

// clientCall takes a client command's verb and its positional arguments,
// with flags before, between or after them (muon jobs logs ID --follow),
// and a client of the muon serve at *server (server and tokenFile are
// flags of fs: read once it is parsed).
func clientCall(fs *flag.FlagSet, args []string, server, tokenFile *string, command, verbs string) (string, []string, *jobsClient, error) {
	if len(args) == 0 {
		return "", nil, nil, fmt.Errorf("%w: %s needs a verb: %s", errUsage, command, verbs)
	}
	rest, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return "", nil, nil, err
	}
	c, err := newJobsClient(*server, *tokenFile)
	return args[0], rest, c, err
}

// newJobsClient is a client of the muon serve at server, with the token
// of tokenFile or $MUON_TOKEN.
func newJobsClient(server, tokenFile string) (*jobsClient, error) {
	token := os.Getenv("MUON_TOKEN")
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, fmt.Errorf("%w: give --token-file (or set MUON_TOKEN): muon serve asks every call for a token", errUsage)
	}
	return &jobsClient{base: strings.TrimRight(server, "/"), token: token}, nil
}

// jobsClient calls a muon serve.
type jobsClient struct{ base, token string }

func (c *jobsClient) request(method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("--server %s: %w", c.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("muon serve at %s: %w (is it running? see muon serve --help)", c.base, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e struct{ Error string }
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("muon serve: %s %s: %s: %s", method, path, resp.Status, printable.String(e.Error, 4000))
	}
	return resp, nil
}

func (c *jobsClient) do(method, path string, body, into any) error {
	resp, err := c.request(method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(into)
}

func (c *jobsClient) stream(path string, w io.Writer) error {
	resp, err := c.request("GET", path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

func scheduleCmd() *command {
	return &command{
		name:  "schedule",
		usage: "schedule add|list|pause|resume|backfill|remove [ARGS] --server URL --token-file FILE",
		short: "run a spec on a cron schedule, on a muon serve",
		long: `Schedules of a muon serve: a spec that runs at the times of a cron expression.

  schedule add NAME --cron EXPR --config F [--tz ZONE] [--set path=value ...]
               [--overlap skip|buffer-one|allow] [--retries N] [--backoff 1m] [--catch-up 1h]
               [--window 24h]
  schedule list
  schedule pause NAME | resume NAME | remove NAME
  schedule backfill NAME --from TIME --to TIME [--dry-run]

The cron expression has five fields (minute hour day-of-month month
day-of-week) or is a descriptor (@hourly, @daily, @every 30m), read in --tz
(an IANA zone, default UTC). A tick's run id is the schedule's name and the
tick's time, so one tick never runs twice, even across a restart, and a
backfill repeated makes its runs once. While the previous run is queued or
running, a tick is skipped (--overlap skip), waits, one at most
(buffer-one), or is queued anyway (allow). A failed run is tried again
--retries times, after --backoff, doubled each time. After downtime, ticks
within --catch-up run; older ones are skipped and counted. Times are RFC
3339. --server and --token-file as for muon jobs.

What a scheduled train run reads: with --window, a spec reading
source.archive reads the partitions of [tick − window, tick) (its
source.archive_from and archive_to are set from the tick); a spec with
source.start: previous reads its topic from where the data of the model it
last published ended (the offsets in that snapshot's lineage): incremental
retraining, whose snapshot passes the quality gate as any other. A run that
finds nothing new fails, saying so.`,
		flags: func(fs *flag.FlagSet, out *streams) func([]string) error {
			server := fs.String("server", envOr("MUON_SERVER", "http://127.0.0.1:8080"), "muon serve's `URL`")
			tokenFile := fs.String("token-file", "", "`file` holding the bearer token (default: $MUON_TOKEN)")
			cronExpr := fs.String("cron", "", "cron `expression`, e.g. '0 2 * * *' or @hourly")
			tz := fs.String("tz", "", "IANA time `zone` of the cron expression (default UTC)")
			var config stringList
			fs.Var(&config, "config", "spec `file` to run")
			var sets stringList
			fs.Var(&sets, "set", "override a spec field, `path=value` (repeatable)")
			overlap := fs.String("overlap", "skip", "while the previous run is queued or running: `skip`, buffer-one or allow")
			retries := fs.Int("retries", 0, "times a failed run is tried again")
			backoff := fs.Duration("backoff", time.Minute, "wait before the first retry, doubled for each next")
			catchUp := fs.Duration("catch-up", time.Hour, "after downtime, how far back missed ticks still run")
			window := fs.Duration("window", 0, "a train job on source.archive: each run reads the partitions of [tick − `duration`, tick), e.g. 24h")
			from := fs.String("from", "", "backfill: the first `time` (RFC 3339)")
			to := fs.String("to", "", "backfill: the end `time`, not included (RFC 3339)")
			dryRun := fs.Bool("dry-run", false, "backfill: list the ticks, run nothing")
			return func(args []string) error {
				verb, rest, c, err := clientCall(fs, args, server, tokenFile, "schedule", "add, list, pause, resume, backfill or remove")
				if err != nil {
					return err
				}
				name := ""
				if verb != "list" {
					if len(rest) != 1 {
						return fmt.Errorf("%w: schedule %s takes one schedule name", errUsage, verb)
					}
					name = rest[0]
				}
				show := func(sc *control.Schedule) {
					next := "paused"
					if !sc.Paused {
						next = "next " + sc.Next.Format(time.RFC3339)
					}
					fmt.Fprintf(out.stdout, "%s\t%s\t%s\t%s\tlast run %s\tskipped %d\n", sc.Name, sc.Cron, orUTC(sc.TZ), next, orNone(sc.LastRun), sc.Skipped)
				}
				switch verb {
				case "add":
					if len(config) != 1 || *cronExpr == "" {
						return fmt.Errorf("%w: schedule add takes --cron and one --config", errUsage)
					}
					spec, err := os.ReadFile(config[0])
					if err != nil {
						return err
					}
					var sc control.Schedule
					if err := c.do("POST", "/api/v1/schedules", control.Schedule{Name: name, Cron: *cronExpr, TZ: *tz, Spec: string(spec), Set: sets,
						Overlap: *overlap, Retries: *retries, Backoff: control.Duration(*backoff), CatchUp: control.Duration(*catchUp), Window: control.Duration(*window)}, &sc); err != nil {
						return err
					}
					show(&sc)
				case "list":
					var list struct{ Schedules []control.Schedule }
					if err := c.do("GET", "/api/v1/schedules", nil, &list); err != nil {
						return err
					}
					for i := range list.Schedules {
						show(&list.Schedules[i])
					}
				case "pause", "resume":
					var sc control.Schedule
					if err := c.do("POST", "/api/v1/schedules/"+name+"/"+verb, nil, &sc); err != nil {
						return err
					}
					show(&sc)
				case "remove":
					var res map[string]string
					if err := c.do("DELETE", "/api/v1/schedules/"+name, nil, &res); err != nil {
						return err
					}
					fmt.Fprintf(out.stdout, "removed %s (its runs stay)\n", name)
				case "backfill":
					f, err := time.Parse(time.RFC3339, *from)
					if err != nil {
						return fmt.Errorf("%w: --from %q: want an RFC 3339 time", errUsage, *from)
					}
					t, err := time.Parse(time.RFC3339, *to)
					if err != nil {
						return fmt.Errorf("%w: --to %q: want an RFC 3339 time", errUsage, *to)
					}
					var res struct {
						Ticks []time.Time
						Runs  []string
					}
					if err := c.do("POST", "/api/v1/schedules/"+name+"/backfill", control.BackfillRequest{From: f, To: t, DryRun: *dryRun}, &res); err != nil {
						return err
					}
					for _, tk := range res.Ticks {
						fmt.Fprintf(out.stdout, "tick\t%s\n", tk.Format(time.RFC3339))
					}
					for _, id := range res.Runs {
						fmt.Fprintf(out.stdout, "queued\t%s\n", id)
					}
					if *dryRun {
						fmt.Fprintf(out.stdout, "%d ticks (dry run: nothing queued)\n", len(res.Ticks))
					} else {
						fmt.Fprintf(out.stdout, "%d ticks, %d runs queued (%d had run already)\n", len(res.Ticks), len(res.Runs), len(res.Ticks)-len(res.Runs))
					}
				default:
					return fmt.Errorf("%w: unknown verb %q: want add, list, pause, resume, backfill or remove", errUsage, verb)
				}
				return nil
			}
		},
	}
}

func orUTC(tz string) string {
	if tz == "" {
		return "UTC"
	}
	return tz
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// parseInterleaved parses flags that come before, between and after
// positional arguments, and returns the positional ones in order.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
