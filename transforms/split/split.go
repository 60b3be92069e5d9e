package split

import (
	"hash/fnv"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/transforms/featurize"
)

func init() {
	register.DoFn3x0[featurize.Row, func(featurize.Row), func(featurize.Row)](&holdoutFn{})
	register.Function1x2(rowKey)
	register.Function3x0(lastRow)
	register.Iter1[featurize.Row]()
}

// Params configures Holdout.
type Params struct {
	// Fraction of rows held out, in [0, 1].
	Fraction float64
	// Salt makes different holdouts of the same rows independent.
	Salt string
	// ByDevice holds out whole devices: all of a device's rows go to one
	// side. Default: by row id.
	ByDevice bool
}

// Holdout splits rows by a hash of Salt and their ids (or devices):
// PCollection<featurize.Row> → the rest and the rows held out, both
// PCollection<featurize.Row>.
func Holdout(s beam.Scope, p Params, rows beam.PCollection) (rest, held beam.PCollection) {
	s = s.Scope("split.Holdout")
	if p.Fraction < 0 || p.Fraction > 1 {
		panic("split.Holdout: Params.Fraction must be in [0, 1]")
	}
	return beam.ParDo2(s, &holdoutFn{Fraction: p.Fraction, Salt: p.Salt, ByDevice: p.ByDevice}, rows)
}

type holdoutFn struct {
	Fraction float64
	Salt     string
	ByDevice bool
}

func (fn *holdoutFn) ProcessElement(r featurize.Row, rest, held func(featurize.Row)) {
	h := fnv.New64a()
	h.Write([]byte(fn.Salt))
	if fn.ByDevice {
		h.Write([]byte(r.Key))
	} else {
		h.Write([]byte(r.ID))
	}
	if float64(h.Sum64()%1_000_000) < fn.Fraction*1_000_000 {
		held(r)
		return
	}
	rest(r)
}

// LastPerDevice keeps each device's latest row (by time, then id):
// PCollection<featurize.Row> → PCollection<featurize.Row>.
func LastPerDevice(s beam.Scope, rows beam.PCollection) beam.PCollection {
	s = s.Scope("split.LastPerDevice")
	return beam.ParDo(s, lastRow, beam.GroupByKey(s, beam.ParDo(s, rowKey, rows)))
}

func rowKey(r featurize.Row) (string, featurize.Row) { return r.Key, r }

func lastRow(_ string, iter func(*featurize.Row) bool, emit func(featurize.Row)) {
	var last, r featurize.Row
	first := true
	for iter(&r) {
		if first || r.Time.After(last.Time) || r.Time.Equal(last.Time) && r.ID > last.ID {
			last, first = r, false
		}
	}
	if !first {
		emit(last)
	}
}
