// Package models holds muon's model numerics on gonum, with no Beam in
// sight: softmax (multinomial logistic) regression, linear regression, a
// multilayer perceptron and a small convolutional network; their losses
// (softmax cross-entropy, squared error); optimizers (SGD with momentum,
// Adam, L2 weight decay, learning-rate schedules); training, prediction
// and metrics.
//
// A model is a descriptor (Desc: kind and layer sizes, plain data that
// encodes to JSON) and one flat parameter vector. New initializes a model
// from a seed and FromParams rebuilds one from a vector, so a model
// travels, averages and compares as a []float64:
//
//	m, err := models.New(models.Desc{Kind: models.MLP, Inputs: 64, Hidden: []int{100}, Head: models.SoftmaxHead, Classes: 10}, 1)
//	opt, err := models.NewOptimizer(models.OptimizerDesc{Kind: models.Adam, LearningRate: 1e-3}, m.NumParams())
//	loss, n := models.Fit(m, opt, x, models.Targets{Classes: y}, 32, rand.New(rand.NewPCG(1, 1)))
//	met := models.Evaluate(m, xTest, models.Targets{Classes: yTest})
//
// Features arrive as a rows × inputs *mat.Dense (for a batch decoded from
// Arrow, a matrix over the values buffer, not a copy). Every layer works
// on a whole batch at once: dense layers and 3×3 convolutions (im2col, then
// one product) are gonum BLAS matrix products, activations and pooling are
// flat loops, and a Trainer or Predictor keeps its buffers from batch to
// batch, so that after the largest batch nothing allocates, per row or per
// batch. Products run on the calling goroutine: the parallelism of
// training is across data-parallel shards.
//
// Everything is deterministic: the same descriptor, seed, data, optimizer
// and shuffling source give bit-identical parameters on one architecture
// (Go may fuse multiply-adds on some, such as arm64, so bits can differ
// between architectures).
// Inputs are never modified; shape and class errors in the arguments are
// programmer errors and panic with a "models:" prefix, while CheckData,
// the constructors and Validate methods return errors wrapping ErrData,
// ErrDesc, ErrParams or ErrOptimizer for data that comes from outside.
package models
