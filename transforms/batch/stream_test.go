package batch

import (
	"context"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/transforms/featurize"
)

// A streaming batch is emitted when it is full, when its first row has
// waited MaxWait, and at the end of the bundle.
func TestStreamBatchLimits(t *testing.T) {
	fn := &streamBuildFn{Dim: 1, MaxRows: 3, MaxWait: time.Second}
	fn.Setup()
	defer fn.Teardown()
	clock := time.Unix(0, 0)
	fn.now = func() time.Time { return clock }
	var sizes []int
	var times []beam.EventTime
	emit := func(et beam.EventTime, b arrowio.Batch) {
		sizes = append(sizes, b.Rows())
		times = append(times, et)
		b.Record.Release()
	}
	row := func(i int) {
		t.Helper()
		if err := fn.ProcessElement(context.Background(), beam.EventTime(i), featurize.Row{Key: "k", Features: []float64{float64(i)}, ID: "x"}, emit); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 4; i++ { // 3 fill a batch, the 4th waits
		row(i)
	}
	clock = clock.Add(999 * time.Millisecond)
	row(4) // 999 ms after the 4th: still waiting
	clock = clock.Add(time.Millisecond)
	row(5) // the 4th has waited 1 s
	row(6)
	fn.FinishBundle(context.Background(), emit)
	want := []int{3, 3, 1}
	if len(sizes) != len(want) || sizes[0] != 3 || sizes[1] != 3 || sizes[2] != 1 {
		t.Fatalf("batch sizes %v, want %v", sizes, want)
	}
	if times[0] != 2 || times[1] != 5 || times[2] != 6 {
		t.Errorf("batch times %v, want the newest row's: 2, 5, 6", times)
	}
	if err := fn.ProcessElement(context.Background(), 0, featurize.Row{Features: []float64{1, 2}}, emit); err == nil {
		t.Error("a row of 2 features in a batch of 1 was accepted")
	}
}
