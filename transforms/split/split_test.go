package split

import (
	"fmt"
	"testing"

	"github.com/muonml/muon/transforms/featurize"
)

// holdout runs holdoutFn over rows directly.
func holdout(p Params, rows []featurize.Row) (rest, held []featurize.Row) {
	fn := &holdoutFn{Fraction: p.Fraction, Salt: p.Salt, ByDevice: p.ByDevice}
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
