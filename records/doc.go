// Package records holds the record types every stage and every producer
// shares: one sensor Reading (what a device measured, and, once muon has
// read it, the typed Source it was read from: Kafka topic, partition and
// offset) and Image, with their compact binary encoding (records/wire). It
// is the bottom of muon and imports nothing of it; its Beam coders live in
// records/coders, so that producers (package message) need no Beam.
package records
