package featurize

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/records"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Row)(nil)).Elem())
	register.Function1x2(byDevice)
	register.DoFn4x0[context.Context, string, func(*records.Reading) bool, func(Row)](&caseFn{})
	register.Emitter1[Row]()
	register.Iter1[records.Reading]()
}

// SeriesCut counts rows of raw series (CaseParams.Length,
// WindowParams.Length) whose readings were more than the length.
const SeriesCut = "series.cut"

// BandsShort counts rows with a channel of fewer than 2×bands values: the
// FFT of n values has n/2 frequency bins, so some of those rows' band
// energies are zeros, whatever the signal.
const BandsShort = "bands.short"

var (
	seriesCut  = beam.NewCounter(Namespace, SeriesCut)
	bandsShort = beam.NewCounter(Namespace, BandsShort)
)

// Row is one feature row: the features of one device over one window or
// one whole case.
type Row struct {
	Key      string
	Time     time.Time // the time of the last reading in the row
	Features []float64
	Label    string // the most frequent label of the readings (ties go to the smallest), or the last one
	ID       string // the row's identity: its Source's ID, or device@start of a window
	// Source is where the row's first reading was read; zero (empty Topic)
	// for a window.
	Source records.Source
}

// CaseParams configures Cases.
type CaseParams struct {
	// Channels are the value names to featurize, in row order. Required.
	Channels []string
	// Bands is the number of spectral band energies per channel. Default 0.
	Bands int
	// LastLabel labels a row with its latest labelled reading's label (a
	// remaining useful life, say) instead of the most frequent one.
	LastLabel bool
	// Length, when > 0, makes rows of raw series for MiniRocket instead of
	// features: each channel's first Length values in time order (NaN
	// skipped), ended with NaN when there are fewer; a row whose series
	// were longer is counted (featurize/series.cut). Bands must be 0.
	Length int
}

func (p CaseParams) check() error {
	if p.Length < 0 || p.Length > 0 && p.Bands > 0 {
		return fmt.Errorf("series length %d with %d bands: raw series have no bands", p.Length, p.Bands)
	}
	if len(p.Channels) == 0 {
		return errors.New("no channels")
	}
	if p.Bands < 0 {
		return fmt.Errorf("%d bands", p.Bands)
	}
	seen := map[string]bool{}
	for _, c := range p.Channels {
		if c == "" || seen[c] {
			return fmt.Errorf("empty or repeated channel %q", c)
		}
		seen[c] = true
	}
	return nil
}

// Cases makes one feature row per device from all its readings (a whole
// recorded case, as in UEA/UCR data): PCollection<records.Reading> →
// PCollection<Row>. Readings are ordered by event time; time is measured in
// seconds from the device's first reading. A channel a device never sent
// gets NaN features. The input must be bounded.
func Cases(s beam.Scope, p CaseParams, readings beam.PCollection) beam.PCollection {
	s = s.Scope("featurize.Cases")
	if err := p.check(); err != nil {
		panic("featurize.Cases: " + err.Error())
	}
	return beam.ParDo(s, &caseFn{Channels: p.Channels, Bands: p.Bands, LastLabel: p.LastLabel, Length: p.Length}, beam.GroupByKey(s, beam.ParDo(s, byDevice, readings)))
}

func byDevice(r records.Reading) (string, records.Reading) { return r.Device, r }

type caseFn struct {
	Channels  []string
	Bands     int
	LastLabel bool
	Length    int

	rows *rowMaker
}

func (fn *caseFn) Setup() {
	fn.rows = newRowMaker(fn.Channels, fn.Bands)
	fn.rows.lastLabel = fn.LastLabel
	fn.rows.length = fn.Length
}

func (fn *caseFn) ProcessElement(ctx context.Context, device string, iter func(*records.Reading) bool, emit func(Row)) {
	var all []records.Reading
	var r records.Reading
	for iter(&r) {
		all = append(all, r)
	}
	if len(all) == 0 {
		return
	}
	sortReadings(all)
	features, label := fn.rows.features(all, all[0].Time)
	if fn.rows.cut {
		seriesCut.Inc(ctx, 1)
	}
	if fn.rows.short {
		bandsShort.Inc(ctx, 1)
	}
	emit(Row{Key: device, Time: all[len(all)-1].Time, Features: features, Label: label, ID: all[0].Source.ID(), Source: all[0].Source})
}
