package parquetio

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// Sentinel errors. Every error of this package names the file it concerns.
var (
	// ErrNotArchive means a file is not a muon archive file of the kind
	// asked for: another program's Parquet file, or readings where features
	// were expected.
	ErrNotArchive = errors.New("parquetio: not a muon archive file")
	// ErrDim means a feature file holds rows of another dimension than the
	// one asked for.
	ErrDim = errors.New("parquetio: feature dimension mismatch")
	// ErrCorrupt means a file's bytes do not decode: truncated, damaged, or
	// values that break the archive's schema.
	ErrCorrupt = errors.New("parquetio: corrupt file")
)

// Key-value metadata of archive files.
const (
	// MetaFormat names the kind and version of a file: FormatFeatures or
	// FormatReadings.
	MetaFormat = "muon.format"
	// MetaDim is the number of features per row of a feature file, in decimal.
	MetaDim = "muon.features.dim"
	// MetaNames is a JSON array naming the features, when the writer was given
	// names.
	MetaNames = "muon.features.names"
	// MetaPartition is the date=…/hour=… partition a file was written for by
	// an archive writer.
	MetaPartition = "muon.partition"
)

// Values of MetaFormat.
const (
	FormatFeatures = "muon.features.v1"
	FormatReadings = "muon.readings.v1"
)

// Defaults the options override.
const (
	// DefaultRowGroupRows is the most rows in one row group, the unit a
	// reader can hand to a worker of its own.
	DefaultRowGroupRows = 64 << 10
	// DefaultBatchRows is the most rows in one batch a reader returns.
	DefaultBatchRows = 4096
)

// Limits on what a reader accepts, so that a damaged or hostile file gives
// an error rather than an allocation it did not pay for.
const (
	// maxFooterBytes bounds the file metadata.
	maxFooterBytes = 16 << 20
	// maxDim bounds the dimension a file may declare.
	maxDim = 1 << 20
	// maxNamesBytes bounds the JSON of MetaNames.
	maxNamesBytes = 8 << 20
)

// featureRow is one row of a feature file; its field order is the column
// order. Writers fill it with strings and slices that alias Arrow buffers.
type featureRow struct {
	Key  string `parquet:"key,dict"`
	Time int64  `parquet:"time,timestamp(millisecond),delta"`
	// Plain lists of doubles: FixedSizeList has no Parquet type; the
	// dimension is in MetaDim and every row is checked against it.
	Features []float64 `parquet:"features,list" parquet-element:",split"`
	Label    *string   `parquet:"label,optional,dict"`
	ID       string    `parquet:"id"`
}

// Column indexes of featureRow's leaves.
const (
	fKey = iota
	fTime
	fFeatures
	fLabel
	fID
	fColumns
)

// readingValue is one named value of a reading.
type readingValue struct {
	Name  string  `parquet:"name,dict"`
	Value float64 `parquet:"value,split"`
}

// readingRow is one row of a readings file. Time is split into milliseconds
// (what other readers see as the event time) and the nanoseconds past the
// millisecond: decode yields Kafka timestamps, any int64 of milliseconds,
// and RFC 3339 times with nanoseconds, and both fit exactly.
type readingRow struct {
	Device    string         `parquet:"device,dict"`
	Time      int64          `parquet:"time,timestamp(millisecond),delta"`
	TimeNanos int32          `parquet:"time_nanos"`
	Values    []readingValue `parquet:"values,list"`
	Label     string         `parquet:"label,optional,dict"` // "" is null
	Topic     string         `parquet:"topic,dict"`
	Partition int32          `parquet:"partition"`
	Offset    int64          `parquet:"offset,delta"`
}

// Column indexes of readingRow's leaves.
const (
	rDevice = iota
	rTime
	rTimeNanos
	rValueName
	rValueValue
	rLabel
	rTopic
	rPartition
	rOffset
	rColumns
)

var (
	featureSchema = parquet.NewSchema("muon_features", parquet.SchemaOf(featureRow{}))
	readingSchema = parquet.NewSchema("muon_readings", parquet.SchemaOf(readingRow{}))
)

// writerOptions are the options of every archive file writer.
func writerOptions(schema *parquet.Schema, rowGroupRows int) []parquet.WriterOption {
	return []parquet.WriterOption{
		schema,
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}),
		parquet.MaxRowsPerRowGroup(int64(rowGroupRows)),
		parquet.CreatedBy("muon", "", ""),
	}
}

// openFile opens a Parquet file after checking its footer's length against
// its size (parquet-go allocates what the footer claims), and checks that
// its format metadata is want and its schema the format's. parquet-go
// panics on some damaged footers (a negative count, a leaf with a group's
// logical type): those panics become errors.
func openFile(r io.ReaderAt, size int64, name, want string) (f *parquet.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("%w: %s: metadata: %v", ErrCorrupt, name, p)
		}
	}()
	if size < 12 {
		return nil, fmt.Errorf("%w: %s: %d bytes, too short for Parquet", ErrCorrupt, name, size)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return nil, fmt.Errorf("parquetio: %s: reading the footer: %w", name, err)
	}
	if string(tail[4:]) != "PAR1" {
		return nil, fmt.Errorf("%w: %s: no Parquet footer (last bytes %q, want PAR1): not a Parquet file, or truncated", ErrCorrupt, name, tail[4:])
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > size-12 || n > maxFooterBytes {
		return nil, fmt.Errorf("%w: %s: footer of %d bytes in a file of %d", ErrCorrupt, name, n, size)
	}
	// parquet-go's Thrift decoder allocates every length the footer
	// declares before reading it: check them against the footer's bytes.
	footer := make([]byte, n)
	if _, err := r.ReadAt(footer, size-8-n); err != nil {
		return nil, fmt.Errorf("parquetio: %s: reading the footer: %w", name, err)
	}
	t := thrift{b: footer}
	if t.skip(ctStruct, 0); t.err != nil {
		return nil, fmt.Errorf("%w: %s: footer: %v", ErrCorrupt, name, t.err)
	}
	f, err = parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	got, ok := f.Lookup(MetaFormat)
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: %s has no %s metadata: it was not written by parquetio", ErrNotArchive, name, MetaFormat)
	case got != want:
		return nil, fmt.Errorf("%w: %s is %q, want %q", ErrNotArchive, name, got, want)
	}
	schema := featureSchema
	if want == FormatReadings {
		schema = readingSchema
	}
	if !parquet.EqualNodes(f.Schema(), schema) {
		return nil, fmt.Errorf("%w: %s: schema %s differs from %s's %s", ErrCorrupt, name, f.Schema(), want, schema)
	}
	for i, rg := range f.RowGroups() {
		if rg.NumRows() < 0 {
			return nil, fmt.Errorf("%w: %s: row group %d has %d rows", ErrCorrupt, name, i, rg.NumRows())
		}
	}
	if err := checkPages(r, size, f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	return f, nil
}

// featureMeta reads and checks the dimension and names of a feature file.
func featureMeta(f *parquet.File, name string) (dim int, names []string, err error) {
	s, ok := f.Lookup(MetaDim)
	if !ok {
		return 0, nil, fmt.Errorf("%w: %s has no %s metadata", ErrCorrupt, name, MetaDim)
	}
	dim, err = strconv.Atoi(s)
	if err != nil || dim < 1 || dim > maxDim {
		return 0, nil, fmt.Errorf("%w: %s: %s is %q, want a number from 1 to %d", ErrCorrupt, name, MetaDim, s, maxDim)
	}
	if s, ok := f.Lookup(MetaNames); ok {
		if len(s) > maxNamesBytes {
			return 0, nil, fmt.Errorf("%w: %s: %s of %d bytes", ErrCorrupt, name, MetaNames, len(s))
		}
		if err := json.Unmarshal([]byte(s), &names); err != nil {
			return 0, nil, fmt.Errorf("%w: %s: %s: %v", ErrCorrupt, name, MetaNames, err)
		}
		if len(names) != dim {
			return 0, nil, fmt.Errorf("%w: %s: %d feature names for %d features", ErrCorrupt, name, len(names), dim)
		}
	}
	return dim, names, nil
}
