package embedded_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/segmentio/kafka-go"
)

// childEnv makes the test binary a broker process for TestKillNineKeepsAcknowledgedRecords.
const childEnv = "MUON_EMBEDDED_TEST_BROKER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		b, err := embedded.Start(embedded.Options{DataDir: dir, Partitions: 3})
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		fmt.Println("ADDR", b.Addr())
		select {} // until killed
	}
	os.Exit(m.Run())
}

// startChild starts a broker in another process on dir and returns it
// with its address.
func startChild(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
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

// Records acknowledged with acks=all survive kill -9 of a broker with a
// data directory, in topics created explicitly and in topics created by a
// producer's first write.
func TestKillNineKeepsAcknowledgedRecords(t *testing.T) {
	dir := t.TempDir()
	cmd, addr := startChild(t, dir)
	ctx := context.Background()
	if err := kafkaio.EnsureTopics(ctx, []string{addr}, kafkaio.TopicSpec{Name: "explicit", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for _, topic := range []string{"explicit", "auto-created"} {
		w, err := kafkaio.NewWriter(kafkaio.WriteParams{Brokers: []string{addr}, Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		msgs := make([]kafka.Message, n)
		for i := range msgs {
			msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "k%d", i%17), Value: fmt.Appendf(nil, "v%d", i)}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("producing to %s: %v", topic, err)
		}
		w.Close()
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	b, err := embedded.Start(embedded.Options{DataDir: dir, Partitions: 3})
	if err != nil {
		t.Fatalf("restarting on the data directory: %v", err)
	}
	defer b.Close()
	for _, topic := range []string{"explicit", "auto-created"} {
		ends, err := kafkaio.EndOffsets(ctx, []string{b.Addr()}, topic)
		if err != nil {
			t.Errorf("%s after kill -9: %v", topic, err)
			continue
		}
		var got int64
		for _, e := range ends {
			got += e
		}
		if got != n {
			t.Errorf("%s after kill -9: %d records in %d partitions, want %d", topic, got, len(ends), n)
		}
	}
}
