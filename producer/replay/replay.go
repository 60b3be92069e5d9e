package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/producer/recording"
	"github.com/segmentio/kafka-go"
)

// Defaults for a replay whose spec names no start or period for files
// without timestamps (recording picks none: only the caller knows them).
const DefaultPeriod = 100 * time.Millisecond

// DefaultStart is the event time of the first sample of a file without
// timestamps, for a replay whose spec names none.
var DefaultStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Options configures Replay.
type Options struct {
	// Brokers are bootstrap addresses. Required.
	Brokers []string
	// Security is how the replay connects: TLS, SASL. Default plaintext.
	Security kafkaio.Security
	// Topic to produce to. Required.
	Topic string
	// Rate is records per second over the whole replay; 0 is as fast as
	// the broker takes them. Default 0.
	Rate float64
	// Recording says how files become messages (start time, period,
	// device, columns, excludes).
	Recording recording.Options
	// DefaultStart is the start time for recordings without timestamps when
	// Recording.Start is zero; recordings with timestamps then keep them.
	DefaultStart time.Time
	// Acks is the acknowledgement level. Default kafkaio.AcksAll.
	Acks kafkaio.Acks
	// Progress, when set, receives a progress line every ProgressEvery.
	Progress io.Writer
	// ProgressEvery is the progress interval. Default 2s.
	ProgressEvery time.Duration
}

// Summary says what a replay produced.
type Summary struct {
	// Files counts the files read: each image of a folder is one.
	Files   int
	Records int64
	Bytes   int64 // keys + values
	// Missing counts values marked missing in the recordings (empty, NA,
	// NaN or ? cells) that were left out of their readings; Empty counts
	// rows, steps and lines without any value, which produced nothing.
	Missing int64
	Empty   int64
	Elapsed time.Duration
}

// RecordsPerSecond is the achieved rate.
func (s Summary) RecordsPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Records) / s.Elapsed.Seconds()
}

func (s Summary) String() string {
	out := fmt.Sprintf("%d records, %.1f MB from %d file(s) in %s: %.0f records/s, %.1f MB/s",
		s.Records, float64(s.Bytes)/1e6, s.Files, s.Elapsed.Round(time.Millisecond), s.RecordsPerSecond(), float64(s.Bytes)/1e6/max(s.Elapsed.Seconds(), 1e-9))
	if s.Missing > 0 {
		out += fmt.Sprintf("; %d missing values (empty, NA, NaN or ?) left out", s.Missing)
	}
	if s.Empty > 0 {
		out += fmt.Sprintf("; %d rows without any value skipped", s.Empty)
	}
	return out
}

// unlimitedBatch is how many messages one synchronous write carries when
// the rate is unlimited: enough to fill a produce request per partition.
const unlimitedBatch = 8192

// Replay produces every recording in paths, in order, into o.Topic.
func Replay(ctx context.Context, paths []string, o Options) (Summary, error) {
	if len(paths) == 0 {
		return Summary{}, errors.New("replay: no files given")
	}
	if o.Topic == "" {
		return Summary{}, kafkaio.ErrNoTopics
	}
	if o.Rate < 0 {
		return Summary{}, fmt.Errorf("replay: rate %v < 0", o.Rate)
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 2 * time.Second
	}
	// A wrong certificate, password or port fails here with its cause, not
	// after the writes' reconnecting.
	if err := kafkaio.Probe(ctx, kafkaio.Cluster{Brokers: o.Brokers, Security: o.Security}); err != nil {
		return Summary{}, err
	}
	w, err := kafkaio.NewWriter(kafkaio.WriteParams{Brokers: o.Brokers, Security: o.Security, Topic: o.Topic, Acks: o.Acks})
	if err != nil {
		return Summary{}, err
	}
	defer w.Close()

	batch := unlimitedBatch
	if o.Rate > 0 {
		// About twenty writes a second keeps the pace smooth.
		batch = max(1, min(unlimitedBatch, int(o.Rate/20)))
	}
	r := replayer{o: o, w: w, batch: batch, start: time.Now()}
	r.lastProgress = r.start
	for _, path := range paths {
		src, err := recording.Open(path, o.Recording)
		if errors.Is(err, recording.ErrOptions) && o.Recording.Start.IsZero() && !o.DefaultStart.IsZero() {
			ro := o.Recording
			ro.Start = o.DefaultStart
			src, err = recording.Open(path, ro)
		}
		if err != nil {
			return r.summary(), err
		}
		if f, ok := src.(recording.Filer); ok {
			r.sum.Files += f.Files()
		} else {
			r.sum.Files++
		}
		err = r.run(ctx, src)
		if sk, ok := src.(recording.Skipper); ok {
			r.sum.Missing += sk.Skips().Missing
			r.sum.Empty += sk.Skips().Empty
		}
		cerr := src.Close()
		if err != nil {
			return r.summary(), err
		}
		if cerr != nil {
			return r.summary(), cerr
		}
	}
	if err := r.flush(ctx); err != nil {
		return r.summary(), err
	}
	return r.summary(), nil
}

type replayer struct {
	o            Options
	w            *kafka.Writer
	batch        int
	pending      []kafka.Message
	pendingBytes int64
	sum          Summary
	start        time.Time
	lastProgress time.Time
}

func (r *replayer) summary() Summary {
	s := r.sum
	s.Elapsed = time.Since(r.start)
	return s
}

func (r *replayer) run(ctx context.Context, src recording.Source) error {
	for {
		m, err := src.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		km := kafka.Message{Key: m.Key, Value: m.Value, Time: m.Time}
		if len(m.Headers) > 0 {
			km.Headers = make([]kafka.Header, len(m.Headers))
			for i, h := range m.Headers {
				km.Headers[i] = kafka.Header{Key: h.Key, Value: h.Value}
			}
		}
		r.pending = append(r.pending, km)
		r.pendingBytes += int64(len(m.Key) + len(m.Value))
		if len(r.pending) >= r.batch {
			if err := r.flush(ctx); err != nil {
				return err
			}
		}
	}
}

func (r *replayer) flush(ctx context.Context) error {
	if len(r.pending) == 0 {
		return nil
	}
	if r.o.Rate > 0 {
		// Send no earlier than the schedule says the last of these is due.
		due := r.start.Add(time.Duration(float64(r.sum.Records+int64(len(r.pending))) / r.o.Rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
	}
	retry := func(attempt int, err error) {
		if attempt == 1 && r.o.Progress != nil {
			fmt.Fprintf(r.o.Progress, "produce: %v; writing again with backoff for up to %v\n", err, kafkaio.DefaultReconnectFor)
		}
	}
	if err := kafkaio.WriteRetrying(ctx, r.w, r.pending, 0, retry); err != nil {
		return fmt.Errorf("replay: to %s on %v: %w", r.o.Topic, r.o.Brokers, err)
	}
	r.sum.Records += int64(len(r.pending))
	r.sum.Bytes += r.pendingBytes
	clear(r.pending)
	r.pending = r.pending[:0]
	r.pendingBytes = 0
	if r.o.Progress != nil && time.Since(r.lastProgress) >= r.o.ProgressEvery {
		r.lastProgress = time.Now()
		s := r.summary()
		fmt.Fprintf(r.o.Progress, "produce: %d records, %.1f MB, %.0f records/s\n", s.Records, float64(s.Bytes)/1e6, s.RecordsPerSecond())
	}
	return nil
}
