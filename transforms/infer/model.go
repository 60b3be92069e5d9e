package infer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/compress"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/transforms/analyze"
	"github.com/muonml/muon/transforms/featurize"
	"gonum.org/v1/gonum/mat"
)

// Model is a verified snapshot loaded for serving: the model with its
// weights dequantized, the preprocessing it was trained with, and where
// it came from. It is read-only; Predictors come from a pool.
type Model struct {
	Version  modelstore.Version
	Manifest snapshot.Manifest
	Model    *models.Model
	Pre      analyze.Spec
	// Size is the snapshot file's size; Ratio the float64 weights' size
	// over it.
	Size  int64
	Ratio float64
	// Load is how long reading, verifying and decoding took.
	Load  time.Duration
	preds sync.Pool
}

// Name is the model's name and version, name@seq: what every prediction
// it makes carries.
func (m *Model) Name() string { return m.Version.String() }

func (m *Model) predictor() *models.Predictor {
	if p, ok := m.preds.Get().(*models.Predictor); ok {
		return p
	}
	return models.NewPredictor(m.Model)
}

// Load reads, verifies and decodes version v of store, and checks that
// its preprocessing fits its model and, if names is not empty, that its
// features are names, in order.
func Load(ctx context.Context, store modelstore.Store, v modelstore.Version, trusted snapshot.Keyring, names []string) (*Model, error) {
	start := time.Now()
	rc, err := store.Open(ctx, v)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	s, err := snapshot.Read(rc, trusted, snapshot.Limits{})
	if err == nil {
		err = s.CheckPlace(v.Name, v.Seq)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v, err)
	}
	m, err := compress.FromTensors(s.Manifest.Model, s.Tensors)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v, err)
	}
	var pre analyze.Spec
	if err := json.Unmarshal(s.Manifest.Preprocess, &pre); err != nil {
		return nil, fmt.Errorf("%s: preprocessing: %w", v, err)
	}
	if err := pre.Check(); err != nil {
		return nil, fmt.Errorf("%s: preprocessing: %w", v, err)
	}
	if pre.Features != m.Inputs() {
		return nil, fmt.Errorf("%s: preprocessing of %d features for a model of %d inputs", v, pre.Features, m.Inputs())
	}
	if len(names) > 0 && !slices.Equal(pre.Names, names) {
		return nil, fmt.Errorf("%s: trained on features %s; this job makes %s: use the features section of the spec that trained it",
			v, summarize(pre.Names), summarize(names))
	}
	if m.Head() == models.SoftmaxHead && len(s.Manifest.Labels) != m.Outputs() {
		return nil, fmt.Errorf("%s: %d labels for %d classes", v, len(s.Manifest.Labels), m.Outputs())
	}
	return &Model{Version: v, Manifest: s.Manifest, Model: m, Pre: pre, Size: s.Size,
		Ratio: float64(8*m.NumParams()) / float64(s.Size), Load: time.Since(start)}, nil
}

// summarize names a list of feature names briefly.
func summarize(names []string) string {
	if len(names) <= 4 {
		return fmt.Sprintf("%q", names)
	}
	return fmt.Sprintf("%d features %q … %q", len(names), names[:2], names[len(names)-1])
}

// Server serves the newest verified version of a store: it loads one
// model per version per process, shared by every bundle, and checks the
// store for a newer version at most once per interval. A version that
// does not verify or does not fit is refused once, with its error, and
// the model it would have replaced keeps serving.
type Server struct {
	store    modelstore.Store
	trusted  snapshot.Keyring
	names    []string
	interval time.Duration

	current atomic.Pointer[Model]
	checked atomic.Int64 // unix nanoseconds of the last check
	mu      sync.Mutex   // serializes checks and loads
	refused map[uint64]error
	// Loads and refusals not yet reported (drain).
	loaded  []*Model
	refusal []error
}

// Refused returns the errors of the versions refused since the last
// call (or the last drain by a DoFn), oldest first.
func (s *Server) Refused() []error {
	_, r := s.drain()
	return r
}

// drain returns the loads and refusals since the last drain.
func (s *Server) drain() ([]*Model, []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, r := s.loaded, s.refusal
	s.loaded, s.refusal = nil, nil
	return l, r
}

// NewServer serves store's models; names are the features the job makes.
func NewServer(store modelstore.Store, trusted snapshot.Keyring, names []string, interval time.Duration) *Server {
	return &Server{store: store, trusted: trusted, names: names, interval: interval, refused: map[uint64]error{}}
}

// ErrNoModel means the store holds no version that verifies and fits.
var ErrNoModel = errors.New("infer: no model to serve")

// Current returns the model serving now, checking the store first if the
// interval has passed since the last check (or nothing serves yet).
func (s *Server) Current(ctx context.Context) (*Model, error) {
	m := s.current.Load()
	if m != nil && time.Duration(time.Now().UnixNano()-s.checked.Load()) < s.interval {
		return m, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m = s.current.Load(); m != nil && time.Duration(time.Now().UnixNano()-s.checked.Load()) < s.interval {
		return m, nil
	}
	s.checked.Store(time.Now().UnixNano())
	if err := s.refresh(ctx); err != nil && s.current.Load() == nil {
		return nil, err
	}
	return s.current.Load(), nil
}

// refresh loads the newest version that verifies and fits, newer than
// the one serving; refused versions are not tried again.
func (s *Server) refresh(ctx context.Context) error {
	latest, pointer, err := modelstore.Head(ctx, s.store)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoModel, err)
	}
	cur := s.current.Load()
	if cur != nil && latest.Seq == cur.Version.Seq {
		return nil
	}
	vs, err := s.store.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	if pointer != nil {
		errs = append(errs, pointer)
	}
	for i := len(vs) - 1; i >= 0; i-- {
		v := vs[i]
		if v.Seq > latest.Seq {
			continue // renamed, but LATEST never pointed at it
		}
		if cur != nil && v.Seq <= cur.Version.Seq {
			break
		}
		if err, ok := s.refused[v.Seq]; ok {
			errs = append(errs, err)
			continue
		}
		m, err := Load(ctx, s.store, v, s.trusted, s.names)
		if err != nil {
			s.refused[v.Seq] = err
			s.refusal = append(s.refusal, err)
			errs = append(errs, err)
			continue
		}
		s.current.Store(m)
		s.loaded = append(s.loaded, m)
		return nil
	}
	if cur == nil {
		return fmt.Errorf("%w: %w", ErrNoModel, errors.Join(errs...))
	}
	return nil
}

// servers are the process's Servers, one per branch: every
// bundle and every DoFn instance of a branch shares one loaded model per
// version. Package-level because Beam leaves no other way: a runner makes
// a DoFn instance per bundle or per thread and gives them nothing to
// share, and loading (verifying, decompressing) a model per instance
// would cost a load per bundle.
var servers sync.Map // serverKey → *Server

type serverKey struct {
	branch, store, trust, names string
}

// sharedServer returns the process's Server of a branch, making it on
// first use.
func sharedServer(p Params) (*Server, error) {
	k := serverKey{p.Name, p.Store + " " + fmt.Sprint(p.Cluster.Brokers), fmt.Sprint(p.Trust), fmt.Sprint(p.Names)}
	if s, ok := servers.Load(k); ok {
		return s.(*Server), nil
	}
	ring, err := snapshot.LoadKeyring(p.Trust...)
	if err != nil {
		return nil, err
	}
	s := NewServer(modelstore.Locate(p.Store, p.Cluster), ring, p.Names, p.reload())
	actual, _ := servers.LoadOrStore(k, s)
	return actual.(*Server), nil
}

// LoadVersion loads and verifies version seq of branch p's store, as the
// branch would serve it; a job's summary describes the model a branch
// served first with it.
func LoadVersion(ctx context.Context, p Params, seq uint64) (*Model, error) {
	ring, err := snapshot.LoadKeyring(p.Trust...)
	if err != nil {
		return nil, err
	}
	store := modelstore.Locate(p.Store, p.Cluster)
	vs, err := store.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		if v.Seq == seq {
			return Load(ctx, store, v, ring, p.Names)
		}
	}
	return nil, fmt.Errorf("model store %s has no version %d", p.Store, seq)
}

// PredictRaw preprocesses n rows of raw values (row-major, Pre.Width()
// values each: features in the order of Pre.Names, or the series of a
// MiniRocket model) with the snapshot's own preprocessing and predicts
// them: the outputs, row-major, Model.Outputs() each (class probabilities
// for a classifier). It is safe for concurrent use.
func (m *Model) PredictRaw(raw []float64, n int) ([]float64, error) {
	width, dim := m.Pre.Width(), m.Pre.Features
	if len(raw) != n*width {
		return nil, fmt.Errorf("%d values for %d rows of %d", len(raw), n, width)
	}
	xs := make([]float64, n*dim)
	var work featurize.RocketWork
	for i := 0; i < n; i++ {
		if _, err := m.Pre.Preprocess(xs[i*dim:(i+1)*dim], raw[i*width:(i+1)*width], &work); err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
	}
	k := m.Model.Outputs()
	out := mat.NewDense(n, k, nil)
	pred := m.predictor()
	pred.Predict(out, mat.NewDense(n, dim, xs))
	m.preds.Put(pred)
	return out.RawMatrix().Data, nil
}
