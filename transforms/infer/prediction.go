package infer

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/muonml/muon/internal/jsonstr"
)

// Prediction is what an inference branch writes to its topic, as JSON
// (DESIGN.md's prediction contract):
//
//	{"id":"digits-test/3/17/train-digits@2","key":"optdigits-test",
//	 "time":"2024-01-01T00:00:01.7Z","model":"train-digits@2","label":"7",
//	 "scores":{"0":0.0001,…,"9":0.002},"truth":"7","latency_ms":3.2}
//
// id is the row's id (for rows of one record, its source topic,
// partition and offset) and the model version: the same record scored by
// the same model always has the same id, so consumers can deduplicate.
// time is the row's event time; latency_ms runs from it to the moment the
// prediction was made. A regression model's outputs are "values"; an
// alert branch adds "alert", the rule that fired.
type Prediction struct {
	ID    string    `json:"id"`
	Key   string    `json:"key"`
	Time  time.Time `json:"time"`
	Model string    `json:"model"`
	Label string    `json:"label,omitempty"`
	// Scores are class probabilities by label.
	Scores map[string]float64 `json:"scores,omitempty"`
	Values []float64          `json:"values,omitempty"`
	// Truth is the row's own label, when the stream carries one.
	Truth     string  `json:"truth,omitempty"`
	Alert     string  `json:"alert,omitempty"`
	LatencyMs float64 `json:"latency_ms"`
}

// prediction is a Prediction being written: the scores as a row of the
// output matrix beside the labels, not a map; ID is the row's id, which
// Append joins with Model into the prediction's.
type prediction struct {
	ID, Key, Model, Label, Truth, Alert string
	Time                                time.Time
	Labels                              []string
	Scores, Values                      []float64
	Latency                             time.Duration
}

// Append appends p's JSON to b, without encoding/json's reflection and
// map: this runs once per row.
func (p *prediction) Append(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = jsonstr.AppendJoin(b, p.ID, "/", p.Model)
	b = append(b, `,"key":`...)
	b = jsonstr.Append(b, p.Key)
	b = append(b, `,"time":"`...)
	b = p.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","model":`...)
	b = jsonstr.Append(b, p.Model)
	if p.Label != "" {
		b = append(b, `,"label":`...)
		b = jsonstr.Append(b, p.Label)
	}
	if p.Scores != nil {
		b = append(b, `,"scores":{`...)
		for i, v := range p.Scores {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonstr.Append(b, p.Labels[i])
			b = append(b, ':')
			b = appendFloat(b, v)
		}
		b = append(b, '}')
	}
	if p.Values != nil {
		b = append(b, `,"values":[`...)
		for i, v := range p.Values {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendFloat(b, v)
		}
		b = append(b, ']')
	}
	if p.Truth != "" {
		b = append(b, `,"truth":`...)
		b = jsonstr.Append(b, p.Truth)
	}
	if p.Alert != "" {
		b = append(b, `,"alert":`...)
		b = jsonstr.Append(b, p.Alert)
	}
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendFloat(b, float64(p.Latency.Microseconds())/1000, 'f', 3, 64)
	return append(b, '}')
}

// ParsePrediction decodes a prediction record's value.
func ParsePrediction(b []byte) (Prediction, error) {
	var p Prediction
	err := json.Unmarshal(b, &p)
	return p, err
}
