package snapshot

import (
	"fmt"
)

// The coded layout (format version 2) stores an int8 or shared tensor's
// positions — pruned or not, and each kept value — as one range-coded
// stream: a pruned position is a decision of the mask model, a kept one
// that decision and then its value (a code through a tree model, an int8
// by magnitude class, sign and bits). Codes and int8 values of trained
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

// encodeValues range-codes t's positions (its mask, if sparse, under
// mask mode) and values. t is Int8 or Shared and checked.
func encodeValues(t *Tensor, mode uint8) []byte {
	n, ch := t.Len(), t.Channels()
	e := newRangeEncoder(nil)
	var masks []bitModel
	if t.Sparse() {
		masks = make([]bitModel, maskContexts(mode, n, ch))
	}
	codes := newTreeModel(t.Bits)
	i8 := newInt8Model()
	value := func(k int) {
		if t.DType == Shared {
			codes.encode(e, uint32(t.Codes[k]))
		} else {
			i8.encode(e, t.I8[k])
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

// decodeValues reads back what encodeValues wrote into t, whose shape,
// type and (Shared) codebook and bits are set; sparse says whether the
// stream has a mask.
func decodeValues(t *Tensor, coded []byte, sparse bool, mode uint8) error {
	n, ch := t.Len(), t.Channels()
	// Every position takes at least one decision: refuse a shape the
	// bytes cannot hold before allocating for it.
	if n/maxDecisionsPerByte > len(coded)+4 {
		return fmt.Errorf("%d positions in %d coded bytes: %w", n, len(coded), errCoded)
	}
	d := newRangeDecoder(coded)
	var masks []bitModel
	if sparse {
		masks = make([]bitModel, maskContexts(mode, n, ch))
		t.Index = []uint32{}
	}
	codes := newTreeModel(t.Bits)
	i8 := newInt8Model()
	for at := range n {
		if sparse {
			if d.decode(&masks[maskContext(mode, at, ch)]) == 0 {
				continue
			}
			t.Index = append(t.Index, uint32(at))
		}
		if t.DType == Shared {
			c := codes.decode(d)
			if int(c) >= len(t.Codebook) {
				return fmt.Errorf("code %d of a codebook of %d: %w", c, len(t.Codebook), errCoded)
			}
			t.Codes = append(t.Codes, uint8(c))
		} else {
			v, ok := i8.decode(d)
			if !ok {
				return fmt.Errorf("int8 value out of range: %w", errCoded)
			}
			t.I8 = append(t.I8, v)
		}
		if d.overrun {
			return errCoded
		}
	}
	if t.DType == Shared && t.Codes == nil {
		t.Codes = []uint8{}
	}
	if t.DType == Int8 && t.I8 == nil {
		t.I8 = []int8{}
	}
	return d.err()
}
