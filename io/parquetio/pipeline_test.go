package parquetio_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/records"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.Function2x0(genFeatures)
	register.Function2x0(genReadings)
	register.Function2x0(featureRowStrings)
	register.Function1x1(readingString)
	register.Function1x1(fileRows)
	register.Emitter1[arrowio.Batch]()
	register.Emitter1[records.Reading]()
	register.Emitter1[string]()
}

// Pipeline data: seed i makes 150 rows 1 min apart from t0 + i h, so the
// seeds overlap in hours and their rows meet in partitions.
const pipelineRows, pipelineDim = 150, 4

func genFeatures(seed int, emit func(arrowio.Batch)) {
	emit(makeFeatures(memory.DefaultAllocator, pipelineRows, pipelineDim, t0.Add(time.Duration(seed)*time.Hour), time.Minute, fmt.Sprintf("s%d/", seed)))
}

func genReadings(seed int, emit func(records.Reading)) {
	for _, r := range sampleReadings(60) {
		r.Source.Offset += int64(seed) * 1000
		emit(r)
	}
}

// featureRowStrings spells every row of a batch, floats by their bits.
func featureRowStrings(b arrowio.Batch, emit func(string)) {
	vals, n, dim, err := arrowio.Features(b.Record)
	if err != nil {
		panic(err)
	}
	for i := 0; i < n; i++ {
		emit(rowString(b, vals[i*dim:(i+1)*dim], i))
	}
}

func rowString(b arrowio.Batch, features []float64, i int) string {
	rec := b.Record
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s|%d|", rec.Column(arrowio.KeyIndex).(*array.String).Value(i), rec.Column(arrowio.TimeIndex).(*array.Timestamp).Value(i))
	for _, v := range features {
		fmt.Fprintf(&sb, "%x,", math.Float64bits(v))
	}
	if l := rec.Column(arrowio.LabelIndex).(*array.String); l.IsNull(i) {
		sb.WriteString("|null|")
	} else {
		fmt.Fprintf(&sb, "|%q|", l.Value(i))
	}
	sb.WriteString(rec.Column(arrowio.IDIndex).(*array.String).Value(i))
	return sb.String()
}

func readingString(r records.Reading) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s|%s|%d|%q|%s|", r.Device, r.Time.Format(time.RFC3339Nano), r.Time.UnixNano(), r.Label, r.Source.ID())
	for _, v := range r.Values {
		fmt.Fprintf(&sb, "%s=%x,", v.Name, math.Float64bits(v.Value))
	}
	if r.Time.Location() != time.UTC {
		sb.WriteString("not UTC")
	}
	return sb.String()
}

func fileRows(f parquetio.File) int { return int(f.Rows) }

// wantFeatureRows spells the rows of seeds 0..seeds-1 whose time is in
// [from, to), or all if from and to are zero.
func wantFeatureRows(seeds int, from, to time.Time) []any {
	var want []any
	for seed := 0; seed < seeds; seed++ {
		b := makeFeatures(memory.DefaultAllocator, pipelineRows, pipelineDim, t0.Add(time.Duration(seed)*time.Hour), time.Minute, fmt.Sprintf("s%d/", seed))
		vals, n, dim, _ := arrowio.Features(b.Record)
		for i := 0; i < n; i++ {
			ts := b.Record.Column(arrowio.TimeIndex).(*array.Timestamp).Value(i).ToTime(arrow.Millisecond)
			if from.IsZero() || !ts.Before(from) && ts.Before(to) {
				want = append(want, rowString(b, vals[i*dim:(i+1)*dim], i))
			}
		}
		b.Record.Release()
	}
	return want
}

func TestPipelineFeatures(t *testing.T) {
	const seeds = 3
	root := t.TempDir()
	p, s := beam.NewPipelineWithRoot()
	batches := beam.ParDo(s, genFeatures, beam.Create(s, 0, 1, 2))
	files := parquetio.WriteFeatures(s, parquetio.WriteParams{Root: root, Dim: pipelineDim, Names: []string{"a", "b", "c", "d"}, RowGroupRows: 40}, beam.Reshuffle(s, batches))
	passert.Equals(s, stats.Sum(s, beam.ParDo(s, fileRows, files)), seeds*pipelineRows)
	ptest.RunAndValidate(t, p)

	paths, err := parquetio.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		rel, _ := filepath.Rel(root, path)
		if !partName.MatchString(filepath.ToSlash(rel)) {
			t.Errorf("file %s is not in the layout", rel)
		}
	}
	// 150 minutes from 13:00, 14:00 and 15:00: hours 13 to 17.
	if dirs, _ := filepath.Glob(filepath.Join(root, "date=2024-05-01", "hour=*")); len(dirs) != 5 {
		t.Errorf("hour partitions %v, want 13 to 17", dirs)
	}

	t.Run("read all", func(t *testing.T) {
		p, s := beam.NewPipelineWithRoot()
		got := parquetio.ReadFeatures(s, parquetio.ReadParams{Paths: []string{root}, BatchRows: 16})
		passert.Equals(s, beam.ParDo(s, featureRowStrings, got), wantFeatureRows(seeds, time.Time{}, time.Time{})...)
		ptest.RunAndValidate(t, p)
	})
	t.Run("read hours", func(t *testing.T) {
		from, to := t0.Add(90*time.Minute), t0.Add(3*time.Hour) // hours 14 and 15
		p, s := beam.NewPipelineWithRoot()
		got := parquetio.ReadFeatures(s, parquetio.ReadParams{Paths: []string{root}, Dim: pipelineDim, From: from, To: to})
		passert.Equals(s, beam.ParDo(s, featureRowStrings, got), wantFeatureRows(seeds, t0.Add(time.Hour), to)...)
		ptest.RunAndValidate(t, p)
	})
	t.Run("wrong dimension", func(t *testing.T) {
		p, s := beam.NewPipelineWithRoot()
		parquetio.ReadFeatures(s, parquetio.ReadParams{Paths: []string{root}, Dim: pipelineDim + 1})
		err := ptest.Run(p)
		if err == nil || !strings.Contains(err.Error(), "features per row, want 5") {
			t.Errorf("reading dimension 4 as 5: %.300v", err)
		}
	})
	t.Run("mixed dimensions", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other.parquet")
		b := makeFeatures(memory.DefaultAllocator, 3, 2, t0, time.Second, "x/")
		if err := os.WriteFile(other, writeFeatures(t, parquetio.FeatureOptions{Dim: 2}, b), 0o644); err != nil {
			t.Fatal(err)
		}
		p, s := beam.NewPipelineWithRoot()
		parquetio.ReadFeatures(s, parquetio.ReadParams{Paths: []string{root, other}})
		err := ptest.Run(p)
		if err == nil || !strings.Contains(err.Error(), "the dimension of") {
			t.Errorf("reading dimensions 4 and 2 together: %.300v", err)
		}
	})
}

func TestPipelineReadings(t *testing.T) {
	root := t.TempDir()
	p, s := beam.NewPipelineWithRoot()
	readings := beam.ParDo(s, genReadings, beam.Create(s, 0, 1))
	files := parquetio.WriteReadings(s, parquetio.WriteParams{Root: root, Prefix: "readings", MaxFileRows: 9}, readings)
	passert.Equals(s, stats.Sum(s, beam.ParDo(s, fileRows, files)), 120)
	ptest.RunAndValidate(t, p)

	var want []any
	for seed := 0; seed < 2; seed++ {
		for _, r := range sampleReadings(60) {
			r.Source.Offset += int64(seed) * 1000
			want = append(want, readingString(r))
		}
	}
	p, s = beam.NewPipelineWithRoot()
	got := parquetio.ReadReadings(s, parquetio.ReadParams{Paths: []string{filepath.Join(root, "date=*")}})
	passert.Equals(s, beam.ParDo(s, readingString, got), want...)
	ptest.RunAndValidate(t, p)
}

func TestTransformsRefuseBadParams(t *testing.T) {
	for _, tt := range []struct {
		name  string
		build func(s beam.Scope)
	}{
		{"parquetio.WriteFeatures", func(s beam.Scope) {
			parquetio.WriteFeatures(s, parquetio.WriteParams{Root: "x"}, beam.Create(s, arrowio.Batch{}))
		}},
		{"parquetio.WriteReadings", func(s beam.Scope) {
			parquetio.WriteReadings(s, parquetio.WriteParams{}, beam.Create(s, records.Reading{}))
		}},
		{"parquetio.ReadFeatures", func(s beam.Scope) { parquetio.ReadFeatures(s, parquetio.ReadParams{}) }},
		{"parquetio.ReadReadings", func(s beam.Scope) {
			parquetio.ReadReadings(s, parquetio.ReadParams{Paths: []string{"x"}, From: t0, To: t0})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p == nil || !strings.HasPrefix(fmt.Sprint(p), tt.name+":") {
					t.Errorf("panic %v, want one starting %s:", p, tt.name)
				}
			}()
			_, s := beam.NewPipelineWithRoot()
			tt.build(s)
		})
	}
}
