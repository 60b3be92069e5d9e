package parquetio

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/records"
	"github.com/parquet-go/parquet-go"
)

// FeatureOptions configures a feature file writer.
type FeatureOptions struct {
	// Dim is the number of features per row. Required.
	Dim int
	// Names names the features in the file's metadata (MetaNames). Default
	// nil: no names; otherwise exactly Dim of them.
	Names []string
	// RowGroupRows is the most rows in one row group. Default
	// DefaultRowGroupRows.
	RowGroupRows int
}

func (o *FeatureOptions) check() error {
	if o.Dim < 1 || o.Dim > maxDim {
		return fmt.Errorf("parquetio: feature dimension %d, want 1 to %d", o.Dim, maxDim)
	}
	if o.Names != nil && len(o.Names) != o.Dim {
		return fmt.Errorf("parquetio: %d feature names for %d features", len(o.Names), o.Dim)
	}
	if o.RowGroupRows < 0 {
		return fmt.Errorf("parquetio: RowGroupRows %d < 0", o.RowGroupRows)
	}
	if o.RowGroupRows == 0 {
		o.RowGroupRows = DefaultRowGroupRows
	}
	return nil
}

// FeatureWriter writes feature batches (arrowio.RowSchema) as one Parquet
// file: key, time (timestamp ms, UTC), features (a list of doubles, Dim of
// them in every row), label (nullable) and id.
type FeatureWriter struct {
	dim  int
	w    *parquet.GenericWriter[featureRow]
	rows []featureRow
	// labels backs the rows' label pointers.
	labels []string
	n      int64
}

// NewFeatureWriter returns a writer of a feature file to w. Close it to
// write the file's footer.
func NewFeatureWriter(w io.Writer, o FeatureOptions) (*FeatureWriter, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	opts := writerOptions(featureSchema, o.RowGroupRows)
	opts = append(opts,
		parquet.KeyValueMetadata(MetaFormat, FormatFeatures),
		parquet.KeyValueMetadata(MetaDim, strconv.Itoa(o.Dim)))
	if o.Names != nil {
		names, err := json.Marshal(o.Names)
		if err != nil {
			return nil, fmt.Errorf("parquetio: feature names: %w", err)
		}
		opts = append(opts, parquet.KeyValueMetadata(MetaNames, string(names)))
	}
	return &FeatureWriter{dim: o.Dim, w: parquet.NewGenericWriter[featureRow](w, opts...)}, nil
}

// Write appends the rows of b, a batch of arrowio.RowSchema with the
// writer's dimension (it may be a slice of a larger record).
func (fw *FeatureWriter) Write(b arrowio.Batch) error {
	if b.Record == nil || b.Record.NumRows() == 0 {
		return nil
	}
	rec := b.Record
	if err := checkRowSchema(rec.Schema(), fw.dim); err != nil {
		return err
	}
	vals, n, _, err := arrowio.Features(rec)
	if err != nil {
		return fmt.Errorf("parquetio: %w", err)
	}
	key := rec.Column(arrowio.KeyIndex).(*array.String)
	ts := rec.Column(arrowio.TimeIndex).(*array.Timestamp)
	label := rec.Column(arrowio.LabelIndex).(*array.String)
	id := rec.Column(arrowio.IDIndex).(*array.String)
	fl := rec.Column(arrowio.FeaturesIndex).(*array.FixedSizeList)
	if key.NullN() > 0 || ts.NullN() > 0 || id.NullN() > 0 || fl.NullN() > 0 || fl.ListValues().NullN() > 0 {
		return fmt.Errorf("parquetio: null key, time, features or id in a batch: only labels may be null")
	}
	fw.rows = fw.rows[:0]
	fw.labels = fw.labels[:0]
	for i := 0; i < n; i++ {
		fw.labels = append(fw.labels, label.Value(i))
	}
	for i := 0; i < n; i++ {
		r := featureRow{
			Key:      key.Value(i),
			Time:     int64(ts.Value(i)),
			Features: vals[i*fw.dim : (i+1)*fw.dim : (i+1)*fw.dim],
			ID:       id.Value(i),
		}
		if label.IsValid(i) {
			r.Label = &fw.labels[i]
		}
		fw.rows = append(fw.rows, r)
	}
	// The rows alias the record's buffers; parquet-go copies what it keeps.
	_, err = fw.w.Write(fw.rows)
	clear(fw.rows)
	clear(fw.labels)
	if err != nil {
		return fmt.Errorf("parquetio: writing features: %w", err)
	}
	fw.n += int64(n)
	return nil
}

// Rows is the number of rows written so far.
func (fw *FeatureWriter) Rows() int64 { return fw.n }

// SetMetadata adds a key-value pair to the file's metadata.
func (fw *FeatureWriter) SetMetadata(key, value string) { fw.w.SetKeyValueMetadata(key, value) }

// Close flushes the last row group and writes the footer. It does not
// close the io.Writer.
func (fw *FeatureWriter) Close() error {
	if err := fw.w.Close(); err != nil {
		return fmt.Errorf("parquetio: closing feature file: %w", err)
	}
	return nil
}

// checkRowSchema reports whether s is arrowio.RowSchema(dim).
func checkRowSchema(s *arrow.Schema, dim int) error {
	if !s.Equal(arrowio.RowSchema(dim)) {
		return fmt.Errorf("%w: batch schema %s, want %s", ErrDim, s, arrowio.RowSchema(dim))
	}
	return nil
}

// ReadOptions configures a feature file reader.
type ReadOptions struct {
	// Dim is the number of features per row the file must have. Default 0:
	// any; FeatureReader.Dim tells.
	Dim int
	// BatchRows is the most rows in one batch. Default DefaultBatchRows.
	BatchRows int
	// Mem allocates the batches. Default memory.DefaultAllocator.
	Mem memory.Allocator
}

// FeatureReader reads a feature file into arrowio batches.
type FeatureReader struct {
	name  string
	f     *parquet.File
	dim   int
	names []string
	batch int
	mem   memory.Allocator
	// closer is the file OpenFeatures opened, nil otherwise.
	closer io.Closer
}

// OpenFeatures opens the feature file at path. Close the reader when done.
func OpenFeatures(path string, o ReadOptions) (*FeatureReader, error) {
	file, size, err := openPath(path)
	if err != nil {
		return nil, err
	}
	r, err := NewFeatureReader(file, size, path, o)
	if err != nil {
		file.Close()
		return nil, err
	}
	r.closer = file
	return r, nil
}

// NewFeatureReader reads a feature file of size bytes from r; name is the
// file's name in errors. It checks the file's format, schema and dimension.
func NewFeatureReader(r io.ReaderAt, size int64, name string, o ReadOptions) (*FeatureReader, error) {
	if o.Dim < 0 || o.BatchRows < 0 {
		return nil, fmt.Errorf("parquetio: bad read options %+v: Dim and BatchRows must be ≥ 0", o)
	}
	if o.BatchRows == 0 {
		o.BatchRows = DefaultBatchRows
	}
	if o.Mem == nil {
		o.Mem = memory.DefaultAllocator
	}
	f, err := openFile(r, size, name, FormatFeatures)
	if err != nil {
		return nil, err
	}
	dim, names, err := featureMeta(f, name)
	if err != nil {
		return nil, err
	}
	if o.Dim != 0 && dim != o.Dim {
		return nil, fmt.Errorf("%w: %s has %d features per row, want %d", ErrDim, name, dim, o.Dim)
	}
	return &FeatureReader{name: name, f: f, dim: dim, names: names, batch: o.BatchRows, mem: o.Mem}, nil
}

// Dim is the number of features per row.
func (fr *FeatureReader) Dim() int { return fr.dim }

// Names are the feature names the writer stored, nil if none.
func (fr *FeatureReader) Names() []string { return fr.names }

// Metadata returns the value of a key of the file's key-value metadata.
func (fr *FeatureReader) Metadata(key string) (string, bool) { return fr.f.Lookup(key) }

// Rows is the number of rows the file's metadata declares.
func (fr *FeatureReader) Rows() int64 { return fr.f.NumRows() }

// RowGroups is the number of row groups, the unit of parallel reading.
func (fr *FeatureReader) RowGroups() int { return len(fr.f.RowGroups()) }

// Read reads every row group in order; see ReadRowGroup.
func (fr *FeatureReader) Read(emit func(arrowio.Batch) error) error {
	for i := range fr.f.RowGroups() {
		if err := fr.ReadRowGroup(i, emit); err != nil {
			return err
		}
	}
	return nil
}

// ReadRowGroup reads row group i as batches of at most BatchRows rows of
// arrowio.RowSchema(Dim), passing each to emit, which owns it (and must
// release it) whether or not it returns an error. An error from emit stops
// the reading and is returned as is.
func (fr *FeatureReader) ReadRowGroup(i int, emit func(arrowio.Batch) error) error {
	it, err := newRowIter(fr.f, fr.name, i)
	if err != nil {
		return err
	}
	defer it.close()
	b := newFeatureBuilder(fr.mem, fr.dim)
	defer b.release()
	for {
		if b.len() == 0 {
			b.reserve(min(int64(fr.batch), it.want-it.row))
		}
		vals, err := it.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := b.append(vals); err != nil {
			return fmt.Errorf("%w: %s: row group %d, row %d: %v", ErrCorrupt, fr.name, i, it.row-1, err)
		}
		if b.len() >= fr.batch {
			if err := emit(b.batch()); err != nil {
				return err
			}
		}
	}
	if b.len() > 0 {
		return emit(b.batch())
	}
	return nil
}

// Close closes the file if OpenFeatures opened it.
func (fr *FeatureReader) Close() error {
	if fr.closer == nil {
		return nil
	}
	err := fr.closer.Close()
	fr.closer = nil
	return err
}

// featureBuilder appends rows of parquet values to Arrow batches.
type featureBuilder struct {
	rb  *arrowio.RowBuilder
	dim int
	// row holds one row's features until they are all checked.
	row []float64
}

func newFeatureBuilder(mem memory.Allocator, dim int) *featureBuilder {
	return &featureBuilder{rb: arrowio.NewRowBuilder(mem, dim), dim: dim, row: make([]float64, 0, dim)}
}

// maxReserve bounds the values reserved ahead of rows a file only claims
// to have; beyond it the builders grow with the rows actually read.
const maxReserve = 1 << 20

// reserve makes room for n more rows.
func (fb *featureBuilder) reserve(n int64) {
	n = min(n, maxReserve/int64(fb.dim))
	if n <= 0 {
		return
	}
	fb.rb.Reserve(int(n))
}

func (fb *featureBuilder) len() int { return fb.rb.Len() }

// batch returns the rows so far and resets the builder.
func (fb *featureBuilder) batch() arrowio.Batch { return fb.rb.NewBatch() }

func (fb *featureBuilder) release() { fb.rb.Release() }

// append checks one row's values — key, time, Dim features, label, id, in
// column order — and appends it.
func (fb *featureBuilder) append(vals []parquet.Value) error {
	if len(vals) != fColumns-1+fb.dim {
		return fmt.Errorf("%d values, want %d for %d features", len(vals), fColumns-1+fb.dim, fb.dim)
	}
	key, ts, label, id := vals[0], vals[1], vals[2+fb.dim], vals[3+fb.dim]
	if err := checkValue(key, fKey, parquet.ByteArray, false); err != nil {
		return err
	}
	if err := checkValue(ts, fTime, parquet.Int64, false); err != nil {
		return err
	}
	if err := checkValue(label, fLabel, parquet.ByteArray, true); err != nil {
		return err
	}
	if err := checkValue(id, fID, parquet.ByteArray, false); err != nil {
		return err
	}
	fb.row = fb.row[:0]
	for j, v := range vals[2 : 2+fb.dim] {
		if v.Column() != fFeatures || v.IsNull() || v.Kind() != parquet.Double || v.DefinitionLevel() != 1 || v.RepetitionLevel() != min(j, 1) {
			return fmt.Errorf("feature %d is %v (column %d, levels %d/%d), want a double", j, v, v.Column(), v.RepetitionLevel(), v.DefinitionLevel())
		}
		fb.row = append(fb.row, v.Double())
	}
	fb.rb.AppendBytes(key.ByteArray(), ts.Int64(), fb.row, label.ByteArray(), !label.IsNull(), id.ByteArray(), records.Source{})
	return nil
}

// checkValue checks a value of a top-level column: its column, its kind,
// and that it is null only if it may be.
func checkValue(v parquet.Value, col int, kind parquet.Kind, optional bool) error {
	if v.Column() != col {
		return fmt.Errorf("value of column %d where column %d was expected", v.Column(), col)
	}
	if v.RepetitionLevel() != 0 {
		return fmt.Errorf("column %d: repetition level %d", col, v.RepetitionLevel())
	}
	if v.IsNull() {
		if !optional {
			return fmt.Errorf("column %d: null in a required column", col)
		}
		return nil
	}
	if v.Kind() != kind {
		return fmt.Errorf("column %d: %s value, want %s", col, v.Kind(), kind)
	}
	return nil
}

// rowIter reads the rows of a row group. It checks that the row group
// holds as many rows as its metadata says, and turns a panic in the
// decoder into an error wrapping ErrCorrupt.
type rowIter struct {
	name      string
	group     int
	rows      parquet.Rows
	buf       []parquet.Row
	n, i      int
	row, want int64
}

func newRowIter(f *parquet.File, name string, group int) (it *rowIter, err error) {
	if group < 0 || group >= len(f.RowGroups()) {
		return nil, fmt.Errorf("parquetio: %s has %d row groups, no %d", name, len(f.RowGroups()), group)
	}
	defer func() {
		if p := recover(); p != nil {
			it, err = nil, fmt.Errorf("%w: %s: row group %d: %v", ErrCorrupt, name, group, p)
		}
	}()
	rg := f.RowGroups()[group]
	want := rg.NumRows()
	return &rowIter{name: name, group: group, rows: rg.Rows(), buf: make([]parquet.Row, min(want, 128)), want: want}, nil
}

// next returns the next row's values, valid until the following call, and
// io.EOF after the last row.
func (it *rowIter) next() ([]parquet.Value, error) {
	if it.i == it.n {
		if it.row == it.want {
			return nil, io.EOF
		}
		if err := it.fill(); err != nil {
			return nil, err
		}
	}
	r := it.buf[it.i]
	it.i++
	it.row++
	return r, nil
}

func (it *rowIter) fill() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %s: row group %d, after row %d: %v", ErrCorrupt, it.name, it.group, it.row, p)
		}
	}()
	n, err := it.rows.ReadRows(it.buf[:min(int64(len(it.buf)), it.want-it.row)])
	it.n, it.i = n, 0
	switch {
	case n > 0:
		return nil
	case err == io.EOF || err == nil:
		return fmt.Errorf("%w: %s: row group %d ends after %d rows, its metadata says %d", ErrCorrupt, it.name, it.group, it.row, it.want)
	default:
		return fmt.Errorf("%w: %s: row group %d, after row %d: %v", ErrCorrupt, it.name, it.group, it.row, err)
	}
}

func (it *rowIter) close() { it.rows.Close() }

// openPath opens a file and returns its size.
func openPath(path string) (*os.File, int64, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("parquetio: %w", err)
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, 0, fmt.Errorf("parquetio: %w", err)
	}
	return file, st.Size(), nil
}
