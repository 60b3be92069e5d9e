package batch_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/transforms/batch"
	"github.com/muonml/muon/transforms/featurize"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.Function2x0(explodeIDs)
	register.Function1x1(batchSize)
	register.Function1x1(sizeOK)
}

// explodeIDs emits "id=sum of features" for every row of a batch, read
// from the feature matrix.
func explodeIDs(b arrowio.Batch, emit func(string)) {
	vals, rows, dim, err := arrowio.Features(b.Record)
	if err != nil {
		panic(err)
	}
	ids := b.Record.Column(arrowio.IDIndex)
	for i := 0; i < rows; i++ {
		var s float64
		for _, v := range vals[i*dim : (i+1)*dim] {
			s += v
		}
		src := ""
		if at := arrowio.SourceAt(b.Record, i); at.Topic != "" {
			src = " from " + at.ID()
		}
		emit(fmt.Sprintf("%s=%g%s", ids.ValueStr(i), s, src))
	}
}

func batchSize(b arrowio.Batch) int { return b.Rows() }

func sizeOK(n int) bool { return n > 0 && n <= 100 }

func TestRowsToBatches(t *testing.T) {
	const n, dim = 2500, 3
	var rows []featurize.Row
	var want []any
	for i := 0; i < n; i++ {
		f := []float64{float64(i), 1, -0.5}
		rows = append(rows, featurize.Row{Key: fmt.Sprintf("dev-%d", i%13), Time: time.Unix(int64(i), 0).UTC(), Features: f, Label: "x", ID: fmt.Sprintf("t/0/%d", i),
			Source: records.Source{Topic: "t", Offset: int64(i)}})
		want = append(want, fmt.Sprintf("t/0/%d=%g from t/0/%d", i, float64(i)+0.5, i))
	}
	p, s := beam.NewPipelineWithRoot()
	batches := batch.Rows(s, batch.Params{Dim: dim, MaxRows: 100, Shards: 4}, beam.CreateList(s, rows))
	passert.Equals(s, beam.ParDo(s, explodeIDs, beam.Reshuffle(s, batches)), want...)
	sizes := beam.ParDo(s, batchSize, batches)
	passert.True(s, sizes, sizeOK)
	passert.Equals(s, stats.Sum(s, sizes), n)
	ptest.RunAndValidate(t, p)
}

func TestRowsRefusesWrongWidth(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	batch.Rows(s, batch.Params{Dim: 2}, beam.CreateList(s, []featurize.Row{{Key: "k", Features: []float64{1, 2, 3}}}))
	if err := ptest.Run(p); err == nil {
		t.Error("a row of 3 features in a batch of 2 did not fail the pipeline")
	}
}

func TestRowsStreaming(t *testing.T) {
	const n = 1000
	var rows []featurize.Row
	var want []any
	for i := 0; i < n; i++ {
		rows = append(rows, featurize.Row{Key: "d", Time: time.Unix(int64(i), 0).UTC(), Features: []float64{float64(i), 0.5, 0}, ID: fmt.Sprintf("t/0/%d", i)})
		want = append(want, fmt.Sprintf("t/0/%d=%g", i, float64(i)+0.5))
	}
	p, s := beam.NewPipelineWithRoot()
	batches := batch.Rows(s, batch.Params{Dim: 3, MaxRows: 100, Unbounded: true}, beam.CreateList(s, rows))
	passert.Equals(s, beam.ParDo(s, explodeIDs, batches), want...)
	sizes := beam.ParDo(s, batchSize, batches)
	passert.True(s, sizes, sizeOK)
	ptest.RunAndValidate(t, p)
}
