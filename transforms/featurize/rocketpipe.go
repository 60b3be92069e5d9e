package featurize

import (
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"reflect"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/io/arrowio"
)

func init() {
	t := reflect.TypeOf((*Rocket)(nil)).Elem()
	beam.RegisterType(t)
	beam.RegisterCoder(t, encodeRocket, decodeRocket)
	register.DoFn3x1[[]byte, func(*arrowio.Batch) bool, func(Rocket), error](&fitRocketFn{})
	register.DoFn4x1[context.Context, arrowio.Batch, func(*Rocket) bool, func(arrowio.Batch), error](&rocketBatchFn{})
	register.Emitter1[Rocket]()
	register.Iter1[Rocket]()
}

func encodeRocket(r Rocket) ([]byte, error) { return json.Marshal(r) }

func decodeRocket(b []byte) (Rocket, error) {
	var r Rocket
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("featurize: MiniRocket encoding: %w", err)
	}
	return r, r.Check()
}

// MaxFitSeries is the most training series FitRocketOn keeps to fit the
// biases to: each kernel and dilation draws one of them.
const MaxFitSeries = 1024

// FitRocketOn fits MiniRocket (FitRocket) to training batches of raw
// series rows, channels×length values each (CaseParams.Length):
// PCollection<arrowio.Batch> → PCollection<Rocket>, one element. The
// series it fits to are the MaxFitSeries rows with the lowest hash of the
// seed and their ids: the same ones however the rows are batched or
// ordered. It panics if p is invalid.
func FitRocketOn(s beam.Scope, p RocketParams, channels, length int, batches beam.PCollection) beam.PCollection {
	s = s.Scope("featurize.FitRocket")
	if err := p.check(); err != nil {
		panic(err.Error())
	}
	if channels < 1 || length < 1 {
		panic(fmt.Sprintf("featurize.FitRocketOn: %d channels of %d values", channels, length))
	}
	return beam.ParDo(s, &fitRocketFn{Params: p, Channels: channels, Length: length}, beam.Impulse(s), beam.SideInput{Input: batches})
}

type fitRocketFn struct {
	Params           RocketParams
	Channels, Length int
}

// sampled is a series kept for fitting, by the hash of its id.
type sampled struct {
	key    uint64
	id     string
	values []float64
}

// sample keeps the n series of lowest key: a max-heap on key.
type sample []sampled

func (h sample) Len() int { return len(h) }
func (h sample) Less(i, j int) bool {
	return h[i].key > h[j].key || h[i].key == h[j].key && h[i].id > h[j].id
}
func (h sample) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *sample) Push(x any)   { *h = append(*h, x.(sampled)) }
func (h *sample) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (fn *fitRocketFn) ProcessElement(_ []byte, iter func(*arrowio.Batch) bool, emit func(Rocket)) error {
	width := fn.Channels * fn.Length
	var kept sample
	var seed [8]byte
	binary.LittleEndian.PutUint64(seed[:], fn.Params.Seed)
	var b arrowio.Batch
	for iter(&b) {
		v, err := arrowio.View(b)
		if err != nil {
			return fmt.Errorf("featurize: %w", err)
		}
		if v.Rows() > 0 && v.Dim() != width {
			return fmt.Errorf("featurize: series rows of %d values for MiniRocket of %d channels of %d", v.Dim(), fn.Channels, fn.Length)
		}
		for i := 0; i < v.Rows(); i++ {
			h := fnv.New64a()
			h.Write(seed[:])
			h.Write([]byte(v.ID(i)))
			x := sampled{key: h.Sum64(), id: v.ID(i)}
			if len(kept) == MaxFitSeries && (x.key > kept[0].key || x.key == kept[0].key && x.id > kept[0].id) {
				continue // above the largest kept
			}
			x.values = append([]float64(nil), v.Features(i)...)
			heap.Push(&kept, x)
			if len(kept) > MaxFitSeries {
				heap.Pop(&kept)
			}
		}
	}
	// In key order, so that the draws see the same list every run.
	series := make([][]float64, len(kept))
	for i := len(kept) - 1; i >= 0; i-- {
		series[i] = heap.Pop(&kept).(sampled).values
	}
	r, err := FitRocket(series, fn.Channels, fn.Length, fn.Params)
	if err != nil {
		return err
	}
	emit(*r)
	return nil
}

// RocketBatches makes MiniRocket's features of batches of raw series rows
// with the fitted transform (PCollection<Rocket>, one element, a side
// input): PCollection<arrowio.Batch> → PCollection<arrowio.Batch> of
// Rocket.Width() features, with the rows' keys, times, labels, ids and
// sources.
func RocketBatches(s beam.Scope, rocket, batches beam.PCollection) beam.PCollection {
	s = s.Scope("featurize.RocketBatches")
	return beam.ParDo(s, &rocketBatchFn{}, batches, beam.SideInput{Input: rocket})
}

type rocketBatchFn struct {
	work RocketWork
	row  []float64
}

var rocketRows = beam.NewCounter(Namespace, "rocket.rows")

func (fn *rocketBatchFn) ProcessElement(ctx context.Context, b arrowio.Batch, rocket func(*Rocket) bool, emit func(arrowio.Batch)) error {
	var r Rocket
	if !rocket(&r) {
		return fmt.Errorf("featurize: no fitted MiniRocket: the job read no training series")
	}
	v, err := arrowio.View(b)
	if err != nil {
		return fmt.Errorf("featurize: %w", err)
	}
	n := v.Rows()
	if n == 0 {
		return nil
	}
	out := arrowio.NewRowBuilder(memory.DefaultAllocator, r.Width())
	defer out.Release()
	out.Reserve(n)
	for i := 0; i < n; i++ {
		fn.row, err = r.TransformWith(&fn.work, fn.row[:0], v.Features(i))
		if err != nil {
			return fmt.Errorf("row %s: %w", v.ID(i), err)
		}
		v.AppendTo(out, i, fn.row)
	}
	rocketRows.Inc(ctx, int64(n))
	emit(out.NewBatch())
	return nil
}
