package predict

import (
	"encoding/json"
	"slices"
	"testing"
)

// The fast answer encoder writes what encoding/json writes.
func TestResponseAppendIsJSON(t *testing.T) {
	for _, r := range []Response{
		{Model: "m@1", Labels: []string{"x", `"y"`}, Predictions: []Prediction{{Label: "x", Score: 0.75, Scores: []float64{0.75, 0.25}}, {Label: `"y"`, Score: 1e-9, Scores: []float64{1e-9, 1}}}},
		{Model: "reg@2", Predictions: []Prediction{{Values: []float64{-1.5, 3, 1e21, 123456789, 1e-7, 0}}}},
		{Model: "m@3", Labels: []string{"a\x07b", "<é>", "\u2028"}, Predictions: []Prediction{{Label: "a\x07b", Score: 0.5, Scores: []float64{0.5, 0.25, 0.25}}}},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.append(nil); string(got) != string(want)+"\n" {
			t.Errorf("append:\n%s\nencoding/json:\n%s", got, want)
		}
	}
}

// The fast row parser takes exactly the bodies of number rows of the
// right width, with encoding/json's values, and leaves the rest to the
// slow path.
func TestParseNumberRows(t *testing.T) {
	for _, tt := range []struct {
		body string
		ok   bool
		want []float64
	}{
		{`{"rows": [[1, 2.5], [-3e2, 0]]}`, true, []float64{1, 2.5, -300, 0}},
		{" {\n\"rows\":[[1,2]]}\n", true, []float64{1, 2}},
		{`{"rows": [[1, 2, 3]]}`, false, nil},
		{`{"rows": [[1]]}`, false, nil},
		{`{"rows": [{"a": 1, "b": 2}]}`, false, nil},
		{`{"rows": [[1, 2]], "x": 1}`, false, nil},
		{`{"rows": [[1, "2"]]}`, false, nil},
		{`{"rows": [[1, 2]]} trailing`, false, nil},
		{`{"rows": []}`, false, nil},
	} {
		got, _, ok := parseNumberRows([]byte(tt.body), 2)
		if ok != tt.ok || ok && !slices.Equal(got, tt.want) {
			t.Errorf("%q: %v %v, want %v %v", tt.body, got, ok, tt.want, tt.ok)
		}
	}
}
