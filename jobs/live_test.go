package jobs_test

import (
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/runners"
	"github.com/prometheus/client_golang/prometheus"
)

// A running infer job's metrics as the runner reports them come out of
// the API view and Prometheus' exposition with the same figures.
func TestLiveMetrics(t *testing.T) {
	spec := &configs.Spec{Name: "scorer", Job: "infer"}
	spec.Inference = []configs.Branch{{Name: "digits"}}
	l := jobs.NewLive(spec)
	if _, ok := l.View(); ok {
		t.Fatal("a view before any metrics")
	}
	res := &runners.Result{
		Counters: map[string]int64{
			"kafkaio.Read/records":          1000,
			"kafkaio.Write/records":         990,
			"decode/sensor.dead":            7,
			"infer.digits/predictions":      990,
			"infer.digits/batches":          10,
			"infer.digits/dead_letters":     3,
			"infer.digits/latency_b200":     500, // ≈ 57 ms
			"infer.digits/latency_b300":     490, // ≈ 4.6 s
			"train/curve.1.train_loss":      2e9,
			"train/curve.2.train_loss":      1e9,
			"train/curve.2.validation_loss": 1.5e9,
		},
		Dists:  map[string]metrics.DistributionValue{"infer.digits/batch_latency_us": {Count: 10, Sum: 20000, Min: 1000, Max: 3000}},
		Gauges: map[string]int64{"infer.digits/model_version": 7, "kafkaio.Read/lag/sensors/0": 40, "kafkaio.Read/lag/sensors/1": 2},
	}
	l.Update(res)
	v, ok := l.View()
	if !ok {
		t.Fatal("no view after an update")
	}
	if v.Read != 1000 || v.Written != 990 || v.DeadLetters["decode"] != 7 || v.DeadLetters["infer.digits"] != 3 || v.KafkaLag["sensors"] != 42 {
		t.Errorf("view %+v", v)
	}
	if len(v.Branches) != 1 || v.Branches[0].ModelVersion != 7 || v.Branches[0].BatchMeanMs != 2 || v.Branches[0].Predictions != 990 {
		t.Errorf("branches %+v", v.Branches)
	}
	if len(v.Curve) != 2 || v.Curve[1].TrainLoss != 1 || v.Curve[1].ValidationLoss == nil || *v.Curve[1].ValidationLoss != 1.5 || v.Curve[0].ValidationLoss != nil {
		t.Errorf("curve %+v", v.Curve)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(jobs.LiveCollector{Jobs: func() []*jobs.Live { return []*jobs.Live{l} }})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, lp := range m.GetLabel() {
				k += " " + lp.GetName() + "=" + lp.GetValue()
			}
			got[k] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	for k, want := range map[string]float64{
		"muon_kafka_lag_records job=scorer topic=sensors":                   42,
		"muon_model_version_serving branch=digits job=scorer":               7,
		"muon_running_job_dead_letters_total job=scorer stage=decode":       7,
		"muon_running_job_dead_letters_total job=scorer stage=infer.digits": 3,
		"muon_running_job_records_read_total job=scorer kind=infer":         1000,
		"muon_infer_predictions_total branch=digits job=scorer":             990,
		"muon_train_loss job=scorer":                                        1,
		"muon_train_epoch job=scorer":                                       2,
		"muon_train_validation_loss job=scorer":                             1.5,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
	// The latency histogram: half the predictions under 0.1 s, all under 5 s.
	for _, mf := range mfs {
		if mf.GetName() != "muon_prediction_latency_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 990 {
			t.Errorf("latency count %d", h.GetSampleCount())
		}
		for _, b := range h.GetBucket() {
			switch b.GetUpperBound() {
			case 0.05:
				if b.GetCumulativeCount() != 0 {
					t.Errorf("≤ 50 ms: %d", b.GetCumulativeCount())
				}
			case 0.1:
				if b.GetCumulativeCount() != 500 {
					t.Errorf("≤ 100 ms: %d", b.GetCumulativeCount())
				}
			case 5:
				if b.GetCumulativeCount() != 990 {
					t.Errorf("≤ 5 s: %d", b.GetCumulativeCount())
				}
			}
		}
		return
	}
	t.Error("no muon_prediction_latency_seconds")
}
