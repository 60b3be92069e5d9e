package featurize

import (
	"context"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/records"
)

func at(sec float64) records.Reading {
	return records.Reading{Device: "d", Time: time.Unix(0, int64(sec*1e9)).UTC()}
}

type closedWindow struct {
	start, end int64
	times      []float64
}

func closeAll(w *windower, wm int64) []closedWindow {
	var out []closedWindow
	w.close(wm, func(start, end int64, rs []records.Reading) {
		cw := closedWindow{start: start, end: end}
		for _, r := range rs {
			cw.times = append(cw.times, float64(r.Time.UnixNano())/1e9)
		}
		out = append(out, cw)
	})
	return out
}

func sec(s float64) int64 { return int64(s * 1e9) }

func TestWindowerBoundaries(t *testing.T) {
	tests := []struct {
		name         string
		size, period time.Duration
		times        []float64
		want         []closedWindow
	}{
		{"fixed: a reading at the end goes to the next window", 2 * time.Second, 0, []float64{0, 1.999, 2, 3.5, 4},
			[]closedWindow{{sec(0), sec(2), []float64{0, 1.999}}, {sec(2), sec(4), []float64{2, 3.5}}, {sec(4), sec(6), []float64{4}}}},
		{"sliding: each reading in size/period windows", 2 * time.Second, time.Second, []float64{0.5, 1, 2.5},
			[]closedWindow{{sec(-1), sec(1), []float64{0.5}}, {sec(0), sec(2), []float64{0.5, 1}}, {sec(1), sec(3), []float64{1, 2.5}}, {sec(2), sec(4), []float64{2.5}}}},
		{"empty windows make nothing", time.Second, 0, []float64{0.2, 5.2},
			[]closedWindow{{sec(0), sec(1), []float64{0.2}}, {sec(5), sec(6), []float64{5.2}}}},
		{"before the epoch", time.Second, 0, []float64{-1.5, -0.5},
			[]closedWindow{{sec(-2), sec(-1), []float64{-1.5}}, {sec(-1), sec(0), []float64{-0.5}}}},
		{"out of order input is sorted while open", time.Second, 0, []float64{0.7, 0.1, 0.4},
			[]closedWindow{{sec(0), sec(1), []float64{0.1, 0.4, 0.7}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := WindowParams{Size: tt.size, Period: tt.period}
			if p.Period == 0 {
				p.Period = p.Size
			}
			w := newWindower(p)
			for _, s := range tt.times {
				if fate := w.add(at(s), sec(s)); fate != onTime {
					t.Fatalf("reading at %v: fate %d, want on time", s, fate)
				}
			}
			got := closeAll(w, math.MaxInt64)
			if len(got) != len(tt.want) {
				t.Fatalf("closed %v, want %v", got, tt.want)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.start != w.start || g.end != w.end || len(g.times) != len(w.times) {
					t.Fatalf("window %d = %v, want %v", i, g, w)
				}
				for j := range g.times {
					if math.Abs(g.times[j]-w.times[j]) > 1e-9 {
						t.Fatalf("window %d = %v, want %v", i, g, w)
					}
				}
			}
		})
	}
}

func TestWindowerLateness(t *testing.T) {
	w := newWindower(WindowParams{Size: 2 * time.Second, Period: time.Second, AllowedLateness: time.Second})
	for s := 0.0; s < 10; s += 0.5 {
		w.add(at(s), sec(s))
	}
	// Stream time 9.5 s, lateness 1 s: windows ending at or before 8.5 s close.
	got := closeAll(w, w.stream)
	if len(got) != 8 || got[0].start != sec(-1) || got[len(got)-1].end != sec(8) {
		t.Fatalf("closed %d windows %v, want the 8 ending 1 s … 8 s", len(got), got)
	}
	if w.closed != sec(8) {
		t.Fatalf("closed up to %d, want 8 s", w.closed)
	}
	if at, ok := w.nextClose(); !ok || at != sec(10) {
		t.Fatalf("next close %d %v, want the [7 s, 9 s) window at 9 s + 1 s lateness", at, ok)
	}
	for _, tt := range []struct {
		s    float64
		want int
	}{{1, lateAll}, {6.99, lateAll}, {7.5, latePartial}, {8, onTime}, {9.9, onTime}} {
		if got := w.add(at(tt.s), sec(tt.s)); got != tt.want {
			t.Errorf("reading at %v s: fate %d, want %d", tt.s, got, tt.want)
		}
	}
	// Readings no open window holds are forgotten.
	if first := w.buf[0].Time; first.Before(time.Unix(7, 0)) {
		t.Errorf("kept a reading at %v, before the first open window", first)
	}
	rest := closeAll(w, math.MaxInt64)
	if rest[0].start != sec(7) || len(rest[0].times) != 6 {
		t.Errorf("first window after the late readings = %v, want [7 s, 9 s) with 7, 7.5, 7.5 (partly late), 8, 8 and 8.5", rest[0])
	}
}

func TestWindowStateCoder(t *testing.T) {
	in := windowState{Closed: -5, Stream: math.MaxInt64, Buf: []records.Reading{at(1), at(2)}}
	b, _ := encodeWindowState(in)
	out, err := decodeWindowState(b)
	if err != nil || out.Closed != in.Closed || out.Stream != in.Stream || len(out.Buf) != 2 || !out.Buf[1].Time.Equal(in.Buf[1].Time) {
		t.Fatalf("round trip = %+v, %v", out, err)
	}
	for i := range b {
		if _, err := decodeWindowState(b[:i]); err == nil {
			t.Fatalf("decoding %d of %d bytes succeeded", i, len(b))
		}
	}
	if _, err := decodeChunk([]byte{0xff, 0xff, 0xff, 0x01}); err == nil {
		t.Fatal("a chunk claiming more readings than bytes decoded")
	}
}

// BenchmarkWindowRows measures windowing and featurizing per reading: one
// channel every 5 minutes in hour windows every half hour, as the bench
// cuts NAB machine temperature. An op is one reading.
func BenchmarkWindowRows(b *testing.B) {
	p := WindowParams{Channels: []string{"temperature"}, Bands: 2, Size: time.Hour, Period: 30 * time.Minute}
	wr := newWindowRows(p)
	w := newWindower(p)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := 0
	emit := func(Row) { rows++ }
	dead := func(kafkaio.Record) { b.Fatal("late reading") }
	rs := make([]records.Reading, 1)
	vals := make([]records.Value, 97) // the readings' values, made up front
	for j := range vals {
		vals[j] = records.Value{Name: "temperature", Value: float64(j)}
	}
	ctx := context.Background()
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	i := 0
	for b.Loop() {
		rs[0] = records.Reading{Device: "machine-001", Time: base.Add(time.Duration(i) * 5 * time.Minute), Values: vals[i%97 : i%97+1]}
		wr.addAll(ctx, "machine-001", w, rs, "", emit, dead)
		i++
	}
	runtime.ReadMemStats(&after)
	// Exact, where allocs/op rounds down: a window row's features and id
	// are shared by the 6 readings each row takes.
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "allocs/row")
	if rows == 0 && i > 24 {
		b.Fatal("no rows")
	}
}
