// Package decode turns Kafka records into typed records: sensor readings
// (JSON) and images (PNG, JPEG, PGM → 8-bit grayscale). A record that does
// not decode — bad JSON, a missing device, a non-numeric value, an
// unreadable or oversized image, an oversized payload — becomes a dead
// letter bound for <topic>.dlq with headers naming the error, the stage and
// its source coordinates. A bad record never stops the pipeline.
package decode
