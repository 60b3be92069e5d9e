// Package parquetio is muon's Parquet archive: decoded sensor readings and
// feature batches written to Parquet files partitioned by the UTC date and
// hour of their event time, and read back as batches for batch runs.
//
// Layout, Hive-style as Spark, pyarrow.dataset and DuckDB read it:
//
//	<root>/date=2024-05-01/hour=13/part-1f0c9a7e5b3d2c41.parquet
//
// A writer fills a file under a temporary name starting with "." in the same
// directory and renames it when complete, so readers (which skip names
// starting with "." or "_") never see half a file. The final name hashes
// what identifies the rows (ids, keys and times; for readings their Kafka
// coordinates), so writing the same rows again — a retried bundle —
// replaces a file instead of adding a duplicate.
//
// Feature files have the columns of arrowio.RowSchema but its source
// coordinates: key (string), time (timestamp ms, UTC), features
// (list<double>, every row of the dimension the metadata names), label
// (nullable string) and id (string, which for a row of one record is its
// topic/partition/offset). Rows read back have null source columns: the
// coordinates serve dead letters of a running stream, not training. Readings
// files have device, time (timestamp ms, UTC) with time_nanos (the
// nanoseconds past the millisecond), values (list of {name, value} in the
// reading's order), label (null when empty), topic, partition and offset.
// Both round-trip exactly: every float64 bit pattern (NaN, ±Inf, -0), an
// empty label apart from a null one in feature batches, and the time to the
// nanosecond for readings. Key-value metadata names the format
// (muon.format), the feature dimension and optionally the feature names;
// readers check them and the schema, and refuse another program's file or
// the wrong dimension with an error naming the file.
//
// The plain Go API — FeatureWriter, FeatureReader, ReadingWriter,
// ReadingReader for one file, FeatureArchive and ReadingArchive for a
// partitioned archive, Files to list one — needs no pipeline. The Beam
// transforms WriteFeatures, WriteReadings, ReadFeatures and ReadReadings
// wrap it: writes produce a PCollection<File> naming every file written,
// reads list the files when the pipeline runs and spread their row groups
// over the workers.
//
// Files are decoded by parquet-go, whose decoders trust the lengths a file
// declares. Before it reads anything, a reader checks what it can: the
// footer's length and every length and count in its Thrift encoding against
// the bytes there, the format metadata and the schema, the codecs (only
// those the archive writes), and every page header — inside its column
// chunk, sizes and value counts bounded, a CRC present, so that damage to a
// page's body is caught before it is decompressed. Then every row's shape
// is checked, and a panic in the decoder becomes an error wrapping
// ErrCorrupt. A crafted file whose CRCs match can still make the decoder
// allocate what a page declares (at most 256 MiB) or, through a zstd frame
// that does not declare its size, what its blocks expand to.
package parquetio
