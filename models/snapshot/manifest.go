package snapshot

import (
	"encoding/json"
	"slices"
)

// wireManifest is a Manifest as version 3 writes its JSON: the labels
// once and the metrics without their zero fields (its own Labels and
// Metrics shadow the Manifest's). Read decodes it into a Manifest, where
// what is left out comes back as it was (unmarshalManifest).
type wireManifest struct {
	Manifest
	Labels  []string               `json:"labels,omitempty"`
	Metrics map[string]wireMetrics `json:"metrics,omitempty"`
}

// wireMetrics is models.Metrics without its zero fields: a classifier's
// RMSE and MAE, a regression model's accuracies, which were not measured.
// A zero that was measured (an accuracy of 0) decodes as the same zero.
// A conversion from models.Metrics: a field added there fails to compile
// here until it is added.
type wireMetrics struct {
	N                int     `json:"n,omitempty"`
	Loss             float64 `json:"loss,omitempty"`
	Accuracy         float64 `json:"accuracy,omitempty"`
	BalancedAccuracy float64 `json:"balanced_accuracy,omitempty"`
	Confusion        [][]int `json:"confusion,omitempty"`
	RMSE             float64 `json:"rmse,omitempty"`
	MAE              float64 `json:"mae,omitempty"`
}

// marshalManifest is m's JSON as version 3 writes it. The class names go
// once, in the model's descriptor, when the manifest's labels are the
// descriptor's (as train jobs write them); else as they are.
func marshalManifest(m Manifest) ([]byte, error) {
	w := wireManifest{Manifest: m, Labels: m.Labels}
	if len(m.Labels) > 0 && slices.Equal(m.Labels, m.Model.Labels) {
		w.Labels = nil
	}
	if m.Metrics != nil {
		w.Metrics = make(map[string]wireMetrics, len(m.Metrics))
		for k, v := range m.Metrics {
			w.Metrics[k] = wireMetrics(v)
		}
	}
	return json.Marshal(w)
}

// unmarshalManifest decodes a manifest of a version's body into m.
// From version 3, a manifest without labels has its model's.
func unmarshalManifest(data []byte, version uint16, m *Manifest) error {
	if err := json.Unmarshal(data, m); err != nil {
		return err
	}
	if version >= 3 && len(m.Labels) == 0 && len(m.Model.Labels) > 0 {
		m.Labels = slices.Clone(m.Model.Labels)
	}
	return nil
}
