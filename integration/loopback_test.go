//go:build integration

package integration

import (
	"bufio"
	"encoding/hex"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// listeners reads the kernel's table of listening TCP sockets
// (/proc/net/tcp and tcp6): the local addresses, by port.
func listeners(t *testing.T) map[int][]net.IP {
	t.Helper()
	out := map[int][]net.IP{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			t.Skipf("no %s: %v", file, err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" { // TCP_LISTEN
				continue
			}
			host, port, ok := strings.Cut(fields[1], ":")
			raw, err := hex.DecodeString(host)
			p, perr := strconv.ParseInt(port, 16, 32)
			if !ok || err != nil || perr != nil {
				t.Fatalf("%s: cannot read %q", file, fields[1])
			}
			// The kernel prints each 32-bit word in host order (little
			// endian here).
			for i := 0; i+4 <= len(raw); i += 4 {
				raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
			}
			out[int(p)] = append(out[int(p)], net.IP(raw))
		}
		f.Close()
	}
	return out
}

// Every port of the services the integration scripts started (Kafka, the
// job servers with their artifact and expansion ports, the Flink cluster's
// REST and RPC ports) listens on loopback only. Beam 2.62's job server
// listens on every interface by itself; integration/flink/loopback.c keeps it on
// 127.0.0.1.
func TestServicesListenOnLoopbackOnly(t *testing.T) {
	ports := map[int]string{}
	add := func(env string, offsets ...int) {
		for _, addr := range strings.Split(os.Getenv(env), ",") {
			if _, p, err := net.SplitHostPort(strings.TrimSpace(addr)); err == nil {
				n, _ := strconv.Atoi(p)
				for _, o := range offsets {
					ports[n+o] = env
				}
			}
		}
	}
	add("KAFKA_BROKERS", 0)
	add("FLINK_ENDPOINT", 0, -1, -2)
	add("FLINK_CLUSTER_ENDPOINT", 0, -1, -2)
	add("FLINK_MASTER", 0, 1)
	if len(ports) == 0 {
		t.Skip("no service started: the Makefile's integration target starts them")
	}
	ls := listeners(t)
	for port, env := range ports {
		for _, ip := range ls[port] {
			if !ip.IsLoopback() {
				t.Errorf("port %d (%s) listens on %s, beyond loopback", port, env, ip)
			}
		}
		t.Logf("port %d (%s): %v", port, env, ls[port])
	}
}
