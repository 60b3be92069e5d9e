package featurize

import (
	"math"
	"time"

	"github.com/muonml/muon/records"
)

// rowMaker turns a time-ordered run of one device's readings into feature
// values. It keeps its per-channel scratch between rows, so a worker makes
// rows without allocating per reading; it is not safe for concurrent use.
type rowMaker struct {
	channels []string
	index    map[string]int
	ex       *Extractor
	ts, xs   [][]float64
	labels   map[string]int
	// lastLabel labels a row with its latest labelled reading's label
	// instead of the most frequent one.
	lastLabel bool
	// length, when > 0, makes rows of raw series instead of features:
	// each channel's first length values in time order, ended with NaN
	// when there are fewer (MiniRocket's input). cut counts rows whose
	// series were longer.
	length int
	cut    bool
	// short reports that the last row had a channel of fewer than
	// 2×bands values: some of its band energies are zeros for want of
	// frequency bins.
	short bool
}

func newRowMaker(channels []string, bands int) *rowMaker {
	index := make(map[string]int, len(channels))
	for i, c := range channels {
		index[c] = i
	}
	return &rowMaker{
		channels: channels,
		index:    index,
		ex:       NewExtractor(bands),
		ts:       make([][]float64, len(channels)),
		xs:       make([][]float64, len(channels)),
		labels:   map[string]int{},
	}
}

// dim is the number of features in a row.
func (m *rowMaker) dim() int {
	if m.length > 0 {
		return len(m.channels) * m.length
	}
	return len(m.channels) * Width(m.ex.bands)
}

// features returns the features of rs (sorted by time) with time measured
// in seconds from t0, and the majority label (or the last one, with
// lastLabel). Values of channels not in
// the row's channel list are ignored; NaN values are skipped; a channel
// with no value in rs gets NaN features.
func (m *rowMaker) features(rs []records.Reading, t0 time.Time) ([]float64, string) {
	for i := range m.channels {
		m.ts[i], m.xs[i] = m.ts[i][:0], m.xs[i][:0]
	}
	clear(m.labels)
	last := ""
	for _, r := range rs {
		sec := r.Time.Sub(t0).Seconds()
		for _, v := range r.Values {
			if i, ok := m.index[v.Name]; ok && !math.IsNaN(v.Value) {
				m.ts[i] = append(m.ts[i], sec)
				m.xs[i] = append(m.xs[i], v.Value)
			}
		}
		if r.Label != "" {
			m.labels[r.Label]++
			last = r.Label
		}
	}
	out := make([]float64, 0, m.dim())
	m.cut = false
	m.ex.short = false
	for i := range m.channels {
		if m.length == 0 {
			out = m.ex.Channel(out, m.ts[i], m.xs[i])
			continue
		}
		xs := m.xs[i]
		if len(xs) > m.length {
			xs, m.cut = xs[:m.length], true
		}
		out = append(out, xs...)
		for range m.length - len(xs) {
			out = append(out, math.NaN())
		}
	}
	m.short = m.ex.short
	if m.lastLabel {
		return out, last
	}
	return out, majority(m.labels)
}

// majority is the most frequent label; ties go to the smallest.
func majority(counts map[string]int) string {
	best, n := "", 0
	for l, c := range counts {
		if c > n || (c == n && l < best) {
			best, n = l, c
		}
	}
	return best
}
