package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/muonml/muon/internal/auth"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/serve/predict"
	"github.com/muonml/muon/transforms/infer"
)

func predictCmd() *command {
	return &command{
		name:  "predict",
		usage: "predict --store DIR --trust KEY.pub [--trust ...] --tokens FILE [--listen 127.0.0.1:8081] [--reload 1s] [--tls-cert F --tls-key F]",
		short: "serve a model store's newest verified snapshot over HTTP",
		long: `Serves the newest snapshot of a model store that verifies with a trusted
key, over HTTP, until Ctrl-C (SIGINT) or SIGTERM:

  POST /v1/models/NAME:predict   {"rows": [[f1, f2, ...], ...]}
                                 or {"rows": [{"feature": value, ...}, ...]}
      → {"model": "NAME@SEQ", "labels": [...],
         "predictions": [{"label": "7", "score": 0.98, "scores": [...]}, ...]}
  GET  /v1/models                the model serving: version, features, classes
  GET  /healthz                  200 and the version serving, or 503 (no token)

Rows are raw features: the snapshot's own preprocessing (the statistics of
its training data) standardizes them, as inference jobs do, so serving and
training cannot drift. Every answer names the version that made it (also in
the X-Muon-Model header). The store is checked for a newer version every
--reload; a version that does not verify or fit is refused, once, with its
reason on stderr, and the one before keeps serving. A bad request gets a 4xx
answer with the reason: 400 (rows of the wrong size, unknown features, NaN),
404 (another model's name), 413 (over 8 MiB), 415 (a content type other than JSON).

Every call but /healthz needs "Authorization: Bearer TOKEN" with a token of
--tokens, a file of lines "read TOKEN" or "write TOKEN" (either scope may
predict; at least 16 characters, e.g. from openssl rand -hex 32): none or an
unknown one is refused with 401. It listens on 127.0.0.1 unless told
otherwise; use --tls-cert and --tls-key to serve HTTPS beyond loopback.`,
		flags: func(fs *flag.FlagSet, out *streams) func([]string) error {
			listen := fs.String("listen", "127.0.0.1:8081", "`host:port` to serve on; port 0 picks a free port")
			store := fs.String("store", "", "model store: a `directory` (a train job's snapshot.store), or kafka://TOPIC with --brokers (required)")
			var brokers brokerList
			fs.Var(&brokers, "brokers", "the Kafka `host:port` list of a store on Kafka (plaintext)")
			var trust stringList
			fs.Var(&trust, "trust", "public key `file` whose signatures are trusted (repeatable; required)")
			tokens := fs.String("tokens", "", "tokens `file`: lines \"read TOKEN\" or \"write TOKEN\" (required)")
			reload := fs.Duration("reload", time.Second, "how often to check the store for a newer version")
			cert := fs.String("tls-cert", "", "serve HTTPS with this certificate `file` (PEM, with --tls-key)")
			key := fs.String("tls-key", "", "the certificate's key `file` (PEM)")
			return func(args []string) error {
				switch {
				case len(args) > 0:
					return fmt.Errorf("%w: unexpected arguments %v", errUsage, args)
				case *store == "":
					return fmt.Errorf("%w: --store is required (the directory a train job publishes to)", errUsage)
				case len(trust) == 0:
					return fmt.Errorf("%w: --trust is required (the public key that signs the snapshots, e.g. keys/muon.pub)", errUsage)
				case *tokens == "":
					return fmt.Errorf("%w: --tokens is required: every call needs a bearer token (a file of lines \"read TOKEN\")", errUsage)
				case (*cert == "") != (*key == ""):
					return fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
				case *reload <= 0:
					return fmt.Errorf("%w: --reload must be positive", errUsage)
				}
				toks, err := auth.Load(*tokens)
				if err != nil {
					return err
				}
				ring, err := snapshot.LoadKeyring(trust...)
				if err != nil {
					return err
				}
				cluster := kafkaio.Plain(brokers...)
				if modelstore.IsKafka(*store) {
					if len(cluster.Brokers) == 0 {
						return fmt.Errorf("%w: --store %s is on Kafka: give --brokers", errUsage, *store)
					}
				} else if st, err := os.Stat(*store); err != nil || !st.IsDir() {
					return fmt.Errorf("--store %s: not a directory (%v)", *store, err)
				}
				server := infer.NewServer(modelstore.Locate(*store, cluster), ring, nil, *reload)
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				m, err := server.Current(ctx)
				if err != nil {
					return fmt.Errorf("--store %s: %w", *store, err)
				}
				for _, r := range server.Refused() {
					fmt.Fprintf(out.stderr, "muon predict: refused %v\n", r)
				}
				l, err := net.Listen("tcp", *listen)
				if err != nil {
					return err
				}
				if beyondLoopback(l.Addr().String()) && *cert == "" {
					fmt.Fprintf(out.stderr, "muon predict: warning: serving on %s, beyond loopback, without TLS: tokens and rows cross the network in the clear; add --tls-cert and --tls-key\n", l.Addr())
				}
				scheme := "http"
				if *cert != "" {
					scheme = "https"
				}
				fmt.Fprintf(out.stdout, "muon predict: serving %s on %s://%s/v1/models/%s:predict\n", m.Name(), scheme, l.Addr(), m.Version.Name)
				go func() {
					// Refusals of newer versions, as the store is checked.
					t := time.NewTicker(*reload)
					defer t.Stop()
					for {
						select {
						case <-ctx.Done():
							return
						case <-t.C:
							if _, err := server.Current(ctx); err == nil {
								for _, r := range server.Refused() {
									fmt.Fprintf(out.stderr, "muon predict: refused %v; the version before keeps serving\n", r)
								}
							}
						}
					}
				}()
				srv := &http.Server{Handler: predict.New(server, toks), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
				err = predict.Serve(ctx, srv, func() error {
					if *cert != "" {
						return srv.ServeTLS(l, *cert, *key)
					}
					return srv.Serve(l)
				})
				fmt.Fprintln(out.stdout, "muon predict: stopped")
				return err
			}
		},
	}
}
