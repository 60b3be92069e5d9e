package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/message"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/transforms/infer"
	"github.com/segmentio/kafka-go"
)

// handResult is what the hand-written loop did.
type handResult struct {
	records int64
	elapsed time.Duration
	cpu     time.Duration
}

// benchHandwritten is the machine's own limit for the e2e task, written by
// hand without Beam: per partition, kafka-go batch reads, the same JSON
// decode, the same snapshot's preprocessing and predictor on batches of
// 1,000 rows, and predictions written with kafka-go in batches, acks=all.
func benchHandwritten(brokers []string, topic, out, store, pub string) handResult {
	ctx := context.Background()
	ring, err := snapshot.LoadKeyring(pub)
	must(err)
	m, err := infer.NewServer(&modelstore.Dir{Root: store}, ring, nil, time.Hour).Current(ctx)
	must(err)
	ends, err := kafkaio.EndOffsets(ctx, kafkaio.Plain(brokers...), topic)
	must(err)
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: out, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchSize: 1000, BatchBytes: 1 << 20, BatchTimeout: time.Millisecond}
	defer w.Close()
	index := map[string]int{}
	for i, n := range m.Pre.Names {
		index[n] = i
	}
	dim := m.Pre.Features
	cpu0 := processCPU()
	began := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int64
	var firstErr error
	for part, end := range ends {
		wg.Add(1)
		go func(part int, end int64) {
			defer wg.Done()
			n, err := handPartition(ctx, brokers, topic, part, end, m, index, dim, w)
			mu.Lock()
			total += n
			if err != nil && firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}(part, end)
	}
	wg.Wait()
	must(firstErr)
	return handResult{records: total, elapsed: time.Since(began), cpu: processCPU() - cpu0}
}

func handPartition(ctx context.Context, brokers []string, topic string, part int, end int64, m *infer.Model, index map[string]int, dim int, w *kafka.Writer) (int64, error) {
	conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, part)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.Seek(0, kafka.SeekAbsolute); err != nil {
		return 0, err
	}
	const batch = 1000
	raw := make([]float64, 0, batch*dim)
	ids := make([]string, 0, batch)
	keys := make([][]byte, 0, batch)
	times := make([]time.Time, 0, batch)
	msgs := make([]kafka.Message, 0, batch)
	var rd records.Reading
	var n int64
	flush := func() error {
		if len(ids) == 0 {
			return nil
		}
		k := len(ids)
		outs, err := m.PredictRaw(raw, k)
		if err != nil {
			return err
		}
		c := m.Model.Outputs()
		msgs = msgs[:0]
		for i := 0; i < k; i++ {
			row := outs[i*c : (i+1)*c]
			best := models.Argmax(row)
			b := make([]byte, 0, 256)
			b = append(b, `{"id":`...)
			b = strconv.AppendQuote(b, ids[i])
			b = append(b, `,"model":`...)
			b = strconv.AppendQuote(b, m.Name())
			b = append(b, `,"label":`...)
			b = strconv.AppendQuote(b, m.Manifest.Labels[best])
			b = append(b, `,"scores":[`...)
			for j, v := range row {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendFloat(b, v, 'g', 6, 64)
			}
			b = append(b, "]}"...)
			msgs = append(msgs, kafka.Message{Key: keys[i], Value: b, Time: times[i]})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return err
		}
		n += int64(k)
		raw, ids, keys, times = raw[:0], ids[:0], keys[:0], times[:0]
		return nil
	}
	for next := int64(0); next < end; {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		b := conn.ReadBatch(1, 1<<20)
		for {
			msg, err := b.ReadMessage()
			if err != nil {
				break
			}
			next = msg.Offset + 1
			if err := message.ParseReading(msg.Value, msg.Time, &rd); err != nil {
				continue // a dead letter, as the job's
			}
			row := raw[len(raw) : len(raw)+dim]
			for i := range row {
				row[i] = math.NaN()
			}
			for _, v := range rd.Values {
				if i, ok := index[v.Name]; ok {
					row[i] = v.Value
				}
			}
			raw = raw[:len(raw)+dim]
			ids = append(ids, fmt.Sprintf("%s/%d/%d", topic, part, msg.Offset))
			keys = append(keys, msg.Key)
			times = append(times, rd.Time)
			if len(ids) == batch {
				if err := flush(); err != nil {
					b.Close()
					return n, err
				}
			}
			if next >= end {
				break
			}
		}
		if err := b.Close(); err != nil {
			return n, err
		}
	}
	return n, flush()
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintln(os.Stderr, "bench: getrusage:", err)
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// flinkJVMCPU is the CPU time the Flink job server's JVM (make bench
// starts it; its pid is in its run dir) has used, in seconds; 0 if it
// cannot be read.
func flinkJVMCPU() float64 {
	port := os.Getenv("FLINK_PORT")
	if port == "" {
		port = "18099"
	}
	cache := os.Getenv("MUON_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = home + "/.cache/muon"
	}
	pid, err := os.ReadFile(cache + "/flink-run-" + port + "/jobserver.pid")
	if err != nil {
		return 0
	}
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the ")" that ends the command: utime is the 12th,
	// stime the 13th.
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // clock ticks (USER_HZ 100 on Linux)
}
