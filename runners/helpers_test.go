package runners

import (
	"context"
	"errors"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn2x0[context.Context, int](&countFn{})
	register.DoFn1x0[int](&blockFn{})
	register.DoFn1x0[int](&slowFailFn{})
	register.DoFn2x1[context.Context, int, error](&countThenWaitFn{})
}

// slowFailFn fails its bundle in FinishBundle after a while, so the runner
// asks for the bundle's progress while it finishes (and the worker cannot
// answer).
type slowFailFn struct{}

func (fn *slowFailFn) ProcessElement(_ int) {}

func (fn *slowFailFn) FinishBundle() error {
	time.Sleep(2 * time.Second)
	return errSlowFail
}

var errSlowFail = errors.New("slowFailFn: the bundle failed")

var seen = beam.NewCounter("runners_test", "seen")

type countFn struct{}

func (fn *countFn) ProcessElement(ctx context.Context, _ int) { seen.Inc(ctx, 1) }

// blockStarted and blockRelease let TestEdgeListensOnlyForItself hold an
// edge job in its DoFn (the edge runner runs DoFns in this process).
var blockStarted, blockRelease chan struct{}

type blockFn struct{}

func (fn *blockFn) ProcessElement(_ int) {
	blockStarted <- struct{}{}
	<-blockRelease
}

// liveRelease lets TestEdgeLiveMetrics hold a bundle open until the
// job's live metrics show what the bundle counted.
var liveRelease chan struct{}

type countThenWaitFn struct{}

func (fn *countThenWaitFn) ProcessElement(ctx context.Context, _ int) error {
	beam.NewCounter("runners_test", "live").Inc(ctx, 5)
	beam.NewGauge("runners_test", "level").Set(ctx, 42)
	select {
	case <-liveRelease:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("countThenWaitFn: the live metrics never showed the count")
	}
}
