package parquetio

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/muonml/muon/records"
	_ "github.com/muonml/muon/records/coders"
	"github.com/parquet-go/parquet-go"
)

// ReadingOptions configures a readings file writer.
type ReadingOptions struct {
	// RowGroupRows is the most readings in one row group. Default
	// DefaultRowGroupRows.
	RowGroupRows int
}

// ReadingWriter writes decoded readings as one Parquet file: device, time
// (timestamp ms, UTC) and time_nanos (the nanoseconds past the
// millisecond, 0–999999), values (a list of {name, value} in the reading's
// order), label (null when empty), and the source topic, partition and
// offset.
type ReadingWriter struct {
	w    *parquet.GenericWriter[readingRow]
	rows []readingRow
	slab []readingValue
	n    int64
}

// NewReadingWriter returns a writer of a readings file to w. Close it to
// write the file's footer.
func NewReadingWriter(w io.Writer, o ReadingOptions) (*ReadingWriter, error) {
	if o.RowGroupRows < 0 {
		return nil, fmt.Errorf("parquetio: RowGroupRows %d < 0", o.RowGroupRows)
	}
	if o.RowGroupRows == 0 {
		o.RowGroupRows = DefaultRowGroupRows
	}
	opts := append(writerOptions(readingSchema, o.RowGroupRows), parquet.KeyValueMetadata(MetaFormat, FormatReadings))
	return &ReadingWriter{w: parquet.NewGenericWriter[readingRow](w, opts...)}, nil
}

// splitTime returns t as Unix milliseconds and the nanoseconds past them,
// or an error if the milliseconds do not fit an int64.
func splitTime(t time.Time) (ms int64, nanos int32, err error) {
	ms, nanos = t.UnixMilli(), int32(t.Nanosecond()%1e6)
	if !joinTime(ms, nanos).Equal(t) { // UnixMilli wrapped around
		return 0, 0, fmt.Errorf("parquetio: time %v does not fit int64 milliseconds", t)
	}
	return ms, nanos, nil
}

// joinTime inverts splitTime, in UTC.
func joinTime(ms int64, nanos int32) time.Time {
	sec, rem := ms/1000, ms%1000
	if rem < 0 {
		sec, rem = sec-1, rem+1000
	}
	return time.Unix(sec, rem*1e6+int64(nanos)).UTC()
}

// Write appends readings.
func (rw *ReadingWriter) Write(rs ...records.Reading) error {
	if len(rs) == 0 {
		return nil
	}
	rw.rows = rw.rows[:0]
	rw.slab = rw.slab[:0]
	for i := range rs {
		r := &rs[i]
		ms, nanos, err := splitTime(r.Time)
		if err != nil {
			return fmt.Errorf("%w (reading %s)", err, r.Source.ID())
		}
		if r.Source.Partition < math.MinInt32 || r.Source.Partition > math.MaxInt32 {
			return fmt.Errorf("parquetio: reading %s: partition %d does not fit int32", r.Source.ID(), r.Source.Partition)
		}
		start := len(rw.slab)
		for _, v := range r.Values {
			rw.slab = append(rw.slab, readingValue{Name: v.Name, Value: v.Value})
		}
		rw.rows = append(rw.rows, readingRow{
			Device:    r.Device,
			Time:      ms,
			TimeNanos: nanos,
			Values:    rw.slab[start:len(rw.slab):len(rw.slab)],
			Label:     r.Label,
			Topic:     r.Source.Topic,
			Partition: int32(r.Source.Partition),
			Offset:    r.Source.Offset,
		})
	}
	_, err := rw.w.Write(rw.rows)
	clear(rw.rows)
	clear(rw.slab)
	if err != nil {
		return fmt.Errorf("parquetio: writing readings: %w", err)
	}
	rw.n += int64(len(rs))
	return nil
}

// Rows is the number of readings written so far.
func (rw *ReadingWriter) Rows() int64 { return rw.n }

// SetMetadata adds a key-value pair to the file's metadata.
func (rw *ReadingWriter) SetMetadata(key, value string) { rw.w.SetKeyValueMetadata(key, value) }

// Close flushes the last row group and writes the footer. It does not
// close the io.Writer.
func (rw *ReadingWriter) Close() error {
	if err := rw.w.Close(); err != nil {
		return fmt.Errorf("parquetio: closing readings file: %w", err)
	}
	return nil
}

// ReadingReader reads a readings file.
type ReadingReader struct {
	name   string
	f      *parquet.File
	closer io.Closer
}

// OpenReadings opens the readings file at path. Close the reader when done.
func OpenReadings(path string) (*ReadingReader, error) {
	file, size, err := openPath(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReadingReader(file, size, path)
	if err != nil {
		file.Close()
		return nil, err
	}
	r.closer = file
	return r, nil
}

// NewReadingReader reads a readings file of size bytes from r; name is the
// file's name in errors. It checks the file's format and schema.
func NewReadingReader(r io.ReaderAt, size int64, name string) (*ReadingReader, error) {
	f, err := openFile(r, size, name, FormatReadings)
	if err != nil {
		return nil, err
	}
	return &ReadingReader{name: name, f: f}, nil
}

// Metadata returns the value of a key of the file's key-value metadata.
func (rr *ReadingReader) Metadata(key string) (string, bool) { return rr.f.Lookup(key) }

// Rows is the number of readings the file's metadata declares.
func (rr *ReadingReader) Rows() int64 { return rr.f.NumRows() }

// RowGroups is the number of row groups, the unit of parallel reading.
func (rr *ReadingReader) RowGroups() int { return len(rr.f.RowGroups()) }

// Read reads every row group in order; see ReadRowGroup.
func (rr *ReadingReader) Read(emit func(records.Reading) error) error {
	for i := range rr.f.RowGroups() {
		if err := rr.ReadRowGroup(i, emit); err != nil {
			return err
		}
	}
	return nil
}

// ReadRowGroup reads the readings of row group i in order and passes each
// to emit, in UTC, with nil Values when it had none. An error from emit
// stops the reading and is returned as is.
func (rr *ReadingReader) ReadRowGroup(i int, emit func(records.Reading) error) error {
	it, err := newRowIter(rr.f, rr.name, i)
	if err != nil {
		return err
	}
	defer it.close()
	var d readingDecoder
	for {
		vals, err := it.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		r, err := d.decode(vals)
		if err != nil {
			return fmt.Errorf("%w: %s: row group %d, row %d: %v", ErrCorrupt, rr.name, i, it.row-1, err)
		}
		if err := emit(r); err != nil {
			return err
		}
	}
}

// Close closes the file if OpenReadings opened it.
func (rr *ReadingReader) Close() error {
	if rr.closer == nil {
		return nil
	}
	err := rr.closer.Close()
	rr.closer = nil
	return err
}

// readingDecoder turns rows of parquet values into readings. Devices,
// labels, topics and value names repeat from row to row: it keeps one
// string of each, as decode does, and carves the values of many readings
// out of one slab.
type readingDecoder struct {
	strs map[string]string
	slab []records.Value
}

// slabValues is how many values a slab holds.
const slabValues = 4096

// maxInterned bounds the strings a decoder keeps.
const maxInterned = 4096

// str returns b as a string, the same string for the same bytes.
func (d *readingDecoder) str(b []byte) string {
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	if d.strs == nil || len(d.strs) >= maxInterned {
		d.strs = make(map[string]string)
	}
	s := string(b)
	d.strs[s] = s
	return s
}

func (d *readingDecoder) decode(vals []parquet.Value) (records.Reading, error) {
	// device, time, time_nanos, then names and values (k each, or one null
	// each for no values), then label, topic, partition, offset.
	if len(vals) < rColumns || (len(vals)-rColumns)%2 != 0 {
		return records.Reading{}, fmt.Errorf("%d values in a row", len(vals))
	}
	k := (len(vals) - rColumns) / 2
	names, values := vals[rValueName:rValueName+k+1], vals[rValueName+k+1:rValueName+2*k+2]
	tail := vals[rValueName+2*k+2:]
	checks := []struct {
		v        parquet.Value
		col      int
		kind     parquet.Kind
		optional bool
	}{
		{vals[rDevice], rDevice, parquet.ByteArray, false},
		{vals[rTime], rTime, parquet.Int64, false},
		{vals[rTimeNanos], rTimeNanos, parquet.Int32, false},
		{tail[0], rLabel, parquet.ByteArray, true},
		{tail[1], rTopic, parquet.ByteArray, false},
		{tail[2], rPartition, parquet.Int32, false},
		{tail[3], rOffset, parquet.Int64, false},
	}
	for _, c := range checks {
		if err := checkValue(c.v, c.col, c.kind, c.optional); err != nil {
			return records.Reading{}, err
		}
	}
	nanos := vals[rTimeNanos].Int32()
	if nanos < 0 || nanos >= 1e6 {
		return records.Reading{}, fmt.Errorf("time_nanos %d outside 0–999999", nanos)
	}
	empty := k == 0 && names[0].IsNull()
	n := k + 1
	if empty {
		n = 0
	}
	for j := range k + 1 {
		nv, vv := names[j], values[j]
		if nv.Column() != rValueName || vv.Column() != rValueValue || nv.RepetitionLevel() != min(j, 1) || vv.RepetitionLevel() != min(j, 1) {
			return records.Reading{}, fmt.Errorf("value %d: columns %d and %d, repetition levels %d and %d", j, nv.Column(), vv.Column(), nv.RepetitionLevel(), vv.RepetitionLevel())
		}
		if empty {
			if !vv.IsNull() || nv.DefinitionLevel() != 0 || vv.DefinitionLevel() != 0 {
				return records.Reading{}, fmt.Errorf("an empty list of values with a value")
			}
			continue
		}
		if nv.IsNull() || vv.IsNull() || nv.Kind() != parquet.ByteArray || vv.Kind() != parquet.Double {
			return records.Reading{}, fmt.Errorf("value %d: %v = %v, want a name and a double", j, nv, vv)
		}
	}
	var r records.Reading
	if n > 0 {
		if cap(d.slab)-len(d.slab) < n {
			// The old slab stays alive as long as readings emitted from it do.
			d.slab = make([]records.Value, 0, max(slabValues, n))
		}
		start := len(d.slab)
		for j := range n {
			d.slab = append(d.slab, records.Value{Name: d.str(names[j].ByteArray()), Value: values[j].Double()})
		}
		r.Values = d.slab[start:len(d.slab):len(d.slab)]
	}
	r.Device = d.str(vals[rDevice].ByteArray())
	r.Time = joinTime(vals[rTime].Int64(), nanos)
	if !tail[0].IsNull() {
		r.Label = d.str(tail[0].ByteArray())
	}
	r.Source = records.Source{
		Topic:     d.str(tail[1].ByteArray()),
		Partition: int(tail[2].Int32()),
		Offset:    tail[3].Int64(),
	}
	return r, nil
}
