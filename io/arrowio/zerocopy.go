package arrowio

import (
	"bytes"
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// zeroCopy makes the record of a checked stream whose arrays point into
// the stream's body instead of copies of it: arrow-go's reader copies every
// buffer, twice, which cost more than the rest of a Reshuffle. It returns
// false when the body is not 8-byte aligned, where the caller copies.
func zeroCopy(l layout) (arrow.Record, bool, error) {
	if len(l.body) > 0 && uintptr(unsafe.Pointer(&l.body[0]))%8 != 0 {
		return nil, false, nil
	}
	for _, s := range l.spans {
		if s.offset%8 != 0 {
			return nil, false, nil
		}
	}
	r, err := ipc.NewReader(bytes.NewReader(l.schema))
	if err != nil {
		return nil, true, err
	}
	schema := r.Schema()
	r.Release()
	if err := l.fits(schema); err != nil {
		return nil, true, err
	}
	b := arrays{l: &l}
	cols := make([]arrow.Array, 0, schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, f := range schema.Fields() {
		d, err := b.data(f.Type)
		if err != nil {
			return nil, true, err
		}
		cols = append(cols, array.MakeFromData(d))
		d.Release()
	}
	return array.NewRecord(schema, cols, l.rows), true, nil
}

// arrays builds array data from a layout's nodes and buffers, in the order
// the IPC format lists them (depth first).
type arrays struct {
	l         *layout
	node, buf int
}

func (b *arrays) nextNode() (fieldNode, error) {
	if b.node >= len(b.l.fieldNodes) {
		return fieldNode{}, fmt.Errorf("more arrays than the %d field nodes", len(b.l.fieldNodes))
	}
	b.node++
	return b.l.fieldNodes[b.node-1], nil
}

func (b *arrays) nextBuffer() (*memory.Buffer, error) {
	if b.buf >= len(b.l.spans) {
		return nil, fmt.Errorf("more buffers than the %d listed", len(b.l.spans))
	}
	s := b.l.spans[b.buf]
	b.buf++
	if s.length == 0 {
		return nil, nil
	}
	return memory.NewBufferBytes(b.l.body[s.offset : s.offset+s.length]), nil
}

// buffers takes n buffers.
func (b *arrays) buffers(n int) ([]*memory.Buffer, error) {
	out := make([]*memory.Buffer, n)
	for i := range out {
		var err error
		if out[i], err = b.nextBuffer(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// data makes the array data of one column of type t; need has already
// refused the types not listed here.
func (b *arrays) data(t arrow.DataType) (arrow.ArrayData, error) {
	n, err := b.nextNode()
	if err != nil {
		return nil, err
	}
	var bufs []*memory.Buffer
	var children []arrow.ArrayData
	defer func() {
		for _, c := range children {
			c.Release()
		}
	}()
	switch t := t.(type) {
	case *arrow.StringType, *arrow.BinaryType:
		bufs, err = b.buffers(3)
	case *arrow.FixedSizeListType:
		if bufs, err = b.buffers(1); err == nil {
			var c arrow.ArrayData
			c, err = b.data(t.Elem())
			children = append(children, c)
		}
	case *arrow.ListType:
		if bufs, err = b.buffers(2); err == nil {
			var c arrow.ArrayData
			c, err = b.data(t.Elem())
			children = append(children, c)
		}
	case *arrow.StructType:
		if bufs, err = b.buffers(1); err == nil {
			for _, f := range t.Fields() {
				var c arrow.ArrayData
				if c, err = b.data(f.Type); err != nil {
					break
				}
				children = append(children, c)
			}
		}
	default: // fixed width
		bufs, err = b.buffers(2)
	}
	if err != nil {
		return nil, err
	}
	if n.nulls > 0 && bufs[0] == nil {
		return nil, fmt.Errorf("%d nulls and no validity bitmap", n.nulls)
	}
	return array.NewData(t, int(n.length), bufs, children, int(n.nulls), 0), nil
}

// fits checks that l holds the field nodes and buffers schema needs.
func (l *layout) fits(schema *arrow.Schema) error {
	var need layout
	for _, f := range schema.Fields() {
		if err := need.need(f.Type, 0); err != nil {
			return err
		}
	}
	if l.nodes < need.nodes || l.buffers < need.buffers {
		return fmt.Errorf("%d field nodes and %d buffers where the schema needs %d and %d", l.nodes, l.buffers, need.nodes, need.buffers)
	}
	return nil
}
