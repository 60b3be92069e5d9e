// Package producer groups the tools for people who feed muon: reading
// recordings into messages (producer/recording) and producing them into
// Kafka at a chosen rate (producer/replay), as muon produce and a spec's
// replay section do. The message format itself is package message.
package producer
