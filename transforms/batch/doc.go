// Package batch turns feature rows into Arrow record batches: one pipeline
// element per batch of at most MaxRows rows, so that stages downstream pay
// the runner's per-element cost once per batch and read the features as a
// matrix.
package batch
