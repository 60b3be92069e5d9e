package featurize

import (
	"math"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/records"
	_ "github.com/muonml/muon/records/coders"
)

func init() {
	register.DoFn2x0[records.Reading, func(Row)](&readingRowFn{})
}

// ReadingParams configures Readings.
type ReadingParams struct {
	// Channels are the value names that make a row's features, in order.
	// Required.
	Channels []string
}

// Readings makes one row per reading, its features the reading's values
// of Channels in order (NaN where a reading lacks one), for data whose
// every message is a sample (tabular data, such as optdigits' 64 pixel
// counts): PCollection<records.Reading> → PCollection<Row>. A row's key is
// the device, its time and label the reading's, its id the reading's
// source coordinates. It panics if p is invalid.
func Readings(s beam.Scope, p ReadingParams, readings beam.PCollection) beam.PCollection {
	s = s.Scope("featurize.Readings")
	if err := (CaseParams{Channels: p.Channels}).check(); err != nil {
		panic("featurize.Readings: " + err.Error())
	}
	return beam.ParDo(s, &readingRowFn{Channels: p.Channels}, readings)
}

type readingRowFn struct {
	Channels []string

	index map[string]int
}

func (fn *readingRowFn) Setup() {
	fn.index = make(map[string]int, len(fn.Channels))
	for i, c := range fn.Channels {
		fn.index[c] = i
	}
}

func (fn *readingRowFn) ProcessElement(r records.Reading, emit func(Row)) {
	features := make([]float64, len(fn.Channels))
	for i := range features {
		features[i] = math.NaN()
	}
	for _, v := range r.Values {
		if i, ok := fn.index[v.Name]; ok {
			features[i] = v.Value
		}
	}
	emit(Row{Key: r.Device, Time: r.Time, Features: features, Label: r.Label, ID: r.Source.ID(), Source: r.Source})
}
