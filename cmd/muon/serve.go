package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/muonml/muon/internal/auth"
	"github.com/muonml/muon/internal/printable"
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
  GET  /api/v1/openapi.json       the API in OpenAPI 3.1
  GET  /healthz                   no token needed

Every other route needs "Authorization: Bearer TOKEN" with a token of
--tokens, a file of lines "read TOKEN" or "write TOKEN" (at least 16
characters): none or an unknown one is 401, a read token on a write route
403. Paths in specs (replays, output folders, keys) are relative to the
server's working folder. It listens on 127.0.0.1 unless told otherwise; use
--tls-cert and --tls-key to serve HTTPS beyond loopback. muon jobs is its
command-line client.`,
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
		usage: "jobs submit|list|status|cancel|logs [ARGS] --server URL --token-file FILE",
		short: "submit, list, follow and cancel the jobs of a muon serve",
		long: `The command-line client of muon serve:

  jobs submit --config F [--set path=value ...]   check and queue a spec; prints its run id
  jobs list [--limit N]                           the runs, newest first
  jobs status ID                                  a run: state, times, error, summary
  jobs cancel ID                                  cancel a queued or running run
  jobs logs ID [--follow]                         its log; --follow streams until it ends

--server is the server's URL (default http://127.0.0.1:8080, or $MUON_SERVER);
--token-file a file holding the bearer token (or $MUON_TOKEN holds it).`,
		flags: func(fs *flag.FlagSet, out *streams) func([]string) error {
			server := fs.String("server", envOr("MUON_SERVER", "http://127.0.0.1:8080"), "muon serve's `URL`")
			tokenFile := fs.String("token-file", "", "`file` holding the bearer token (default: $MUON_TOKEN)")
			var config stringList
			fs.Var(&config, "config", "spec `file` to submit")
			var sets stringList
			fs.Var(&sets, "set", "override a spec field, `path=value` (repeatable)")
			limit := fs.Int("limit", 100, "most runs to list")
			follow := fs.Bool("follow", false, "logs: keep streaming until the run ends")
			return func(args []string) error {
				if len(args) == 0 {
					return fmt.Errorf("%w: jobs needs a verb: submit, list, status, cancel or logs", errUsage)
				}
				// Flags may follow the verb: muon jobs submit --config f.yaml.
				verb := args[0]
				if err := fs.Parse(args[1:]); err != nil {
					return fmt.Errorf("%w: %v", errUsage, err)
				}
				rest := fs.Args()
				token := os.Getenv("MUON_TOKEN")
				if *tokenFile != "" {
					b, err := os.ReadFile(*tokenFile)
					if err != nil {
						return fmt.Errorf("--token-file: %w", err)
					}
					token = strings.TrimSpace(string(b))
				}
				if token == "" {
					return fmt.Errorf("%w: give --token-file (or set MUON_TOKEN): muon serve asks every call for a token", errUsage)
				}
				c := &jobsClient{base: strings.TrimRight(*server, "/"), token: token, out: out}
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
					var run control.Run
					if err := c.do("GET", "/api/v1/jobs/"+id, nil, &run); err != nil {
						return err
					}
					printRun(out.stdout, &run)
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

// jobsClient calls a muon serve.
type jobsClient struct {
	base, token string
	out         *streams
}

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
