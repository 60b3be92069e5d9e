package analyze

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/transforms/featurize"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Stats)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*Spec)(nil)).Elem())
	// A Spec is read as a side input, and a runner in Java decodes side
	// inputs with the coder it is given: Beam's schema row coder for a Go
	// struct does not round-trip Spec's slices through Flink's
	// broadcast variables, so Spec travels as opaque bytes.
	beam.RegisterCoder(reflect.TypeOf((*Spec)(nil)).Elem(), encodeSpec, decodeSpec)
	register.Combiner3[Stats, featurize.Row, Spec](&statsFn{})
	register.Combiner3[Stats, arrowio.Batch, Spec](&batchStatsFn{})
}

// Stats accumulates per-feature moments with Chan et al.'s parallel
// update, so partial results from any split of the data merge exactly.
type Stats struct {
	N      int64
	Mean   []float64
	M2     []float64 // sums of squared deviations from the mean
	Min    []float64
	Max    []float64
	Labels map[string]int64
	// Skipped counts non-finite values left out of their feature.
	Skipped int64
	// Count per feature of the finite values included.
	Count []int64
}

// Spec is a preprocessing spec: what standardizing a feature row means.
type Spec struct {
	Features int       `json:"features"`
	Count    []int64   `json:"count"`
	Mean     []float64 `json:"mean"`
	Std      []float64 `json:"std"` // population standard deviation
	Min      []float64 `json:"min"`
	Max      []float64 `json:"max"`
	Labels   []string  `json:"labels"` // sorted
	// LabelCounts[i] is how many rows carry Labels[i].
	LabelCounts []int64 `json:"label_counts"`
	Rows        int64   `json:"rows"`
	// Names are the features' names, when the job knows them.
	Names []string `json:"names,omitempty"`
	// Clip bounds every standardized value to [−Clip, Clip]; 0 leaves them
	// unbounded (specs written before it existed). Features computes specs
	// with DefaultClip.
	Clip float64 `json:"clip,omitempty"`
	// Rocket, when set, makes the features from a row of raw series
	// (Rocket.Channels × Rocket.Length values) before they are
	// standardized: the MiniRocket transform fitted in training, so that
	// serving makes the same features.
	Rocket *featurize.Rocket `json:"rocket,omitempty"`
}

// Width is how many values a row has before preprocessing: Features, or
// the raw series' values with Rocket.
func (s *Spec) Width() int {
	if s.Rocket != nil {
		return s.Rocket.Channels * s.Rocket.Length
	}
	return s.Features
}

// Preprocess writes into dst the standardized features of a row of Width
// values (made by Rocket first, if set) and returns dst. work is Rocket's
// scratch, reused between rows; nil allocates.
func (s *Spec) Preprocess(dst, row []float64, work *featurize.RocketWork) ([]float64, error) {
	if s.Rocket == nil {
		return s.Standardize(dst, row)
	}
	f, err := s.Rocket.TransformWith(work, dst[:0], row)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSpec, err)
	}
	return s.Standardize(f, f)
}

// DefaultClip bounds standardized values. A feature almost constant over
// the training rows (a border pixel lit once, faintly: a deviation of
// 4.4e-5) would otherwise give a new row z-scores in the thousands and
// swamp every other feature; for features near a normal distribution a
// value beyond 10 deviations does not happen.
const DefaultClip = 10

// ErrSpec means a Spec does not fit what it is applied to.
var ErrSpec = errors.New("analyze: spec does not fit")

// Standardize writes (x − mean) / std of row into dst and returns it,
// bounded to ±Clip when Clip is set; features with zero deviation
// (constant in the data) map to 0, and a non-finite input maps to 0, the
// mean. dst may be row.
func (s *Spec) Standardize(dst, row []float64) ([]float64, error) {
	if len(row) != s.Features {
		return nil, fmt.Errorf("%w: row of %d features, spec of %d", ErrSpec, len(row), s.Features)
	}
	if cap(dst) < len(row) {
		dst = make([]float64, len(row))
	}
	dst = dst[:len(row)]
	for i, v := range row {
		if s.Std[i] == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			dst[i] = 0
			continue
		}
		z := (v - s.Mean[i]) / s.Std[i]
		if s.Clip > 0 {
			z = max(-s.Clip, min(s.Clip, z))
		}
		dst[i] = z
	}
	return dst, nil
}

// LabelIndex returns the class index of a label, or -1.
func (s *Spec) LabelIndex(label string) int {
	i := sort.SearchStrings(s.Labels, label)
	if i < len(s.Labels) && s.Labels[i] == label {
		return i
	}
	return -1
}

// MarshalSpec encodes s as JSON.
func MarshalSpec(s Spec) ([]byte, error) { return json.Marshal(s) }

// encodeSpec and decodeSpec are Spec's element coder: gob, which keeps NaN
// statistics (a channel a device never sent) that JSON cannot hold.
func encodeSpec(s Spec) ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(s)
	return buf.Bytes(), err
}

func decodeSpec(b []byte) (Spec, error) {
	var s Spec
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("analyze: decoding a spec element: %w", err)
	}
	return s, nil
}

// UnmarshalSpec decodes and checks a spec: consistent lengths, finite
// statistics, non-negative deviations and counts, sorted unique labels.
func UnmarshalSpec(data []byte) (Spec, error) {
	var s Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return Spec{}, fmt.Errorf("analyze: spec: %w", err)
	}
	return s, s.Check()
}

// Check reports whether s is internally consistent.
func (s *Spec) Check() error {
	if s.Features < 0 {
		return fmt.Errorf("%w: %d features", ErrSpec, s.Features)
	}
	compact := s.Count == nil && s.Min == nil && s.Max == nil // Compact: what serving needs
	for name, l := range map[string]int{"count": len(s.Count), "mean": len(s.Mean), "std": len(s.Std), "min": len(s.Min), "max": len(s.Max)} {
		if l != s.Features && !(compact && l == 0 && name != "mean" && name != "std") {
			return fmt.Errorf("%w: %s has %d entries for %d features", ErrSpec, name, l, s.Features)
		}
	}
	for i := 0; i < s.Features; i++ {
		if !compact && s.Count[i] < 0 || s.Std[i] < 0 || math.IsNaN(s.Std[i]) || math.IsInf(s.Std[i], 0) || math.IsNaN(s.Mean[i]) || math.IsInf(s.Mean[i], 0) {
			return fmt.Errorf("%w: feature %d: mean %v, std %v", ErrSpec, i, s.Mean[i], s.Std[i])
		}
	}
	if s.Clip < 0 || math.IsNaN(s.Clip) {
		return fmt.Errorf("%w: clip %v", ErrSpec, s.Clip)
	}
	if s.Rocket != nil {
		if err := s.Rocket.Check(); err != nil {
			return fmt.Errorf("%w: %v", ErrSpec, err)
		}
		if s.Rocket.Width() != s.Features {
			return fmt.Errorf("%w: MiniRocket makes %d features for %d statistics", ErrSpec, s.Rocket.Width(), s.Features)
		}
	}
	if len(s.Names) != 0 && len(s.Names) != s.Features {
		return fmt.Errorf("%w: %d names for %d features", ErrSpec, len(s.Names), s.Features)
	}
	if len(s.LabelCounts) != len(s.Labels) {
		return fmt.Errorf("%w: %d label counts for %d labels", ErrSpec, len(s.LabelCounts), len(s.Labels))
	}
	for i := 1; i < len(s.Labels); i++ {
		if s.Labels[i-1] >= s.Labels[i] {
			return fmt.Errorf("%w: labels not sorted and unique at %q", ErrSpec, s.Labels[i])
		}
	}
	return nil
}

// Features computes the Spec of a bounded collection of rows of dim
// features: PCollection<featurize.Row> → PCollection<Spec> (one element).
// Rows of another width fail the pipeline.
func Features(s beam.Scope, dim int, rows beam.PCollection) beam.PCollection {
	s = s.Scope("analyze.Features")
	if dim <= 0 {
		panic(fmt.Sprintf("analyze.Features: dimension %d < 1", dim))
	}
	return beam.Combine(s, &statsFn{Dim: dim}, rows)
}

// FeaturesOfBatches is Features over Arrow batches of arrowio.RowSchema
// rows: PCollection<arrowio.Batch> → PCollection<Spec> (one element).
// Batches of another width fail the pipeline.
func FeaturesOfBatches(s beam.Scope, dim int, batches beam.PCollection) beam.PCollection {
	s = s.Scope("analyze.FeaturesOfBatches")
	if dim <= 0 {
		panic(fmt.Sprintf("analyze.FeaturesOfBatches: dimension %d < 1", dim))
	}
	return beam.Combine(s, &batchStatsFn{Dim: dim}, batches)
}

// batchStatsFn is the combiner behind FeaturesOfBatches: statsFn's, with
// batches for input.
type batchStatsFn struct{ Dim int }

func (fn *batchStatsFn) rows() *statsFn { return &statsFn{Dim: fn.Dim} }

func (fn *batchStatsFn) CreateAccumulator() Stats { return fn.rows().CreateAccumulator() }

func (fn *batchStatsFn) MergeAccumulators(a, b Stats) Stats { return fn.rows().MergeAccumulators(a, b) }

func (fn *batchStatsFn) ExtractOutput(a Stats) Spec { return fn.rows().ExtractOutput(a) }

func (fn *batchStatsFn) AddInput(a Stats, b arrowio.Batch) (Stats, error) {
	vals, n, dim, err := arrowio.Features(b.Record)
	if err != nil {
		return a, err
	}
	if n > 0 && dim != fn.Dim {
		return a, fmt.Errorf("analyze.FeaturesOfBatches: a batch of %d features, want %d", dim, fn.Dim)
	}
	labels := b.Record.Column(arrowio.LabelIndex)
	for i := 0; i < n; i++ {
		label := ""
		if labels.IsValid(i) {
			label = labels.ValueStr(i)
		}
		a = addRow(a, vals[i*dim:(i+1)*dim], label)
	}
	return a, nil
}

// statsFn is the combiner behind Features.
type statsFn struct {
	Dim int
}

func (fn *statsFn) CreateAccumulator() Stats {
	return Stats{
		Mean: make([]float64, fn.Dim), M2: make([]float64, fn.Dim), Count: make([]int64, fn.Dim),
		Min: filled(fn.Dim, math.Inf(1)), Max: filled(fn.Dim, math.Inf(-1)), Labels: map[string]int64{},
	}
}

func filled(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func (fn *statsFn) AddInput(a Stats, r featurize.Row) Stats {
	if len(r.Features) != fn.Dim {
		panic(fmt.Sprintf("analyze.Features: row %s has %d features, want %d", r.ID, len(r.Features), fn.Dim))
	}
	return addRow(a, r.Features, r.Label)
}

// addRow adds a row's features and label (none if "") to a.
func addRow(a Stats, features []float64, label string) Stats {
	a.N++
	if label != "" {
		if a.Labels == nil {
			a.Labels = map[string]int64{}
		}
		a.Labels[label]++
	}
	for i, v := range features {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			a.Skipped++
			continue
		}
		a.Count[i]++
		d := v - a.Mean[i]
		a.Mean[i] += d / float64(a.Count[i])
		a.M2[i] += d * (v - a.Mean[i])
		a.Min[i] = math.Min(a.Min[i], v)
		a.Max[i] = math.Max(a.Max[i], v)
	}
	return a
}

func (fn *statsFn) MergeAccumulators(a, b Stats) Stats {
	a.N += b.N
	a.Skipped += b.Skipped
	for l, n := range b.Labels {
		if a.Labels == nil {
			a.Labels = map[string]int64{}
		}
		a.Labels[l] += n
	}
	for i := range a.Mean {
		na, nb := float64(a.Count[i]), float64(b.Count[i])
		if nb == 0 {
			continue
		}
		n := na + nb
		d := b.Mean[i] - a.Mean[i]
		a.Mean[i] += d * nb / n
		a.M2[i] += b.M2[i] + d*d*na*nb/n
		a.Count[i] += b.Count[i]
		a.Min[i] = math.Min(a.Min[i], b.Min[i])
		a.Max[i] = math.Max(a.Max[i], b.Max[i])
	}
	return a
}

func (fn *statsFn) ExtractOutput(a Stats) Spec {
	s := Spec{Features: fn.Dim, Rows: a.N, Count: a.Count, Mean: a.Mean, Min: a.Min, Max: a.Max, Std: make([]float64, fn.Dim), Clip: DefaultClip}
	for i := range s.Std {
		if a.Count[i] > 0 {
			s.Std[i] = math.Sqrt(math.Max(0, a.M2[i]/float64(a.Count[i])))
		} else {
			s.Mean[i], s.Min[i], s.Max[i] = 0, 0, 0
		}
	}
	for l := range a.Labels {
		s.Labels = append(s.Labels, l)
	}
	sort.Strings(s.Labels)
	for _, l := range s.Labels {
		s.LabelCounts = append(s.LabelCounts, a.Labels[l])
	}
	return s
}
