package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/infer"
)

// The infer summary comes from the job's metrics: versions that served,
// the latency histogram, the batch distribution.
func TestSummarizeInference(t *testing.T) {
	spec, err := configs.Parse("i.yaml", []byte(`name: i
job: infer
source: {topics: [a], format: sensor}
features: {kind: readings, channels: [x]}
inference: [{name: digits, store: s, trust: [k], topic: p}]
`))
	if err != nil {
		t.Fatal(err)
	}
	res := &runners.Result{Counters: map[string]int64{
		"infer.digits/rows": 100, "infer.digits/predictions": 100, "infer.digits/batches": 4,
		"infer.digits/predictions@m@1": 30, "infer.digits/predictions@m@2": 70,
		"infer.digits/" + infer.LatencyCounter + "240": 50, // 0.01 ms · 2^(239.5/16) ≈ 321 ms
		"infer.digits/" + infer.LatencyCounter + "300": 50, // ≈ 4.31 s
		"other/" + infer.LatencyCounter + "900":        1000,
	}, Dists: map[string]metrics.DistributionValue{
		"infer.digits/batch_latency_us": {Count: 4, Sum: 4000, Min: 500, Max: 2000},
	}}
	served := []*infer.Model{{Version: modelstore.Version{Name: "m", Seq: 1}}}
	bs := jobs.SummarizeInference(spec, served, res)
	if len(bs) != 1 {
		t.Fatalf("%d branches", len(bs))
	}
	b := bs[0]
	if b.Final != "m@2" || b.ByModel["m@1"] != 30 || b.ByModel["m@2"] != 70 {
		t.Errorf("final %q, by model %v", b.Final, b.ByModel)
	}
	if b.LatencyP50 < 315 || b.LatencyP50 > 327 || b.LatencyP99 < 4250 || b.LatencyP99 > 4370 {
		t.Errorf("latency p50 %v, p99 %v", b.LatencyP50, b.LatencyP99)
	}
	if b.Batches != 4 || b.BatchMeanMs != 1 || b.BatchMinMs != 0.5 || b.BatchMaxMs != 2 {
		t.Errorf("batches %+v", b)
	}
	var w bytes.Buffer
	printInference(&w, bs)
	for _, want := range []string{"serving m@2 at the end; predictions by version m@1 30, m@2 70", "batches      4, 25 rows each"} {
		if !strings.Contains(w.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, w.String())
		}
	}
}
