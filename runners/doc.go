// Package runners chooses and launches the runner a pipeline runs on: the
// edge runner (Beam's prism, inside the muon process) or Apache Flink
// through Beam's Flink job server. It also turns a finished job's Beam
// metrics into a plain summary.
package runners
