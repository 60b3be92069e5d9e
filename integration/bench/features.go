package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/message"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/batch"
	"github.com/muonml/muon/transforms/decode"
	"github.com/muonml/muon/transforms/featurize"
	"golang.org/x/image/draw"
	"image"
)

func init() {
	register.DoFn3x0[context.Context, arrowio.Batch, func(int)](&countRowsFn{})
	register.DoFn3x0[context.Context, featurize.Row, func(int)](&countRowFn{})
	register.DoFn3x0[context.Context, int, func(featurize.Row)](&genRowsFn{})
	register.DoFn3x0[context.Context, int, func(arrowio.Batch)](&genBatchesFn{})
}

var rowsCounted = beam.NewCounter("bench", "rows")

// countRowsFn counts the rows of batches and emits the count per bundle
// (see countFn for why it emits).
type countRowsFn struct{ n int64 }

func (fn *countRowsFn) ProcessElement(_ context.Context, b arrowio.Batch, _ func(int)) {
	fn.n += int64(b.Rows())
	b.Record.Release()
}
func (fn *countRowsFn) FinishBundle(ctx context.Context, emit func(int)) {
	rowsCounted.Inc(ctx, fn.n)
	emit(int(fn.n))
	fn.n = 0
}

// countRowFn counts rows that travel one per element.
type countRowFn struct{ n int64 }

func (fn *countRowFn) ProcessElement(_ context.Context, _ featurize.Row, _ func(int)) { fn.n++ }
func (fn *countRowFn) FinishBundle(ctx context.Context, emit func(int)) {
	rowsCounted.Inc(ctx, fn.n)
	emit(int(fn.n))
	fn.n = 0
}

// sensorWindow is how the bench cuts NAB machine temperature (a reading
// every 5 minutes): hour windows every half hour, 12 readings each.
var sensorWindow = featurize.WindowParams{
	Channels:        []string{"temperature"},
	Bands:           2,
	Size:            time.Hour,
	Period:          30 * time.Minute,
	AllowedLateness: time.Hour, // NAB's clock goes back 55 minutes once
}

// featurizeRead runs read → decode → windows → features → Arrow batches on
// the edge runner over a bounded read and returns readings/s and the rows
// made.
func featurizeRead(brokers []string, topic string, n int) (float64, int64) {
	p, s := beam.NewPipelineWithRoot()
	records := kafkaio.ReadBatches(s, kafkaio.Params{Brokers: brokers, Topics: []string{topic}, FetchConns: fetchConns, ChunkRecords: chunkRecords})
	readings, dead := decode.Sensors(s, decode.Params{}, records)
	rows, late := featurize.Windows(s, sensorWindow, readings)
	batches := batch.Rows(s, batch.Params{Dim: featurize.Width(sensorWindow.Bands)}, rows)
	stats.Sum(s, beam.ParDo(s, &countRowsFn{}, batches))
	stats.Count(s, beam.Flatten(s, dead, late))
	res, err := runners.Run(context.Background(), p, runners.Options{Kind: runners.Edge})
	must(err)
	if got := res.Counter("decode", "sensor.ok"); got != int64(n) {
		must(fmt.Errorf("featurize decoded %d readings, want %d", got, n))
	}
	made := res.Counter("bench", "rows")
	fmt.Fprintf(os.Stderr, "bench: %d readings → %d window rows (%d late) in %s\n",
		n, made, res.Counter("featurize", "windows.late"), res.Elapsed)
	return float64(n) / res.Elapsed.Seconds(), made
}

func benchFeaturize(name string, brokers []string, topic string, n int) {
	fmt.Fprintf(os.Stderr, "bench %s: read → decode → windows → features → Arrow batches\n", name)
	var rows int64
	rate := best(2, func() float64 { r, m := featurizeRead(brokers, topic, n); rows = m; return r })
	bench("featurize.sensor.rps."+name, rate, "readings/s")
	bench("featurize.sensor.rows."+name, float64(rows), "rows")
}

// benchRows is the data of the Reshuffle benchmark: rows of dim
// features, made once per process before the pipelines run (the workers
// run in this process), so that both forms of travel start from the same
// rows in memory and the figures measure the travel.
type benchRows struct {
	features []float64 // row-major
	keys     []string
	ids      []string
	srcs     []records.Source
	times    []time.Time
	dim      int
}

var (
	sharedRowsOnce sync.Once
	sharedRows     *benchRows
)

// theBenchRows returns the process's benchmark rows, made on first use.
func theBenchRows(n, dim int) *benchRows {
	sharedRowsOnce.Do(func() { sharedRows = makeBenchRows(n, dim) })
	if len(sharedRows.keys) != n || sharedRows.dim != dim {
		panic("bench: benchmark rows made with another shape")
	}
	return sharedRows
}

func makeBenchRows(n, dim int) *benchRows {
	d := &benchRows{features: make([]float64, n*dim), keys: make([]string, n), ids: make([]string, n), srcs: make([]records.Source, n), times: make([]time.Time, n), dim: dim}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		for j := 0; j < dim; j++ {
			d.features[i*dim+j] = float64(i*dim + j)
		}
		d.keys[i] = "machine-" + strconv.Itoa(i%64)
		d.srcs[i] = records.Source{Topic: "bench", Offset: int64(i)}
		d.ids[i] = d.srcs[i].ID()
		d.times[i] = base.Add(time.Duration(i) * time.Second)
	}
	return d
}

// shardRange is the rows of one of shards shards.
func shardRange(rows, shards, shard int) (lo, hi int) {
	return shard * rows / shards, (shard + 1) * rows / shards
}

// genRowsFn emits its shard's rows one element each.
type genRowsFn struct {
	Rows, Shards, Dim int
	d                 *benchRows
}

func (fn *genRowsFn) Setup() { fn.d = theBenchRows(fn.Rows, fn.Dim) }

func (fn *genRowsFn) ProcessElement(_ context.Context, shard int, emit func(featurize.Row)) {
	lo, hi := shardRange(fn.Rows, fn.Shards, shard)
	d := fn.d
	for i := lo; i < hi; i++ {
		emit(featurize.Row{Key: d.keys[i], Time: d.times[i], Features: d.features[i*d.dim : (i+1)*d.dim], Label: "normal", ID: d.ids[i], Source: d.srcs[i]})
	}
}

// genBatchesFn emits its shard's rows as Arrow batches of MaxRows.
type genBatchesFn struct {
	Rows, Shards, Dim, MaxRows int
	d                          *benchRows
}

func (fn *genBatchesFn) Setup() { fn.d = theBenchRows(fn.Rows, fn.Dim) }

func (fn *genBatchesFn) ProcessElement(_ context.Context, shard int, emit func(arrowio.Batch)) {
	lo, hi := shardRange(fn.Rows, fn.Shards, shard)
	d := fn.d
	rb := arrowio.NewRowBuilder(memory.DefaultAllocator, d.dim)
	defer rb.Release()
	for i := lo; i < hi; i++ {
		if rb.Len() == 0 {
			rb.Reserve(fn.MaxRows)
		}
		rb.Append(d.keys[i], d.times[i], d.features[i*d.dim:(i+1)*d.dim], "normal", d.ids[i], d.srcs[i])
		if rb.Len() == fn.MaxRows || i == hi-1 {
			emit(rb.NewBatch())
		}
	}
}

// reshuffleRows moves rows rows of dim features through a Reshuffle, as
// Arrow batches of batchRows rows or one element per row, and returns rows/s.
func reshuffleRows(rows, dim int, arrow bool) float64 {
	if cpuProfile != "" && arrow {
		f, err := os.Create(cpuProfile)
		must(err)
		must(pprof.StartCPUProfile(f))
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
			cpuProfile = ""
		}()
	}
	const shards = 8
	p, s := beam.NewPipelineWithRoot()
	seeds := make([]int, shards)
	for i := range seeds {
		seeds[i] = i
	}
	seed := beam.Reshuffle(s, beam.CreateList(s, seeds))
	var counts beam.PCollection
	if arrow {
		batches := beam.ParDo(s, &genBatchesFn{Rows: rows, Shards: shards, Dim: dim, MaxRows: batchRows}, seed)
		counts = beam.ParDo(s, &countRowsFn{}, beam.Reshuffle(s, batches))
	} else {
		gen := beam.ParDo(s, &genRowsFn{Rows: rows, Shards: shards, Dim: dim}, seed)
		counts = beam.ParDo(s, &countRowFn{}, beam.Reshuffle(s, gen))
	}
	stats.Sum(s, counts)
	res, err := runners.Run(context.Background(), p, runners.Options{Kind: runners.Edge})
	must(err)
	if got := res.Counter("bench", "rows"); got != int64(rows) {
		must(fmt.Errorf("reshuffle delivered %d rows, want %d", got, rows))
	}
	fmt.Fprintf(os.Stderr, "bench: %d rows of %d features through a Reshuffle (arrow %v) in %s\n", rows, dim, arrow, res.Elapsed)
	return float64(rows) / res.Elapsed.Seconds()
}

// benchBatch measures rows through a Reshuffle as Arrow batches and as
// one element per row: rows of the width the featurize figures make (NAB
// temperature windows, 8 features) for the headline figures, and rows of
// BasicMotions' 60 features, where the bytes themselves weigh more.
func benchBatch() {
	for _, c := range []struct {
		suffix    string
		rows, dim int
	}{
		{"", 2_000_000, featurize.Width(sensorWindow.Bands) * len(sensorWindow.Channels)},
		{".dim60", 1_000_000, 60},
	} {
		fmt.Fprintf(os.Stderr, "bench: %d rows of %d features through a Reshuffle as Arrow batches and as elements\n", c.rows, c.dim)
		sharedRowsOnce = sync.Once{}
		theBenchRows(c.rows, c.dim)
		elements := best(2, func() float64 { return reshuffleRows(c.rows, c.dim, false) })
		arrow := best(3, func() float64 { return reshuffleRows(c.rows, c.dim, true) })
		bench("batch.elements.rps"+c.suffix, elements, "rows/s")
		bench("batch.arrow.rps"+c.suffix, arrow, "rows/s")
		bench("batch.arrow.ratio"+c.suffix, arrow/elements, "x")
		sharedRows = nil
	}
}

// benchImages decodes and resizes every magnetic-tile image, on one core
// and on all, as the featurize stage does.
func benchImages(datasets string) {
	var files [][]byte
	src, err := recording.Open(filepath.Join(datasets, "magnetic_tile"), recording.Options{Exclude: []string{"*.png"}, Start: time.Unix(0, 0), Period: time.Second})
	must(err)
	for {
		m, err := src.Next()
		if err != nil {
			break
		}
		files = append(files, m.Value)
	}
	src.Close()
	if len(files) == 0 {
		must(fmt.Errorf("no magnetic-tile images under %s", datasets))
	}
	run := func(workers, rounds int) float64 {
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dst := image.NewGray(image.Rect(0, 0, 32, 32))
				for r := 0; r < rounds; r++ {
					for i := w; i < len(files); i += workers {
						g, err := message.DecodeImage(files[i], message.ImageLimits{})
						must(err)
						draw.CatmullRom.Scale(dst, dst.Bounds(), g, g.Bounds(), draw.Src, nil)
					}
				}
			}()
		}
		wg.Wait()
		return float64(rounds*len(files)) / time.Since(start).Seconds()
	}
	run(1, 1) // warm up
	bench("image.decode_resize.ips", best(3, func() float64 { return run(runtime.GOMAXPROCS(0), 2) }), "images/s")
	bench("image.decode_resize.ips_1core", best(3, func() float64 { return run(1, 1) }), "images/s")
}

// goBenchRE matches a `go test -bench -benchmem` result line: the name,
// then value-unit pairs.
var goBenchRE = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// benchAllocs runs the decode, featurize and coder testing.B benchmarks
// and prints their time and allocations per row (an op is one row, or the
// benchmark reports ns/row and allocs/row itself).
func benchAllocs() {
	fmt.Fprintf(os.Stderr, "bench: go test benchmarks (allocations per row)\n")
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^(BenchmarkDecodeSensor|BenchmarkWindowRows|BenchmarkCoder)$", "-benchmem", "-benchtime", "2s",
		"./transforms/decode/", "./transforms/featurize/", "./io/arrowio/")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	must(err)
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		m := goBenchRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		metrics := map[string]float64{}
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err == nil {
				metrics[f[i+1]] = v
			}
		}
		name := strings.ToLower(strings.TrimPrefix(m[1], "Benchmark"))
		for _, u := range [][2]string{{"ns/row", "ns/op"}, {"allocs/row", "allocs/op"}} {
			v, ok := metrics[u[0]]
			if !ok {
				v, ok = metrics[u[1]]
			}
			if ok {
				bench("gobench."+name+"."+strings.ReplaceAll(u[0], "/", "_per_"), v, u[0])
			}
		}
	}
}

// benchDecodeFormats runs BenchmarkDecodeFormats: one reading decoded by
// muon's JSON parser, by fastjson (a tuned allocation-free JSON parser,
// the same fields into the same records.Reading) and in muon's binary
// format, for a 3-, 6- and 64-value reading (press, BasicMotions,
// optdigits).
func benchDecodeFormats() {
	fmt.Fprintf(os.Stderr, "bench: go test -bench BenchmarkDecodeFormats ./message/\n")
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkDecodeFormats$", "-benchmem", "-benchtime", "2s", "./message/")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	must(err)
	ns := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		m := goBenchRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			if f[i+1] == "ns/op" {
				v, err := strconv.ParseFloat(f[i], 64)
				must(err)
				ns[strings.TrimPrefix(m[1], "BenchmarkDecodeFormats/")] = v
			}
		}
	}
	for _, set := range []string{"press", "basicmotions", "digits"} {
		j, fj, b := ns[set+"/json"], ns[set+"/fastjson"], ns[set+"/binary"]
		if j == 0 || fj == 0 || b == 0 {
			must(fmt.Errorf("BenchmarkDecodeFormats printed no %s figures:\n%s", set, out))
		}
		bench("decode."+set+".json_ns", j, "ns")
		bench("decode."+set+".fastjson_ns", fj, "ns")
		bench("decode."+set+".binary_ns", b, "ns")
		bench("decode."+set+".json_vs_fastjson", j/fj, "x")
		bench("decode."+set+".binary_speedup", j/b, "x")
	}
}
