// Package kafkatest gives tests brokers a fault can reach: the embedded
// broker in a process of its own, to kill with SIGKILL, or on a fixed
// address, to stop and start again; and a listener that never answers.
package kafkatest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/muonml/muon/io/kafkaio/embedded"
)

// dirEnv tells a test binary started by BrokerProcess to serve a broker on the
// data directory it names instead of running tests.
const dirEnv = "MUON_KAFKATEST_BROKER_DIR"

// ServeIfAsked serves an embedded broker and never returns when this test
// binary was started by BrokerProcess; otherwise it returns at once. Call it
// first in TestMain.
func ServeIfAsked() {
	dir := os.Getenv(dirEnv)
	if dir == "" {
		return
	}
	b, err := embedded.Start(embedded.Options{DataDir: dir})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("ADDR", b.Addr())
	select {} // until killed
}

// BrokerProcess starts this test binary as an embedded broker on the data
// directory dir (its TestMain must call ServeIfAsked) and returns the
// process, to kill, and the broker's address. The process is killed when
// the test ends.
func BrokerProcess(t testing.TB, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), dirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	if err != nil || !ok {
		t.Fatalf("broker process: %q, %v", line, err)
	}
	return cmd, addr
}

// FreeAddr returns a loopback address no one listens on now, for a broker
// that must come back on the same address after a restart.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// BlackHole returns the address of a listener that accepts connections and
// never answers, like a wedged broker or a port that is not Kafka. It
// closes when the test ends.
func BlackHole(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
