// Package jobs builds muon's jobs from their specs: one file per kind
// (ingest, features, train, infer), each a Job found by its kind in a
// registry. A Job names the topics it writes, checks what it needs before
// anything starts, builds its Beam pipeline from the transforms, and
// summarizes a run from the runner's metrics and from the stores and topics
// the job wrote, never from files a worker wrote: on a cluster, workers
// share no disk with the submitter.
//
// Run is one job from start to summary: the broker, the topics, the
// replay, the pipeline on the chosen runner, the summary. The command line
// (cmd/muon) is flags, help and printing around it.
//
// This package holds no DoFn: every stage lives in transforms/ and io/.
package jobs
