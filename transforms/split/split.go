package split

import (
	"fmt"
	"hash/fnv"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/muonml/muon/io/arrowio"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/transforms/featurize"
)

func init() {
	register.DoFn3x0[featurize.Row, func(featurize.Row), func(featurize.Row)](&holdoutFn{})
	register.DoFn3x1[arrowio.Batch, func(arrowio.Batch), func(arrowio.Batch), error](&holdoutBatchesFn{})
	register.Emitter1[arrowio.Batch]()
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
	p.check("split.Holdout")
	return beam.ParDo2(s, &holdoutFn{Params: p}, rows)
}

// check panics, naming the transform, if p's fraction is out of range.
func (p Params) check(name string) {
	if p.Fraction < 0 || p.Fraction > 1 {
		panic(name + ": Params.Fraction must be in [0, 1]")
	}
}

// held reports whether the row of key and id is held out: by a hash of
// Salt and the id (or the key, by device).
func (p Params) held(key, id string) bool {
	h := fnv.New64a()
	h.Write([]byte(p.Salt))
	if p.ByDevice {
		h.Write([]byte(key))
	} else {
		h.Write([]byte(id))
	}
	return float64(h.Sum64()%1_000_000) < p.Fraction*1_000_000
}

type holdoutFn struct{ Params Params }

func (fn *holdoutFn) ProcessElement(r featurize.Row, rest, held func(featurize.Row)) {
	if fn.Params.held(r.Key, r.ID) {
		held(r)
		return
	}
	rest(r)
}

// HoldoutBatches is Holdout over Arrow batches of arrowio.RowSchema rows:
// PCollection<arrowio.Batch> → the rest and the rows held out, both
// PCollection<arrowio.Batch>; each row goes where Holdout sends it. A
// batch whose rows all go one way passes whole; the others are split in
// two, their rows copied once.
func HoldoutBatches(s beam.Scope, p Params, batches beam.PCollection) (rest, held beam.PCollection) {
	s = s.Scope("split.HoldoutBatches")
	p.check("split.HoldoutBatches")
	return beam.ParDo2(s, &holdoutBatchesFn{Params: p}, batches)
}

type holdoutBatchesFn struct{ Params Params }

func (fn *holdoutBatchesFn) ProcessElement(b arrowio.Batch, rest, held func(arrowio.Batch)) error {
	n := b.Rows()
	if n == 0 {
		return nil
	}
	v, err := arrowio.View(b)
	if err != nil {
		return fmt.Errorf("split: %w", err)
	}
	side := make([]bool, n)
	nHeld := 0
	for i := range side {
		side[i] = fn.Params.held(v.Key(i), v.ID(i))
		if side[i] {
			nHeld++
		}
	}
	switch nHeld {
	case 0:
		rest(b)
		return nil
	case n:
		held(b)
		return nil
	}
	out := [2]*arrowio.RowBuilder{arrowio.NewRowBuilder(memory.DefaultAllocator, v.Dim()), arrowio.NewRowBuilder(memory.DefaultAllocator, v.Dim())}
	out[0].Reserve(n - nHeld)
	out[1].Reserve(nHeld)
	for i, h := range side {
		k := 0
		if h {
			k = 1
		}
		v.AppendTo(out[k], i, nil)
	}
	// The batches go to the runner, or to a fused consumer that may keep
	// them: the Go allocator frees them when they are no longer used.
	for k, emit := range []func(arrowio.Batch){rest, held} {
		emit(out[k].NewBatch())
		out[k].Release()
	}
	return nil
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
