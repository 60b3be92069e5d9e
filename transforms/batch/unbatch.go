package batch

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/transforms/featurize"
)

func init() {
	register.DoFn2x1[arrowio.Batch, func(featurize.Row), error](&unbatchFn{})
	register.Function1x1(batchRows)
	register.Function1x0(discardCount)
	register.Function2x1(sumRows)
}

// Unbatch turns feature batches back into rows:
// PCollection<arrowio.Batch> → PCollection<featurize.Row>.
func Unbatch(s beam.Scope, batches beam.PCollection) beam.PCollection {
	s = s.Scope("batch.Unbatch")
	return beam.ParDo(s, &unbatchFn{}, batches)
}

type unbatchFn struct{}

func (unbatchFn) ProcessElement(b arrowio.Batch, emit func(featurize.Row)) error {
	vals, n, dim, err := arrowio.Features(b.Record)
	if err != nil {
		return err
	}
	rec := b.Record
	keys, labels, ids := rec.Column(arrowio.KeyIndex), rec.Column(arrowio.LabelIndex), rec.Column(arrowio.IDIndex)
	times, ok := rec.Column(arrowio.TimeIndex).(*array.Timestamp)
	if !ok {
		return fmt.Errorf("feature batch: column time is %s, want a timestamp", rec.Column(arrowio.TimeIndex).DataType())
	}
	unit := times.DataType().(*arrow.TimestampType).Unit
	for i := 0; i < n; i++ {
		r := featurize.Row{
			Key:      keys.ValueStr(i),
			Time:     times.Value(i).ToTime(unit).UTC(),
			Features: append([]float64(nil), vals[i*dim:(i+1)*dim]...),
			ID:       ids.ValueStr(i),
			Source:   arrowio.SourceAt(rec, i),
		}
		if !labels.IsNull(i) {
			r.Label = labels.ValueStr(i)
		}
		emit(r)
	}
	return nil
}

// StageOutput gives the fused stage that makes batches an output to a
// later stage: the rows per batch, summed per 10 s of event time. On
// prism (Beam 2.62) a stage whose only ends are sinks busy-waits a core
// for as long as each of its bundles runs, which halves an infer job's
// throughput on two cores; a stage with an output waits for it instead.
func StageOutput(s beam.Scope, batches beam.PCollection) {
	s = s.Scope("batch.StageOutput")
	rows := beam.WindowInto(s, window.NewFixedWindows(10*time.Second), beam.ParDo(s, batchRows, batches))
	beam.ParDo0(s, discardCount, beam.Combine(s, sumRows, rows))
}

func batchRows(b arrowio.Batch) int64 { return int64(b.Rows()) }

func discardCount(int64) {}

// sumRows is the combine of StageOutput's counts. (Beam's stats.Sum would
// do, but its package registers functions for every numeric type, work
// every muon process did at start.)
func sumRows(a, b int64) int64 { return a + b }
