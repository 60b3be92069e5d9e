package modelstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/segmentio/kafka-go"
)

// KafkaScheme prefixes a store on Kafka: kafka://<topic>.
const KafkaScheme = "kafka://"

// ChunkBytes is the most snapshot bytes one Kafka record of a store on
// Kafka carries: a snapshot is written as ⌈size/ChunkBytes⌉ records, so any
// size fits under the broker's default message limit (1 MiB).
const ChunkBytes = 768 << 10

// MaxKafkaSnapshot is the largest snapshot a store on Kafka takes.
const MaxKafkaSnapshot = 256 << 20

// Locate is the store a spec's store string names: kafka://<topic> (on
// cluster) or a directory.
func Locate(store string, cluster kafkaio.Cluster) Store {
	if topic, ok := strings.CutPrefix(store, KafkaScheme); ok {
		return &Kafka{Cluster: cluster, Topic: topic}
	}
	return &Dir{Root: store}
}

// IsKafka reports whether store names a store on Kafka.
func IsKafka(store string) bool { return strings.HasPrefix(store, KafkaScheme) }

// Kafka is a Store in a compacted Kafka topic of one partition, so that
// every worker and every edge device that reaches the brokers reaches the
// models too. Each version is one or more records keyed
// v<seq>/<writer>/<chunk>, with the snapshot's bytes cut into ChunkBytes pieces and
// headers that say what it is (name, sequence number, chunk count, size,
// SHA-256, state published or rejected, the gate's reason, a writer id).
// The newest complete published version is the latest: no pointer to
// keep. Versions are numbered one past the highest in the topic; a
// publisher that finds another wrote the same number first withdraws its
// records (tombstones) and takes the next.
type Kafka struct {
	Cluster kafkaio.Cluster
	Topic   string
}

// Header keys of a store on Kafka's records.
const (
	hName    = "muon.model.name"
	hSeq     = "muon.model.seq"
	hChunk   = "muon.model.chunk"
	hChunks  = "muon.model.chunks"
	hSize    = "muon.model.size"
	hSHA     = "muon.model.sha256"
	hState   = "muon.model.state"
	hReason  = "muon.model.reason"
	hWriter  = "muon.model.writer"
	hCreated = "muon.model.created"
)

// ensure creates the store's topic: one partition, compacted, records up
// to ChunkBytes plus headers.
func (k *Kafka) ensure(ctx context.Context) error {
	if err := kafkaio.CheckTopic(k.Topic); err != nil {
		return fmt.Errorf("modelstore: %s%s: %w", KafkaScheme, k.Topic, err)
	}
	return kafkaio.EnsureTopics(ctx, k.Cluster, kafkaio.TopicSpec{Name: k.Topic, Partitions: 1,
		Configs: map[string]string{"cleanup.policy": "compact", "max.message.bytes": strconv.Itoa(ChunkBytes + 64<<10)}})
}

// kversion is a version as the topic holds it.
type kversion struct {
	Version
	state, reason, writer string
	chunks                int
	parts                 map[int][]byte // chunk → bytes, when read with data
	offset                int64          // of its first record seen
}

func (v *kversion) complete() bool { return v.chunks > 0 && len(v.parts) == v.chunks }

// scan reads the whole topic: the versions by sequence number, with the
// bytes of version data (none if data is 0). Only those bytes are kept, so
// listing a store of many versions holds none of them.
func (k *Kafka) scan(ctx context.Context, data uint64) (map[uint64]*kversion, error) {
	out := map[uint64]*kversion{}
	err := kafkaio.Scan(ctx, k.Cluster, k.Topic, math.MaxInt32, func(r kafkaio.Record) error {
		k.add(out, r, data)
		return nil
	})
	if errors.Is(err, kafkaio.ErrUnknownTopic) {
		return map[uint64]*kversion{}, nil // nothing published yet
	}
	if err != nil {
		return nil, fmt.Errorf("modelstore: reading %s%s: %w", KafkaScheme, k.Topic, err)
	}
	return out, nil
}

// add folds one record of the topic into the versions read so far.
func (k *Kafka) add(out map[uint64]*kversion, r kafkaio.Record, data uint64) {
	seq, writer, chunk, ok := parseKey(string(r.Key))
	if !ok {
		return // not a store record
	}
	if r.Value == nil {
		// A tombstone: the chunk is withdrawn or pruned.
		if v := out[seq]; v != nil && v.writer == writer {
			delete(v.parts, chunk)
			if len(v.parts) == 0 {
				delete(out, seq)
			}
		}
		return
	}
	h := map[string]string{}
	for _, x := range r.Headers {
		h[x.Key] = string(x.Value)
	}
	chunks, err := strconv.Atoi(h[hChunks])
	if err != nil || h[hSeq] != strconv.FormatUint(seq, 10) || h[hWriter] != writer {
		return
	}
	v := out[seq]
	if v == nil || v.writer != writer {
		if v != nil && v.offset < r.Offset {
			return // the same number by another writer, later: it lost
		}
		size, _ := strconv.ParseInt(h[hSize], 10, 64)
		created, _ := time.Parse(time.RFC3339Nano, h[hCreated])
		v = &kversion{Version: Version{Seq: seq, Name: h[hName], Size: size, SHA256: h[hSHA], Created: created,
			Path: fmt.Sprintf("%s%s/%s", KafkaScheme, k.Topic, fileName(seq, h[hName]))},
			state: h[hState], reason: h[hReason], writer: h[hWriter], chunks: chunks, parts: map[int][]byte{}, offset: r.Offset}
		out[seq] = v
	}
	if seq == data {
		v.parts[chunk] = r.Value
	} else {
		v.parts[chunk] = nil
	}
}

func (k *Kafka) list(ctx context.Context, state string) ([]Version, error) {
	vs, err := k.scan(ctx, 0)
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, v := range vs {
		if v.state == state && v.complete() {
			vv := v.Version
			vv.Reason = v.reason
			out = append(out, vv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// List lists the published versions, oldest first.
func (k *Kafka) List(ctx context.Context) ([]Version, error) { return k.list(ctx, "published") }

// Rejected lists the rejected versions, oldest first, with their reasons.
func (k *Kafka) Rejected(ctx context.Context) ([]Version, error) { return k.list(ctx, "rejected") }

// Latest is the newest complete published version.
func (k *Kafka) Latest(ctx context.Context) (Version, error) {
	vs, err := k.List(ctx)
	if err != nil {
		return Version{}, err
	}
	if len(vs) == 0 {
		return Version{}, ErrEmpty
	}
	return vs[len(vs)-1], nil
}

// Open reads a version's bytes, checked against its SHA-256.
func (k *Kafka) Open(ctx context.Context, v Version) (io.ReadCloser, error) {
	vs, err := k.scan(ctx, v.Seq)
	if err != nil {
		return nil, err
	}
	kv := vs[v.Seq]
	if kv == nil || !kv.complete() {
		return nil, fmt.Errorf("modelstore: %s is not (or no longer) whole in %s%s", v, KafkaScheme, k.Topic)
	}
	var b bytes.Buffer
	for i := 0; i < kv.chunks; i++ {
		b.Write(kv.parts[i])
	}
	if sum := sha256.Sum256(b.Bytes()); hex.EncodeToString(sum[:]) != kv.SHA256 {
		return nil, fmt.Errorf("modelstore: %s in %s%s: its bytes do not match their SHA-256", v, KafkaScheme, k.Topic)
	}
	return io.NopCloser(&b), nil
}

// Publish stores a new version, which becomes the latest once all its
// records are written.
func (k *Kafka) Publish(ctx context.Context, name string, c Content) (Version, error) {
	return k.write(ctx, name, c, "published", "")
}

// Reject stores a snapshot the gate refused, with the reason.
func (k *Kafka) Reject(ctx context.Context, name string, c Content, reason string) (Version, error) {
	return k.write(ctx, name, c, "rejected", reason)
}

func (k *Kafka) write(ctx context.Context, name string, c Content, state, reason string) (Version, error) {
	if err := checkName(name); err != nil {
		return Version{}, err
	}
	if err := k.ensure(ctx); err != nil {
		return Version{}, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	writer := hex.EncodeToString(id[:])
	w, err := kafkaio.NewWriter(kafkaio.WriteParams{Brokers: k.Cluster.Brokers, Security: k.Cluster.Security, Topic: k.Topic, BatchBytes: ChunkBytes + 128<<10})
	if err != nil {
		return Version{}, err
	}
	defer w.Close()
	var first []byte
	for attempt := 0; attempt < 20; attempt++ {
		if attempt > 0 {
			// Racing publishers spread out before they try again.
			var j [1]byte
			_, _ = rand.Read(j[:])
			time.Sleep(time.Duration(j[0]%50+1) * time.Millisecond)
		}
		vs, err := k.scan(ctx, 0)
		if err != nil {
			return Version{}, err
		}
		var seq uint64 = 1
		for s := range vs {
			seq = max(seq, s+1)
		}
		r, err := c(seq)
		if err != nil {
			return Version{}, err
		}
		body, err := io.ReadAll(io.LimitReader(r, MaxKafkaSnapshot+1))
		if err != nil {
			return Version{}, fmt.Errorf("modelstore: making %s@%d: %w", name, seq, err)
		}
		if len(body) > MaxKafkaSnapshot {
			return Version{}, fmt.Errorf("modelstore: %s@%d is over %d MiB, the most a store on Kafka takes", name, seq, MaxKafkaSnapshot>>20)
		}
		if len(body) == 0 && first != nil {
			body = first // content that does not depend on the number (Bytes) is read once
		}
		if len(body) == 0 {
			return Version{}, fmt.Errorf("modelstore: %s@%d is empty", name, seq)
		}
		first = body
		sum := sha256.Sum256(body)
		created := time.Now().UTC()
		chunks := max(1, (len(body)+ChunkBytes-1)/ChunkBytes)
		msgs := make([]kafka.Message, chunks)
		for i := range msgs {
			part := body[i*ChunkBytes : min((i+1)*ChunkBytes, len(body))]
			msgs[i] = kafka.Message{Key: recordKey(seq, writer, i), Value: part, Headers: []kafka.Header{
				{Key: hName, Value: []byte(name)}, {Key: hSeq, Value: []byte(strconv.FormatUint(seq, 10))},
				{Key: hChunk, Value: []byte(strconv.Itoa(i))}, {Key: hChunks, Value: []byte(strconv.Itoa(chunks))},
				{Key: hSize, Value: []byte(strconv.Itoa(len(body)))}, {Key: hSHA, Value: []byte(hex.EncodeToString(sum[:]))},
				{Key: hState, Value: []byte(state)}, {Key: hReason, Value: []byte(reason)}, {Key: hWriter, Value: []byte(writer)},
				{Key: hCreated, Value: []byte(created.Format(time.RFC3339Nano))},
			}}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return Version{}, fmt.Errorf("modelstore: writing %s@%d to %s%s: %w", name, seq, KafkaScheme, k.Topic, err)
		}
		// Another publisher may have taken the number meanwhile: the first
		// writer of a number keeps it.
		after, err := k.scan(ctx, 0)
		if err != nil {
			return Version{}, err
		}
		if v := after[seq]; v != nil && v.writer == writer {
			return Version{Seq: seq, Name: name, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), Created: created,
				Path: fmt.Sprintf("%s%s/%s", KafkaScheme, k.Topic, fileName(seq, name)), Reason: reason}, nil
		}
		if err := k.tombstones(ctx, w, seq, writer, chunks); err != nil {
			return Version{}, err
		}
	}
	return Version{}, errors.New("modelstore: other publishers kept taking the next version number")
}

// tombstones deletes the records of a version's chunks (compaction drops
// them; readers skip them at once).
func (k *Kafka) tombstones(ctx context.Context, w *kafka.Writer, seq uint64, writer string, chunks int) error {
	msgs := make([]kafka.Message, chunks)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: recordKey(seq, writer, i)}
	}
	return w.WriteMessages(ctx, msgs...)
}

// recordKey is the key of a version's chunk: unique per writer, so that
// compaction never drops one writer's chunk for another's.
func recordKey(seq uint64, writer string, chunk int) []byte {
	return []byte(fmt.Sprintf("v%012d/%s/%d", seq, writer, chunk))
}

func parseKey(k string) (seq uint64, writer string, chunk int, ok bool) {
	parts := strings.Split(k, "/")
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "v") {
		return 0, "", 0, false
	}
	seq, err1 := strconv.ParseUint(parts[0][1:], 10, 64)
	chunk, err2 := strconv.Atoi(parts[2])
	return seq, parts[1], chunk, err1 == nil && err2 == nil && parts[1] != ""
}

// Prune keeps the newest keep published versions (and always the latest);
// older ones are deleted with tombstones.
func (k *Kafka) Prune(ctx context.Context, keep int) error {
	vs, err := k.scan(ctx, 0)
	if err != nil {
		return err
	}
	var pub []*kversion
	for _, v := range vs {
		if v.state == "published" && v.complete() {
			pub = append(pub, v)
		}
	}
	sort.Slice(pub, func(i, j int) bool { return pub[i].Seq < pub[j].Seq })
	if keep < 1 {
		keep = 1
	}
	if len(pub) <= keep {
		return nil
	}
	w, err := kafkaio.NewWriter(kafkaio.WriteParams{Brokers: k.Cluster.Brokers, Security: k.Cluster.Security, Topic: k.Topic})
	if err != nil {
		return err
	}
	defer w.Close()
	for _, v := range pub[:len(pub)-keep] {
		if err := k.tombstones(ctx, w, v.Seq, v.writer, v.chunks); err != nil {
			return err
		}
	}
	return nil
}
