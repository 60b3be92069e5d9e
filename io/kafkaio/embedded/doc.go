// Package embedded runs an in-process Kafka wire-protocol broker (franz-go's
// kfake) on a loopback port: for the quick start, for tests, and for jobs
// whose spec names no brokers. It is not a replacement for Apache Kafka at
// scale: it keeps data in memory unless given a data directory.
package embedded
