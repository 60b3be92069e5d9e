package kafkaio_test

import (
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/io/kafkaio"
)

// A bounded read of everything in two topics, as a batch run does: the end
// offsets are captured when the pipeline starts.
func ExampleRead() {
	p, s := beam.NewPipelineWithRoot()
	records := kafkaio.Read(s, kafkaio.Params{
		Brokers: []string{"127.0.0.1:9092"},
		Topics:  []string{"sensors", "gateways"},
	})
	_ = records // PCollection<kafkaio.Record>
	_ = p
}

// An unbounded read from the newest records on, which checkpoints every
// second and stops, draining the pipeline, after ten minutes.
func ExampleReadBatches() {
	p, s := beam.NewPipelineWithRoot()
	batches := kafkaio.ReadBatches(s, kafkaio.Params{
		Brokers:            []string{"127.0.0.1:9092"},
		Topics:             []string{"sensors"},
		Start:              kafkaio.Start{Kind: kafkaio.StartLatest},
		Unbounded:          true,
		CheckpointInterval: time.Second,
		Until:              time.Now().Add(10 * time.Minute),
	})
	_ = batches // PCollection<kafkaio.Records>, one per fetch of a partition
	_ = p
}

// Dead letters go back to Kafka, each to its own <topic>.dlq, acknowledged
// by all in-sync replicas.
func ExampleWrite() {
	p, s := beam.NewPipelineWithRoot()
	bad := beam.Create(s, kafkaio.DeadLetter(kafkaio.Record{Topic: "sensors", Offset: 42, Value: []byte("{")},
		"decode", errBadJSON, ""))
	kafkaio.Write(s, kafkaio.WriteParams{Brokers: []string{"127.0.0.1:9092"}, Acks: kafkaio.AcksAll}, bad)
	_ = p
}

var errBadJSON = errorString("invalid JSON")

type errorString string

func (e errorString) Error() string { return string(e) }
