// Package train trains models data-parallel as stages of a Beam pipeline.
//
// DataParallel trains on a bounded collection of Arrow batches: the rows
// are spread over shards by a hash of their ids, every epoch each shard
// runs minibatch SGD from the same model (a side input), and a combiner
// averages the shard models weighted by their rows; the epochs are
// unrolled in the pipeline, each followed by validation and early
// stopping. With one shard the result is serial minibatch SGD, bit for
// bit. Evaluate measures the kept model on held-out batches.
//
// Stream trains on an unbounded collection of feature rows one event-time
// window at a time: each window's shards start from the newest model
// published to a store directory, and the window's averaged model is
// published there in turn.
package train
