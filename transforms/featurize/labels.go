package featurize

import (
	"strconv"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn2x0[Row, func(Row)](&relabelFn{})
	register.DoFn2x0[Row, func(Row)](&capFn{})
}

// Relabel maps row labels through m; labels m does not list stay:
// PCollection<Row> → PCollection<Row>. An empty m returns rows.
func Relabel(s beam.Scope, m map[string]string, rows beam.PCollection) beam.PCollection {
	if len(m) == 0 {
		return rows
	}
	s = s.Scope("featurize.Relabel")
	return beam.ParDo(s, &relabelFn{Map: m}, rows)
}

type relabelFn struct{ Map map[string]string }

func (fn *relabelFn) ProcessElement(r Row, emit func(Row)) {
	if l, ok := fn.Map[r.Label]; ok {
		r.Label = l
	}
	emit(r)
}

// CapTargets caps numeric targets (labels) at max; other labels pass (the
// trainer refuses them with the row's id): PCollection<Row> →
// PCollection<Row>. A max of 0 or less returns rows.
func CapTargets(s beam.Scope, max float64, rows beam.PCollection) beam.PCollection {
	if max <= 0 {
		return rows
	}
	s = s.Scope("featurize.CapTargets")
	return beam.ParDo(s, &capFn{Cap: max}, rows)
}

type capFn struct{ Cap float64 }

func (fn *capFn) ProcessElement(r Row, emit func(Row)) {
	if v, err := strconv.ParseFloat(r.Label, 64); err == nil && v > fn.Cap {
		r.Label = strconv.FormatFloat(fn.Cap, 'g', -1, 64)
	}
	emit(r)
}
