package arrowio_test

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/records"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.Function2x0(makeBatch)
	register.Function1x1(sumFeatures)
	register.Emitter1[arrowio.Batch]()
}

// makeBatch emits a batch of n rows; the pipeline owns it from then on.
func makeBatch(n int, emit func(arrowio.Batch)) {
	rb := arrowio.NewRowBuilder(memory.DefaultAllocator, 2)
	defer rb.Release()
	for i := 0; i < n; i++ {
		rb.Append("k", t0, []float64{float64(i), 1}, "", "id", records.Source{})
	}
	emit(rb.NewBatch())
}

func sumFeatures(b arrowio.Batch) float64 {
	vals, _, _, err := arrowio.Features(b.Record)
	if err != nil {
		panic(err)
	}
	var s float64
	for _, v := range vals {
		s += v
	}
	return s
}

// Batches cross a Reshuffle, so the runner encodes and decodes them with
// the Arrow IPC coder.
func TestBatchesCrossStages(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	batches := beam.ParDo(s, makeBatch, beam.Create(s, 3, 100, 4096))
	sums := beam.ParDo(s, sumFeatures, beam.Reshuffle(s, batches))
	// Σ_{i<n} (i + 1) = n(n-1)/2 + n
	passert.Equals(s, sums, 6.0, 5050.0, 8390656.0)
	ptest.RunAndValidate(t, p)
}
