package analyze

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/muonml/muon/transforms/featurize"
)

// Compact is what serving needs of s: the features' means and deviations
// rounded to float32, the clip, the names and a fitted MiniRocket; the
// counts, extremes and labels of the training rows are left out. A
// snapshot keeps its preprocessing compact (MarshalCompact), so that it
// measures its model with the statistics it serves with.
func (s Spec) Compact() Spec {
	out := Spec{Features: s.Features, Mean: make([]float64, len(s.Mean)), Std: make([]float64, len(s.Std)),
		Rows: s.Rows, Names: s.Names, Clip: s.Clip, Rocket: s.Rocket}
	for i, v := range s.Mean {
		out.Mean[i] = float64(float32(v))
	}
	for i, v := range s.Std {
		out.Std[i] = float64(float32(v))
	}
	return out
}

// compactSpec is Compact's JSON form: the means and deviations as
// little-endian float32 in base64.
type compactSpec struct {
	Features int               `json:"features"`
	Mean32   string            `json:"mean32"`
	Std32    string            `json:"std32"`
	Rows     int64             `json:"rows,omitempty"`
	Names    []string          `json:"names,omitempty"`
	Clip     float64           `json:"clip,omitempty"`
	Rocket   *featurize.Rocket `json:"rocket,omitempty"`
}

// MarshalCompact encodes s.Compact() in its JSON form, about a third of a
// full spec's; UnmarshalSpec and json.Unmarshal read either form.
func MarshalCompact(s Spec) ([]byte, error) {
	c := s.Compact()
	return json.Marshal(compactSpec{Features: c.Features, Mean32: packFloat32(c.Mean), Std32: packFloat32(c.Std),
		Rows: c.Rows, Names: c.Names, Clip: c.Clip, Rocket: c.Rocket})
}

func packFloat32(v []float64) string {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(x)))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func unpackFloat32(s string) ([]float64, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%4 != 0 {
		return nil, fmt.Errorf("%w: float32 values %q…: not base64 of 4-byte values", ErrSpec, s[:min(len(s), 16)])
	}
	out := make([]float64, len(b)/4)
	for i := range out {
		out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
	}
	return out, nil
}

// UnmarshalJSON reads a spec in its full form or its compact one.
func (s *Spec) UnmarshalJSON(data []byte) error {
	type full Spec
	var probe struct {
		Mean32 *string `json:"mean32"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return err
	}
	if probe.Mean32 == nil {
		return json.Unmarshal(data, (*full)(s))
	}
	var c compactSpec
	if err := json.Unmarshal(data, &c); err != nil {
		return err
	}
	mean, err := unpackFloat32(c.Mean32)
	if err != nil {
		return err
	}
	std, err := unpackFloat32(c.Std32)
	if err != nil {
		return err
	}
	*s = Spec{Features: c.Features, Mean: mean, Std: std, Rows: c.Rows, Names: c.Names, Clip: c.Clip, Rocket: c.Rocket}
	return nil
}
