package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/muonml/muon/io/kafkaio/embedded"
)

func brokerCmd() *command {
	return &command{
		name:  "broker",
		usage: "broker [--listen 127.0.0.1:9092] [--partitions N] [--data-dir DIR] [--topic NAME]...",
		short: "serve an embedded Kafka broker (Kafka wire protocol, in process)",
		long: `Serves a single-node Kafka broker inside this process (franz-go's kfake),
speaking the Kafka wire protocol, and prints its address. Producers,
consumers and muon jobs connect to it as to Apache Kafka. Topics are created
on first use with --partitions partitions. Data lives in memory unless
--data-dir is given. Stop it with Ctrl-C (SIGINT) or SIGTERM.

It is meant for the quick start, demos, tests and small edge deployments;
use Apache Kafka at scale (integration/kafka/ starts one locally).`,
		flags: func(fs *flag.FlagSet, out *streams) func([]string) error {
			listen := fs.String("listen", "127.0.0.1:9092", "`host:port` to serve on; port 0 picks a free port")
			parts := fs.Int("partitions", 4, "partitions of topics created automatically or with --topic")
			dataDir := fs.String("data-dir", "", "`directory` to persist topics in (default: memory only)")
			var topics stringList
			fs.Var(&topics, "topic", "create this topic at start (repeatable)")
			return func(args []string) error {
				if len(args) > 0 {
					return fmt.Errorf("%w: unexpected arguments %v", errUsage, args)
				}
				if *parts < 1 {
					return fmt.Errorf("%w: --partitions must be at least 1", errUsage)
				}
				b, err := embedded.Start(embedded.Options{Listen: *listen, Partitions: *parts, DataDir: *dataDir, Topics: topics})
				if err != nil {
					return err
				}
				defer b.Close()
				if beyondLoopback(b.Addr()) {
					fmt.Fprintf(out.stderr, "muon broker: warning: serving on %s, beyond loopback: every host that reaches this one can read and write every topic, since the embedded broker has no TLS or authentication; serve on 127.0.0.1 unless that is what you want\n", b.Addr())
				}
				fmt.Fprintf(out.stdout, "muon broker: serving Kafka on %s (partitions per new topic: %d)\n", b.Addr(), *parts)
				fmt.Fprintf(out.stdout, "BROKERS=%s\n", b.Addr())
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				<-ctx.Done()
				fmt.Fprintln(out.stdout, "muon broker: stopped")
				return nil
			}
		},
	}
}

// beyondLoopback reports whether a listener on addr (host:port) can be
// reached from other hosts.
func beyondLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}
