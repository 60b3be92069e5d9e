package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math/rand/v2"
	"reflect"
	"strconv"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/transforms/featurize"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Published)(nil)).Elem())
	beam.RegisterCoder(reflect.TypeOf((*Published)(nil)).Elem(), encodePublished, decodePublished)
	register.DoFn2x0[featurize.Row, func(int, featurize.Row)](&streamShardFn{})
	register.DoFn5x1[context.Context, beam.Window, int, func(*featurize.Row) bool, func(shardResult), error](&windowTrainFn{})
	register.DoFn4x1[context.Context, beam.Window, shardResult, func(Published), error](&publishFn{})
	register.Emitter2[int, featurize.Row]()
	register.Emitter1[Published]()
	register.Iter1[featurize.Row]()
}

// StreamParams configures Stream.
type StreamParams struct {
	// Params are the model, optimizer, batch size, shards and seed; Epochs
	// is the number of passes over each window's rows (default 1), and
	// Patience does not apply.
	Params
	// Window is the length of the event-time windows. Required.
	Window time.Duration
	// Store is the model store (io/modelstore: a directory, or
	// kafka://<topic> on Cluster) the models are published to. Required.
	Store string
	// Cluster is the Kafka cluster of a store on Kafka.
	Cluster kafkaio.Cluster
	// Name names the models in the store. Default DefaultStreamName.
	Name string
	// Initial is the model the first window starts from when the store has
	// none; nil starts from the seeded initial weights.
	Initial []float64
	// Every, when positive, also fires a window every this much processing
	// time while it is open (an early pane of the rows since its last
	// pane, which trains the window's own newest model further). Without
	// it a window fires once the watermark passes its end; Beam 2.62's
	// portable Flink runner holds the watermark of an unbounded read
	// until the read ends, so on Flink models publish while the job runs
	// only with Every.
	Every time.Duration
}

// Published is a model a streaming run published: the average of its
// shards' models after training on one window.
type Published struct {
	// Window is the end of the window it trained on; Base the window end
	// of the model it started from (zero: the initial model).
	Window time.Time `json:"window"`
	Base   time.Time `json:"base"`
	// Rows, TrainLoss and Seconds are as in State.
	Rows      int64                 `json:"rows"`
	TrainLoss float64               `json:"train_loss"`
	Seconds   float64               `json:"seconds"`
	Params    []float64             `json:"params"`
	Opt       models.OptimizerState `json:"optimizer"`
	// Version is the store's version of it (name@seq), once published.
	Version string `json:"version,omitempty"`
}

// DefaultStreamName names a stream's models in its store when
// StreamParams.Name is empty.
const DefaultStreamName = "stream"

// Stream trains on an unbounded stream of standardized feature rows, one
// event-time window at a time: PCollection<featurize.Row> →
// PCollection<Published>, one element per window with rows.
//
// The rows of a window are spread over Shards shards by a hash of their
// ids. Each shard starts from the newest model published to Store when it
// begins (the model of the latest window that ended by this one's end, read
// then: a slowly updating input, refreshed every window; a later pane of a
// window continues from the window's own model), trains Epochs passes of
// minibatch SGD,
// and a combiner averages the shard models weighted by their rows. The
// average is published to Store as a new version (StreamStore)
// and emitted. Windows that a runner hands over together (a backlog) may
// start from the same model: a window starts from whatever earlier
// window's model has been published when it begins. It panics if p is invalid.
func Stream(s beam.Scope, p StreamParams, rows beam.PCollection) beam.PCollection {
	s = s.Scope("train.Stream")
	if p.Epochs == 0 {
		p.Epochs = 1
	}
	if err := p.Params.validate(); err != nil {
		panic("train.Stream: " + err.Error())
	}
	if p.Window <= 0 || p.Store == "" {
		panic(fmt.Sprintf("train.Stream: window %v must be positive and the store named (%q)", p.Window, p.Store))
	}
	if p.Name == "" {
		p.Name = DefaultStreamName
	}
	var opts []beam.WindowIntoOption
	if p.Every > 0 {
		opts = append(opts, beam.Trigger(trigger.AfterEndOfWindow().EarlyFiring(trigger.AfterProcessingTime().PlusDelay(p.Every))),
			beam.PanesDiscard())
	}
	windowed := beam.WindowInto(s, window.NewFixedWindows(p.Window), rows, opts...)
	shards := beam.GroupByKey(s, beam.ParDo(s, &streamShardFn{Shards: p.Shards}, windowed))
	partial := beam.ParDo(s, &windowTrainFn{Params: p}, shards)
	return beam.ParDo(s, &publishFn{Store: p.Store, Cluster: p.Cluster, Name: p.Name}, beam.Combine(s, &averageFn{}, partial))
}

// streamShardFn keys rows by shard: a hash of their ids.
type streamShardFn struct{ Shards int }

func (fn *streamShardFn) ProcessElement(r featurize.Row, emit func(int, featurize.Row)) {
	h := fnv.New32a()
	h.Write([]byte(r.ID))
	emit(int(h.Sum32()%uint32(fn.Shards)), r)
}

// windowTrainFn trains one shard on one window's rows from the newest
// published model.
type windowTrainFn struct {
	Params StreamParams

	classes map[string]int
	store   *StreamStore
}

func (fn *windowTrainFn) Setup() {
	fn.classes = classIndex(&fn.Params.Params)
	fn.store = NewStreamStore(modelstore.Locate(fn.Params.Store, fn.Params.Cluster), fn.Params.Name)
}

func (fn *windowTrainFn) ProcessElement(ctx context.Context, w beam.Window, shard int, iter func(*featurize.Row) bool, emit func(shardResult)) error {
	p := &fn.Params
	var data rows
	var r featurize.Row
	for iter(&r) {
		if err := data.appendRow(r, &p.Params, fn.classes); err != nil {
			return err
		}
	}
	if len(data.ids) == 0 {
		return nil
	}
	// The newest model of this window or an earlier one: a later pane of
	// the window (rows that came after it first fired) continues from the
	// window's own published model.
	base, err := fn.store.LatestBefore(ctx, windowEnd(w))
	if err != nil {
		return err
	}
	st := State{}
	if base != nil {
		st.Params, st.Opt = base.Params, base.Opt
	} else {
		m, err := models.New(p.Model, p.Seed)
		if err != nil {
			return err
		}
		if p.Initial != nil {
			if m, err = models.FromParams(p.Model, p.Initial); err != nil {
				return fmt.Errorf("train.Stream: initial model: %w", err)
			}
		}
		opt, err := models.NewOptimizer(p.Optimizer, m.NumParams())
		if err != nil {
			return err
		}
		st.Params, st.Opt = m.Params(), opt.State()
	}
	end := windowEnd(w)
	m, err := models.FromParams(p.Model, st.Params)
	if err != nil {
		return err
	}
	opt, err := models.NewOptimizer(p.Optimizer, m.NumParams())
	if err != nil {
		return err
	}
	if err := opt.SetState(st.Opt); err != nil {
		return err
	}
	d := data.sorted()
	x := d.matrix()
	if err := m.CheckData(x, d.y); err != nil {
		return fmt.Errorf("train.Stream: window ending %s, shard %d: %w", end.Format(time.RFC3339), shard, err)
	}
	tr := models.NewTrainer(m, opt)
	began := time.Now()
	var loss float64
	var n int
	for e := 0; e < p.Epochs; e++ {
		rng := rand.New(rand.NewPCG(p.Seed, uint64(end.UnixMilli())<<8^uint64(e)<<4^uint64(shard)))
		loss, n = tr.Epoch(x, d.y, p.BatchSize, rng)
	}
	res := shardResult{Shard: shard, Shards: 1, Rows: int64(n), LossSum: loss * float64(n), Seconds: time.Since(began).Seconds(),
		Params: m.Params(), Opt: opt.State()}
	if base != nil {
		res.Base = base.Window
	}
	emit(res)
	return nil
}

// windowEnd is the end of an interval window; the zero time otherwise.
func windowEnd(w beam.Window) time.Time {
	if iw, ok := w.(window.IntervalWindow); ok {
		return iw.End.ToTime().UTC()
	}
	return time.Time{}
}

// appendRow appends one feature row; its label becomes a class index or a
// value.
func (r *rows) appendRow(row featurize.Row, p *Params, classes map[string]int) error {
	if r.dim == 0 {
		r.dim = len(row.Features)
	}
	if len(row.Features) != r.dim || len(row.Features) != p.Model.Inputs {
		return fmt.Errorf("train: row %s has %d features, model of %d inputs", row.ID, len(row.Features), p.Model.Inputs)
	}
	if row.Label == "" {
		return fmt.Errorf("train: row %s has no label", row.ID)
	}
	if classes != nil {
		c, ok := classes[row.Label]
		if !ok {
			return fmt.Errorf("train: row %s has label %q, not one of the model's %d classes", row.ID, row.Label, len(classes))
		}
		r.y.Classes = append(r.y.Classes, c)
	} else {
		v, err := strconv.ParseFloat(row.Label, 64)
		if err != nil {
			return fmt.Errorf("train: row %s has target %q, not a number", row.ID, row.Label)
		}
		r.y.Values = append(r.y.Values, v)
	}
	r.ids = append(r.ids, row.ID)
	r.x = append(r.x, row.Features...)
	return nil
}

var windowSeqs = beam.NewDistribution(Namespace, WindowSeqs)

// publishFn publishes a window's averaged model to the store.
type publishFn struct {
	Store, Name string
	Cluster     kafkaio.Cluster
}

func (fn *publishFn) ProcessElement(ctx context.Context, w beam.Window, r shardResult, emit func(Published)) error {
	if r.Rows == 0 {
		return nil
	}
	pub := Published{Window: windowEnd(w), Base: r.Base, Rows: r.Rows, TrainLoss: r.LossSum / float64(r.Rows),
		Seconds: r.Seconds, Params: r.Params, Opt: r.Opt}
	v, err := NewStreamStore(modelstore.Locate(fn.Store, fn.Cluster), fn.Name).Publish(ctx, pub)
	if err != nil {
		return err
	}
	windowSeqs.Update(ctx, int64(v.Seq))
	pub.Version = v.String()
	emit(pub)
	return nil
}

// StreamStore keeps a stream's published models in a model store
// (io/modelstore), one version per window's model, as JSON. Versions are
// immutable, so the window of each is read once and remembered.
type StreamStore struct {
	store   modelstore.Store
	name    string
	windows map[uint64]time.Time
}

// NewStreamStore opens the stream models named name in store.
func NewStreamStore(store modelstore.Store, name string) *StreamStore {
	return &StreamStore{store: store, name: name, windows: map[uint64]time.Time{}}
}

// Publish adds pub as a new version.
func (s *StreamStore) Publish(ctx context.Context, pub Published) (modelstore.Version, error) {
	pub.Version = ""
	b, err := json.Marshal(pub)
	if err != nil {
		return modelstore.Version{}, err
	}
	v, err := s.store.Publish(ctx, s.name, modelstore.Bytes(bytes.NewReader(b)))
	if err != nil {
		return v, fmt.Errorf("train: publishing the model of the window ending %s: %w", pub.Window.Format(time.RFC3339), err)
	}
	return v, nil
}

// LatestBefore reads the model of the latest window that ended by t; nil
// if there is none.
func (s *StreamStore) LatestBefore(ctx context.Context, t time.Time) (*Published, error) {
	vs, err := s.store.List(ctx)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("train: model store: %w", err)
	}
	var best *modelstore.Version
	var bestWindow time.Time
	for i := range vs {
		v := &vs[i]
		if v.Name != s.name {
			continue
		}
		w, ok := s.windows[v.Seq]
		if !ok {
			pub, err := s.read(ctx, *v)
			if err != nil {
				return nil, err
			}
			w = pub.Window
			s.windows[v.Seq] = w
		}
		// The later version of two for one window (a later pane) wins.
		if !w.After(t) && (best == nil || w.After(bestWindow) || w.Equal(bestWindow) && v.Seq > best.Seq) {
			best, bestWindow = v, w
		}
	}
	if best == nil {
		return nil, nil
	}
	return s.read(ctx, *best)
}

// Range reads the models of versions from to to (inclusive), in publish
// order.
func (s *StreamStore) Range(ctx context.Context, from, to uint64) ([]Published, error) {
	vs, err := s.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("train: model store: %w", err)
	}
	var out []Published
	for _, v := range vs {
		if v.Name != s.name || v.Seq < from || v.Seq > to {
			continue
		}
		pub, err := s.read(ctx, v)
		if err != nil {
			return nil, err
		}
		out = append(out, *pub)
	}
	return out, nil
}

// Latest reads the model of the latest window; nil if there is none.
func (s *StreamStore) Latest(ctx context.Context) (*Published, error) {
	return s.LatestBefore(ctx, time.Unix(1<<62, 0))
}

func (s *StreamStore) read(ctx context.Context, v modelstore.Version) (*Published, error) {
	r, err := s.store.Open(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("train: model store: %w", err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("train: model store: %s: %w", v, err)
	}
	var pub Published
	if err := json.Unmarshal(b, &pub); err != nil {
		return nil, fmt.Errorf("train: model store: %s: %w", v, err)
	}
	pub.Version = v.String()
	return &pub, nil
}

func encodePublished(p Published) ([]byte, error) { return json.Marshal(p) }

func decodePublished(b []byte) (p Published, err error) { return p, jsonDecode(b, &p) }
