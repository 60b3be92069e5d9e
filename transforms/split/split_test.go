package split

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/transforms/featurize"
)

// holdout runs holdoutFn over rows directly.
func holdout(p Params, rows []featurize.Row) (rest, held []featurize.Row) {
	fn := &holdoutFn{Params: p}
	for _, r := range rows {
		fn.ProcessElement(r, func(r featurize.Row) { rest = append(rest, r) }, func(r featurize.Row) { held = append(held, r) })
	}
	return rest, held
}

func TestHoldout(t *testing.T) {
	var rows []featurize.Row
	for i := range 10000 {
		rows = append(rows, featurize.Row{Key: fmt.Sprintf("d%d", i%50), ID: fmt.Sprintf("t/0/%d", i)})
	}
	rest, held := holdout(Params{Fraction: 0.2}, rows)
	if len(rest)+len(held) != len(rows) || len(held) < 1800 || len(held) > 2200 {
		t.Errorf("held %d of %d rows, want about 20%%", len(held), len(rows))
	}
	_, again := holdout(Params{Fraction: 0.2}, rows)
	for i := range held {
		if held[i].ID != again[i].ID {
			t.Fatalf("a second run held out other rows")
		}
	}
	_, salted := holdout(Params{Fraction: 0.2, Salt: "test/1/"}, rows)
	same := 0
	for i := range min(len(held), len(salted)) {
		if held[i].ID == salted[i].ID {
			same++
		}
	}
	if same == len(held) {
		t.Errorf("another salt held out the same rows")
	}
	_, byDevice := holdout(Params{Fraction: 0.2, ByDevice: true}, rows)
	devices := map[string]bool{}
	for _, r := range byDevice {
		devices[r.Key] = true
	}
	for _, r := range rows {
		if devices[r.Key] {
			found := false
			for _, h := range byDevice {
				if h.ID == r.ID {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("device %s is split across both sides", r.Key)
			}
		}
	}
	if _, none := holdout(Params{Fraction: 0}, rows); len(none) != 0 {
		t.Errorf("fraction 0 held out %d rows", len(none))
	}
}

func TestLastRow(t *testing.T) {
	rows := []featurize.Row{{Key: "d", ID: "a"}, {Key: "d", ID: "c"}, {Key: "d", ID: "b"}}
	var got []featurize.Row
	i := 0
	lastRow("d", func(r *featurize.Row) bool {
		if i == len(rows) {
			return false
		}
		*r = rows[i]
		i++
		return true
	}, func(r featurize.Row) { got = append(got, r) })
	if len(got) != 1 || got[0].ID != "c" {
		t.Errorf("last row %+v, want the one with the highest id at equal times", got)
	}
}

// HoldoutBatches sends every row where Holdout sends it, by id or by
// device; a batch all on one side passes whole.
func TestHoldoutBatches(t *testing.T) {
	var rows []featurize.Row
	rb := arrowio.NewRowBuilder(memory.DefaultAllocator, 2)
	defer rb.Release()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		r := featurize.Row{Key: fmt.Sprintf("d%d", i%7), ID: fmt.Sprintf("t/0/%d", i), Time: t0.Add(time.Duration(i) * time.Second),
			Features: []float64{float64(i), -float64(i)}, Label: fmt.Sprint(i % 3)}
		rows = append(rows, r)
		rb.Append(r.Key, r.Time, r.Features, r.Label, r.ID, records.Source{})
	}
	b := rb.NewBatch()
	for _, p := range []Params{{Fraction: 0.2}, {Fraction: 0.3, ByDevice: true, Salt: "x"}, {Fraction: 0}, {Fraction: 1}} {
		_, wantHeld := holdout(p, rows)
		want := map[string]bool{}
		for _, r := range wantHeld {
			want[r.ID] = true
		}
		var rest, held []arrowio.Batch
		fn := &holdoutBatchesFn{Params: p}
		if err := fn.ProcessElement(b, func(b arrowio.Batch) { rest = append(rest, b) }, func(b arrowio.Batch) { held = append(held, b) }); err != nil {
			t.Fatal(err)
		}
		seen := 0
		for side, bs := range [][]arrowio.Batch{rest, held} {
			for _, out := range bs {
				vals, n, _, err := arrowio.Features(out.Record)
				if err != nil {
					t.Fatal(err)
				}
				ids := out.Record.Column(arrowio.IDIndex).(*array.String)
				for i := range n {
					id := ids.Value(i)
					var k int
					fmt.Sscanf(id, "t/0/%d", &k)
					if want[id] != (side == 1) || vals[2*i] != float64(k) || vals[2*i+1] != -float64(k) {
						t.Fatalf("%+v: row %s on side %d with features %v", p, id, side, vals[2*i:2*i+2])
					}
					seen++
				}
			}
		}
		if seen != len(rows) || (p.Fraction == 0 || p.Fraction == 1) && len(rest)+len(held) != 1 {
			t.Errorf("%+v: %d rows in %d and %d batches", p, seen, len(rest), len(held))
		}
	}
}
