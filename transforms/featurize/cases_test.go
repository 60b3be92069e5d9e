package featurize_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/message"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/transforms/featurize"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.DoFn3x1[context.Context, int, func(*featurize.Row) bool, error](&writeRowsFn{})
	register.Iter1[featurize.Row]()
}

// writeRowsFn writes every row to a JSON file keyed by device, or by row
// ID with ByID; a repeated key is an error.
type writeRowsFn struct {
	Path string
	ByID bool
}

func (fn *writeRowsFn) ProcessElement(_ context.Context, _ int, iter func(*featurize.Row) bool) error {
	rows := map[string]featurize.Row{}
	var r featurize.Row
	for iter(&r) {
		k := r.Key
		if fn.ByID {
			k = r.ID
		}
		if _, dup := rows[k]; dup {
			return fmt.Errorf("two rows for %s", k)
		}
		rows[k] = r
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	return os.WriteFile(fn.Path, b, 0o644)
}

// basicMotions is BasicMotions TRAIN as decoded readings, as muon produce
// writes them and decode reads them: 10 Hz from start, one device per case.
func basicMotions(t *testing.T, start time.Time) []records.Reading {
	t.Helper()
	path := filepath.Join("..", "..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("dataset not available: %v", err)
	}
	src, err := recording.Open(path, recording.Options{Start: start, Period: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var readings []records.Reading
	for {
		m, err := src.Next()
		if errors.Is(err, io.EOF) {
			return readings
		}
		if err != nil {
			t.Fatal(err)
		}
		var r records.Reading
		if err := message.ParseReading(m.Value, m.Time, &r); err != nil {
			t.Fatal(err)
		}
		readings = append(readings, records.Reading{Device: r.Device, Time: r.Time, Values: r.Values, Label: r.Label,
			Source: records.Source{Topic: "sensors", Offset: int64(len(readings))}})
	}
}

// BasicMotions replayed as readings gives one row per case whose features
// equal the reference computation on the case's own series.
func TestCasesOnBasicMotions(t *testing.T) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	readings := basicMotions(t, start)
	series := map[string][6][]float64{}
	labels := map[string]string{}
	for _, r := range readings {
		s := series[r.Device]
		for i, v := range r.Values {
			s[i] = append(s[i], v.Value)
		}
		series[r.Device] = s
		labels[r.Device] = r.Label
	}
	channels := []string{"dim0", "dim1", "dim2", "dim3", "dim4", "dim5"}

	out := filepath.Join(t.TempDir(), "rows.json")
	p, s := beam.NewPipelineWithRoot()
	rows := featurize.Cases(s, featurize.CaseParams{Channels: channels, Bands: 4}, beam.CreateList(s, readings))
	beam.ParDo0(s, &writeRowsFn{Path: out}, beam.GroupByKey(s, beam.AddFixedKey(s, rows)))
	ptest.RunAndValidate(t, p)

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]featurize.Row{}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 40 {
		t.Fatalf("%d rows, want one per case: 40", len(got))
	}
	for device, row := range got {
		if row.Label != labels[device] || len(row.Features) != 6*featurize.Width(4) {
			t.Fatalf("%s: label %q (want %q), %d features", device, row.Label, labels[device], len(row.Features))
		}
		if !row.Time.Equal(start.Add(99 * 100 * time.Millisecond)) {
			t.Errorf("%s: row time %s, want the last reading's", device, row.Time)
		}
		for c := 0; c < 6; c++ {
			xs := series[device][c]
			ts := make([]float64, len(xs))
			for i := range ts {
				ts[i] = float64(i) / 10
			}
			want := reference(ts, xs, 4)
			for k, w := range want {
				if g := row.Features[c*featurize.Width(4)+k]; !near(g, w) {
					t.Fatalf("%s channel %d feature %d = %.15g, want %.15g", device, c, k, g, w)
				}
			}
		}
	}
}

func TestCasesRefusesBadParams(t *testing.T) {
	for _, p := range []featurize.CaseParams{{}, {Channels: []string{"a", "a"}}, {Channels: []string{"a"}, Bands: -1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Cases(%+v) did not panic", p)
				}
			}()
			_, s := beam.NewPipelineWithRoot()
			featurize.Cases(s, p, beam.CreateList(s, []records.Reading{{Device: "d"}}))
		}()
	}
}
