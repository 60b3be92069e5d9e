package kafkaio

import (
	"math"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/rtrackers/offsetrange"
)

// An unbounded partition read takes checkpoints but refuses the runner's
// other splits, so no two bundles read one partition at once.
func TestOrderedTrackerRefusesDynamicSplits(t *testing.T) {
	fn := &readBase{}
	rt := fn.CreateTracker(offsetrange.Restriction{Start: 10, End: math.MaxInt64})
	if !rt.TryClaim(int64(10)) {
		t.Fatal("could not claim the first offset")
	}
	if p, r, err := rt.TrySplit(0.5); p != nil || r != nil || err != nil {
		t.Fatalf("TrySplit(0.5) = %v, %v, %v: want no split", p, r, err)
	}
	_, r, err := rt.TrySplit(0)
	if err != nil || r == nil {
		t.Fatalf("a checkpoint (TrySplit(0)) gave residual %v, %v", r, err)
	}
	if got := r.(offsetrange.Restriction); got.Start != 11 || got.End != math.MaxInt64 {
		t.Errorf("checkpoint residual %+v, want [11, max)", got)
	}
}
