// Package records holds the record types every stage passes along: a
// decoded sensor Reading and Image, each with the typed Source it was read
// from (Kafka topic, partition and offset), and their Beam coders. It is
// the bottom of muon: it imports nothing of muon but the message contract
// (package message) and its own binary encoding (records/wire), so connectors,
// stages and jobs can all share it.
package records
