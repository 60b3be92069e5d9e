package kafkaio_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/kafkatest"
)

// Every call to a broker that accepts connections and never answers ends
// with an error naming the broker and what got no answer (issue 15 item 6).
func TestBrokerThatNeverAnswers(t *testing.T) {
	addr := kafkatest.BlackHole(t)
	brokers := []string{addr}
	for _, tc := range []struct {
		name, what string
		call       func(context.Context) error
	}{
		{"EnsureTopics", "finding the controller", func(ctx context.Context) error {
			return kafkaio.EnsureTopics(ctx, kafkaio.Plain(brokers...), kafkaio.TopicSpec{Name: "t"})
		}},
		{"EndOffsets", `reading the partitions of "t"`, func(ctx context.Context) error {
			_, err := kafkaio.EndOffsets(ctx, kafkaio.Plain(brokers...), "t")
			return err
		}},
		{"ResolveRanges", `reading the partitions of "t"`, func(ctx context.Context) error {
			_, err := kafkaio.ResolveRanges(ctx, kafkaio.Params{Brokers: brokers, Topics: []string{"t"}})
			return err
		}},
		{"Write", "kafkaio.Write to [" + addr + "]", func(ctx context.Context) error {
			p, s := beam.NewPipelineWithRoot()
			kafkaio.Write(s, kafkaio.WriteParams{Brokers: brokers, Topic: "t", Timeout: 2 * time.Second, ReconnectFor: time.Second},
				beam.Create(s, kafkaio.Record{Value: []byte("v")}))
			_, err := ptest.RunWithMetrics(p)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A short deadline keeps the test quick; without one the
			// default call timeout applies the same way.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- tc.call(ctx) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(2 * time.Minute): // a hang, not a timing check
				t.Fatal("no error after 2 minutes: the call hangs")
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !(errors.Is(err, kafkaio.ErrNoAnswer) || strings.Contains(err.Error(), kafkaio.ErrNoAnswer.Error())) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), tc.what) {
				t.Errorf("error %q does not say that %s got no answer from %s", err, tc.what, addr)
			}
		})
	}
}
