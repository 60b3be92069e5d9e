package models_test

import (
	"testing"

	"github.com/muonml/muon/models"
	"gonum.org/v1/gonum/mat"
)

// benchModels are the shapes the benchmarks train: optdigits-sized inputs
// (64 features, 10 classes) with a batch of 32.
var benchModels = []struct {
	name string
	d    models.Desc
}{
	{"softmax-64-10", models.Desc{Kind: models.Softmax, Inputs: 64, Classes: 10}},
	{"mlp-64-100-10", models.Desc{Kind: models.MLP, Inputs: 64, Hidden: []int{100}, Head: models.SoftmaxHead, Classes: 10}},
	{"cnn-8x8-c8-10", models.Desc{Kind: models.CNN, Width: 8, Height: 8, Filters: []int{8}, Classes: 10}},
	{"cnn-8x8-c8-c16-32-10", models.Desc{Kind: models.CNN, Width: 8, Height: 8, Filters: []int{8, 16}, Hidden: []int{32}, Classes: 10}},
}

const benchBatch = 32

func benchData(b *testing.B, m *models.Model, rows int) (*mat.Dense, models.Targets) {
	b.Helper()
	x, y := blobs(rows, m.Outputs(), m.Inputs(), 1)
	return x, y
}

// BenchmarkTrainStep measures one optimizer step (forward, backward, Adam
// update) on a batch of 32 rows.
func BenchmarkTrainStep(b *testing.B) {
	for _, bm := range benchModels {
		b.Run(bm.name, func(b *testing.B) {
			m := mustNew(b, bm.d, 1)
			tr := models.NewTrainer(m, newOptimizer(b, models.OptimizerDesc{Kind: models.Adam, LearningRate: 1e-3}, m.NumParams()))
			x, y := benchData(b, m, benchBatch)
			tr.Step(x, y) // warm up the buffers
			b.ReportAllocs()
			b.SetBytes(int64(benchBatch * m.Inputs() * 8))
			b.ResetTimer()
			for b.Loop() {
				tr.Step(x, y)
			}
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkEpoch measures a shuffled epoch over 4096 rows in batches of
// 32, the unit of work of one data-parallel shard.
func BenchmarkEpoch(b *testing.B) {
	const rows = 4096
	for _, bm := range benchModels {
		b.Run(bm.name, func(b *testing.B) {
			m := mustNew(b, bm.d, 1)
			tr := models.NewTrainer(m, newOptimizer(b, models.OptimizerDesc{Kind: models.SGD, LearningRate: 1e-3, Momentum: 0.9}, m.NumParams()))
			x, y := benchData(b, m, rows)
			rng := seeded(1)
			tr.Epoch(x, y, benchBatch, rng)
			b.ReportAllocs()
			b.SetBytes(int64(rows * m.Inputs() * 8))
			b.ResetTimer()
			for b.Loop() {
				tr.Epoch(x, y, benchBatch, rng)
			}
			b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkPredict measures class probabilities for 1024 rows.
func BenchmarkPredict(b *testing.B) {
	const rows = 1024
	for _, bm := range benchModels {
		b.Run(bm.name, func(b *testing.B) {
			m := mustNew(b, bm.d, 1)
			p := models.NewPredictor(m)
			x, _ := benchData(b, m, rows)
			dst := mat.NewDense(rows, m.Outputs(), nil)
			p.Predict(dst, x)
			b.ReportAllocs()
			b.SetBytes(int64(rows * m.Inputs() * 8))
			b.ResetTimer()
			for b.Loop() {
				p.Predict(dst, x)
			}
			b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkAdamUpdate measures Adam's parameter update alone, on the
// optdigits MLP's 7510 parameters.
func BenchmarkAdamUpdate(b *testing.B) {
	m, err := models.New(benchModels[1].d, 1)
	if err != nil {
		b.Fatal(err)
	}
	o, err := models.NewOptimizer(models.OptimizerDesc{Kind: models.Adam, LearningRate: 1e-3, WeightDecay: 1e-4}, m.NumParams())
	if err != nil {
		b.Fatal(err)
	}
	grad := make([]float64, m.NumParams())
	for i := range grad {
		grad[i] = float64(i%7-3) * 1e-3
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		o.Update(m, grad)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(m.NumParams()), "ns/param")
}
