// Package pipelines builds Beam pipelines from job specs: the ingest job
// now; training, inference and the quick start as they arrive.
package pipelines
