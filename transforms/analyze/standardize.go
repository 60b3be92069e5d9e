package analyze

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/internal/atomicfile"
	"github.com/muonml/muon/internal/printable"
	"github.com/muonml/muon/transforms/featurize"
)

func init() {
	register.DoFn4x1[[]byte, func(*Spec) bool, func(*featurize.Rocket) bool, func(Spec), error](&withRocketFn{})
	register.Iter1[featurize.Rocket]()
	register.DoFn3x1[featurize.Row, Spec, func(featurize.Row), error](&standardizeFn{})
	register.DoFn2x1[featurize.Row, func(featurize.Row), error](&standardizeWithFn{})
	beam.RegisterType(reflect.TypeOf((*saveSpecFn)(nil)).Elem())
}

// Standardize standardizes rows with stats, the statistics of the
// training rows (PCollection<Spec>, one element, read as a side input):
// PCollection<featurize.Row> → PCollection<featurize.Row>.
func Standardize(s beam.Scope, stats, rows beam.PCollection) beam.PCollection {
	s = s.Scope("analyze.Standardize")
	return beam.ParDo(s, &standardizeFn{}, rows, beam.SideInput{Input: stats})
}

// StandardizeWith standardizes rows with fixed statistics:
// PCollection<featurize.Row> → PCollection<featurize.Row>.
func StandardizeWith(s beam.Scope, sp Spec, rows beam.PCollection) beam.PCollection {
	s = s.Scope("analyze.StandardizeWith")
	return beam.ParDo(s, &standardizeWithFn{Spec: sp}, rows)
}

type standardizeFn struct{}

func (standardizeFn) ProcessElement(r featurize.Row, sp Spec, emit func(featurize.Row)) error {
	f, err := sp.Standardize(nil, r.Features)
	if err != nil {
		return fmt.Errorf("row %s: %w", r.ID, err)
	}
	r.Features = f
	emit(r)
	return nil
}

type standardizeWithFn struct{ Spec Spec }

func (fn *standardizeWithFn) ProcessElement(r featurize.Row, emit func(featurize.Row)) error {
	f, err := fn.Spec.Standardize(nil, r.Features)
	if err != nil {
		return fmt.Errorf("row %s: %w", r.ID, err)
	}
	r.Features = f
	emit(r)
	return nil
}

// WriteSpec writes the preprocessing spec (PCollection<Spec>, one
// element), with the feature names, as JSON to path, atomically.
func WriteSpec(s beam.Scope, path string, names []string, spec beam.PCollection) {
	s = s.Scope("analyze.WriteSpec")
	beam.ParDo0(s, &saveSpecFn{Path: path, Names: names}, spec)
}

// saveSpecFn runs once per job: reflection-registered.
type saveSpecFn struct {
	Path  string
	Names []string
}

func (fn *saveSpecFn) ProcessElement(ctx context.Context, sp Spec) error {
	sp.Names = fn.Names
	if err := sp.Check(); err != nil {
		return fmt.Errorf("preprocessing spec: %w", err)
	}
	b, err := json.MarshalIndent(sp, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(fn.Path, append(b, '\n')); err != nil {
		return err
	}
	for i, l := range sp.Labels {
		if i == MaxLabels {
			break
		}
		// Labels come from messages: escaped and cut for a metric name.
		beam.NewCounter(Namespace, LabelPrefix+printable.String(l, 64)).Inc(ctx, sp.LabelCounts[i])
	}
	return nil
}

// Metric names, in namespace Namespace: WriteSpec counts the rows of each
// label (LabelPrefix + the label), for at most MaxLabels labels.
const (
	Namespace   = "analyze"
	LabelPrefix = "labels."
	MaxLabels   = 256
)

// WithRocket gives the statistics of MiniRocket's features (stats,
// PCollection<Spec>, one element) the fitted transform that makes them
// (PCollection<featurize.Rocket>, one element): PCollection<Spec>, one
// element, whose Preprocess makes and standardizes the features of a raw
// series.
func WithRocket(s beam.Scope, stats, rocket beam.PCollection) beam.PCollection {
	s = s.Scope("analyze.WithRocket")
	return beam.ParDo(s, &withRocketFn{}, beam.Impulse(s), beam.SideInput{Input: stats}, beam.SideInput{Input: rocket})
}

type withRocketFn struct{}

func (withRocketFn) ProcessElement(_ []byte, stats func(*Spec) bool, rocket func(*featurize.Rocket) bool, emit func(Spec)) error {
	var sp Spec
	var r featurize.Rocket
	if !stats(&sp) || !rocket(&r) {
		return nil // no training rows: training says so
	}
	sp.Rocket = &r
	if err := sp.Check(); err != nil {
		return err
	}
	emit(sp)
	return nil
}
