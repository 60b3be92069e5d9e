package analyze

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/transforms/featurize"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.DoFn2x1[context.Context, Spec, error](&writeSpecFn{})
}

type writeSpecFn struct{ Path string }

func (fn *writeSpecFn) ProcessElement(_ context.Context, s Spec) error {
	b, err := MarshalSpec(s)
	if err != nil {
		return err
	}
	return os.WriteFile(fn.Path, b, 0o644)
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// rows with features on very different scales and offsets, where a naive
// sum-of-squares variance loses precision.
func testRows(n int) []featurize.Row {
	rng := rand.New(rand.NewPCG(1, 1))
	labels := []string{"walk", "run", "stand"}
	rows := make([]featurize.Row, n)
	for i := range rows {
		rows[i] = featurize.Row{Key: "d", Label: labels[i%3], ID: "id",
			Features: []float64{1e6 + rng.NormFloat64(), rng.Float64() * 1e-6, 42, float64(i)}}
	}
	return rows
}

// direct computes the spec from its definitions.
func direct(rows []featurize.Row, dim int) Spec {
	s := Spec{Features: dim, Rows: int64(len(rows)), Count: make([]int64, dim), Mean: make([]float64, dim), Std: make([]float64, dim), Min: make([]float64, dim), Max: make([]float64, dim)}
	for j := 0; j < dim; j++ {
		var sum float64
		s.Min[j], s.Max[j] = math.Inf(1), math.Inf(-1)
		for _, r := range rows {
			sum += r.Features[j]
			s.Min[j] = math.Min(s.Min[j], r.Features[j])
			s.Max[j] = math.Max(s.Max[j], r.Features[j])
		}
		s.Count[j] = int64(len(rows))
		s.Mean[j] = sum / float64(len(rows))
		var ss float64
		for _, r := range rows {
			ss += (r.Features[j] - s.Mean[j]) * (r.Features[j] - s.Mean[j])
		}
		s.Std[j] = math.Sqrt(ss / float64(len(rows)))
	}
	return s
}

func checkSpec(t *testing.T, got, want Spec) {
	t.Helper()
	for j := 0; j < want.Features; j++ {
		if got.Count[j] != want.Count[j] || !near(got.Mean[j], want.Mean[j]) || !near(got.Std[j], want.Std[j]) || got.Min[j] != want.Min[j] || got.Max[j] != want.Max[j] {
			t.Errorf("feature %d: count %d mean %.15g std %.15g min %g max %g; want %d %.15g %.15g %g %g",
				j, got.Count[j], got.Mean[j], got.Std[j], got.Min[j], got.Max[j], want.Count[j], want.Mean[j], want.Std[j], want.Min[j], want.Max[j])
		}
	}
}

// However the rows are split into partial accumulators, merging gives the
// statistics of the whole.
func TestCombinerMergesExactly(t *testing.T) {
	rows := testRows(1000)
	want := direct(rows, 4)
	fn := &statsFn{Dim: 4}
	for _, parts := range []int{1, 2, 7, 1000} {
		accs := make([]Stats, parts)
		for i := range accs {
			accs[i] = fn.CreateAccumulator()
		}
		for i, r := range rows {
			accs[i%parts] = fn.AddInput(accs[i%parts], r)
		}
		acc := fn.CreateAccumulator()
		for _, a := range accs {
			acc = fn.MergeAccumulators(acc, a)
		}
		got := fn.ExtractOutput(acc)
		checkSpec(t, got, want)
		if got.Rows != 1000 || len(got.Labels) != 3 || got.Labels[0] != "run" || got.LabelCounts[2] != 334 {
			t.Errorf("%d parts: rows %d labels %v counts %v", parts, got.Rows, got.Labels, got.LabelCounts)
		}
	}
}

func TestNonFiniteValuesAreSkipped(t *testing.T) {
	fn := &statsFn{Dim: 2}
	a := fn.CreateAccumulator()
	for _, f := range [][]float64{{1, math.NaN()}, {3, math.Inf(1)}, {5, 7}} {
		a = fn.AddInput(a, featurize.Row{Features: f})
	}
	s := fn.ExtractOutput(a)
	if s.Count[0] != 3 || s.Count[1] != 1 || s.Mean[0] != 3 || s.Mean[1] != 7 || a.Skipped != 2 {
		t.Errorf("spec %+v, skipped %d", s, a.Skipped)
	}
}

func TestStandardizeAndSerialize(t *testing.T) {
	rows := testRows(100)
	fn := &statsFn{Dim: 4}
	a := fn.CreateAccumulator()
	for _, r := range rows {
		a = fn.AddInput(a, r)
	}
	spec := fn.ExtractOutput(a)
	b, err := MarshalSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	// The standardized training data has mean 0 and deviation 1 (constant
	// features map to 0), the same before and after serialization.
	var sum, sq [4]float64
	for _, r := range rows {
		z1, err := spec.Standardize(nil, r.Features)
		if err != nil {
			t.Fatal(err)
		}
		z2, _ := back.Standardize(nil, r.Features)
		for j := range z1 {
			if z1[j] != z2[j] {
				t.Fatalf("standardization differs after a JSON round trip at %d", j)
			}
			sum[j] += z1[j]
			sq[j] += z1[j] * z1[j]
		}
	}
	for j, want := range []float64{1, 1, 0, 1} {
		if mean := sum[j] / 100; math.Abs(mean) > 1e-9 {
			t.Errorf("feature %d: standardized mean %g", j, mean)
		}
		if v := sq[j] / 100; math.Abs(v-want) > 1e-6 {
			t.Errorf("feature %d: standardized variance %g, want %g", j, v, want)
		}
	}
	if back.LabelIndex("stand") != 1 || back.LabelIndex("fly") != -1 {
		t.Errorf("label indexes: %d %d", back.LabelIndex("stand"), back.LabelIndex("fly"))
	}
	if _, err := spec.Standardize(nil, []float64{1}); !errors.Is(err, ErrSpec) {
		t.Errorf("a row of the wrong width: %v", err)
	}
	for _, bad := range []string{`{"features":2,"mean":[0]}`, `{"features":1,"count":[1],"mean":[0],"std":[-1],"min":[0],"max":[0]}`,
		`{"features":0,"labels":["b","a"],"label_counts":[1,1]}`, `not json`} {
		if _, err := UnmarshalSpec([]byte(bad)); err == nil {
			t.Errorf("UnmarshalSpec(%s) accepted a bad spec", bad)
		}
	}
}

// The analyzer as a pipeline on prism.
func TestFeaturesPipeline(t *testing.T) {
	rows := testRows(5000)
	path := filepath.Join(t.TempDir(), "spec.json")
	p, s := beam.NewPipelineWithRoot()
	beam.ParDo0(s, &writeSpecFn{Path: path}, Features(s, 4, beam.CreateList(s, rows)))
	ptest.RunAndValidate(t, p)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	checkSpec(t, got, direct(rows, 4))
	if got.Rows != 5000 {
		t.Errorf("rows %d", got.Rows)
	}
}

// A feature almost constant over the training rows (a faint pixel lit
// once) gives new rows bounded z-scores, not thousands of deviations.
func TestStandardizeClips(t *testing.T) {
	sp := Spec{Features: 2, Count: []int64{8000, 8000}, Mean: []float64{5e-7, 5}, Std: []float64{4.4e-5, 2}, Min: []float64{0, 0}, Max: []float64{0.004, 10}, Clip: DefaultClip}
	z, err := sp.Standardize(nil, []float64{0.14, 7})
	if err != nil {
		t.Fatal(err)
	}
	if z[0] != DefaultClip || z[1] != 1 {
		t.Errorf("z %v, want [%v 1]", z, float64(DefaultClip))
	}
	sp.Clip = 0 // a spec written before Clip: unbounded, as it was trained
	if z, _ := sp.Standardize(nil, []float64{0.14, 7}); z[0] < 3000 {
		t.Errorf("without Clip: z %v, want the unbounded 3,182", z)
	}
}

// FeaturesOfBatches gives the statistics Features gives of the same rows.
func TestFeaturesOfBatchesPipeline(t *testing.T) {
	rows := testRows(5000)
	var batches []arrowio.Batch
	rb := arrowio.NewRowBuilder(memory.DefaultAllocator, 4)
	defer rb.Release()
	for i, r := range rows {
		rb.Append(r.Key, time.Unix(int64(i), 0), r.Features, r.Label, fmt.Sprint(i), records.Source{})
		if rb.Len() == 700 || i == len(rows)-1 {
			batches = append(batches, rb.NewBatch())
		}
	}
	path := filepath.Join(t.TempDir(), "spec.json")
	p, s := beam.NewPipelineWithRoot()
	beam.ParDo0(s, &writeSpecFn{Path: path}, FeaturesOfBatches(s, 4, beam.CreateList(s, batches)))
	ptest.RunAndValidate(t, p)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	checkSpec(t, got, direct(rows, 4))
	if got.Rows != 5000 || fmt.Sprint(got.Labels, got.LabelCounts) != "[run stand walk] [1667 1666 1667]" {
		t.Errorf("rows %d, labels %v %v", got.Rows, got.Labels, got.LabelCounts)
	}
}

// A compact spec keeps what serving needs, its statistics as float32, and
// reads back through UnmarshalSpec; a full spec still reads as before.
func TestCompactSpec(t *testing.T) {
	rows := testRows(500)
	full := direct(rows, 4)
	full.Labels, full.LabelCounts, full.Names, full.Clip = []string{"run"}, []int64{500}, []string{"a", "b", "c", "d"}, DefaultClip
	b, err := MarshalCompact(full)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalSpec(b)
	if err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if got.Count != nil || got.Min != nil || got.Labels != nil || got.Features != 4 || got.Clip != DefaultClip || len(got.Names) != 4 {
		t.Errorf("compact spec read back as %+v", got)
	}
	for i := range full.Mean {
		if got.Mean[i] != float64(float32(full.Mean[i])) || got.Std[i] != float64(float32(full.Std[i])) {
			t.Errorf("feature %d: mean %v std %v, want %v %v as float32", i, got.Mean[i], got.Std[i], full.Mean[i], full.Std[i])
		}
	}
	row := []float64{1e6, 1e-7, 42, 10}
	compact := full.Compact()
	want, _ := compact.Standardize(nil, row)
	have, err := got.Standardize(nil, row)
	if err != nil || fmt.Sprint(want) != fmt.Sprint(have) {
		t.Errorf("compact standardizes %v to %v, Compact() to %v (%v)", row, have, want, err)
	}
	fb, _ := MarshalSpec(full)
	again, err := UnmarshalSpec(fb)
	if err != nil || len(again.Count) != 4 || again.Mean[0] != full.Mean[0] {
		t.Errorf("the full form read back as %+v, %v", again, err)
	}
	if len(b) > len(fb)/2 {
		t.Errorf("compact form of %d bytes, the full %d", len(b), len(fb))
	}
	if _, err := UnmarshalSpec([]byte(`{"features":1,"mean32":"!!","std32":""}`)); err == nil {
		t.Error("took a compact spec that is not base64")
	}
	if _, err := UnmarshalSpec([]byte(`{"features":2,"mean32":"AAAAAA==","std32":"AAAAAA=="}`)); err == nil {
		t.Error("took a compact spec of one value for two features")
	}
}
