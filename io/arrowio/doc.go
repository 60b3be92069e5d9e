// Package arrowio carries Apache Arrow record batches between Beam stages.
//
// A Batch is one PCollection element holding one record batch; its Beam
// coder writes the Arrow IPC stream format. Decoding checks the stream's
// framing and the flatbuffer metadata (every length and count against the
// bytes actually there, no compression, no dictionaries) before the Arrow
// reader allocates anything, so corrupt or hostile bytes give an error,
// never a panic or an allocation they did not pay for. Feature rows use
// RowSchema: key, event time, features as FixedSizeList<float64>[d] — whose
// values buffer is a row-major n×d matrix that gonum can use without a
// copy — label, the row's id, and the Kafka coordinates (topic, partition,
// offset; null for a window of several records) of the record it was made
// from.
//
// Ownership: whoever creates an arrow object releases it, except a Batch
// emitted into a PCollection, which then belongs to the pipeline; consumers
// read it and never release it. Batches decoded by the coder use Go's
// allocator, so their memory returns through the garbage collector.
package arrowio
