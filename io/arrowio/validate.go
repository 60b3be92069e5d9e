package arrowio

import (
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
)

// Flatbuffer message header types of the Arrow IPC format (Schema.fbs,
// Message.fbs).
const (
	headerSchema      = 1
	headerRecordBatch = 3
)

// maxDepth bounds nested field children.
const maxDepth = 64

// checkStream validates an IPC stream that must hold exactly one schema
// message and one record batch message, before arrow-go's reader sees it:
// arrow-go sizes allocations from lengths and counts in these bytes.
func checkStream(data []byte) (layout, error) {
	rest := data
	var got layout
	for i, want := range []byte{headerSchema, headerRecordBatch} {
		meta, bodyLen, after, err := nextMessage(rest)
		if err != nil {
			return layout{}, fmt.Errorf("message %d: %w", i, err)
		}
		if meta == nil {
			return layout{}, fmt.Errorf("message %d: stream ends early", i)
		}
		m := fb{b: meta}
		root := m.root()
		if got := m.u8(root, 1); got != want {
			return layout{}, fmt.Errorf("message %d: header type %d, want %d", i, got, want)
		}
		hdr := m.table(root, 2)
		if hdr < 0 {
			return layout{}, fmt.Errorf("message %d: no header", i)
		}
		if bodyLen < 0 || bodyLen > int64(len(after)) {
			return layout{}, fmt.Errorf("message %d: body of %d bytes, %d left", i, bodyLen, len(after))
		}
		m.checkKeyValues(root, 4)
		switch want {
		case headerSchema:
			m.checkFields(hdr, 1, 0)
			m.checkKeyValues(hdr, 2)
			m.vector(hdr, 3, 8)
			got.schema = data[:len(data)-len(after)+int(bodyLen)]
		case headerRecordBatch:
			schema := got.schema
			got = m.checkRecordBatch(hdr, bodyLen)
			got.schema = schema
			got.body = after[:bodyLen]
		}
		if m.err != nil {
			return layout{}, fmt.Errorf("message %d: %w", i, m.err)
		}
		rest = after[bodyLen:]
	}
	meta, _, after, err := nextMessage(rest)
	if err != nil || meta != nil || len(after) != 0 {
		return layout{}, fmt.Errorf("more than a schema and one record batch in the stream")
	}
	return got, nil
}

// layout is what a record batch message holds: its rows, field nodes and
// buffers (arrow-go reads them by index without checking the vectors'
// lengths, so a batch must hold at least what its schema needs), and where
// the schema message and the batch's body are in the stream.
type layout struct {
	nodes, buffers int
	rows           int64
	fieldNodes     []fieldNode
	spans          []span
	schema         []byte // the stream up to the end of the schema message
	body           []byte
}

// fieldNode is a FieldNode of the IPC format.
type fieldNode struct{ length, nulls int64 }

// span is a Buffer of the IPC format: a range of the body.
type span struct{ offset, length int64 }

// need adds what one array of type t takes: a node, its buffers, and its
// children's. Types outside this list are refused.
func (l *layout) need(t arrow.DataType, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("types nested deeper than %d", maxDepth)
	}
	l.nodes++
	switch t := t.(type) {
	case *arrow.BooleanType, *arrow.Int8Type, *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type,
		*arrow.Uint8Type, *arrow.Uint16Type, *arrow.Uint32Type, *arrow.Uint64Type,
		*arrow.Float16Type, *arrow.Float32Type, *arrow.Float64Type, *arrow.TimestampType,
		*arrow.Date32Type, *arrow.Date64Type, *arrow.DurationType, *arrow.FixedSizeBinaryType:
		l.buffers += 2
	case *arrow.StringType, *arrow.BinaryType:
		l.buffers += 3
	case *arrow.FixedSizeListType:
		l.buffers++
		return l.need(t.Elem(), depth+1)
	case *arrow.ListType:
		l.buffers += 2
		return l.need(t.Elem(), depth+1)
	case *arrow.StructType:
		l.buffers++
		for _, f := range t.Fields() {
			if err := l.need(f.Type, depth+1); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("column type %s is not carried by arrowio", t)
	}
	return nil
}

// nextMessage splits one encapsulated message off data: its flatbuffer
// metadata, the body length it declares, and what follows the metadata.
// A nil meta means the end of the stream.
func nextMessage(data []byte) (meta []byte, bodyLen int64, after []byte, err error) {
	if len(data) == 0 {
		return nil, 0, nil, nil
	}
	if len(data) < 4 {
		return nil, 0, nil, fmt.Errorf("%d stray bytes", len(data))
	}
	n := binary.LittleEndian.Uint32(data)
	data = data[4:]
	if n == 0xFFFFFFFF { // continuation marker
		if len(data) < 4 {
			return nil, 0, nil, fmt.Errorf("truncated after the continuation marker")
		}
		n = binary.LittleEndian.Uint32(data)
		data = data[4:]
	}
	if n == 0 {
		return nil, 0, data, nil
	}
	if uint64(n) > uint64(len(data)) || n < 8 {
		return nil, 0, nil, fmt.Errorf("metadata of %d bytes, %d left", n, len(data))
	}
	meta, data = data[:n], data[n:]
	m := fb{b: meta}
	root := m.root()
	bodyLen = m.i64(root, 3)
	if m.err != nil {
		return nil, 0, nil, m.err
	}
	return meta, bodyLen, data, nil
}

// fb reads a flatbuffer with every offset checked; the first problem is
// kept in err and later reads return zero values.
type fb struct {
	b   []byte
	err error
}

func (f *fb) fail(format string, args ...any) {
	if f.err == nil {
		f.err = fmt.Errorf("metadata: "+format, args...)
	}
}

func (f *fb) u32(at int) uint32 {
	if f.err != nil || at < 0 || at+4 > len(f.b) {
		f.fail("offset %d out of %d bytes", at, len(f.b))
		return 0
	}
	return binary.LittleEndian.Uint32(f.b[at:])
}

func (f *fb) u16(at int) uint16 {
	if f.err != nil || at < 0 || at+2 > len(f.b) {
		f.fail("offset %d out of %d bytes", at, len(f.b))
		return 0
	}
	return binary.LittleEndian.Uint16(f.b[at:])
}

func (f *fb) root() int { return int(f.u32(0)) }

// field returns the position of a table's field slot, or -1 when absent.
func (f *fb) field(table, slot int) int {
	vt := table - int(int32(f.u32(table)))
	vtLen := int(f.u16(vt))
	if f.err != nil {
		return -1
	}
	// As the flatbuffers runtime decides, so that both read the same
	// fields even from a corrupt vtable.
	if 4+2*slot >= vtLen {
		return -1
	}
	off := int(f.u16(vt + 4 + 2*slot))
	if off == 0 || f.err != nil {
		return -1
	}
	return table + off
}

func (f *fb) u8(table, slot int) byte {
	p := f.field(table, slot)
	if p < 0 {
		return 0
	}
	if p >= len(f.b) {
		f.fail("offset %d out of %d bytes", p, len(f.b))
		return 0
	}
	return f.b[p]
}

func (f *fb) i64(table, slot int) int64 {
	p := f.field(table, slot)
	if p < 0 {
		return 0
	}
	lo, hi := f.u32(p), f.u32(p+4)
	return int64(uint64(hi)<<32 | uint64(lo))
}

// table returns the position of the table a field refers to, -1 if absent.
func (f *fb) table(table, slot int) int {
	p := f.field(table, slot)
	if p < 0 {
		return -1
	}
	t := p + int(f.u32(p))
	f.u32(t) // its vtable offset must be readable
	if f.err != nil {
		return -1
	}
	return t
}

// vector checks a vector field whose elements take elem bytes and returns
// the position of its first element and its length (0, 0 when absent).
func (f *fb) vector(table, slot, elem int) (start, n int) {
	p := f.field(table, slot)
	if p < 0 {
		return 0, 0
	}
	v := p + int(f.u32(p))
	n = int(f.u32(v))
	if f.err != nil {
		return 0, 0
	}
	if n > (len(f.b)-v-4)/elem {
		f.fail("vector of %d elements of %d bytes in %d bytes", n, elem, len(f.b)-v-4)
		return 0, 0
	}
	return v + 4, n
}

// tables checks a vector of tables and returns their positions.
func (f *fb) tables(table, slot int) []int {
	start, n := f.vector(table, slot, 4)
	out := make([]int, 0, n)
	for i := 0; i < n && f.err == nil; i++ {
		p := start + 4*i
		t := p + int(f.u32(p))
		f.u32(t)
		out = append(out, t)
	}
	return out
}

func (f *fb) checkString(table, slot int) {
	f.vector(table, slot, 1)
}

func (f *fb) checkKeyValues(table, slot int) {
	for _, kv := range f.tables(table, slot) {
		f.checkString(kv, 0)
		f.checkString(kv, 1)
	}
}

// checkFields checks a vector of Field tables, recursively.
func (f *fb) checkFields(table, slot, depth int) {
	if depth > maxDepth {
		f.fail("fields nested deeper than %d", maxDepth)
		return
	}
	for _, field := range f.tables(table, slot) {
		f.checkString(field, 0)
		if f.field(field, 4) >= 0 {
			f.fail("dictionary-encoded fields are not used here")
			return
		}
		f.checkFields(field, 5, depth+1)
		f.checkKeyValues(field, 6)
	}
}

// checkRecordBatch checks the counts and buffer ranges of a RecordBatch
// and returns how many nodes and buffers it holds.
func (f *fb) checkRecordBatch(rb int, bodyLen int64) layout {
	var l layout
	if l.rows = f.i64(rb, 0); l.rows < 0 || l.rows > 1<<40 {
		f.fail("%d rows", l.rows)
	}
	start, n := f.vector(rb, 1, 16) // FieldNode structs: length, null count
	l.nodes = n
	l.fieldNodes = make([]fieldNode, 0, n)
	for i := 0; i < n && f.err == nil; i++ {
		ln := int64(uint64(f.u32(start+16*i)) | uint64(f.u32(start+16*i+4))<<32)
		nulls := int64(uint64(f.u32(start+16*i+8)) | uint64(f.u32(start+16*i+12))<<32)
		if ln < 0 || ln > 1<<40 || nulls < 0 || nulls > ln {
			f.fail("field node %d: %d values, %d nulls in a body of %d bytes", i, ln, nulls, bodyLen)
		}
		l.fieldNodes = append(l.fieldNodes, fieldNode{ln, nulls})
	}
	start, n = f.vector(rb, 2, 16)
	l.buffers = n
	l.spans = make([]span, 0, n)
	for i := 0; i < n && f.err == nil; i++ {
		off := int64(uint64(f.u32(start+16*i)) | uint64(f.u32(start+16*i+4))<<32)
		ln := int64(uint64(f.u32(start+16*i+8)) | uint64(f.u32(start+16*i+12))<<32)
		if off < 0 || ln < 0 || off > bodyLen || ln > bodyLen-off {
			f.fail("buffer %d at %d+%d outside a body of %d bytes", i, off, ln, bodyLen)
		}
		l.spans = append(l.spans, span{off, ln})
	}
	if f.field(rb, 3) >= 0 {
		f.fail("compressed bodies are not used here")
	}
	f.vector(rb, 4, 8)
	return l
}
