// Package count counts what each device sent: records, first and last
// event time, and its first label; per whole bounded read (into a CSV file)
// or per device and event-time minute (as Kafka records).
package count
