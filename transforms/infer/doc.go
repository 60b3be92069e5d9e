// Package infer scores feature batches with the newest verified model
// snapshot of a model store, and writes predictions (or alerts) as Kafka
// records.
//
// Each process loads one model per version and shares it across bundles
// and DoFn instances (Server). A branch checks its store for a newer
// version at most once per Params.Reload and switches to it without a
// restart; a version that does not verify, or was trained on other
// features, is refused once with its error and the model before it keeps
// serving. The preprocessing (standardization statistics) comes from the
// snapshot, so training and serving cannot drift apart. Every prediction
// carries the model version that made it and a deterministic id; a batch
// that fails goes to the dead letter with stage inference.
package infer
