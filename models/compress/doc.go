// Package compress makes models small for shipping: magnitude pruning
// (global or per layer, with masked fine-tuning), and quantization of the
// weights to int8 (symmetric, per output channel, scales kept) or float16,
// into snapshot tensors and back. Biases are never pruned and stay
// float32.
package compress
