package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// DefaultReconnectFor is how long a read or a write keeps reconnecting to
// brokers that fail (a restart, a network blip) before it gives up.
const DefaultReconnectFor = 2 * time.Minute

// Backoff between reconnection attempts: it doubles from minBackoff to
// maxBackoff, with jitter so that many readers do not retry in step.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Retryable reports whether err is a failure that reconnecting may cure:
// a connection that broke, was refused or timed out, or a broker error
// Kafka marks retriable (a leader that moved, a broker not yet ready).
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, ErrBadParams) {
		return false
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Temporary()
	}
	if errors.Is(err, protocol.ErrNoLeader) {
		// The client's metadata names no leader for the partition: a topic
		// just created, or a leader being elected.
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, ErrNoAnswer) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

// backoff is the wait before reconnection attempt n (1, 2, ...).
func backoff(n int) time.Duration {
	d := maxBackoff
	if n < 16 {
		d = min(maxBackoff, minBackoff<<(n-1))
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// outage is one run of failed attempts: when the first failed and how
// many have. The zero value is no outage.
type outage struct {
	start    time.Time
	attempts int
}

// fail records a failed attempt; the first of an outage starts it, unless
// start was set before.
func (u *outage) fail() {
	if u.start.IsZero() {
		u.start = time.Now()
	}
	u.attempts++
}

// lasted is how long the outage has lasted.
func (u *outage) lasted() time.Duration { return time.Since(u.start) }

// outages remembers, per partition, the outage of an unbounded read: it
// retries across checkpoints, which may run on another DoFn instance of
// the process, and all its attempts share one deadline.
var outages = outageSet{since: map[string]outage{}}

type outageSet struct {
	mu    sync.Mutex
	since map[string]outage
}

// fail records a failed attempt of key and returns its outage.
func (o *outageSet) fail(key string) outage {
	o.mu.Lock()
	defer o.mu.Unlock()
	u := o.since[key]
	u.fail()
	o.since[key] = u
	return u
}

// ok ends key's outage.
func (o *outageSet) ok(key string) {
	o.mu.Lock()
	delete(o.since, key)
	o.mu.Unlock()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WriteRetrying writes msgs with w, and while the brokers fail in a way
// reconnecting may cure, writes what failed again with backoff, for up to
// reconnectFor (0: DefaultReconnectFor). A record may then be written
// twice (at least once); none is lost unless the error says so. onRetry,
// when not nil, is told of each failed attempt.
func WriteRetrying(ctx context.Context, w *kafka.Writer, msgs []kafka.Message, reconnectFor time.Duration, onRetry func(attempt int, err error)) error {
	if reconnectFor == 0 {
		reconnectFor = DefaultReconnectFor
	}
	u := outage{start: time.Now()} // the deadline counts from the first write
	for {
		err := w.WriteMessages(ctx, msgs...)
		if err == nil {
			return nil
		}
		var werrs kafka.WriteErrors
		failed := msgs
		if errors.As(err, &werrs) && len(werrs) == len(msgs) {
			failed = failed[:0:0]
			for i, e := range werrs {
				if e != nil {
					failed = append(failed, msgs[i])
				}
			}
		}
		cause := WriteError(err, len(msgs))
		if !retryableWrite(err) {
			return cause
		}
		u.fail()
		if u.lasted() >= reconnectFor {
			return fmt.Errorf("gave up after reconnecting for %v: %w", u.lasted().Round(time.Second), cause)
		}
		if onRetry != nil {
			onRetry(u.attempts, cause)
		}
		if err := sleep(ctx, backoff(u.attempts)); err != nil {
			return fmt.Errorf("%w (while reconnecting after: %v)", err, cause)
		}
		msgs = failed
	}
}

// retryableWrite is Retryable for every failed message of a write.
func retryableWrite(err error) bool {
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) {
		return Retryable(err)
	}
	for _, e := range werrs {
		if e != nil && !Retryable(e) {
			return false
		}
	}
	return true
}
