package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/batch"
	"github.com/segmentio/kafka-go"
)

func init() {
	register.DoFn3x0[context.Context, kafkaio.Record, func(int)](&countFn{})
	register.DoFn3x0[context.Context, kafkaio.Records, func(int)](&countBatchFn{})
	register.Emitter1[int]()
	register.DoFn3x1[context.Context, int, func(kafkaio.Record), error](&genFn{})
	register.Emitter1[kafkaio.Record]()
}

func main() {
	datasets := flag.String("datasets", "../shared/datasets", "the shared datasets folder")
	muon := flag.String("muon", "bin/muon", "the muon binary, for produce")
	kafkaAddr := flag.String("kafka", "", "Apache Kafka bootstrap host:port (empty: embedded broker only)")
	n := flag.Int("records", 1_000_000, "sensor readings to produce and read")
	partitions := flag.Int("partitions", 4, "partitions of the bench topics")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the pipeline reads to `file`")
	flag.IntVar(&fetchConns, "fetch-conns", 0, "kafkaio Params.FetchConns (0: its default)")
	flag.IntVar(&chunkRecords, "chunk-records", 0, "kafkaio Params.ChunkRecords (0: its default)")
	flag.IntVar(&batchRows, "batch-rows", batch.DefaultMaxRows, "rows per Arrow batch in the Reshuffle figures")
	only := flag.String("only", "", "run only the broker with this name (embedded or kafka)")
	soak := flag.Duration("soak", 10*time.Minute, "how long the e2e group's soak of an unbounded edge job at half its maximum rate runs (0: none)")
	groups := flag.String("groups", "kafka,featurize,batch,images,gobench,train,rocket,snapshot,serve,e2e,cluster", "comma-separated figure groups to measure (kafka, featurize, batch, images, gobench, train, rocket, snapshot, serve, e2e, cluster; trainjobs: train's job figures alone; predict: the predict API's figures alone, also part of e2e)")
	million := flag.String("write-million", "", "write the train.scale archive (a million rows of 64 features from optdigits) under `dir` and exit, to train on by hand")
	predictLoadCfg := flag.String("predict-load", "", "internal: run the predict API's load generator with the settings in `file` (the predict group starts it pinned to its own core)")
	flag.Parse()
	if *predictLoadCfg != "" {
		runPredictLoad(*predictLoadCfg)
		return
	}
	if *million != "" {
		must(writeMillionRows(*datasets, *million, 1_000_000))
		return
	}
	want := map[string]bool{}
	for _, g := range strings.Split(*groups, ",") {
		want[strings.TrimSpace(g)] = true
	}
	cpuProfile = *cpuprofile
	beam.Init()
	defer func() {
		if benchKey != "" {
			os.RemoveAll(filepath.Dir(benchKey))
		}
	}()

	if want["batch"] {
		benchBatch()
	}
	if want["images"] {
		benchImages(*datasets)
	}
	if want["gobench"] {
		benchAllocs()
		benchDecodeFormats()
	}
	if want["train"] {
		benchTrain(*datasets)
		benchScaling(*muon)
		benchAccuracy(*muon)
	}
	if want["train"] || want["trainjobs"] {
		benchTrainJobs(*muon, *datasets)
	}
	if want["rocket"] {
		benchRocket(*muon, *datasets)
	}
	if want["serve"] {
		benchServe(*muon)
	}
	if want["snapshot"] {
		benchSnapshot(*muon)
	}
	if want["e2e"] {
		benchE2E(*muon, *datasets, *kafkaAddr, *soak)
	} else if want["predict"] {
		// The predict API alone (the e2e group measures it too).
		res, dir := snapshotRun(*muon, "configs/train-digits.yaml", "training.shards=1")
		benchPredict(*muon, filepath.Dir(res.Path), strings.TrimSuffix(signingKey(*muon), ".key")+".pub", *datasets)
		os.RemoveAll(dir)
	}
	if want["cluster"] {
		benchClusterRecovery(*muon, *datasets, *kafkaAddr)
	}
	if !want["kafka"] && !want["featurize"] {
		return
	}

	work, err := os.MkdirTemp("", "muon-bench-")
	must(err)
	defer os.RemoveAll(work)
	csvPath := filepath.Join(work, "machine_temperature_fleet.csv")
	size, err := buildFleetCSV(*datasets, csvPath, *n)
	must(err)
	fmt.Fprintf(os.Stderr, "bench: %d readings (%d bytes of CSV) from NAB machine_temperature, replicated across devices\n", *n, size)

	b, err := embedded.Start(embedded.Options{Partitions: *partitions})
	must(err)
	defer b.Close()
	targets := []struct{ name, addr string }{{"embedded", b.Addr()}}
	if *kafkaAddr != "" {
		targets = append(targets, struct{ name, addr string }{"kafka", *kafkaAddr})
	}
	for _, t := range targets {
		if *only != "" && t.name != *only {
			continue
		}
		benchBroker(t.name, []string{t.addr}, *muon, csvPath, *n, *partitions, want)
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func bench(name string, value float64, unit string) {
	fmt.Printf("BENCH %s %.4g %s\n", name, value, unit)
}

func benchBroker(name string, brokers []string, muon, csvPath string, n, partitions int, want map[string]bool) {
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	topic := "bench-readings-" + suffix
	out := "bench-write-" + suffix
	must(kafkaio.EnsureTopics(ctx, kafkaio.Plain(brokers...), kafkaio.TopicSpec{Name: topic, Partitions: partitions}, kafkaio.TopicSpec{Name: out, Partitions: partitions}))

	// muon produce, as a user runs it.
	fmt.Fprintf(os.Stderr, "bench %s: muon produce %d readings\n", name, n)
	produced, rate := runProduce(muon, brokers, topic, csvPath)
	if produced != int64(n) {
		must(fmt.Errorf("muon produce wrote %d records, want %d", produced, n))
	}
	bench("produce."+name, rate, "records/s")
	if want["featurize"] {
		benchFeaturize(name, brokers, topic, n)
	}
	if !want["kafka"] {
		return
	}

	// A plain kafka-go batch-read loop over the partitions one after the
	// other, and the same with one goroutine per partition.
	fmt.Fprintf(os.Stderr, "bench %s: raw kafka-go batch reads\n", name)
	rawRate := func(parallel bool) float64 {
		got, d := rawRead(brokers, topic, parallel)
		if got != int64(n) {
			must(fmt.Errorf("raw read %d records, want %d", got, n))
		}
		return float64(got) / d.Seconds()
	}
	raw := best(3, func() float64 { return rawRate(false) })
	rawPar := best(3, func() float64 { return rawRate(true) })
	bench("kafka.read.raw."+name, raw, "records/s")
	bench("kafka.read.raw_parallel."+name, rawPar, "records/s")

	// kafka-go's Reader.ReadMessage, one message per call, which DESIGN.md
	// warns about: measured on the first records only, since it is slow.
	fmt.Fprintf(os.Stderr, "bench %s: kafka-go Reader.ReadMessage loop\n", name)
	reader, err := readerLoop(brokers, topic, min(n, 50_000), "")
	must(err)
	bench("kafka.read.reader_loop."+name, reader, "records/s")
	bench("kafka.read.raw_vs_reader_loop."+name, raw/reader, "x")
	// The same in a consumer group, the usual way to use a Reader: with
	// the default CommitInterval of 0, every ReadMessage commits
	// synchronously.
	if group, err := readerLoop(brokers, topic, min(n, 5_000), "bench-"+topic); err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: no figure for the consumer-group Reader: %v\n", name, err)
	} else {
		bench("kafka.read.group_reader_loop."+name, group, "records/s")
		bench("kafka.read.raw_vs_group_reader_loop."+name, raw/group, "x")
	}

	// kafkaio.Read (one element per record) and ReadBatches (one element per
	// fetch) on the edge runner, into a counting DoFn.
	fmt.Fprintf(os.Stderr, "bench %s: kafkaio.Read on the edge runner\n", name)
	perRecord := best(3, func() float64 { return pipelineRead(brokers, topic, n, false) })
	fmt.Fprintf(os.Stderr, "bench %s: kafkaio.ReadBatches on the edge runner\n", name)
	batched := best(3, func() float64 { return pipelineRead(brokers, topic, n, true) })
	bench("kafka.read.muon."+name, perRecord, "records/s")
	bench("kafka.read.muon_batches."+name, batched, "records/s")
	bench("kafka.read.ratio."+name, perRecord/raw, "x")
	bench("kafka.read.ratio_batches."+name, batched/raw, "x")
	bench("kafka.read.ratio_vs_parallel."+name, perRecord/rawPar, "x")
	bench("kafka.read.ratio_batches_vs_parallel."+name, batched/rawPar, "x")

	// kafkaio.Write of the same readings, acks=all.
	fmt.Fprintf(os.Stderr, "bench %s: kafkaio.Write\n", name)
	w := pipelineWrite(brokers, csvPath, out, n)
	bench("kafka.write.muon."+name, w, "records/s")
}

// best runs f k times and returns the highest rate, which is the least
// disturbed by whatever else the machine did.
func best(k int, f func() float64) float64 {
	var top float64
	for i := 0; i < k; i++ {
		top = max(top, f())
	}
	return top
}

var producedRE = regexp.MustCompile(`produced (\d+) records.*: (\d+) records/s`)

func runProduce(muon string, brokers []string, topic, path string) (int64, float64) {
	cmd := exec.Command(muon, "produce", "--brokers", strings.Join(brokers, ","), "--topic", topic, "--quiet", path)
	cmd.Stderr = os.Stderr
	outb, err := cmd.Output()
	must(err)
	m := producedRE.FindStringSubmatch(string(outb))
	if m == nil {
		must(fmt.Errorf("unexpected muon produce output: %s", outb))
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	r, _ := strconv.ParseFloat(m[2], 64)
	return n, r
}

func rawRead(brokers []string, topic string, parallel bool) (int64, time.Duration) {
	ends, err := kafkaio.EndOffsets(context.Background(), kafkaio.Plain(brokers...), topic)
	must(err)
	var total atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for part, end := range ends {
		wg.Add(1)
		read := func() {
			defer wg.Done()
			conn, err := kafka.DialLeader(context.Background(), "tcp", brokers[0], topic, part)
			must(err)
			defer conn.Close()
			var n int64
			for next := int64(0); next < end; {
				must(conn.SetReadDeadline(time.Now().Add(30 * time.Second)))
				batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: kafkaio.DefaultFetchMaxBytes, MaxWait: kafkaio.DefaultFetchMaxWait})
				for {
					m, err := batch.ReadMessage()
					if err != nil {
						break
					}
					n++
					next = m.Offset + 1
				}
				if err := batch.Close(); err != nil && !errors.Is(err, kafka.RequestTimedOut) {
					must(err)
				}
			}
			total.Add(n)
		}
		if parallel {
			go read()
		} else {
			read()
		}
	}
	wg.Wait()
	return total.Load(), time.Since(start)
}

// readerLoop reads n records with kafka.Reader.ReadMessage, one call per
// message, and returns records/s: from partition 0, or, with a group, from
// the group's partitions with kafka-go's default reader settings.
func readerLoop(brokers []string, topic string, n int, group string) (float64, error) {
	ends, err := kafkaio.EndOffsets(context.Background(), kafkaio.Plain(brokers...), topic)
	must(err)
	cfg := kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxBytes: kafkaio.DefaultFetchMaxBytes}
	want := min(int64(n), ends[0])
	if group != "" {
		cfg = kafka.ReaderConfig{Brokers: brokers, Topic: topic, GroupID: group, StartOffset: kafka.FirstOffset}
		want = int64(n)
	}
	r := kafka.NewReader(cfg)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	for i := int64(0); i < want; i++ {
		if _, err := r.ReadMessage(ctx); err != nil {
			return 0, fmt.Errorf("reader loop after %d of %d records: %w", i, want, err)
		}
	}
	return float64(want) / time.Since(start).Seconds(), nil
}

var counted = beam.NewCounter("bench", "records")

// countFn counts records and emits the count once per bundle, so the
// read's stage has an output: prism 2.62 busy-waits on a core while a stage
// without data outputs runs (see README, "Known runner issues").
type countFn struct{ n int64 }

func (fn *countFn) ProcessElement(_ context.Context, _ kafkaio.Record, _ func(int)) { fn.n++ }
func (fn *countFn) FinishBundle(ctx context.Context, emit func(int)) {
	counted.Inc(ctx, fn.n)
	emit(int(fn.n))
	fn.n = 0
}

type countBatchFn struct{ n int64 }

func (fn *countBatchFn) ProcessElement(_ context.Context, rs kafkaio.Records, _ func(int)) {
	fn.n += int64(len(rs.Records))
}
func (fn *countBatchFn) FinishBundle(ctx context.Context, emit func(int)) {
	counted.Inc(ctx, fn.n)
	emit(int(fn.n))
	fn.n = 0
}

// Settings from the command line, for the whole run.
var (
	// cpuProfile, when set, names the file for a CPU profile of one read.
	cpuProfile   string
	fetchConns   int
	chunkRecords int
	batchRows    int
)

func pipelineRead(brokers []string, topic string, n int, batches bool) float64 {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		must(err)
		must(pprof.StartCPUProfile(f))
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
			cpuProfile = ""
		}()
	}
	p, s := beam.NewPipelineWithRoot()
	params := kafkaio.Params{Brokers: brokers, Topics: []string{topic}, FetchConns: fetchConns, ChunkRecords: chunkRecords}
	var counts beam.PCollection
	if batches {
		counts = beam.ParDo(s, &countBatchFn{}, kafkaio.ReadBatches(s, params))
	} else {
		counts = beam.ParDo(s, &countFn{}, kafkaio.Read(s, params))
	}
	stats.Sum(s, counts) // gives the read stage a data output (see countFn)
	res, err := runners.Run(context.Background(), p, runners.Options{Kind: runners.Edge})
	must(err)
	if got := res.Counter("bench", "records"); got != int64(n) {
		must(fmt.Errorf("pipeline read %d records, want %d", got, n))
	}
	fmt.Fprintf(os.Stderr, "bench: pipeline read of %d records (batches %v) in %s\n", n, batches, res.Elapsed)
	return float64(n) / res.Elapsed.Seconds()
}

// genFn emits the readings of a recording as records bound for Topic; it
// loads them in Setup so the pipeline's time is the write's.
type genFn struct {
	Path  string
	Topic string
	msgs  []recording.Message
}

func (fn *genFn) Setup() error {
	src, err := recording.Open(fn.Path, recording.Options{})
	if err != nil {
		return err
	}
	defer src.Close()
	for {
		m, err := src.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		fn.msgs = append(fn.msgs, m)
	}
}

func (fn *genFn) ProcessElement(_ context.Context, _ int, emit func(kafkaio.Record)) error {
	for _, m := range fn.msgs {
		emit(kafkaio.Record{Topic: fn.Topic, Key: m.Key, Value: m.Value, Time: m.Time})
	}
	return nil
}

func pipelineWrite(brokers []string, path, topic string, n int) float64 {
	// Load once outside the timed run to warm the page cache.
	p, s := beam.NewPipelineWithRoot()
	recs := beam.ParDo(s, &genFn{Path: path, Topic: topic}, beam.Create(s, 1))
	kafkaio.Write(s, kafkaio.WriteParams{Brokers: brokers}, recs)
	res, err := runners.Run(context.Background(), p, runners.Options{Kind: runners.Edge})
	must(err)
	if got := res.Counter("kafkaio.Write", "records"); got != int64(n) {
		must(fmt.Errorf("wrote %d records, want %d", got, n))
	}
	return float64(n) / res.Elapsed.Seconds()
}

// buildFleetCSV writes n readings of NAB's machine temperature recording as
// a fleet of machines: each device replays the real series, in time order
// across devices, labelled anomaly inside NAB's labelled windows.
func buildFleetCSV(datasets, dst string, n int) (int64, error) {
	dir := filepath.Join(datasets, "nab_machine_temperature")
	f, err := os.Open(filepath.Join(dir, "machine_temperature_system_failure.csv"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return 0, err
	}
	rows = rows[1:]
	wb, err := os.ReadFile(filepath.Join(dir, "combined_windows.json"))
	if err != nil {
		return 0, err
	}
	var windows map[string][][2]string
	if err := json.Unmarshal(wb, &windows); err != nil {
		return 0, err
	}
	win := windows["realKnownCause/machine_temperature_system_failure.csv"]
	label := func(ts string) string {
		for _, w := range win {
			if ts >= w[0][:19] && ts <= w[1][:19] {
				return "anomaly"
			}
		}
		return "normal"
	}
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(out, 1<<20)
	fmt.Fprintln(w, "timestamp,device,temperature,label")
	devices := (n + len(rows) - 1) / len(rows)
	written := 0
	for _, r := range rows {
		l := label(r[0])
		for d := 0; d < devices && written < n; d++ {
			fmt.Fprintf(w, "%s,machine-%03d,%s,%s\n", r[0], d, r[1], l)
			written++
		}
	}
	if written < n {
		return 0, fmt.Errorf("only %d rows", written)
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	st, _ := out.Stat()
	return st.Size(), out.Close()
}
