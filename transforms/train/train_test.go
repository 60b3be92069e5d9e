package train_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/transforms/analyze"
	"github.com/muonml/muon/transforms/train"
	"gonum.org/v1/gonum/mat"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.DoFn3x1[context.Context, int, func(*train.State) bool, error](&writeStatesFn{})
	register.Iter1[train.State]()
}

// writeStatesFn writes states as JSON lines with their best parameters.
type writeStatesFn struct{ Path string }

func (fn *writeStatesFn) ProcessElement(_ context.Context, _ int, iter func(*train.State) bool) error {
	type line struct {
		train.State
		BestParams []float64 `json:"best_params"`
	}
	var all []line
	var st train.State
	for iter(&st) {
		all = append(all, line{st, st.BestParams})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Epoch < all[j].Epoch })
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return os.WriteFile(fn.Path, b, 0o644)
}

// digits is an optdigits split: features scaled to [0, 1], labels "0"…"9",
// ids in file order.
type digits struct {
	x      []float64
	labels []string
	ids    []string
}

func loadDigits(t *testing.T, name, prefix string) digits {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "..", "shared", "datasets", "optdigits", name))
	if err != nil {
		t.Skipf("optdigits not available: %v", err)
	}
	defer f.Close()
	var d digits
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ",")
		if len(fields) != 65 {
			continue
		}
		for _, s := range fields[:64] {
			v, err := strconv.Atoi(s)
			if err != nil {
				t.Fatal(err)
			}
			d.x = append(d.x, float64(v)/16)
		}
		d.labels = append(d.labels, fields[64])
		d.ids = append(d.ids, fmt.Sprintf("%s/%05d", prefix, len(d.ids)))
	}
	return d
}

// batches makes Arrow batches of at most n rows.
func (d digits) batches(n int) []arrowio.Batch {
	var out []arrowio.Batch
	rb := arrowio.NewRowBuilder(memory.DefaultAllocator, 64)
	defer rb.Release()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range d.ids {
		rb.Append("digits", t0, d.x[i*64:(i+1)*64], d.labels[i], d.ids[i], records.Source{})
		if rb.Len() == n || i == len(d.ids)-1 {
			out = append(out, rb.NewBatch())
		}
	}
	return out
}

func (d digits) targets() models.Targets {
	var y models.Targets
	for _, l := range d.labels {
		c, _ := strconv.Atoi(l)
		y.Classes = append(y.Classes, c)
	}
	return y
}

var labels = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// identity standardizes 64 features to themselves.
func identity() analyze.Spec {
	sp := analyze.Spec{Features: 64, Mean: make([]float64, 64), Std: make([]float64, 64)}
	for i := range sp.Std {
		sp.Std[i] = 1
	}
	return sp
}

func runTraining(t *testing.T, p train.Params, tr, val []arrowio.Batch) []train.State {
	t.Helper()
	return runTrainingWith(t, p, identity(), tr, val)
}

// runTrainingWith trains on rows standardized with sp.
func runTrainingWith(t *testing.T, p train.Params, sp analyze.Spec, tr, val []arrowio.Batch) []train.State {
	t.Helper()
	dir := t.TempDir()
	pipe, s := beam.NewPipelineWithRoot()
	trainCol := beam.CreateList(s, tr)
	valCol := beam.CreateList(s, val)
	final, epochs := train.DataParallel(s, p, beam.Create(s, sp), trainCol, valCol)
	beam.ParDo0(s, &writeStatesFn{Path: filepath.Join(dir, "final.json")}, beam.GroupByKey(s, beam.AddFixedKey(s, final)))
	beam.ParDo0(s, &writeStatesFn{Path: filepath.Join(dir, "epochs.json")}, beam.GroupByKey(s, beam.AddFixedKey(s, epochs)))
	ptest.RunAndValidate(t, pipe)
	var states []train.State
	for _, name := range []string{"epochs.json", "final.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var lines []struct {
			train.State
			BestParams []float64 `json:"best_params"`
		}
		if err := json.Unmarshal(b, &lines); err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			l.State.BestParams = l.BestParams
			states = append(states, l.State)
		}
	}
	return states // the epochs in order, then the final state
}

// serial trains like one shard does: rows in id order, epoch e shuffled
// with PCG(seed, e<<32).
func serial(t *testing.T, p train.Params, d digits) *models.Model {
	t.Helper()
	m, err := models.New(p.Model, p.Seed)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := models.NewOptimizer(p.Optimizer, m.NumParams())
	if err != nil {
		t.Fatal(err)
	}
	tr := models.NewTrainer(m, opt)
	x := mat.NewDense(len(d.ids), 64, d.x) // ids are in file order already
	for e := 1; e <= p.Epochs; e++ {
		tr.Epoch(x, d.targets(), p.BatchSize, rand.New(rand.NewPCG(p.Seed, uint64(e)<<32)))
	}
	return m
}

func softmaxParams(epochs, shards int) train.Params {
	return train.Params{
		Model:     models.Desc{Kind: models.Softmax, Inputs: 64, Classes: 10},
		Optimizer: models.OptimizerDesc{Kind: models.SGD, LearningRate: 0.1, Momentum: 0.9, WeightDecay: 1e-4},
		Labels:    labels, Epochs: epochs, BatchSize: 32, Shards: shards, Seed: 7,
	}
}

// With one shard, data-parallel training is serial minibatch SGD.
func TestOneShardIsSerial(t *testing.T) {
	d := loadDigits(t, "optdigits.tra", "tra")
	for _, p := range []train.Params{
		softmaxParams(3, 1),
		{Model: models.Desc{Kind: models.MLP, Inputs: 64, Classes: 10, Hidden: []int{32}, Activation: models.Tanh, Head: models.SoftmaxHead},
			Optimizer: models.OptimizerDesc{Kind: models.Adam, LearningRate: 0.003}, Labels: labels, Epochs: 2, BatchSize: 50, Shards: 1, Seed: 3},
	} {
		t.Run(string(p.Model.Kind), func(t *testing.T) {
			states := runTraining(t, p, d.batches(700), nil)
			got := states[len(states)-1]
			want := serial(t, p, d).Params()
			if got.Epoch != p.Epochs || len(got.Params) != len(want) {
				t.Fatalf("final state: epoch %d, %d params; want %d, %d", got.Epoch, len(got.Params), p.Epochs, len(want))
			}
			for i := range want {
				if math.Abs(got.Params[i]-want[i]) > 1e-9 {
					t.Fatalf("parameter %d: %v, serial %v", i, got.Params[i], want[i])
				}
			}
			if got.Rows != int64(len(d.ids)) {
				t.Errorf("trained on %d rows, want %d", got.Rows, len(d.ids))
			}
		})
	}
}

// Four shards reach the serial model's test accuracy within a point.
func TestFourShardsMatchSerialAccuracy(t *testing.T) {
	tr, te := loadDigits(t, "optdigits.tra", "tra"), loadDigits(t, "optdigits.tes", "tes")
	p := softmaxParams(20, 4)
	states := runTraining(t, p, tr.batches(250), te.batches(500))
	final := states[len(states)-1]
	m, err := final.Model(p.Model)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(len(te.ids), 64, te.x)
	parallel := models.Evaluate(m, x, te.targets()).Accuracy
	p.Shards = 1
	ser := models.Evaluate(serial(t, p, tr), x, te.targets()).Accuracy
	t.Logf("test accuracy: 4 shards %.4f, serial %.4f; validation per epoch %v", parallel, ser, accuracies(states[:len(states)-1]))
	if math.Abs(parallel-ser) > 0.01 || parallel < 0.9 {
		t.Errorf("4 shards reach %.4f, serial %.4f: want within 0.01", parallel, ser)
	}
	if final.Val.N != len(te.ids) || math.Abs(final.Val.Accuracy-parallel) > 1e-12 {
		t.Errorf("final validation metrics %d rows, accuracy %v; want %d, %v", final.Val.N, final.Val.Accuracy, len(te.ids), parallel)
	}
}

func accuracies(states []train.State) []string {
	var out []string
	for _, s := range states {
		out = append(out, fmt.Sprintf("%d:%.3f", s.Epoch, s.Val.Accuracy))
	}
	return out
}

// Early stopping: validation labels that are all wrong make the loss
// rise as the model learns; training stops after Patience epochs without a
// better one, later epochs train nothing, and the best epoch's model is
// kept: with two shards (a round a epoch), and with one, where training,
// validation and early stopping run in one stage and still report every
// epoch.
func TestEarlyStopping(t *testing.T) {
	tr := loadDigits(t, "optdigits.tra", "tra")
	te := loadDigits(t, "optdigits.tes", "tes")
	for i, l := range te.labels {
		c, _ := strconv.Atoi(l)
		te.labels[i] = strconv.Itoa((c + 1) % 10)
	}
	for _, shards := range []int{2, 1} {
		t.Run(fmt.Sprintf("%d shards", shards), func(t *testing.T) {
			p := softmaxParams(6, shards)
			p.Patience = 2
			states := runTraining(t, p, tr.batches(500), te.batches(500))
			epochs, final := states[:len(states)-1], states[len(states)-1]
			if len(epochs) != 6 || final.Best != 1 || !final.Stopped {
				t.Fatalf("%d reports, best epoch %d, stopped %v; want 6, 1, true (losses %v)", len(epochs), final.Best, final.Stopped, losses(epochs))
			}
			for _, s := range epochs[3:] {
				if s.Rows != 0 {
					t.Errorf("epoch %d trained on %d rows after stopping at epoch 3", s.Epoch, s.Rows)
				}
			}
			if fmt.Sprint(final.BestParams) != fmt.Sprint(epochs[0].Params) || final.Val.N != len(te.ids) {
				t.Errorf("the kept model is not epoch 1's, or validation measured %d rows", final.Val.N)
			}
		})
	}
}

func losses(states []train.State) []string {
	var out []string
	for _, s := range states {
		out = append(out, fmt.Sprintf("%d:%.3f", s.Epoch, s.Val.Loss))
	}
	return out
}

// localSGD trains as DataParallel does with several shards: rows spread
// over the shards by FNV-1a of their ids; in each round of syncEvery
// epochs every shard trains from the round's model and optimizer state on
// its rows in id order, epoch e shuffled with PCG(seed, e<<32 | shard);
// then models and optimizer slots are averaged weighted by rows.
func localSGD(t *testing.T, p train.Params, d digits, syncEvery int) []float64 {
	t.Helper()
	type shard struct {
		x   []float64
		y   models.Targets
		ids []string
	}
	shards := make([]shard, p.Shards)
	y := d.targets()
	for i, id := range d.ids {
		var h uint32 = 2166136261
		for j := 0; j < len(id); j++ {
			h = (h ^ uint32(id[j])) * 16777619
		}
		s := &shards[h%uint32(p.Shards)]
		s.x = append(s.x, d.x[i*64:(i+1)*64]...)
		s.y.Classes = append(s.y.Classes, y.Classes[i])
		s.ids = append(s.ids, id)
	}
	m, err := models.New(p.Model, p.Seed)
	if err != nil {
		t.Fatal(err)
	}
	params := append([]float64(nil), m.Params()...)
	opt, err := models.NewOptimizer(p.Optimizer, m.NumParams())
	if err != nil {
		t.Fatal(err)
	}
	state := opt.State()
	for from := 1; from <= p.Epochs; from += syncEvery {
		to := min(from+syncEvery-1, p.Epochs)
		sum := make([]float64, len(params))
		var slots [][]float64
		var rows float64
		var next models.OptimizerState
		for k, s := range shards {
			sm, err := models.FromParams(p.Model, params)
			if err != nil {
				t.Fatal(err)
			}
			so, _ := models.NewOptimizer(p.Optimizer, sm.NumParams())
			if err := so.SetState(state); err != nil {
				t.Fatal(err)
			}
			tr := models.NewTrainer(sm, so)
			x := mat.NewDense(len(s.ids), 64, s.x) // ids in file order are in id order
			for e := from; e <= to; e++ {
				tr.Epoch(x, s.y, p.BatchSize, rand.New(rand.NewPCG(p.Seed, uint64(e)<<32|uint64(k))))
			}
			w := float64(len(s.ids))
			rows += w
			for i, v := range sm.Params() {
				sum[i] += w * v
			}
			st := so.State()
			if slots == nil {
				slots = make([][]float64, len(st.Slots))
				for i := range st.Slots {
					slots[i] = make([]float64, len(st.Slots[i]))
				}
			}
			for i := range st.Slots {
				for j, v := range st.Slots[i] {
					slots[i][j] += w * v
				}
			}
			next.Steps, next.Epochs = max(next.Steps, st.Steps), max(next.Epochs, st.Epochs)
		}
		for i := range sum {
			params[i] = sum[i] / rows
		}
		for i := range slots {
			for j := range slots[i] {
				slots[i][j] /= rows
			}
		}
		next.Slots = slots
		state = next
	}
	return params
}

// Several shards train SyncEvery epochs on their own between averagings:
// rounds of 2, 2 and 1 epochs give the model of local SGD done by hand,
// and one report per round.
func TestLocalSGDRounds(t *testing.T) {
	d := loadDigits(t, "optdigits.tra", "tra")
	p := softmaxParams(5, 3)
	p.SyncEvery = 2
	states := runTraining(t, p, d.batches(700), nil)
	epochs, final := states[:len(states)-1], states[len(states)-1]
	var reported []int
	for _, s := range epochs {
		reported = append(reported, s.Epoch)
	}
	if fmt.Sprint(reported) != "[2 4 5]" {
		t.Errorf("reports for epochs %v, want the rounds' ends [2 4 5]", reported)
	}
	want := localSGD(t, p, d, 2)
	if final.Epoch != 5 || len(final.Params) != len(want) {
		t.Fatalf("final state: epoch %d, %d params; want 5, %d", final.Epoch, len(final.Params), len(want))
	}
	for i := range want {
		if math.Abs(final.Params[i]-want[i]) > 1e-9 {
			t.Fatalf("parameter %d: %v, local SGD by hand %v", i, final.Params[i], want[i])
		}
	}
	if final.Seconds <= 0 || final.Rows == 0 {
		t.Errorf("the last round reports %d rows in %v s", final.Rows, final.Seconds)
	}
}

// edges counts the transforms of a pipeline that trains p.
func edges(t *testing.T, p train.Params) int {
	t.Helper()
	pipe, s := beam.NewPipelineWithRoot()
	d := []arrowio.Batch{}
	train.DataParallel(s, p, beam.Create(s, identity()), beam.CreateList(s, d), beam.CreateList(s, d))
	e, _, err := pipe.Build()
	if err != nil {
		t.Fatal(err)
	}
	return len(e)
}

// The pipeline has as many stages for 200 epochs as for 10: one round
// with one shard, at most train.MaxRounds with several.
func TestPipelineSizeDoesNotGrowWithEpochs(t *testing.T) {
	for _, shards := range []int{1, 4} {
		e10, e200 := edges(t, softmaxParams(10, shards)), edges(t, softmaxParams(200, shards))
		if e10 != e200 {
			t.Errorf("%d shards: %d transforms for 10 epochs, %d for 200", shards, e10, e200)
		}
	}
	// A sync every epoch is a round per epoch, as asked.
	p := softmaxParams(30, 4)
	p.SyncEvery = 1
	if e30, e10 := edges(t, p), edges(t, softmaxParams(10, 4)); e30 <= e10 {
		t.Errorf("sync_every 1: %d transforms for 30 rounds, %d for 10", e30, e10)
	}
}

// Training standardizes the rows it reads with the statistics it is given:
// the model is serial SGD's on rows standardized beforehand.
func TestTrainingStandardizesWithStats(t *testing.T) {
	d := loadDigits(t, "optdigits.tra", "tra")
	sp := identity()
	n := float64(len(d.ids))
	for j := range 64 {
		var sum, ss float64
		for i := range d.ids {
			sum += d.x[i*64+j]
		}
		sp.Mean[j] = sum / n
		for i := range d.ids {
			ss += (d.x[i*64+j] - sp.Mean[j]) * (d.x[i*64+j] - sp.Mean[j])
		}
		sp.Std[j] = math.Sqrt(ss / n)
	}
	sp.Clip = 3
	p := softmaxParams(2, 1)
	got := runTrainingWith(t, p, sp, d.batches(700), nil)
	std := d
	std.x = make([]float64, len(d.x))
	for i := range d.ids {
		if _, err := sp.Standardize(std.x[i*64:(i+1)*64], d.x[i*64:(i+1)*64]); err != nil {
			t.Fatal(err)
		}
	}
	want := serial(t, p, std).Params()
	final := got[len(got)-1]
	for i := range want {
		if math.Abs(final.Params[i]-want[i]) > 1e-9 {
			t.Fatalf("parameter %d: %v, serial on standardized rows %v", i, final.Params[i], want[i])
		}
	}
	raw := serial(t, p, d).Params()
	if fmt.Sprint(raw) == fmt.Sprint(want) {
		t.Fatal("standardizing changed nothing: the test cannot tell")
	}
}

// Training reads rows that are many pages of side input (prism sends a
// side input in pages of about 4 MB): every row once.
func TestRowsOverManyPages(t *testing.T) {
	d := loadDigits(t, "optdigits.tra", "tra")
	var big digits
	for k := range 7 { // 26,761 rows, about 14 MB of features
		big.x = append(big.x, d.x...)
		big.labels = append(big.labels, d.labels...)
		for _, id := range d.ids {
			big.ids = append(big.ids, fmt.Sprintf("%d/%s", k, id))
		}
	}
	p := softmaxParams(1, 1)
	states := runTraining(t, p, big.batches(1000), d.batches(1000))
	final := states[len(states)-1]
	if final.Rows != int64(len(big.ids)) || final.Val.N != len(d.ids) {
		t.Errorf("trained on %d rows and validated on %d, want %d and %d", final.Rows, final.Val.N, len(big.ids), len(d.ids))
	}
}
