// Package kafkaio reads from and writes to Apache Kafka in Beam pipelines.
//
// [Read] is a splittable DoFn per (topic, partition) whose restriction is an
// offset range, so offsets live in the runner's checkpoints rather than in
// consumer-group commits. In bounded mode the end offsets are captured when
// the pipeline starts and the read ends by itself; in unbounded mode the range
// grows, the DoFn checkpoints itself every N records or T of wall time, and a
// watermark follows record timestamps and advances on idle partitions.
//
// Records are fetched in batches ([kafka.Conn.ReadBatchWith]); a
// per-message Reader loop is two orders of magnitude slower. [ReadBatches]
// emits whole fetch batches as one element, which is what columnar stages
// downstream want; [Read] emits one element per record.
//
// [Write] produces records with explicit acknowledgements (all in-sync
// replicas by default), batching and retries; a failed write fails the bundle
// so the runner retries it, and nothing is dropped silently.
package kafkaio
