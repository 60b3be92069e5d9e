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
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/transforms/analyze"
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
	register.DoFn6x1[context.Context, int, func(*arrowio.Batch) bool, State, func(*analyze.Spec) bool, func(shardResult), error](&roundFn{})
	register.DoFn8x1[context.Context, []byte, State, func(*analyze.Spec) bool, func(*arrowio.Batch) bool, func(*arrowio.Batch) bool, func(State), func(State), error](&soloFn{})
	register.DoFn5x1[[]byte, State, func(*shardResult) bool, func(*partialMetrics) bool, func(State), error](&nextFn{})
	register.DoFn5x1[context.Context, arrowio.Batch, State, func(*analyze.Spec) bool, func(partialMetrics), error](&evalFn{})
	register.Iter1[analyze.Spec]()
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
	// SyncEvery is how many epochs each shard trains on its own between
	// two averagings of the shard models (local SGD). Default 0: with one
	// shard, every epoch in one round; with several, ⌈Epochs/MaxRounds⌉.
	SyncEvery int
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
	// MaxRounds is the most rounds of averaging that several shards run
	// when SyncEvery is 0: the pipeline has a stage per round, so its size
	// and its memory do not grow with Epochs.
	MaxRounds = 10
)

// syncEvery is how many epochs a round runs.
func (p *Params) syncEvery() int {
	switch {
	case p.SyncEvery > 0:
		return min(p.SyncEvery, p.Epochs)
	case p.Shards == 1:
		return p.Epochs
	}
	return (p.Epochs + MaxRounds - 1) / MaxRounds
}

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
	if p.Epochs < 1 || p.BatchSize < 1 || p.Shards < 1 || p.Patience < 0 || p.SyncEvery < 0 {
		return fmt.Errorf("epochs %d, batch size %d and shards %d must be ≥ 1, patience %d and sync every %d ≥ 0", p.Epochs, p.BatchSize, p.Shards, p.Patience, p.SyncEvery)
	}
	if p.Optimizer.Kind == models.Ridge && (p.Shards != 1 || p.Epochs != 1 || p.Patience != 0 || p.Model.Kind != models.Softmax && p.Model.Kind != models.Linear) {
		return fmt.Errorf("ridge solves a softmax or linear model once on one shard: %s model, %d epochs, %d shards, patience %d", p.Model.Kind, p.Epochs, p.Shards, p.Patience)
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
	// Seconds is how long the slowest shard trained the epochs this state
	// reports (Span of them): shards train at once, so Rows×Span/Seconds
	// is the training rate.
	Seconds float64 `json:"seconds"`
	// Span is how many epochs the state reports: 1 with one shard, the
	// round's with several (Rows and TrainLoss are the last epoch's).
	Span int `json:"span"`
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

// DataParallel trains a model on Arrow batches of arrowio.RowSchema rows,
// standardized as they are read with stats (PCollection<analyze.Spec>, one
// element): PCollection<arrowio.Batch> (train), PCollection<arrowio.Batch>
// (validation, may be empty) → PCollection<State> (one element: after the
// last epoch) and PCollection<State> (for reports: one element per epoch
// with one shard, one per round with several). Standardizing where the
// rows are read keeps the runner from holding a standardized copy of them.
//
// Training runs in rounds of SyncEvery epochs, a pipeline stage each, so
// that the pipeline's size and memory depend on the rounds, not on the
// epochs. Each epoch goes over a shard's rows in the order of their ids
// shuffled with PCG(Seed, epoch<<32 | shard).
//
// With one shard a round is serial minibatch SGD in one function, which
// reads the rows once, measures every epoch's model on the validation rows
// and decides on early stopping after each epoch: by default the whole
// training is one stage.
//
// With several, the batches are spread over the shards once; in a round,
// each shard trains SyncEvery epochs on its own rows from the round's
// model (local SGD), and a combiner averages the shard models and
// optimizer states weighted by their rows. The validation metrics of
// every round's model decide early stopping. On Flink the shards train on
// the TaskManagers, and a round moves the shards' rows to them once.
//
// The input must be bounded. It panics if p is invalid.
func DataParallel(s beam.Scope, p Params, stats, train, validation beam.PCollection) (final, epochs beam.PCollection) {
	s = s.Scope("train.DataParallel")
	if err := p.validate(); err != nil {
		panic("train.DataParallel: " + err.Error())
	}
	state := beam.ParDo(s, &initFn{Params: p}, beam.Impulse(s))
	var shards beam.PCollection
	if p.Shards > 1 {
		shards = beam.GroupByKey(s, beam.ParDo(s, &shardFn{Shards: p.Shards}, train))
	}
	var reports []beam.PCollection
	k := p.syncEvery()
	for from := 1; from <= p.Epochs; from += k {
		to := min(from+k-1, p.Epochs)
		es := s.Scope(fmt.Sprintf("epochs%d-%d", from, to))
		if p.Shards == 1 {
			var report beam.PCollection
			state, report = beam.ParDo2(es, &soloFn{Params: p, From: from, To: to}, beam.Impulse(es),
				beam.SideInput{Input: state}, beam.SideInput{Input: stats}, beam.SideInput{Input: train}, beam.SideInput{Input: validation})
			reports = append(reports, report)
			continue
		}
		partial := beam.ParDo(es, &roundFn{Params: p, From: from, To: to}, shards, beam.SideInput{Input: state}, beam.SideInput{Input: stats})
		merged := beam.Combine(es, &averageFn{}, partial)
		// Validation of the averaged model: evaluate on a provisional next
		// state, then decide on early stopping with the metrics.
		next := beam.ParDo(es, &nextFn{Params: p, Epoch: to, Span: to - from + 1}, beam.Impulse(es), beam.SideInput{Input: state}, beam.SideInput{Input: merged}, beam.SideInput{Input: beam.Create(es, partialMetrics{})})
		metrics := beam.Combine(es, &metricsFn{}, beam.ParDo(es, &evalFn{Params: p}, validation, beam.SideInput{Input: next}, beam.SideInput{Input: stats}))
		state = beam.ParDo(es, &nextFn{Params: p, Epoch: to, Span: to - from + 1, Decide: true}, beam.Impulse(es), beam.SideInput{Input: state}, beam.SideInput{Input: merged}, beam.SideInput{Input: metrics})
		reports = append(reports, state)
	}
	return state, beam.Flatten(s, reports...)
}

// Evaluate measures the model a final State keeps (State.Model: the best
// epoch's with early stopping) on held-out data standardized with stats:
// PCollection<State> (one element, DataParallel's final),
// PCollection<arrowio.Batch> → PCollection<models.Metrics>, one element,
// none if there are no batches. It panics if p is invalid.
func Evaluate(s beam.Scope, p Params, stats, final, batches beam.PCollection) beam.PCollection {
	s = s.Scope("train.Evaluate")
	if err := p.validate(); err != nil {
		panic("train.Evaluate: " + err.Error())
	}
	pm := beam.Combine(s, &metricsFn{}, beam.ParDo(s, &evalFn{Params: p, Final: true}, batches, beam.SideInput{Input: final}, beam.SideInput{Input: stats}))
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
	v, err := arrowio.View(b)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	builders := make([]*arrowio.RowBuilder, fn.Shards)
	for i := 0; i < n; i++ {
		sh := shardOf(v.ID(i), fn.Shards)
		if builders[sh] == nil {
			builders[sh] = arrowio.NewRowBuilder(memory.DefaultAllocator, v.Dim())
			builders[sh].Reserve(n/fn.Shards + 1)
		}
		v.AppendTo(builders[sh], i, nil)
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

// appendBatch appends b's rows, standardized with sp unless it is nil;
// labels become class indexes or values.
func (r *rows) appendBatch(b arrowio.Batch, p *Params, classes map[string]int, sp *analyze.Spec) error {
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
	from := len(r.x)
	r.x = append(r.x, vals[:n*dim]...)
	if sp != nil {
		for i := from; i < len(r.x); i += dim {
			if _, err := sp.Standardize(r.x[i:i+dim], r.x[i:i+dim]); err != nil {
				return fmt.Errorf("train: row %s: %w", r.ids[len(r.ids)-n+(i-from)/dim], err)
			}
		}
	}
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

// readRows reads the rows of batches for p's model, standardized with sp,
// into room for hint rows (more if needed).
func readRows(iter func(*arrowio.Batch) bool, p *Params, classes map[string]int, sp *analyze.Spec, hint int) (*rows, error) {
	out := &rows{}
	if hint > 0 && sp.Features > 0 {
		out.x = make([]float64, 0, hint*sp.Features)
	}
	var b arrowio.Batch
	for iter(&b) {
		if err := out.appendBatch(b, p, classes, sp); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// order is the indexes of the rows in the order of their ids.
func (r *rows) order() []int {
	order := make([]int, len(r.ids))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return r.ids[order[a]] < r.ids[order[b]] })
	return order
}

// trainer is a model and optimizer from a state, on a shard's rows.
type trainer struct {
	p     *Params
	shard int
	m     *models.Model
	t     *models.Trainer
	x     *mat.Dense
	y     models.Targets
	order []int
}

func newTrainer(p *Params, shard int, data *rows, st State) (*trainer, error) {
	m, err := models.FromParams(p.Model, st.Params)
	if err != nil {
		return nil, err
	}
	opt, err := models.NewOptimizer(p.Optimizer, m.NumParams())
	if err != nil {
		return nil, err
	}
	if err := opt.SetState(st.Opt); err != nil {
		return nil, err
	}
	x := data.matrix()
	if err := m.CheckData(x, data.y); err != nil {
		return nil, fmt.Errorf("train: shard %d: %w", shard, err)
	}
	return &trainer{p: p, shard: shard, m: m, t: models.NewTrainer(m, opt), x: x, y: data.y, order: data.order()}, nil
}

// epoch runs epoch e over the rows, in the order of their ids shuffled
// with PCG(Seed, e<<32 | shard), and returns the mean loss, the rows and
// the seconds it took.
func (tr *trainer) epoch(e int) (loss float64, n int, seconds float64) {
	rng := rand.New(rand.NewPCG(tr.p.Seed, uint64(e)<<32|uint64(tr.shard)))
	start := time.Now()
	loss, n = tr.t.EpochFrom(tr.x, tr.y, tr.order, tr.p.BatchSize, rng)
	return loss, n, time.Since(start).Seconds()
}

// solve sets the model to the ridge regression of the rows (FitRidge) and
// returns its mean loss on them, the rows and the seconds it took.
func (tr *trainer) solve() (loss float64, n int, seconds float64, err error) {
	start := time.Now()
	if _, err := models.FitRidge(tr.m, tr.x, tr.y); err != nil {
		return 0, 0, 0, fmt.Errorf("train: %w", err)
	}
	seconds = time.Since(start).Seconds()
	met := models.Evaluate(tr.m, tr.x, tr.y)
	return met.Loss, met.N, seconds, nil
}

// soloFn runs a round of epochs From to To on one shard, all the rows:
// after each epoch it measures the model on the validation rows, decides on
// early stopping and reports the epoch's state; at the end it emits the
// round's state.
type soloFn struct {
	Params   Params
	From, To int
}

func (fn *soloFn) ProcessElement(ctx context.Context, _ []byte, st State, stats func(*analyze.Spec) bool, trainIter, valIter func(*arrowio.Batch) bool, emit, report func(State)) error {
	p := &fn.Params
	classes := classIndex(p)
	var sp analyze.Spec
	stats(&sp)
	// The statistics count every row, those held out for validation too:
	// room for them all is one allocation, and at most the validation
	// rows too many.
	data, err := readRows(trainIter, p, classes, &sp, int(sp.Rows))
	if err != nil {
		return err
	}
	val, err := readRows(valIter, p, classes, &sp, 0)
	if err != nil {
		return err
	}
	tr, err := newTrainer(p, 0, data, st)
	if err != nil {
		return err
	}
	data = nil
	vx := val.matrix()
	for e := fn.From; e <= fn.To; e++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("training stopped before epoch %d: %w", e, err) // the job was cancelled
		}
		next := st
		next.Epoch = e
		next.Rows, next.Seconds, next.Span = 0, 0, 1
		if !st.Stopped && len(tr.order) > 0 {
			var loss, sec float64
			var n int
			if p.Optimizer.Kind == models.Ridge {
				if loss, n, sec, err = tr.solve(); err != nil {
					return err
				}
			} else {
				loss, n, sec = tr.epoch(e)
			}
			next.Params, next.Opt = slices.Clone(tr.m.Params()), tr.t.Optimizer().State()
			next.Rows, next.TrainLoss, next.Seconds, next.Trained = int64(n), loss, sec, e
		}
		if len(val.ids) > 0 {
			next.Val = models.NewPredictor(tr.m).Evaluate(vx, val.y)
		}
		decide(p, st, &next, e)
		report(next)
		st = next
	}
	emit(st)
	return nil
}

// roundFn trains one shard for the epochs From to To from the round's
// state. A runner may hand it several shards in one bundle (prism gives it
// all of them), so it trains the shards of a bundle concurrently, up to
// GOMAXPROCS at once, and emits their results when the bundle finishes.
type roundFn struct {
	Params   Params
	From, To int

	wg   sync.WaitGroup
	sem  chan struct{}
	mu   sync.Mutex
	done []shardResult
	errs []error
}

func (fn *roundFn) Setup() { fn.sem = make(chan struct{}, runtime.GOMAXPROCS(0)) }

func (fn *roundFn) ProcessElement(ctx context.Context, shard int, iter func(*arrowio.Batch) bool, st State, stats func(*analyze.Spec) bool, _ func(shardResult)) error {
	if st.Stopped {
		return nil
	}
	p := fn.Params
	var sp analyze.Spec
	stats(&sp)
	data, err := readRows(iter, &p, classIndex(&p), &sp, 0)
	if err != nil {
		return err
	}
	fn.wg.Add(1)
	fn.sem <- struct{}{}
	go func() {
		defer func() { <-fn.sem; fn.wg.Done() }()
		r, err := fn.train(ctx, &p, shard, data, st)
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

// train runs the round's epochs on a shard; the result has the last
// epoch's loss and rows, and the seconds of every epoch.
func (fn *roundFn) train(ctx context.Context, p *Params, shard int, data *rows, st State) (shardResult, error) {
	tr, err := newTrainer(p, shard, data, st)
	if err != nil {
		return shardResult{}, err
	}
	var loss, seconds float64
	var n int
	for e := fn.From; e <= fn.To; e++ {
		if err := ctx.Err(); err != nil {
			return shardResult{}, fmt.Errorf("shard %d stopped before epoch %d: %w", shard, e, err) // the job was cancelled
		}
		var sec float64
		loss, n, sec = tr.epoch(e)
		seconds += sec
	}
	return shardResult{Shard: shard, Shards: 1, Rows: int64(n), LossSum: loss * float64(n), Seconds: seconds,
		Params: tr.m.Params(), Opt: tr.t.Optimizer().State()}, nil
}

func (fn *roundFn) FinishBundle(_ State, _ func(*analyze.Spec) bool, emit func(shardResult)) error {
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
	// Span is how many epochs the round ran.
	Span   int
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
	next.Rows, next.Seconds, next.Span = 0, 0, fn.Span
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
	decide(&fn.Params, prev, &next, fn.Epoch)
	emit(next)
	return nil
}

// decide keeps next, the state after epoch with its validation metrics, as
// the best so far if its loss is the lowest, and stops training once
// Patience epochs have passed without a better one.
func decide(p *Params, prev State, next *State, epoch int) {
	if prev.Stopped || next.Val.N == 0 || p.Patience == 0 {
		return
	}
	if prev.Best == 0 || next.Val.Loss < prev.BestLoss {
		next.Best, next.BestLoss, next.BestParams = epoch, next.Val.Loss, next.Params
	} else if epoch-prev.Best >= p.Patience {
		next.Stopped = true
	}
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

func (fn *evalFn) ProcessElement(_ context.Context, b arrowio.Batch, st State, stats func(*analyze.Spec) bool, emit func(partialMetrics)) error {
	p := fn.Params
	var sp analyze.Spec
	if !stats(&sp) {
		return fmt.Errorf("train: no statistics to standardize rows with: the job read no training rows")
	}
	var data rows
	if err := data.appendBatch(b, &p, fn.classes, &sp); err != nil {
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
// targets for p's model, in the order of the rows' ids, standardized with
// sp unless it is nil.
func Data(p Params, sp *analyze.Spec, batches []arrowio.Batch) (*mat.Dense, models.Targets, error) {
	classes := classIndex(&p)
	var data rows
	for _, b := range batches {
		if err := data.appendBatch(b, &p, classes, sp); err != nil {
			return nil, models.Targets{}, err
		}
	}
	d := data.sorted()
	return d.matrix(), d.y, nil
}
