package featurize_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/transforms/featurize"
)

func init() {
	register.Function1x1(describeRow)
}

// describeRow renders a row for comparison, its typed source last; NaN
// prints as NaN.
func describeRow(r featurize.Row) string {
	return fmt.Sprintf("%s %s %v %s %s %s:%d:%d", r.Key, r.Time.Format(time.RFC3339), r.Features, r.Label, r.ID,
		r.Source.Topic, r.Source.Partition, r.Source.Offset)
}

// Each reading becomes a row of its values in channel order, NaN for a
// channel it lacks; other values are ignored.
func TestReadings(t *testing.T) {
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	in := []records.Reading{
		{Device: "d", Time: at, Label: "7", Values: []records.Value{{Name: "b", Value: 2}, {Name: "a", Value: 1}, {Name: "z", Value: 9}},
			Source: records.Source{Topic: "digits", Partition: 1, Offset: 5}},
		{Device: "e", Time: at, Values: []records.Value{{Name: "a", Value: -1}}, Source: records.Source{Topic: "digits", Offset: 6}},
	}
	p, s := beam.NewPipelineWithRoot()
	rows := featurize.Readings(s, featurize.ReadingParams{Channels: []string{"a", "b"}}, beam.CreateList(s, in))
	passert.Equals(s, beam.ParDo(s, describeRow, rows),
		"d 2024-01-01T00:00:00Z [1 2] 7 digits/1/5 digits:1:5",
		fmt.Sprintf("e 2024-01-01T00:00:00Z [-1 %v]  digits/0/6 digits:0:6", math.NaN()))
	ptest.RunAndValidate(t, p)
}
