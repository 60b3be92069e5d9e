package embedded_test

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/io/kafkaio/kafkatest"
	"github.com/segmentio/kafka-go"
)

func TestMain(m *testing.M) {
	kafkatest.ServeIfAsked()
	os.Exit(m.Run())
}

// Records acknowledged with acks=all survive kill -9 of a broker with a
// data directory, in topics created explicitly and in topics created by a
// producer's first write.
func TestKillNineKeepsAcknowledgedRecords(t *testing.T) {
	dir := t.TempDir()
	cmd, addr := kafkatest.BrokerProcess(t, dir)
	ctx := context.Background()
	if err := kafkaio.EnsureTopics(ctx, kafkaio.Plain(addr), kafkaio.TopicSpec{Name: "explicit", Partitions: 2}); err != nil {
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
		ends, err := kafkaio.EndOffsets(ctx, kafkaio.Plain(b.Addr()), topic)
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
