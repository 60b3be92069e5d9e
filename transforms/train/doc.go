// Package train trains models data-parallel on Arrow batches as stages of
// a Beam pipeline: the data is spread over shards, every epoch each shard
// runs minibatch SGD from the same model (a side input), and a combiner
// averages the shard models weighted by their rows. With one shard the
// result is serial minibatch SGD, bit for bit.
package train
