// Command bench measures muon's Kafka figures and prints each as a line
// `BENCH <name> <value> <unit>`: produce, raw kafka-go batch reads,
// kafkaio.Read and kafkaio.ReadBatches on the edge runner, and
// kafkaio.Write, on the embedded broker and (with --kafka) on Apache Kafka,
// all over the same 1,000,000 sensor readings in the same run; and, in
// the train group, training samples/s of muon's softmax regression and MLP
// on optdigits beside scikit-learn's (integration/python/train_sklearn.py).
//
// `make bench` starts Apache Kafka, runs this, and stops Kafka.
package main
