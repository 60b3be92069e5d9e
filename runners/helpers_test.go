package runners

import (
	"context"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn2x0[context.Context, int](&countFn{})
}

var seen = beam.NewCounter("runners_test", "seen")

type countFn struct{}

func (fn *countFn) ProcessElement(ctx context.Context, _ int) { seen.Inc(ctx, 1) }
