package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/models"
	"gonum.org/v1/gonum/mat"
)

func init() {
	for _, t := range []reflect.Type{reflect.TypeOf((*State)(nil)).Elem(), reflect.TypeOf((*shardResult)(nil)).Elem(), reflect.TypeOf((*partialMetrics)(nil)).Elem()} {
		beam.RegisterType(t)
	}
	// Named coder functions: Beam finds coders by function name, which
	// generic instantiations share.
	beam.RegisterCoder(reflect.TypeOf((*State)(nil)).Elem(), encodeState, decodeState)
	beam.RegisterCoder(reflect.TypeOf((*shardResult)(nil)).Elem(), encodeShardResult, decodeShardResult)
	beam.RegisterCoder(reflect.TypeOf((*partialMetrics)(nil)).Elem(), encodePartialMetrics, decodePartialMetrics)
	beam.RegisterType(reflect.TypeOf((*models.Metrics)(nil)).Elem())
	beam.RegisterCoder(reflect.TypeOf((*models.Metrics)(nil)).Elem(), encodeMetrics, decodeMetrics)
	register.Function1x1(toMetrics)
	register.Iter1[models.Metrics]()
	register.DoFn2x1[[]byte, func(State), error](&initFn{})
	register.DoFn2x1[arrowio.Batch, func(int, arrowio.Batch), error](&shardFn{})
	register.DoFn4x1[int, func(*arrowio.Batch) bool, State, func(shardResult), error](&epochFn{})
	register.DoFn5x1[[]byte, State, func(*shardResult) bool, func(*partialMetrics) bool, func(State), error](&nextFn{})
	register.DoFn4x1[context.Context, arrowio.Batch, State, func(partialMetrics), error](&evalFn{})
	register.Combiner3[shardResult, shardResult, shardResult](&averageFn{})
	register.Combiner1[partialMetrics](&metricsFn{})
	register.Iter1[shardResult]()
	register.Iter1[partialMetrics]()
	register.Emitter1[State]()
	register.Emitter2[int, arrowio.Batch]()
	register.Emitter1[shardResult]()
	register.Emitter1[partialMetrics]()
	register.Iter1[arrowio.Batch]()
}

// Params configures DataParallel.
type Params struct {
	// Model describes the model to train. Required.
	Model models.Desc
	// Optimizer describes the optimizer. Required.
	Optimizer models.OptimizerDesc
	// Labels are the class names in class-index order, for a softmax head;
	// a row's label must be one of them. A squared-error head reads a row's
	// label as its target value.
	Labels []string
	// Epochs is how many epochs to run. Required.
	Epochs int
	// BatchSize is the minibatch size. Default DefaultBatchSize.
	BatchSize int
	// Shards is how many shards train at once, each on its part of the
	// data, from the same model. Default DefaultShards.
	Shards int
	// Seed seeds the model's initial weights and, with the epoch and the
	// shard, each shard's row order (PCG(Seed, epoch<<32 | shard)).
	Seed uint64
	// Patience stops training after this many epochs without a lower
	// validation loss and keeps the best epoch's model. Default 0: run
	// every epoch.
	Patience int
}

// Defaults of training, which Params and job specs take.
const (
	// DefaultEpochs is how many epochs a train job runs.
	DefaultEpochs = 10
	// DefaultBatchSize is the minibatch size.
	DefaultBatchSize = 32
	// DefaultShards is how many shards train at once: serial minibatch SGD.
	DefaultShards = 1
	// DefaultSeed seeds the initial weights and the row order.
	DefaultSeed = 1
	// DefaultValidation is the fraction of rows held out to measure every
	// epoch.
	DefaultValidation = 0.2
)

func (p *Params) validate() error {
	if p.BatchSize == 0 {
		p.BatchSize = DefaultBatchSize
	}
	if p.Shards == 0 {
		p.Shards = DefaultShards
	}
	if err := p.Model.Validate(); err != nil {
		return err
	}
	if err := p.Optimizer.Validate(); err != nil {
		return err
	}
	if p.Epochs < 1 || p.BatchSize < 1 || p.Shards < 1 || p.Patience < 0 {
		return fmt.Errorf("epochs %d, batch size %d and shards %d must be ≥ 1, patience %d ≥ 0", p.Epochs, p.BatchSize, p.Shards, p.Patience)
	}
	m, err := models.New(p.Model, p.Seed)
	if err != nil {
		return err
	}
	if m.Head() == models.SoftmaxHead && len(p.Labels) != m.Outputs() {
		return fmt.Errorf("%d labels for a model of %d classes", len(p.Labels), m.Outputs())
	}
	return nil
}

// State is the model between epochs and what the epoch measured.
type State struct {
	// Epoch is how many epochs have run; 0 is the initial model.
	Epoch  int                   `json:"epoch"`
	Params []float64             `json:"params"`
	Opt    models.OptimizerState `json:"optimizer"`
	// Trained is the last epoch that trained: Epoch, unless training
	// stopped early.
	Trained int `json:"trained"`
	// Rows is how many rows the epoch trained on (0 once stopped);
	// TrainLoss their mean loss before each step (the last trained
	// epoch's, once stopped).
	Rows      int64   `json:"rows"`
	TrainLoss float64 `json:"train_loss"`
	// Seconds is how long the epoch's slowest shard trained: shards train
	// at once, so Rows/Seconds is the epoch's training rate.
	Seconds float64 `json:"seconds"`
	// Val are the validation metrics of Params (N is 0 without
	// validation data).
	Val models.Metrics `json:"validation"`
	// Best is the epoch with the lowest validation loss so far (0: none
	// yet), BestLoss that loss and BestParams its parameters; Stopped is
	// set once Patience epochs have passed without a better one.
	Best       int       `json:"best_epoch"`
	BestLoss   float64   `json:"best_loss"`
	BestParams []float64 `json:"-"`
	Stopped    bool      `json:"stopped"`
}

// stateJSON carries BestParams, which State's JSON form leaves out so that
// reports stay small.
type stateJSON struct {
	State
	BestParams []float64 `json:"best_params"`
}

// Model returns the model to keep: the best epoch's with early stopping,
// else the last.
func (st State) Model(d models.Desc) (*models.Model, error) {
	if st.BestParams != nil {
		return models.FromParams(d, st.BestParams)
	}
	return models.FromParams(d, st.Params)
}

// DataParallel trains a model on Arrow batches of arrowio.RowSchema rows:
// PCollection<arrowio.Batch> (train), PCollection<arrowio.Batch>
// (validation, may be empty) → PCollection<State> (one element: after the
// last epoch) and PCollection<State> (one element per epoch, for reports).
//
// The batches are spread over Shards shards, once. Every epoch, each shard
// starts from the epoch's model (a side input), runs one epoch of minibatch
// SGD over its rows in the order of their ids shuffled with PCG(Seed,
// epoch<<32 | shard), and a combiner averages the shard models and
// optimizer states weighted by their rows. With one shard this is serial
// minibatch SGD. The validation metrics of every epoch's model decide early
// stopping. Epochs are unrolled in the pipeline: the input must be bounded.
// It panics if p is invalid.
func DataParallel(s beam.Scope, p Params, train, validation beam.PCollection) (final, epochs beam.PCollection) {
	s = s.Scope("train.DataParallel")
	if err := p.validate(); err != nil {
		panic("train.DataParallel: " + err.Error())
	}
	shards := beam.GroupByKey(s, beam.ParDo(s, &shardFn{Shards: p.Shards}, train))
	state := beam.ParDo(s, &initFn{Params: p}, beam.Impulse(s))
	var reports []beam.PCollection
	for e := 1; e <= p.Epochs; e++ {
		es := s.Scope(fmt.Sprintf("epoch%d", e))
		partial := beam.ParDo(es, &epochFn{Params: p, Epoch: e}, shards, beam.SideInput{Input: state})
		merged := beam.Combine(es, &averageFn{}, partial)
		// Validation of the averaged model: evaluate on a provisional next
		// state, then decide on early stopping with the metrics.
		next := beam.ParDo(es, &nextFn{Params: p, Epoch: e}, beam.Impulse(es), beam.SideInput{Input: state}, beam.SideInput{Input: merged}, beam.SideInput{Input: beam.Create(es, partialMetrics{})})
		metrics := beam.Combine(es, &metricsFn{}, beam.ParDo(es, &evalFn{Params: p}, validation, beam.SideInput{Input: next}))
		state = beam.ParDo(es, &nextFn{Params: p, Epoch: e, Decide: true}, beam.Impulse(es), beam.SideInput{Input: state}, beam.SideInput{Input: merged}, beam.SideInput{Input: metrics})
		reports = append(reports, state)
	}
	return state, beam.Flatten(s, reports...)
}

// Evaluate measures the model a final State keeps (State.Model: the best
// epoch's with early stopping) on held-out data: PCollection<State> (one
// element, DataParallel's final), PCollection<arrowio.Batch> →
// PCollection<models.Metrics>, one element, none if there are no batches.
// It panics if p is invalid.
func Evaluate(s beam.Scope, p Params, final, batches beam.PCollection) beam.PCollection {
	s = s.Scope("train.Evaluate")
	if err := p.validate(); err != nil {
		panic("train.Evaluate: " + err.Error())
	}
	pm := beam.Combine(s, &metricsFn{}, beam.ParDo(s, &evalFn{Params: p, Final: true}, batches, beam.SideInput{Input: final}))
	return beam.ParDo(s, toMetrics, pm)
}

func toMetrics(pm partialMetrics) models.Metrics { return pm.metrics() }

// initFn makes the initial state.
type initFn struct{ Params Params }

func (fn *initFn) ProcessElement(_ []byte, emit func(State)) error {
	m, err := models.New(fn.Params.Model, fn.Params.Seed)
	if err != nil {
		return err
	}
	opt, err := models.NewOptimizer(fn.Params.Optimizer, m.NumParams())
	if err != nil {
		return err
	}
	emit(State{Params: m.Params(), Opt: opt.State()})
	return nil
}

// shardFn spreads rows over shards by a hash of their ids, so a row lands
// on the same shard in every run however the rows were batched. With one
// shard a batch passes whole; otherwise each batch is split into one
// batch per shard (the rows copied once: the shards are computed once for
// all epochs).
type shardFn struct{ Shards int }

func (fn *shardFn) ProcessElement(b arrowio.Batch, emit func(int, arrowio.Batch)) error {
	n := b.Rows()
	if n == 0 {
		return nil
	}
	if fn.Shards == 1 {
		emit(0, b)
		return nil
	}
	vals, _, dim, err := arrowio.Features(b.Record)
	if err != nil {
		return err
	}
	rec := b.Record
	keys, okK := rec.Column(arrowio.KeyIndex).(*array.String)
	times, okT := rec.Column(arrowio.TimeIndex).(*array.Timestamp)
	labels, okL := rec.Column(arrowio.LabelIndex).(*array.String)
	ids, okI := rec.Column(arrowio.IDIndex).(*array.String)
	if !okK || !okT || !okL || !okI {
		return fmt.Errorf("train: batch schema %s is not arrowio.RowSchema", rec.Schema())
	}
	builders := make([]*arrowio.RowBuilder, fn.Shards)
	for i := 0; i < n; i++ {
		id := ids.Value(i)
		sh := shardOf(id, fn.Shards)
		if builders[sh] == nil {
			builders[sh] = arrowio.NewRowBuilder(memory.DefaultAllocator, dim)
			builders[sh].Reserve(n/fn.Shards + 1)
		}
		builders[sh].AppendBytes([]byte(keys.Value(i)), int64(times.Value(i)), vals[i*dim:(i+1)*dim],
			[]byte(labels.Value(i)), labels.IsValid(i), []byte(id), arrowio.SourceAt(rec, i))
	}
	for sh, rb := range builders {
		if rb != nil {
			emit(sh, rb.NewBatch())
			rb.Release()
		}
	}
	return nil
}

// shardOf is a row's shard: FNV-1a of its id.
func shardOf(id string, shards int) int {
	var h uint32 = 2166136261
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return int(h % uint32(shards))
}

// rows is a shard's or a batch's data as a matrix and targets.
type rows struct {
	ids []string
	x   []float64
	y   models.Targets
	dim int
}

// appendBatch appends b's rows; labels become class indexes or values.
func (r *rows) appendBatch(b arrowio.Batch, p *Params, classes map[string]int) error {
	vals, n, dim, err := arrowio.Features(b.Record)
	if err != nil {
		return err
	}
	if r.dim == 0 {
		r.dim = dim
	}
	if dim != r.dim || dim != p.Model.Inputs && p.Model.Inputs != 0 {
		return fmt.Errorf("train: batch of %d features, model of %d inputs", dim, p.Model.Inputs)
	}
	labels, ids := b.Record.Column(arrowio.LabelIndex), b.Record.Column(arrowio.IDIndex)
	for i := 0; i < n; i++ {
		id := ids.ValueStr(i)
		if labels.IsNull(i) {
			return fmt.Errorf("train: row %s has no label", id)
		}
		l := labels.ValueStr(i)
		if classes != nil {
			c, ok := classes[l]
			if !ok {
				return fmt.Errorf("train: row %s has label %q, not one of the model's %d classes", id, l, len(classes))
			}
			r.y.Classes = append(r.y.Classes, c)
		} else {
			v, err := strconv.ParseFloat(l, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("train: row %s has target %q, not a finite number", id, l)
			}
			r.y.Values = append(r.y.Values, v)
		}
		r.ids = append(r.ids, id)
	}
	r.x = append(r.x, vals[:n*dim]...)
	return nil
}

// sorted returns the rows in the order of their ids.
func (r *rows) sorted() *rows {
	order := make([]int, len(r.ids))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return r.ids[order[a]] < r.ids[order[b]] })
	out := &rows{dim: r.dim, ids: make([]string, len(order)), x: make([]float64, 0, len(r.x))}
	for k, i := range order {
		out.ids[k] = r.ids[i]
		out.x = append(out.x, r.x[i*r.dim:(i+1)*r.dim]...)
		if r.y.Classes != nil {
			out.y.Classes = append(out.y.Classes, r.y.Classes[i])
		} else {
			out.y.Values = append(out.y.Values, r.y.Values[i])
		}
	}
	return out
}

func (r *rows) matrix() *mat.Dense {
	if len(r.ids) == 0 {
		return &mat.Dense{}
	}
	return mat.NewDense(len(r.ids), r.dim, r.x)
}

func classIndex(p *Params) map[string]int {
	if len(p.Labels) == 0 {
		return nil
	}
	classes := make(map[string]int, len(p.Labels))
	for i, l := range p.Labels {
		classes[l] = i
	}
	return classes
}

// shardResult is one shard's model after an epoch, or (in the combiner)
// the row-weighted sum of several.
type shardResult struct {
	// Shard is the (first) shard's number.
	Shard   int     `json:"shard"`
	Shards  int     `json:"shards"`
	Rows    int64   `json:"rows"`
	LossSum float64 `json:"loss_sum"`
	// Seconds is the longest shard's training time.
	Seconds float64 `json:"seconds"`
	// Base is, in a stream, the window end of the published model the
	// shards started from (the latest, after merging).
	Base   time.Time             `json:"base"`
	Params []float64             `json:"params"`
	Opt    models.OptimizerState `json:"optimizer"`
}

// epochFn trains one shard for one epoch from the epoch's state. A runner
// may hand it several shards in one bundle (prism gives it all of them),
// so it trains the shards of a bundle concurrently, up to GOMAXPROCS at
// once, and emits their results when the bundle finishes.
type epochFn struct {
	Params Params
	Epoch  int

	wg   sync.WaitGroup
	sem  chan struct{}
	mu   sync.Mutex
	done []shardResult
	errs []error
}

func (fn *epochFn) Setup() { fn.sem = make(chan struct{}, runtime.GOMAXPROCS(0)) }

func (fn *epochFn) ProcessElement(shard int, iter func(*arrowio.Batch) bool, st State, _ func(shardResult)) error {
	if st.Stopped {
		return nil
	}
	p := fn.Params
	classes := classIndex(&p)
	var data rows
	var b arrowio.Batch
	for iter(&b) {
		if err := data.appendBatch(b, &p, classes); err != nil {
			return err
		}
	}
	fn.wg.Add(1)
	fn.sem <- struct{}{}
	go func() {
		defer func() { <-fn.sem; fn.wg.Done() }()
		r, err := trainShard(&p, fn.Epoch, shard, &data, st)
		fn.mu.Lock()
		defer fn.mu.Unlock()
		if err != nil {
			fn.errs = append(fn.errs, err)
			return
		}
		fn.done = append(fn.done, r)
	}()
	return nil
}

func (fn *epochFn) FinishBundle(_ State, emit func(shardResult)) error {
	fn.wg.Wait()
	if len(fn.errs) > 0 {
		err := errors.Join(fn.errs...)
		fn.done, fn.errs = nil, nil
		return err
	}
	// In shard order, so that the averaging sums in the same order in
	// every run.
	sort.Slice(fn.done, func(i, j int) bool { return fn.done[i].Shard < fn.done[j].Shard })
	for _, r := range fn.done {
		emit(r)
	}
	fn.done = nil
	return nil
}

// trainShard runs one epoch of minibatch SGD over a shard's rows, in the
// order of their ids shuffled with PCG(Seed, epoch<<32 | shard), from the
// state's model and optimizer.
func trainShard(p *Params, epoch, shard int, data *rows, st State) (shardResult, error) {
	m, err := models.FromParams(p.Model, st.Params)
	if err != nil {
		return shardResult{}, err
	}
	opt, err := models.NewOptimizer(p.Optimizer, m.NumParams())
	if err != nil {
		return shardResult{}, err
	}
	if err := opt.SetState(st.Opt); err != nil {
		return shardResult{}, err
	}
	d := data.sorted()
	x := d.matrix()
	if err := m.CheckData(x, d.y); err != nil {
		return shardResult{}, fmt.Errorf("train: shard %d: %w", shard, err)
	}
	rng := rand.New(rand.NewPCG(p.Seed, uint64(epoch)<<32|uint64(shard)))
	start := time.Now()
	loss, n := models.NewTrainer(m, opt).Epoch(x, d.y, p.BatchSize, rng)
	return shardResult{Shard: shard, Shards: 1, Rows: int64(n), LossSum: loss * float64(n), Seconds: time.Since(start).Seconds(),
		Params: m.Params(), Opt: opt.State()}, nil
}

// averageFn averages shard models and optimizer states weighted by rows.
// One shard's result passes through exactly.
type averageFn struct{}

func (averageFn) CreateAccumulator() shardResult { return shardResult{} }

func (averageFn) AddInput(a, r shardResult) shardResult { return merge(a, r) }

func (averageFn) MergeAccumulators(a, b shardResult) shardResult { return merge(a, b) }

func (averageFn) ExtractOutput(a shardResult) shardResult {
	if a.Shards <= 1 || a.Rows == 0 {
		return a
	}
	return scaledBy(a, 1/float64(a.Rows))
}

// scaledBy is r with its parameters and optimizer slots times w.
func scaledBy(r shardResult, w float64) shardResult {
	out := r
	out.Params = scaled(r.Params, w)
	out.Opt.Slots = make([][]float64, len(r.Opt.Slots))
	for i, s := range r.Opt.Slots {
		out.Opt.Slots[i] = scaled(s, w)
	}
	return out
}

func scaled(v []float64, w float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x * w
	}
	return out
}

// weighted is r as a row-weighted sum (a single shard's values times its
// rows); an accumulator of several shards already is one.
func weighted(r shardResult) shardResult {
	if r.Shards != 1 {
		return r
	}
	return scaledBy(r, float64(r.Rows))
}

func merge(a, b shardResult) shardResult {
	switch {
	case a.Shards == 0:
		return b
	case b.Shards == 0:
		return a
	}
	n := a.Shards + b.Shards
	a, b = weighted(a), weighted(b)
	out := shardResult{Shard: min(a.Shard, b.Shard), Shards: n, Rows: a.Rows + b.Rows, LossSum: a.LossSum + b.LossSum, Seconds: max(a.Seconds, b.Seconds),
		Params: make([]float64, len(a.Params)), Opt: a.Opt}
	for i := range out.Params {
		out.Params[i] = a.Params[i] + b.Params[i]
	}
	if b.Base.After(a.Base) {
		out.Base = b.Base
	} else {
		out.Base = a.Base
	}
	out.Opt.Steps = max(a.Opt.Steps, b.Opt.Steps)
	out.Opt.Epochs = max(a.Opt.Epochs, b.Opt.Epochs)
	out.Opt.Slots = make([][]float64, len(a.Opt.Slots))
	for i := range a.Opt.Slots {
		out.Opt.Slots[i] = make([]float64, len(a.Opt.Slots[i]))
		for j := range a.Opt.Slots[i] {
			out.Opt.Slots[i][j] = a.Opt.Slots[i][j] + b.Opt.Slots[i][j]
		}
	}
	return out
}

// nextFn makes the state after an epoch from the previous state and the
// averaged shards; with Decide, it also takes the validation metrics and
// decides on early stopping.
type nextFn struct {
	Params Params
	Epoch  int
	Decide bool
}

func (fn *nextFn) ProcessElement(_ []byte, prev State, mergedIter func(*shardResult) bool, pmIter func(*partialMetrics) bool, emit func(State)) error {
	// Combines of nothing (every shard stopped, no validation data) give
	// no element.
	var merged shardResult
	mergedIter(&merged)
	var pm partialMetrics
	pmIter(&pm)
	next := prev
	next.Epoch = fn.Epoch
	next.Rows, next.Seconds = 0, 0
	if !prev.Stopped && merged.Rows > 0 {
		next.Params, next.Opt = merged.Params, merged.Opt
		next.Rows, next.TrainLoss, next.Seconds = merged.Rows, merged.LossSum/float64(merged.Rows), merged.Seconds
		next.Trained = fn.Epoch
	}
	if !fn.Decide {
		emit(next)
		return nil
	}
	next.Val = pm.metrics()
	if prev.Stopped || next.Val.N == 0 || fn.Params.Patience == 0 {
		emit(next)
		return nil
	}
	if prev.Best == 0 || next.Val.Loss < prev.BestLoss {
		next.Best, next.BestLoss, next.BestParams = fn.Epoch, next.Val.Loss, next.Params
	} else if fn.Epoch-prev.Best >= fn.Params.Patience {
		next.Stopped = true
	}
	emit(next)
	return nil
}

// partialMetrics sums what models.Metrics averages, so that batches merge.
type partialMetrics struct {
	N         int64     `json:"n"`
	Outputs   int       `json:"outputs"`
	LossSum   float64   `json:"loss_sum"`
	SquareSum float64   `json:"square_sum"`
	AbsSum    float64   `json:"abs_sum"`
	Confusion [][]int64 `json:"confusion"`
}

func (pm partialMetrics) metrics() models.Metrics {
	if pm.N == 0 {
		return models.Metrics{}
	}
	m := models.Metrics{N: int(pm.N), Loss: pm.LossSum / float64(pm.N)}
	if pm.Confusion != nil {
		c := make([][]int, len(pm.Confusion))
		for i, row := range pm.Confusion {
			c[i] = make([]int, len(row))
			for j, v := range row {
				c[i][j] = int(v)
			}
		}
		m.Confusion, m.Accuracy, m.BalancedAccuracy = c, models.Accuracy(c), models.BalancedAccuracy(c)
	} else if pm.Outputs > 0 {
		cells := float64(pm.N) * float64(pm.Outputs)
		m.RMSE, m.MAE = math.Sqrt(pm.SquareSum/cells), pm.AbsSum/cells
	}
	return m
}

// evalFn measures a state's model (or, with Final, the model to keep) on
// one batch.
type evalFn struct {
	Params Params
	Final  bool

	classes map[string]int
	epoch   int
	pred    *models.Predictor
}

func (fn *evalFn) Setup() { fn.classes = classIndex(&fn.Params) }

func (fn *evalFn) ProcessElement(_ context.Context, b arrowio.Batch, st State, emit func(partialMetrics)) error {
	p := fn.Params
	var data rows
	if err := data.appendBatch(b, &p, fn.classes); err != nil {
		return err
	}
	if fn.pred == nil || fn.epoch != st.Epoch {
		var m *models.Model
		var err error
		if fn.Final {
			m, err = st.Model(p.Model)
		} else {
			m, err = models.FromParams(p.Model, st.Params)
		}
		if err != nil {
			return err
		}
		fn.pred, fn.epoch = models.NewPredictor(m), st.Epoch
	}
	x := data.matrix()
	met := fn.pred.Evaluate(x, data.y)
	pm := partialMetrics{N: int64(met.N), LossSum: met.Loss * float64(met.N)}
	if met.Confusion != nil {
		pm.Confusion = make([][]int64, len(met.Confusion))
		for i, row := range met.Confusion {
			pm.Confusion[i] = make([]int64, len(row))
			for j, v := range row {
				pm.Confusion[i][j] = int64(v)
			}
		}
	} else {
		k := len(data.y.Values) / max(1, met.N)
		cells := float64(met.N * k)
		pm.Outputs, pm.SquareSum, pm.AbsSum = k, met.RMSE*met.RMSE*cells, met.MAE*cells
	}
	emit(pm)
	return nil
}

// metricsFn sums partial metrics.
type metricsFn struct{}

func (metricsFn) MergeAccumulators(a, b partialMetrics) partialMetrics {
	out := partialMetrics{N: a.N + b.N, Outputs: max(a.Outputs, b.Outputs), LossSum: a.LossSum + b.LossSum,
		SquareSum: a.SquareSum + b.SquareSum, AbsSum: a.AbsSum + b.AbsSum}
	switch {
	case a.Confusion == nil:
		out.Confusion = b.Confusion
	case b.Confusion == nil:
		out.Confusion = a.Confusion
	default:
		out.Confusion = make([][]int64, len(a.Confusion))
		for i := range a.Confusion {
			out.Confusion[i] = make([]int64, len(a.Confusion[i]))
			for j := range a.Confusion[i] {
				out.Confusion[i][j] = a.Confusion[i][j] + b.Confusion[i][j]
			}
		}
	}
	return out
}

var errCorrupt = errors.New("train: corrupt element encoding")

func encodeState(st State) ([]byte, error) {
	return json.Marshal(stateJSON{State: st, BestParams: st.BestParams})
}

func decodeState(b []byte) (State, error) {
	var sj stateJSON
	if err := jsonDecode(b, &sj); err != nil {
		return State{}, err
	}
	sj.State.BestParams = sj.BestParams
	return sj.State, nil
}

func encodeMetrics(m models.Metrics) ([]byte, error) { return json.Marshal(m) }

func decodeMetrics(b []byte) (m models.Metrics, err error) { return m, jsonDecode(b, &m) }

func encodeShardResult(r shardResult) ([]byte, error) { return json.Marshal(r) }

func decodeShardResult(b []byte) (r shardResult, err error) { return r, jsonDecode(b, &r) }

func encodePartialMetrics(pm partialMetrics) ([]byte, error) { return json.Marshal(pm) }

func decodePartialMetrics(b []byte) (pm partialMetrics, err error) { return pm, jsonDecode(b, &pm) }

func jsonDecode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return nil
}

// Data gathers batches of arrowio.RowSchema rows into a matrix and
// targets for p's model, in the order of the rows' ids.
func Data(p Params, batches []arrowio.Batch) (*mat.Dense, models.Targets, error) {
	classes := classIndex(&p)
	var data rows
	for _, b := range batches {
		if err := data.appendBatch(b, &p, classes); err != nil {
			return nil, models.Targets{}, err
		}
	}
	d := data.sorted()
	return d.matrix(), d.y, nil
}
