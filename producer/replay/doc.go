// Package replay produces recordings (UEA/UCR .ts files, CSV files, image
// folders) into a Kafka topic as devices would: at a chosen rate, with
// event timestamps, keyed by device, with explicit acknowledgements. It is
// what `muon produce` runs and what a job's replay section runs.
package replay
