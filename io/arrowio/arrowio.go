package arrowio

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/muonml/muon/records"
)

func init() {
	t := reflect.TypeOf((*Batch)(nil)).Elem()
	beam.RegisterType(t)
	beam.RegisterCoder(t, EncodeBatch, DecodeBatch)
}

// Column names of RowSchema.
const (
	ColKey      = "key"
	ColTime     = "time"
	ColFeatures = "features"
	ColLabel    = "label"
	ColID       = "id"
	// The Kafka coordinates of the record a row was made from; null for a
	// row made of several records (a window).
	ColSourceTopic     = "source_topic"
	ColSourcePartition = "source_partition"
	ColSourceOffset    = "source_offset"
)

// Column indexes in RowSchema.
const (
	KeyIndex = iota
	TimeIndex
	FeaturesIndex
	LabelIndex
	IDIndex
	SourceTopicIndex
	SourcePartitionIndex
	SourceOffsetIndex
)

// RowSchema is the schema of feature rows with dim features each. It
// panics if dim < 1.
func RowSchema(dim int) *arrow.Schema {
	if dim <= 0 {
		panic(fmt.Sprintf("arrowio: feature dimension %d < 1", dim))
	}
	return arrow.NewSchema([]arrow.Field{
		{Name: ColKey, Type: arrow.BinaryTypes.String},
		{Name: ColTime, Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
		{Name: ColFeatures, Type: arrow.FixedSizeListOfNonNullable(int32(dim), arrow.PrimitiveTypes.Float64)},
		{Name: ColLabel, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ColID, Type: arrow.BinaryTypes.String},
		{Name: ColSourceTopic, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ColSourcePartition, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: ColSourceOffset, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
}

// Batch is one Arrow record batch as one pipeline element.
type Batch struct {
	Record arrow.Record
}

// Rows is the number of rows, 0 for an empty Batch.
func (b Batch) Rows() int {
	if b.Record == nil {
		return 0
	}
	return int(b.Record.NumRows())
}

// ErrCorrupt wraps every failure to decode a batch's bytes.
var ErrCorrupt = errors.New("arrowio: corrupt batch")

// EncodeBatch writes b as an Arrow IPC stream (schema, one record batch,
// end of stream). An empty Batch encodes as zero bytes.
func EncodeBatch(b Batch) ([]byte, error) {
	if b.Record == nil {
		return nil, nil
	}
	// Sized up front: growing the buffer while writing cost more than the
	// writing.
	buf := bytes.NewBuffer(make([]byte, 0, encodedSize(b.Record)))
	w := ipc.NewWriter(buf, ipc.WithSchema(b.Record.Schema()))
	if err := w.Write(b.Record); err != nil {
		return nil, fmt.Errorf("arrowio: encoding batch: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("arrowio: encoding batch: %w", err)
	}
	return buf.Bytes(), nil
}

// encodedSize bounds the IPC stream of rec from above: its buffers padded
// to 64 bytes, plus room for the metadata.
func encodedSize(rec arrow.Record) int {
	n := 4096
	var add func(d arrow.ArrayData)
	add = func(d arrow.ArrayData) {
		n += 512
		for _, b := range d.Buffers() {
			if b != nil {
				n += b.Len() + 64
			}
		}
		for _, c := range d.Children() {
			add(c)
		}
	}
	for _, c := range rec.Columns() {
		add(c.Data())
	}
	return n
}

// DecodeBatch reads a batch written by EncodeBatch, with Go's allocator.
func DecodeBatch(data []byte) (Batch, error) {
	return DecodeBatchWith(memory.DefaultAllocator, data)
}

// DecodeBatchWith reads a batch; the caller releases its Record. The
// record's buffers point into data, which must not change while the record
// is in use; mem allocates copies only when data's buffers are not 8-byte
// aligned. Bytes that are not exactly one schema and one record batch in
// the IPC stream format give an error wrapping ErrCorrupt.
func DecodeBatchWith(mem memory.Allocator, data []byte) (b Batch, err error) {
	if len(data) == 0 {
		return Batch{}, nil
	}
	have, err := checkStream(data)
	if err != nil {
		return Batch{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer func() {
		if p := recover(); p != nil {
			if b.Record != nil {
				b.Record.Release()
			}
			b, err = Batch{}, fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	if rec, ok, err := zeroCopy(have); ok {
		if err != nil {
			return Batch{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if err := validate(rec); err != nil {
			rec.Release()
			return Batch{}, err
		}
		return Batch{Record: rec}, nil
	}
	r, err := ipc.NewReader(bytes.NewReader(data), ipc.WithAllocator(mem))
	if err != nil {
		return Batch{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer r.Release()
	if err := have.fits(r.Schema()); err != nil {
		return Batch{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if !r.Next() {
		if err := r.Err(); err != nil {
			return Batch{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return Batch{}, fmt.Errorf("%w: no record batch in the stream", ErrCorrupt)
	}
	rec := r.Record()
	rec.Retain()
	if err := validate(rec); err != nil {
		rec.Release()
		return Batch{}, err
	}
	return Batch{Record: rec}, nil
}

// validate checks what the IPC reader leaves to its user: every column as
// long as the record, and each column's buffers large enough for its length.
func validate(rec arrow.Record) error {
	for i, col := range rec.Columns() {
		if int64(col.Len()) != rec.NumRows() {
			return fmt.Errorf("%w: column %q has %d rows, the batch %d", ErrCorrupt, rec.ColumnName(i), col.Len(), rec.NumRows())
		}
		if err := validateArray(col); err != nil {
			return fmt.Errorf("%w: column %q: %v", ErrCorrupt, rec.ColumnName(i), err)
		}
	}
	return nil
}

func validateArray(a arrow.Array) error {
	d := a.Data()
	end := d.Offset() + d.Len()
	bufs := d.Buffers()
	buf := func(i int) int {
		if i < len(bufs) && bufs[i] != nil {
			return bufs[i].Len()
		}
		return 0
	}
	if d.NullN() > 0 && buf(0)*8 < end {
		return fmt.Errorf("validity bitmap of %d bytes for %d values", buf(0), end)
	}
	switch t := a.DataType().(type) {
	case *arrow.BooleanType:
		if buf(1)*8 < end {
			return fmt.Errorf("%d bytes of booleans for %d values", buf(1), end)
		}
	case arrow.FixedWidthDataType:
		if w := t.BitWidth() / 8; buf(1) < end*w {
			return fmt.Errorf("%d bytes of %s for %d values", buf(1), t, end)
		}
	case *arrow.StringType, *arrow.BinaryType, *arrow.ListType:
		if d.Len() == 0 {
			break
		}
		if buf(1) < (end+1)*4 {
			return fmt.Errorf("%d bytes of offsets for %d values", buf(1), end)
		}
		offs := arrow.Int32Traits.CastFromBytes(bufs[1].Bytes())[d.Offset() : end+1]
		limit := buf(2)
		if l, ok := a.(*array.List); ok {
			limit = l.ListValues().Len()
		}
		for i := 1; i < len(offs); i++ {
			if offs[i-1] < 0 || offs[i-1] > offs[i] || int(offs[i]) > limit {
				return fmt.Errorf("offsets out of range at value %d", i-1)
			}
		}
		if l, ok := a.(*array.List); ok {
			return validateArray(l.ListValues())
		}
	case *arrow.FixedSizeListType:
		l := a.(*array.FixedSizeList)
		if int64(l.ListValues().Len()) < int64(end)*int64(t.Len()) {
			return fmt.Errorf("%d values for %d lists of %d", l.ListValues().Len(), end, t.Len())
		}
		return validateArray(l.ListValues())
	case *arrow.StructType:
		s := a.(*array.Struct)
		for i := 0; i < s.NumField(); i++ {
			if s.Field(i).Len() < d.Len() {
				return fmt.Errorf("struct field %d has %d values for %d", i, s.Field(i).Len(), d.Len())
			}
			if err := validateArray(s.Field(i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// RowBuilder appends feature rows and makes batches of them.
type RowBuilder struct {
	dim      int
	b        *array.RecordBuilder
	key      *array.StringBuilder
	ts       *array.TimestampBuilder
	features *array.FixedSizeListBuilder
	values   *array.Float64Builder
	label    *array.StringBuilder
	id       *array.StringBuilder
	topic    *array.StringBuilder
	part     *array.Int32Builder
	offset   *array.Int64Builder
}

// NewRowBuilder returns a builder of dim-feature rows allocating from mem.
// Release it when done.
func NewRowBuilder(mem memory.Allocator, dim int) *RowBuilder {
	b := array.NewRecordBuilder(mem, RowSchema(dim))
	fl := b.Field(FeaturesIndex).(*array.FixedSizeListBuilder)
	return &RowBuilder{
		dim:      dim,
		b:        b,
		key:      b.Field(KeyIndex).(*array.StringBuilder),
		ts:       b.Field(TimeIndex).(*array.TimestampBuilder),
		features: fl,
		values:   fl.ValueBuilder().(*array.Float64Builder),
		label:    b.Field(LabelIndex).(*array.StringBuilder),
		id:       b.Field(IDIndex).(*array.StringBuilder),
		topic:    b.Field(SourceTopicIndex).(*array.StringBuilder),
		part:     b.Field(SourcePartitionIndex).(*array.Int32Builder),
		offset:   b.Field(SourceOffsetIndex).(*array.Int64Builder),
	}
}

// Append adds one row made from the record at src (no record when
// src.Topic is empty: its source columns are null). It panics if
// len(features) is not the builder's dimension: that is a programming
// error. An empty label is null.
func (rb *RowBuilder) Append(key string, t time.Time, features []float64, label, id string, src records.Source) {
	if len(features) != rb.dim {
		panic(fmt.Sprintf("arrowio: %d features for a row of %d", len(features), rb.dim))
	}
	rb.key.Append(key)
	rb.ts.Append(arrow.Timestamp(t.UnixMilli()))
	rb.features.Append(true)
	rb.values.AppendValues(features, nil)
	if label == "" {
		rb.label.AppendNull()
	} else {
		rb.label.Append(label)
	}
	rb.id.Append(id)
	rb.appendSource(src)
}

func (rb *RowBuilder) appendSource(src records.Source) {
	if src.Topic == "" {
		rb.topic.AppendNull()
		rb.part.AppendNull()
		rb.offset.AppendNull()
		return
	}
	rb.topic.Append(src.Topic)
	rb.part.Append(int32(src.Partition))
	rb.offset.Append(src.Offset)
}

// AppendBytes adds one row from raw column values, as a reader of stored
// rows has them: the time in Unix milliseconds, and a label that is null
// unless labelValid (a valid empty label stays empty). It panics if
// len(features) is not the builder's dimension.
func (rb *RowBuilder) AppendBytes(key []byte, ms int64, features []float64, label []byte, labelValid bool, id []byte, src records.Source) {
	if len(features) != rb.dim {
		panic(fmt.Sprintf("arrowio: %d features for a row of %d", len(features), rb.dim))
	}
	rb.key.BinaryBuilder.Append(key)
	rb.ts.Append(arrow.Timestamp(ms))
	rb.features.Append(true)
	rb.values.AppendValues(features, nil)
	if labelValid {
		rb.label.BinaryBuilder.Append(label)
	} else {
		rb.label.AppendNull()
	}
	rb.id.BinaryBuilder.Append(id)
	rb.appendSource(src)
}

// Reserve makes room for n more rows, so that appending them does not grow
// the builder's buffers.
func (rb *RowBuilder) Reserve(n int) {
	rb.key.Reserve(n)
	rb.ts.Reserve(n)
	rb.features.Reserve(n)
	rb.values.Reserve(n * rb.dim)
	rb.label.Reserve(n)
	rb.id.Reserve(n)
	rb.topic.Reserve(n)
	rb.part.Reserve(n)
	rb.offset.Reserve(n)
}

// Len is the number of rows appended since the last NewBatch.
func (rb *RowBuilder) Len() int { return rb.key.Len() }

// NewBatch returns the rows appended so far as a batch and resets the
// builder. The caller owns the batch's Record.
func (rb *RowBuilder) NewBatch() Batch { return Batch{Record: rb.b.NewRecord()} }

// Release releases the builder.
func (rb *RowBuilder) Release() { rb.b.Release() }

// SourceAt returns the Kafka coordinates of row i of a RowSchema batch: the
// zero Source (empty topic) when the row was made of several records, or
// when rec lacks the source columns.
func SourceAt(rec arrow.Record, i int) records.Source {
	if int(rec.NumCols()) <= SourceOffsetIndex {
		return records.Source{}
	}
	topic, ok1 := rec.Column(SourceTopicIndex).(*array.String)
	part, ok2 := rec.Column(SourcePartitionIndex).(*array.Int32)
	offset, ok3 := rec.Column(SourceOffsetIndex).(*array.Int64)
	if !ok1 || !ok2 || !ok3 || !topic.IsValid(i) || !part.IsValid(i) || !offset.IsValid(i) {
		return records.Source{}
	}
	return records.Source{Topic: topic.Value(i), Partition: int(part.Value(i)), Offset: offset.Value(i)}
}

// Features returns the feature matrix of a RowSchema batch: its values
// buffer as a row-major rows×dim slice, without a copy. The slice is valid
// while the record is.
func Features(rec arrow.Record) (values []float64, rows, dim int, err error) {
	if int(rec.NumCols()) <= FeaturesIndex || rec.ColumnName(FeaturesIndex) != ColFeatures {
		return nil, 0, 0, fmt.Errorf("arrowio: batch has no %q column at %d: schema %s", ColFeatures, FeaturesIndex, rec.Schema())
	}
	fl, ok := rec.Column(FeaturesIndex).(*array.FixedSizeList)
	if !ok {
		return nil, 0, 0, fmt.Errorf("arrowio: column %q is %s, want a fixed-size list", ColFeatures, rec.Column(FeaturesIndex).DataType())
	}
	vals, ok := fl.ListValues().(*array.Float64)
	if !ok {
		return nil, 0, 0, fmt.Errorf("arrowio: features are %s, want float64", fl.ListValues().DataType())
	}
	dim = int(fl.DataType().(*arrow.FixedSizeListType).Len())
	rows = fl.Len()
	all := vals.Float64Values()
	start := fl.Data().Offset() * dim
	if start+rows*dim > len(all) {
		return nil, 0, 0, fmt.Errorf("%w: %d feature values for %d rows of %d", ErrCorrupt, len(all)-start, rows, dim)
	}
	return all[start : start+rows*dim : start+rows*dim], rows, dim, nil
}

// RowView reads the rows of a RowSchema batch to copy them into other
// batches (splitting a batch, or replacing its features).
type RowView struct {
	rec          arrow.Record
	keys, labels *array.String
	ids          *array.String
	times        *array.Timestamp
	vals         []float64
	rows, dim    int
}

// View returns a RowView of b, or an error if b is not of RowSchema.
func View(b Batch) (*RowView, error) {
	rec := b.Record
	vals, n, dim, err := Features(rec)
	if err != nil {
		return nil, err
	}
	v := &RowView{rec: rec, vals: vals, rows: n, dim: dim}
	var okK, okT, okL, okI bool
	v.keys, okK = rec.Column(KeyIndex).(*array.String)
	v.times, okT = rec.Column(TimeIndex).(*array.Timestamp)
	v.labels, okL = rec.Column(LabelIndex).(*array.String)
	v.ids, okI = rec.Column(IDIndex).(*array.String)
	if !okK || !okT || !okL || !okI {
		return nil, fmt.Errorf("arrowio: batch schema %s is not RowSchema", rec.Schema())
	}
	return v, nil
}

// Rows is the number of rows; Dim the features of a row.
func (v *RowView) Rows() int { return v.rows }

// Dim is the number of features of a row.
func (v *RowView) Dim() int { return v.dim }

// ID is row i's id.
func (v *RowView) ID(i int) string { return v.ids.Value(i) }

// Key is row i's key.
func (v *RowView) Key(i int) string { return v.keys.Value(i) }

// Features are row i's features; they alias the batch.
func (v *RowView) Features(i int) []float64 { return v.vals[i*v.dim : (i+1)*v.dim] }

// AppendTo copies row i into rb with its key, time, label, id and source,
// and features (nil: the row's own).
func (v *RowView) AppendTo(rb *RowBuilder, i int, features []float64) {
	if features == nil {
		features = v.Features(i)
	}
	rb.AppendBytes([]byte(v.keys.Value(i)), int64(v.times.Value(i)), features,
		[]byte(v.labels.Value(i)), v.labels.IsValid(i), []byte(v.ids.Value(i)), SourceAt(v.rec, i))
}
