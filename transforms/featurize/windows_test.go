package featurize_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/message"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/transforms/featurize"
)

func init() {
	register.Function3x1(writeDead)
	register.Iter1[kafkaio.Record]()
}

// runWindows runs Windows over readings (in this order) and returns the
// rows by ID, the dead letters, and the counters.
func runWindows(t *testing.T, p featurize.WindowParams, readings []records.Reading) (map[string]featurize.Row, []kafkaio.Record, map[string]int64) {
	t.Helper()
	dir := t.TempDir()
	pipe, s := beam.NewPipelineWithRoot()
	rows, late := featurize.Windows(s, p, beam.CreateList(s, readings))
	beam.ParDo0(s, &writeRowsFn{Path: filepath.Join(dir, "rows.json"), ByID: true}, beam.GroupByKey(s, beam.AddFixedKey(s, rows)))
	beam.ParDo0(s, writeDead, beam.GroupByKey(s, beam.AddFixedKey(s, late)), beam.SideInput{Input: beam.Create(s, dir)})
	res := ptest.RunAndValidate(t, pipe)
	counters := map[string]int64{}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		v := c.Committed
		if v == 0 {
			v = c.Attempted
		}
		counters[c.Key.Name] += v
	}
	got, dead := readRunOutputs(t, dir)
	return got, dead, counters
}

// readRunOutputs reads the rows and dead letters a test pipeline wrote to
// dir with writeRowsFn and writeDead.
func readRunOutputs(t *testing.T, dir string) (map[string]featurize.Row, []kafkaio.Record) {
	t.Helper()
	got := map[string]featurize.Row{}
	if b, err := os.ReadFile(filepath.Join(dir, "rows.json")); err == nil {
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
	}
	var dead []kafkaio.Record
	if b, err := os.ReadFile(filepath.Join(dir, "dead.json")); err == nil {
		if err := json.Unmarshal(b, &dead); err != nil {
			t.Fatal(err)
		}
	}
	return got, dead
}

func writeDead(_ int, iter func(*kafkaio.Record) bool, dir string) error {
	var all []kafkaio.Record
	var r kafkaio.Record
	for iter(&r) {
		all = append(all, r)
	}
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "dead.json"), b, 0o644)
}

// wantWindows computes the rows Windows must make from readings, directly:
// every window [k·period, k·period+size) with readings, per device.
func wantWindows(readings []records.Reading, channels []string, bands int, size, period time.Duration) map[string]featurize.Row {
	type key struct {
		device string
		start  int64
	}
	members := map[key][]records.Reading{}
	for _, r := range readings {
		t := r.Time.UnixNano()
		for start := t - t%int64(period); start > t-int64(size); start -= int64(period) {
			k := key{r.Device, start}
			members[k] = append(members[k], r)
		}
	}
	want := map[string]featurize.Row{}
	for k, rs := range members {
		t0 := time.Unix(0, k.start)
		var features []float64
		for _, c := range channels {
			var ts, xs []float64
			for _, r := range rs {
				for _, v := range r.Values {
					if v.Name == c {
						ts = append(ts, r.Time.Sub(t0).Seconds())
						xs = append(xs, v.Value)
					}
				}
			}
			features = append(features, reference(ts, xs, bands)...)
		}
		id := fmt.Sprintf("%s@%d", k.device, k.start/int64(time.Millisecond))
		want[id] = featurize.Row{Key: k.device, Time: t0.Add(size - time.Millisecond), Features: features, Label: rs[0].Label, ID: id}
	}
	return want
}

func compareRows(t *testing.T, got, want map[string]featurize.Row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Fatalf("no row %s", id)
		}
		if g.Key != w.Key || !g.Time.Equal(w.Time) || g.Label != w.Label || len(g.Features) != len(w.Features) {
			t.Fatalf("row %s = %s at %s label %q with %d features, want %s at %s label %q with %d",
				id, g.Key, g.Time, g.Label, len(g.Features), w.Key, w.Time, w.Label, len(w.Features))
		}
		for k := range w.Features {
			if !near(g.Features[k], w.Features[k]) {
				t.Fatalf("row %s feature %d = %.15g, want %.15g", id, k, g.Features[k], w.Features[k])
			}
		}
	}
}

// Sliding windows over BasicMotions give, per device and window, exactly
// the features of the readings inside the window's bounds, in both the
// bounded and the streaming implementation.
func TestWindowsOnBasicMotions(t *testing.T) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	readings := basicMotions(t, start)
	channels := []string{"dim0", "dim1", "dim2", "dim3", "dim4", "dim5"}
	// 2.5 s windows every 1.5 s: boundaries fall on readings and between them.
	size, period := 2500*time.Millisecond, 1500*time.Millisecond
	want := wantWindows(readings, channels, 3, size, period)
	for _, unbounded := range []bool{false, true} {
		t.Run(fmt.Sprintf("unbounded=%v", unbounded), func(t *testing.T) {
			p := featurize.WindowParams{Channels: channels, Bands: 3, Size: size, Period: period, Unbounded: unbounded, ChunkReadings: 64}
			got, dead, counters := runWindows(t, p, readings)
			compareRows(t, got, want)
			if len(dead) != 0 || counters["windows.late"] != 0 {
				t.Fatalf("%d dead letters, %d late in order input", len(dead), counters["windows.late"])
			}
			if counters["windows.rows"] != int64(len(want)) {
				t.Errorf("windows.rows = %d, want %d", counters["windows.rows"], len(want))
			}
		})
	}
}

// A stream that goes back in time: readings behind a device's closed
// windows go to the dead letter with stage late and are counted; readings
// that missed only some windows count as partly late.
func TestWindowsLateReadings(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	reading := func(device string, sec float64, v float64) records.Reading {
		return records.Reading{Device: device, Time: base.Add(time.Duration(sec * float64(time.Second))),
			Values: []records.Value{{Name: "x", Value: v}}, Source: records.Source{Topic: "sensors", Offset: int64(sec * 10)}}
	}
	var in []records.Reading
	for i := 0; i < 100; i++ {
		in = append(in, reading("a", float64(i)/10, float64(i)), reading("b", float64(i)/10, float64(-i)))
	}
	// Device a's stream time is 9.9 s; with 2 s windows every second and
	// 1 s lateness its windows up to [6 s, 8 s) have closed.
	lateAll, partly := reading("a", 1, 1000), reading("a", 7.5, 2000)
	in = append(in, lateAll, partly, reading("b", 9.95, 5))
	p := featurize.WindowParams{Channels: []string{"x"}, Size: 2 * time.Second, Period: time.Second, AllowedLateness: time.Second, Unbounded: true}
	got, dead, counters := runWindows(t, p, in)

	if counters["windows.late"] != 1 || counters["windows.late_partial"] != 1 {
		t.Errorf("late %d, partly late %d, want 1 and 1", counters["windows.late"], counters["windows.late_partial"])
	}
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	d := dead[0]
	headers := map[string]string{}
	for _, h := range d.Headers {
		headers[h.Key] = string(h.Value)
	}
	var back records.Reading
	if err := message.ParseReading(d.Value, time.Time{}, &back); err != nil || back.Values[0].Value != 1000 || !back.Time.Equal(lateAll.Time) {
		t.Fatalf("dead letter value %s (%v), want the late reading", d.Value, err)
	}
	if d.Topic != "sensors.dlq" || string(d.Key) != "a" || headers[kafkaio.HeaderStage] != featurize.StageLate ||
		headers[kafkaio.HeaderSourceOffset] != "10" || !strings.Contains(headers[kafkaio.HeaderError], "late") {
		t.Fatalf("dead letter %s key %s headers %v", d.Topic, d.Key, headers)
	}
	// The partly late reading is in [7 s, 9 s) but not in [6 s, 8 s), and
	// device b is unaffected.
	used := append(append([]records.Reading{}, in[:200]...), in[len(in)-1])
	want := wantWindows(used, []string{"x"}, 0, p.Size, p.Period)
	withPartly := wantWindows(append(used, partly), []string{"x"}, 0, p.Size, p.Period)
	id := fmt.Sprintf("a@%d", base.Add(7*time.Second).UnixMilli())
	want[id] = withPartly[id]
	compareRows(t, got, want)
}

// Whole windows only, labelled with their last reading's label, in both
// implementations. Every reading's label differs and they count up, so the
// majority rule (ties to the smallest) would pick the first.
func TestWindowsMinReadingsAndLastLabel(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var in []records.Reading
	for i := 0; i < 10; i++ {
		in = append(in, records.Reading{Device: "engine", Time: base.Add(time.Duration(i) * time.Second),
			Values: []records.Value{{Name: "x", Value: float64(i)}}, Label: strconv.Itoa(10 + i), Source: records.Source{Topic: "t", Offset: int64(i)}})
	}
	for _, unbounded := range []bool{false, true} {
		p := featurize.WindowParams{Channels: []string{"x"}, Size: 3 * time.Second, Period: time.Second, MinReadings: 3, LastLabel: true, Unbounded: unbounded}
		got, _, counters := runWindows(t, p, in)
		// Windows start every second from −2 s to 9 s; those from 0 s to
		// 7 s hold three readings.
		if len(got) != 8 || counters["windows.short"] != 4 || counters["windows.rows"] != 8 {
			t.Errorf("unbounded %v: %d rows, %d short, %d counted; want 8, 4, 8", unbounded, len(got), counters["windows.short"], counters["windows.rows"])
		}
		for start := 0; start < 8; start++ {
			id := fmt.Sprintf("engine@%d", base.Add(time.Duration(start)*time.Second).UnixMilli())
			r, ok := got[id]
			if !ok {
				t.Errorf("unbounded %v: no row %s", unbounded, id)
				continue
			}
			// The last reading is at start+2 s.
			if want := strconv.Itoa(10 + start + 2); r.Label != want {
				t.Errorf("unbounded %v: row %s label %q, want %q (the last reading's)", unbounded, id, r.Label, want)
			}
		}
	}
}
