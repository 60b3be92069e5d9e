package publish

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/snapshot"
)

func TestGateReason(t *testing.T) {
	acc := func(f, c float64) map[string]models.Metrics {
		return map[string]models.Metrics{"float.validation": {Accuracy: f, BalancedAccuracy: f - 0.1}, "compressed.validation": {Accuracy: c, BalancedAccuracy: c - 0.1}}
	}
	rmse := func(f, c float64) map[string]models.Metrics {
		return map[string]models.Metrics{"float.validation": {RMSE: f}, "compressed.validation": {RMSE: c}}
	}
	tests := []struct {
		name       string
		gate       Gate
		metrics    map[string]models.Metrics
		classifier bool
		want       string // "" passes; else a part of the reason
	}{
		{"classifier passes", Gate{Min: 0.9, MaxDrop: 0.01}, acc(0.95, 0.945), true, ""},
		{"below the minimum", Gate{Min: 0.96, MaxDrop: 0.01}, acc(0.95, 0.95), true, "below the gate's 0.9600"},
		{"balanced below the minimum", Gate{Min: 0.9, Balanced: true, MaxDrop: 0.01}, acc(0.95, 0.95), true, "balanced accuracy 0.8500"},
		{"compression costs too much", Gate{MaxDrop: 0.01}, acc(0.95, 0.93), true, "compression costs 0.0200"},
		{"regression passes", Gate{Max: 10, MaxDrop: 0.01}, rmse(9, 9.05), false, ""},
		{"regression above the maximum", Gate{Max: 8, MaxDrop: 0.01}, rmse(9, 9), false, "above the gate's 8.0000"},
		{"regression loses too much", Gate{MaxDrop: 0.01}, rmse(9, 9.2), false, "raises validation RMSE"},
		{"no validation rows, no threshold", Gate{MaxDrop: 0.01}, map[string]models.Metrics{}, true, ""},
		{"no validation rows, a threshold", Gate{Min: 0.5, MaxDrop: 0.01}, map[string]models.Metrics{}, true, "no validation rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := GateReason(tt.gate, tt.metrics, tt.classifier)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("GateReason = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	sp := Spec{Key: "k", Prune: 0.5}
	sp.Defaults("out/x")
	if sp.Store != "out/x/store" || sp.Weights != DefaultWeights || sp.FineTune != DefaultFineTune || sp.Gate.MaxDrop != DefaultMaxDrop {
		t.Errorf("defaults %+v", sp)
	}
	none := Spec{}
	none.Defaults("out/x")
	if none != (Spec{}) {
		t.Errorf("a section without a key took defaults: %+v", none)
	}
}

// The lineage leaves out partitions that held nothing from offset 0 when
// their topic has others; empty ranges that end past 0 (where the next
// read starts) and a topic's only entry stay.
func TestWithoutEmptyPartitions(t *testing.T) {
	k := func(use, topic string, part int, from, to int64) snapshot.Source {
		return snapshot.Source{Kind: "kafka", Use: use, Topic: topic, Partition: part, From: from, To: to}
	}
	files := snapshot.Source{Kind: "parquet", Use: "train", Files: []string{"a.parquet"}}
	tests := []struct {
		name     string
		in, want []snapshot.Source
	}{
		{"empty partitions of a topic", []snapshot.Source{k("train", "d", 0, 0, 3823), k("train", "d", 1, 0, 0), k("train", "d", 2, 0, 0), files},
			[]snapshot.Source{k("train", "d", 0, 0, 3823), files}},
		{"per use", []snapshot.Source{k("train", "d", 0, 0, 9), k("test", "d", 0, 0, 0), k("test", "d", 1, 0, 0)},
			[]snapshot.Source{k("train", "d", 0, 0, 9), k("test", "d", 0, 0, 0), k("test", "d", 1, 0, 0)}},
		{"empty past 0", []snapshot.Source{k("train", "d", 0, 50, 80), k("train", "d", 1, 40, 40)},
			[]snapshot.Source{k("train", "d", 0, 50, 80), k("train", "d", 1, 40, 40)}},
		{"another topic", []snapshot.Source{k("train", "d", 0, 0, 9), k("train", "e", 0, 0, 0)},
			[]snapshot.Source{k("train", "d", 0, 0, 9), k("train", "e", 0, 0, 0)}},
		{"nothing", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := withoutEmptyPartitions(slices.Clone(tt.in))
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
