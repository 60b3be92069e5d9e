package snapshot

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The coded layout (format version 2) stores a tensor's positions —
// pruned or not, and each kept value — as one range-coded stream: a
// pruned position is a decision of the mask model, a kept one that
// decision and then its value (a code through a tree model, an int8 by
// magnitude class, sign and bits, a float byte by byte). An int8
// tensor's scales and a shared one's codebook come first in the stream. Codes and int8 values of trained
// weights are far from uniform, and a pruned tensor's rows differ in how
// much they keep, which the packed codes and the bitmap of version 1
// could not use.

// Mask contexts: which positions share a mask model. Write codes a tensor
// under each and keeps the shortest, so a model whose inputs differ in
// importance (rows) or whose units do (channels) gets that structure for
// the cost of a byte, and one without it pays nothing.
const (
	maskGlobal  = 0 // one model for every position
	maskRow     = 1 // one per row: position / channels
	maskChannel = 2 // one per output channel: position mod channels
	maskModes   = 3
)

// maskContext is the mask model of position at.
func maskContext(mode uint8, at, channels int) int {
	switch mode {
	case maskRow:
		return at / channels
	case maskChannel:
		return at % channels
	}
	return 0
}

func maskContexts(mode uint8, n, channels int) int {
	switch mode {
	case maskRow:
		return (n + channels - 1) / channels
	case maskChannel:
		return channels
	}
	return 1
}

// encodeValues range-codes t's side values (an int8 tensor's scales, a
// shared one's codebook), then its positions (its mask, if sparse, under
// mask mode) and values. t is checked.
func encodeValues(t *Tensor, mode uint8) []byte {
	n, ch := t.Len(), t.Channels()
	e := newRangeEncoder(nil)
	le := binary.LittleEndian
	var buf [4]byte
	side := newBytesModel(4)
	for _, v := range t.Scales {
		side.encode(e, le.AppendUint32(buf[:0], math.Float32bits(v)))
	}
	for _, v := range t.Codebook {
		side.encode(e, le.AppendUint32(buf[:0], math.Float32bits(v)))
	}
	var masks []bitModel
	if t.Sparse() {
		masks = make([]bitModel, maskContexts(mode, n, ch))
	}
	codes := newTreeModel(t.Bits)
	i8 := newInt8Model()
	floats := newBytesModel(max(t.DType.size(), 1))
	value := func(k int) {
		switch t.DType {
		case Shared:
			codes.encode(e, uint32(t.Codes[k]))
		case Int8:
			i8.encode(e, t.I8[k])
		case Float32:
			floats.encode(e, le.AppendUint32(buf[:0], math.Float32bits(t.F32[k])))
		case Float16:
			floats.encode(e, le.AppendUint16(buf[:0], t.F16[k]))
		}
	}
	if !t.Sparse() {
		for k := range n {
			value(k)
		}
		return e.finish()
	}
	k := 0
	for at := range n {
		m := &masks[maskContext(mode, at, ch)]
		if k < len(t.Index) && int(t.Index[k]) == at {
			e.encode(m, 1)
			value(k)
			k++
		} else {
			e.encode(m, 0)
		}
	}
	return e.finish()
}

// decodeValues reads back what encodeValues wrote into t, whose shape and
// type are set, and for a shared tensor its bits and a codebook of the
// length written; sparse says whether the stream has a mask.
func decodeValues(t *Tensor, coded []byte, sparse bool, mode uint8) error {
	n, ch := t.Len(), t.Channels()
	// A side value takes 32 decisions (4 bytes of 8) and a position at
	// least one: refuse a shape the bytes cannot hold before allocating
	// for it or decoding. (The caller bounds n itself: a skewed stream
	// packs thousands of positions in a byte.)
	side := len(t.Codebook)
	if t.DType == Int8 {
		side += ch
	}
	if !canHold(coded, 32*int64(side)+int64(n)) {
		return fmt.Errorf("%d side values and %d positions in %d coded bytes: %w", side, n, len(coded), errCoded)
	}
	d := newRangeDecoder(coded)
	le := binary.LittleEndian
	var buf [4]byte
	sideModel := newBytesModel(4)
	// Appended as they decode, and stopped where the stream ends: a
	// stream cut short allocates and decodes no more than it holds.
	var vals []float32
	for range side {
		sideModel.decode(d, buf[:])
		if d.overrun {
			return errCoded
		}
		vals = append(vals, math.Float32frombits(le.Uint32(buf[:])))
	}
	if t.DType == Int8 {
		t.Scales = vals
	} else {
		copy(t.Codebook, vals)
	}
	var masks []bitModel
	if sparse {
		// At most one model a position: bounded with the positions.
		masks = make([]bitModel, maskContexts(mode, n, ch))
		t.Index = []uint32{}
	}
	codes := newTreeModel(t.Bits)
	i8 := newInt8Model()
	width := max(t.DType.size(), 1)
	floats := newBytesModel(width)
	for at := range n {
		if sparse {
			if d.decode(&masks[maskContext(mode, at, ch)]) == 0 {
				continue
			}
			t.Index = append(t.Index, uint32(at))
		}
		switch t.DType {
		case Shared:
			c := codes.decode(d)
			if int(c) >= len(t.Codebook) {
				return fmt.Errorf("code %d of a codebook of %d: %w", c, len(t.Codebook), errCoded)
			}
			t.Codes = append(t.Codes, uint8(c))
		case Int8:
			v, ok := i8.decode(d)
			if !ok {
				return fmt.Errorf("int8 value out of range: %w", errCoded)
			}
			t.I8 = append(t.I8, v)
		case Float32:
			floats.decode(d, buf[:4])
			t.F32 = append(t.F32, math.Float32frombits(le.Uint32(buf[:])))
		case Float16:
			floats.decode(d, buf[:2])
			t.F16 = append(t.F16, le.Uint16(buf[:]))
		}
		if d.overrun {
			return errCoded
		}
	}
	switch {
	case t.DType == Shared && t.Codes == nil:
		t.Codes = []uint8{}
	case t.DType == Int8 && t.I8 == nil:
		t.I8 = []int8{}
	case t.DType == Float32 && t.F32 == nil:
		t.F32 = []float32{}
	case t.DType == Float16 && t.F16 == nil:
		t.F16 = []uint16{}
	}
	return d.err()
}

// encodeBytes range-codes data as values of width bytes (a blob of
// float32 statistics: width 4); len(data) is a multiple of width.
func encodeBytes(data []byte, width int) []byte {
	e := newRangeEncoder(nil)
	m := newBytesModel(width)
	for i := 0; i < len(data); i += width {
		m.encode(e, data[i:i+width])
	}
	return e.finish()
}

// decodeBytes reads back n bytes that encodeBytes wrote.
func decodeBytes(coded []byte, n, width int) ([]byte, error) {
	// Each byte takes 8 decisions.
	if n < 0 || n%width != 0 || !canHold(coded, 8*int64(n)) {
		return nil, fmt.Errorf("%d bytes of width %d in %d coded bytes: %w", n, width, len(coded), errCoded)
	}
	d := newRangeDecoder(coded)
	m := newBytesModel(width)
	out := make([]byte, n)
	for i := 0; i < n && !d.overrun; i += width {
		m.decode(d, out[i:i+width])
	}
	return out, d.err()
}

// canHold reports whether coded bytes can carry decisions binary
// decisions (maxDecisionsPerByte each, and the 4 bytes the decoder
// starts with).
func canHold(coded []byte, decisions int64) bool {
	return decisions/maxDecisionsPerByte <= int64(len(coded))+4
}
