// Command muon is a dataflow engine for machine learning on streams: one
// binary that ingests sensor and image streams from Kafka, runs pipelines
// on the edge runner (prism, in process) or on Apache Flink, replays
// recordings into Kafka, and serves an embedded Kafka broker. It is also
// the Beam worker for its own pipelines.
package main
