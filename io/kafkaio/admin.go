package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// ErrUnknownTopic means a topic does not exist on the brokers.
var ErrUnknownTopic = errors.New("kafkaio: unknown topic")

// ErrNoAnswer means a broker accepted a connection, or a request, and did
// not answer in time.
var ErrNoAnswer = errors.New("no answer from the broker")

// DefaultCallTimeout bounds each request muon makes to a broker outside the
// fetches and produces of a pipeline (metadata, offsets, topic creation),
// and connecting for it: a broker that accepts connections and never
// answers fails the call instead of hanging it. A context with an earlier
// deadline shortens it.
const DefaultCallTimeout = 15 * time.Second

// callContext bounds one call to a broker.
func callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, DefaultCallTimeout)
}

// bound sets conn's deadline for the next request from ctx, which
// callContext bounded: kafka-go's Conn methods do not watch a context.
func bound(ctx context.Context, conn *kafka.Conn) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
}

// callError names what failed, and says so plainly when it is a timeout.
func callError(what string, err error) error {
	if timedOut(err) {
		return fmt.Errorf("%s: %w in time (%v): is it a Kafka broker, and is it overloaded?", what, ErrNoAnswer, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// timedOut reports whether err is a deadline that passed: the context's or
// the connection's.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// eachBroker calls f with each bootstrap broker until one succeeds.
func eachBroker(brokers []string, f func(addr string) error) error {
	var errs []error
	for _, b := range brokers {
		err := f(b)
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrUnknownTopic) {
			return err
		}
		errs = append(errs, fmt.Errorf("%s: %w", b, err))
	}
	err := errors.Join(errs...)
	if errors.Is(err, ErrSecurity) || errors.Is(err, kafka.SASLAuthenticationFailed) || strings.Contains(err.Error(), "tls:") {
		return fmt.Errorf("kafkaio: no broker at %v let muon in: %w", brokers, err)
	}
	return fmt.Errorf("kafkaio: no broker answered (is Kafka running at %v?): %w", brokers, err)
}

// lookupPartitions returns topic's partitions. Its metadata request never
// creates the topic, even on brokers that create topics on first use: a
// read of a topic that does not exist fails with ErrUnknownTopic instead of
// reading an empty topic it made.
func lookupPartitions(ctx context.Context, l *link, topic string) ([]kafka.Partition, error) {
	var parts []kafka.Partition
	brokers := l.brokers
	err := eachBroker(brokers, func(addr string) error {
		ctx, cancel := callContext(ctx)
		defer cancel()
		tr := l.transport()
		defer tr.CloseIdleConnections()
		c := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr}
		m, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return callError(fmt.Sprintf("reading the partitions of %q", topic), l.sec.securityHint(err))
		}
		for _, t := range m.Topics {
			if t.Name != topic {
				continue
			}
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
				return fmt.Errorf("%w %q on %v: check the topic's name, or produce to it first", ErrUnknownTopic, topic, brokers)
			}
			if t.Error != nil {
				return fmt.Errorf("reading the partitions of %q: %w", topic, t.Error)
			}
			for _, p := range t.Partitions {
				parts = append(parts, kafka.Partition{Topic: topic, ID: p.ID, Leader: p.Leader})
			}
		}
		return nil
	})
	if err == nil && len(parts) == 0 {
		err = fmt.Errorf("%w %q on %v: check the topic's name, or produce to it first", ErrUnknownTopic, topic, brokers)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].ID < parts[j].ID })
	return parts, err
}

// Partitions returns topic's partition numbers, in order, from one
// metadata request that never creates the topic: ErrUnknownTopic when it
// does not exist.
func Partitions(ctx context.Context, c Cluster, topic string) ([]int, error) {
	l, err := c.link(DefaultDialTimeout)
	if err != nil {
		return nil, err
	}
	return partitionIDs(ctx, l, topic)
}

// partitionIDs is Partitions over a link.
func partitionIDs(ctx context.Context, l *link, topic string) ([]int, error) {
	parts, err := lookupPartitions(ctx, l, topic)
	if err != nil {
		return nil, err
	}
	ids := make([]int, len(parts))
	for i, p := range parts {
		ids[i] = p.ID
	}
	return ids, nil
}

func dialLeader(ctx context.Context, l *link, topic string, partition int) (*kafka.Conn, error) {
	var conn *kafka.Conn
	err := eachBroker(l.brokers, func(addr string) error {
		ctx, cancel := callContext(ctx)
		defer cancel()
		c, err := l.d.DialLeader(ctx, "tcp", addr, topic, partition)
		if err != nil {
			return callError(fmt.Sprintf("connecting to the leader of %s/%d", topic, partition), l.sec.securityHint(err))
		}
		conn = c
		return nil
	})
	return conn, err
}

// partitionOffsets returns the earliest retained offset and the high
// watermark of a partition.
func partitionOffsets(ctx context.Context, l *link, topic string, partition int) (first, last int64, err error) {
	conn, err := dialLeader(ctx, l, topic, partition)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	ctx, cancel := callContext(ctx)
	defer cancel()
	bound(ctx, conn)
	first, last, err = conn.ReadOffsets()
	if err != nil {
		return 0, 0, fmt.Errorf("kafkaio: %s: %w", conn.RemoteAddr(), callError(fmt.Sprintf("offsets of %s/%d", topic, partition), err))
	}
	return first, last, nil
}

func offsetForTime(ctx context.Context, l *link, topic string, partition int, t time.Time) (int64, error) {
	conn, err := dialLeader(ctx, l, topic, partition)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ctx, cancel := callContext(ctx)
	defer cancel()
	bound(ctx, conn)
	off, err := conn.ReadOffset(t)
	if err != nil {
		return 0, fmt.Errorf("kafkaio: %s: %w", conn.RemoteAddr(), callError(fmt.Sprintf("offset of %s/%d at %s", topic, partition, t.Format(time.RFC3339)), err))
	}
	if off < 0 { // no record at or after t: start at the end
		_, last, err := conn.ReadOffsets()
		return last, err
	}
	return off, nil
}

// EndOffsets returns the high watermark of every partition of topic.
func EndOffsets(ctx context.Context, c Cluster, topic string) (map[int]int64, error) {
	l, err := c.link(DefaultDialTimeout)
	if err != nil {
		return nil, err
	}
	parts, err := lookupPartitions(ctx, l, topic)
	if err != nil {
		return nil, err
	}
	out := make(map[int]int64, len(parts))
	for _, p := range parts {
		_, last, err := partitionOffsets(ctx, l, topic, p.ID)
		if err != nil {
			return nil, err
		}
		out[p.ID] = last
	}
	return out, nil
}

// Probe connects to the first broker of c that answers, with c's TLS and
// SASL, and asks for its API versions: a wrong certificate, password or
// listener fails here, at once and with its cause, instead of in the
// reconnect loops of reads and writes.
func Probe(ctx context.Context, c Cluster) error {
	if len(c.Brokers) == 0 {
		return ErrNoBrokers
	}
	l, err := c.link(DefaultDialTimeout)
	if err != nil {
		return err
	}
	return eachBroker(c.Brokers, func(addr string) error {
		cctx, cancel := callContext(ctx)
		defer cancel()
		conn, err := l.d.DialContext(cctx, "tcp", addr)
		if err != nil {
			return callError("connecting", l.sec.securityHint(err))
		}
		defer conn.Close()
		bound(cctx, conn)
		if _, err := conn.ApiVersions(); err != nil {
			return callError("asking for the API versions", l.sec.securityHint(err))
		}
		return nil
	})
}

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name       string
	Partitions int
	// Replication is the replication factor. Default 1.
	Replication int
	// Configs are topic configs (retention.bytes, segment.bytes, ...).
	// Default: the broker's.
	Configs map[string]string
}

// EnsureTopics creates the topics that do not exist yet; existing topics
// are left as they are.
func EnsureTopics(ctx context.Context, c Cluster, topics ...TopicSpec) error {
	if len(c.Brokers) == 0 {
		return ErrNoBrokers
	}
	l, err := c.link(DefaultDialTimeout)
	if err != nil {
		return err
	}
	d := l.d
	return eachBroker(c.Brokers, func(addr string) error {
		cctx, cancel := callContext(ctx)
		defer cancel()
		conn, err := d.DialContext(cctx, "tcp", addr)
		if err != nil {
			return callError("connecting", l.sec.securityHint(err))
		}
		defer conn.Close()
		bound(cctx, conn)
		ctrl, err := conn.Controller()
		if err != nil {
			return callError("finding the controller", l.sec.securityHint(err))
		}
		caddr := net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port))
		cc, err := d.DialContext(cctx, "tcp", caddr)
		if err != nil {
			return callError("connecting to the controller "+caddr, l.sec.securityHint(err))
		}
		defer cc.Close()
		bound(cctx, cc)
		cfgs := make([]kafka.TopicConfig, 0, len(topics))
		for _, t := range topics {
			if t.Partitions <= 0 {
				t.Partitions = 1
			}
			if t.Replication <= 0 {
				t.Replication = 1
			}
			tc := kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: t.Replication}
			for k, v := range t.Configs {
				tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
			}
			cfgs = append(cfgs, tc)
		}
		err = cc.CreateTopics(cfgs...)
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return callError("creating topics on the controller "+caddr, err)
		}
		// Wait until every topic answers metadata requests, so that a read
		// or write right after does not race topic creation.
		deadline := time.Now().Add(10 * time.Second)
		for _, t := range topics {
			for {
				_ = conn.SetDeadline(time.Now().Add(DefaultCallTimeout))
				ps, err := conn.ReadPartitions(t.Name)
				if err == nil && len(ps) > 0 {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("topic %q not ready after create: %v", t.Name, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		return nil
	})
}

// Tail returns up to max of the newest records of each partition of topic,
// read with a plain fetch loop: for summaries and inspection, not for
// pipelines.
func Tail(ctx context.Context, c Cluster, topic string, max int) ([]Record, error) {
	var out []Record
	err := Scan(ctx, c, topic, max, func(r Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// Scan is Tail without keeping the records: it hands each of up to the
// last max records of each partition of topic to fn, in offset order per
// partition, as the topic stands when it is called; an error from fn ends
// the scan. What fn does not keep is garbage once it returns.
func Scan(ctx context.Context, c Cluster, topic string, max int, fn func(Record) error) error {
	l, err := c.link(DefaultDialTimeout)
	if err != nil {
		return err
	}
	parts, err := lookupPartitions(ctx, l, topic)
	if err != nil {
		return err
	}
	for _, p := range parts {
		conn, err := dialLeader(ctx, l, topic, p.ID)
		if err != nil {
			return err
		}
		_ = conn.SetDeadline(time.Now().Add(DefaultCallTimeout))
		first, last, err := conn.ReadOffsets()
		var ferr error
		if err == nil {
			from := last - int64(max)
			if from < first {
				from = first
			}
			_, err = conn.Seek(from, kafka.SeekAbsolute)
			for next := from; err == nil && ferr == nil && next < last; {
				_ = conn.SetDeadline(time.Now().Add(DefaultCallTimeout))
				batch := conn.ReadBatch(1, DefaultFetchMaxBytes)
				got := false
				for ferr == nil {
					m, rerr := batch.ReadMessage()
					if rerr != nil {
						break
					}
					got = true
					r := Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Time: m.Time}
					for _, h := range m.Headers {
						r.Headers = append(r.Headers, Header{Key: h.Key, Value: h.Value})
					}
					ferr = fn(r)
					next = m.Offset + 1
				}
				if cerr := batch.Close(); cerr != nil && !errors.Is(cerr, kafka.RequestTimedOut) {
					err = cerr
				}
				if !got && err == nil {
					break // nothing more to read below the end (compacted away)
				}
			}
		}
		conn.Close()
		if ferr != nil {
			return ferr
		}
		if err != nil {
			return fmt.Errorf("kafkaio: reading %s/%d: %w", topic, p.ID, err)
		}
	}
	return nil
}

// MaxTopicLength is the longest topic name Kafka accepts.
const MaxTopicLength = 249

// CheckTopic reports whether name is a topic name Kafka accepts: 1 to 249
// of the characters a–z, A–Z, 0–9, '.', '_' and '-', and not "." or "..".
func CheckTopic(name string) error {
	switch {
	case name == "":
		return errors.New("empty topic name")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	case len(name) > MaxTopicLength:
		return fmt.Errorf("topic name of %d characters, at most %d", len(name), MaxTopicLength)
	}
	for i, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q has %q at byte %d: use letters, digits, '.', '_' and '-'", name, c, i)
		}
	}
	return nil
}
