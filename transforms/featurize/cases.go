package featurize

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/transforms/decode"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Row)(nil)).Elem())
	register.Function1x2(byDevice)
	register.DoFn3x0[string, func(*decode.Reading) bool, func(Row)](&caseFn{})
	register.Emitter1[Row]()
	register.Iter1[decode.Reading]()
}

// Row is one feature row: the features of one device over one window or
// one whole case.
type Row struct {
	Key      string
	Time     time.Time // the time of the last reading in the row
	Features []float64
	Label    string // the most frequent label of the readings; ties go to the smallest
	ID       string // the source coordinates of the row's first reading
}

// CaseParams configures Cases.
type CaseParams struct {
	// Channels are the value names to featurize, in row order. Required.
	Channels []string
	// Bands is the number of spectral band energies per channel. Default 0.
	Bands int
}

func (p CaseParams) validate() {
	if len(p.Channels) == 0 {
		panic("featurize.Cases: no channels")
	}
	if p.Bands < 0 {
		panic(fmt.Sprintf("featurize.Cases: %d bands", p.Bands))
	}
	seen := map[string]bool{}
	for _, c := range p.Channels {
		if c == "" || seen[c] {
			panic(fmt.Sprintf("featurize.Cases: empty or repeated channel %q", c))
		}
		seen[c] = true
	}
}

// Cases makes one feature row per device from all its readings (a whole
// recorded case, as in UEA/UCR data): PCollection<decode.Reading> →
// PCollection<Row>. Readings are ordered by event time; time is measured in
// seconds from the device's first reading. A channel a device never sent
// gets NaN features. The input must be bounded.
func Cases(s beam.Scope, p CaseParams, readings beam.PCollection) beam.PCollection {
	s = s.Scope("featurize.Cases")
	p.validate()
	return beam.ParDo(s, &caseFn{Channels: p.Channels, Bands: p.Bands}, beam.GroupByKey(s, beam.ParDo(s, byDevice, readings)))
}

func byDevice(r decode.Reading) (string, decode.Reading) { return r.Device, r }

type caseFn struct {
	Channels []string
	Bands    int

	ex *Extractor
}

func (fn *caseFn) ProcessElement(device string, iter func(*decode.Reading) bool, emit func(Row)) {
	if fn.ex == nil {
		fn.ex = NewExtractor(fn.Bands)
	}
	var all []decode.Reading
	var r decode.Reading
	for iter(&r) {
		all = append(all, r)
	}
	if len(all) == 0 {
		return
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	emit(fn.row(device, all))
}

// row computes the features of readings sorted by time.
func (fn *caseFn) row(device string, all []decode.Reading) Row {
	t0 := all[0].Time
	index := make(map[string]int, len(fn.Channels))
	for i, c := range fn.Channels {
		index[c] = i
	}
	ts := make([][]float64, len(fn.Channels))
	xs := make([][]float64, len(fn.Channels))
	labels := map[string]int{}
	for _, r := range all {
		sec := r.Time.Sub(t0).Seconds()
		for _, v := range r.Values {
			if i, ok := index[v.Name]; ok && !math.IsNaN(v.Value) {
				ts[i] = append(ts[i], sec)
				xs[i] = append(xs[i], v.Value)
			}
		}
		if r.Label != "" {
			labels[r.Label]++
		}
	}
	features := make([]float64, 0, len(fn.Channels)*Width(fn.Bands))
	for i := range fn.Channels {
		features = fn.ex.Channel(features, ts[i], xs[i])
	}
	return Row{Key: device, Time: all[len(all)-1].Time, Features: features, Label: majority(labels), ID: all[0].Source.ID()}
}

func majority(counts map[string]int) string {
	best, n := "", 0
	for l, c := range counts {
		if c > n || (c == n && l < best) {
			best, n = l, c
		}
	}
	return best
}
