// Command bench measures muon's Kafka figures and prints each as a line
// `BENCH <name> <value> <unit>`: produce, raw kafka-go batch reads,
// kafkaio.Read and kafkaio.ReadBatches on the edge runner, and
// kafkaio.Write, on the embedded broker and (with --kafka) on Apache Kafka,
// all over the same 1,000,000 sensor readings in the same run.
//
// `make bench` starts Apache Kafka, runs this, and stops Kafka.
package main
