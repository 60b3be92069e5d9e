// Package analyze computes full-pass statistics over a bounded collection
// of feature rows — per feature count, mean, variance, min and max, and the
// label set — with a Beam combiner, and turns them into a preprocessing
// Spec that standardizes features the same way in training and in
// inference. A Spec is plain data (JSON), so it travels inside model
// snapshots.
package analyze
