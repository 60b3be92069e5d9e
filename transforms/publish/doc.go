// Package publish is the last stage of training: it compresses a trained
// model (prune with masked fine-tuning, then int8, float16 or float32
// tensors), measures the float and the compressed model on the validation
// and test rows, applies the quality gate, signs the snapshot and publishes
// it to a model store, or rejects it there with the reason.
//
// Trained does this once for a bounded train job; Windows publishes every
// window's model of a train job on a stream. What became of a snapshot is
// reported in Beam metrics (the names below), so that a job's summary
// comes from the runner and the store, never from a file a worker wrote.
package publish
