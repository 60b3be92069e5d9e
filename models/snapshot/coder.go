package snapshot

import (
	"errors"
	"math/bits"
)

// The entropy coder of the coded tensor layout: a binary range coder (the
// carry-less-cache form LZMA uses) driven by adaptive models that count
// what they have seen. Counting (Krichevsky–Trofimov: P(0) = (n₀+½)/(n+1))
// learns from the first symbol on, which matters for tensors of a few
// thousand weights, where a shift-update model would still be near ½.
// Nothing is transmitted about the statistics: the decoder counts as the
// encoder did.

const (
	probBits = 12
	probOne  = 1 << probBits
	// A model's state is P(0) in 16 bits, of which the coder uses the top
	// probBits.
	stateBits = 16
	// countLimit is where a model stops slowing its learning: after n
	// bits it moves 1/(n+2) of the way to each new bit, which keeps it at
	// the Krichevsky–Trofimov estimate (n₀+½)/(n+1), until n reaches
	// countLimit, from where it moves 1/countLimit a bit and so follows a
	// tensor whose statistics drift along its positions.
	countLimit = 1024
	// maxDecisionsPerByte bounds how many binary decisions one coded byte
	// can carry: each decision narrows the range by at least a factor
	// (probOne−1)/probOne, so 8 bits of range last at most
	// 8·ln 2 / −ln(1 − 1/probOne) ≈ 22,712 decisions. Decoders use it to
	// refuse a size that the coded bytes cannot hold before allocating.
	maxDecisionsPerByte = 22_800
)

// errCoded: the coded bytes end early, run on, or decode to a value out
// of range.
var errCoded = errors.New("entropy-coded values are damaged")

// rates[n] is 2^15/(n+2): the step of a model that has seen n bits.
var rates = func() (r [countLimit]int32) {
	for n := range r {
		r[n] = int32((1 << 15) / (n + 2))
	}
	return r
}()

// half offsets a model's state so that its zero value is P(0) = ½.
const half = 1 << (stateBits - 1)

// bitModel is an adaptive estimate of P(bit = 0). The zero value is
// P(0) = ½, having seen nothing.
type bitModel struct {
	p uint16 // P(0) in 2^-16 units, offset by −½ so that zero is ½
	n uint16 // bits seen, up to countLimit−1
}

// p0 is P(0) in probOne units, within [1, probOne−1].
func (m *bitModel) p0() uint32 {
	p := uint32(m.p+half) >> (stateBits - probBits)
	return min(max(p, 1), probOne-1)
}

// update moves P(0) rates[n]/2^15 of the way to 1 (bit 0) or 0 (bit 1).
// With steps of at most ½ it stays within [0, 2^16−1], and the product
// within int32.
func (m *bitModel) update(bit uint32) {
	p := int32(m.p + half)
	target := int32(1-bit) << stateBits
	p += (target - p) * rates[m.n] >> 15
	m.p = uint16(p) - half
	if m.n < countLimit-1 {
		m.n++
	}
}

// rangeEncoder writes binary decisions into out.
type rangeEncoder struct {
	low       uint64
	rng       uint32
	cache     byte
	cacheSize int
	out       []byte
	started   bool
}

func newRangeEncoder(dst []byte) *rangeEncoder {
	return &rangeEncoder{rng: 0xFFFFFFFF, cacheSize: 1, out: dst}
}

func (e *rangeEncoder) encode(m *bitModel, bit uint32) {
	bound := (e.rng >> probBits) * m.p0()
	if bit == 0 {
		e.rng = bound
	} else {
		e.low += uint64(bound)
		e.rng -= bound
	}
	m.update(bit)
	for e.rng < 1<<24 {
		e.rng <<= 8
		e.shiftLow()
	}
}

func (e *rangeEncoder) shiftLow() {
	if uint32(e.low) < 0xFF000000 || e.low >= 1<<32 {
		carry := byte(e.low >> 32)
		for b := e.cache; ; b = 0xFF {
			// The first byte the scheme writes is always 0 (low starts
			// at 0 and cannot carry into it): it is left out, and the
			// decoder starts as if it had read it.
			if e.started {
				e.out = append(e.out, b+carry)
			}
			e.started = true
			e.cacheSize--
			if e.cacheSize == 0 {
				break
			}
		}
		e.cache = byte(e.low >> 24)
	}
	e.cacheSize++
	e.low = (e.low & 0x00FFFFFF) << 8
}

// finish flushes what is pending and returns the coded bytes.
func (e *rangeEncoder) finish() []byte {
	for range 5 {
		e.shiftLow()
	}
	return e.out
}

// rangeDecoder reads binary decisions back. Reading past the end yields
// zeros and marks the decoder overrun: callers check err when done.
type rangeDecoder struct {
	in      []byte
	pos     int
	code    uint32
	rng     uint32
	overrun bool
}

func newRangeDecoder(in []byte) *rangeDecoder {
	d := &rangeDecoder{in: in, rng: 0xFFFFFFFF}
	for range 4 {
		d.code = d.code<<8 | uint32(d.next())
	}
	return d
}

func (d *rangeDecoder) next() byte {
	if d.pos >= len(d.in) {
		d.overrun = true
		return 0
	}
	b := d.in[d.pos]
	d.pos++
	return b
}

func (d *rangeDecoder) decode(m *bitModel) uint32 {
	bound := (d.rng >> probBits) * m.p0()
	var bit uint32
	if d.code < bound {
		d.rng = bound
	} else {
		d.code -= bound
		d.rng -= bound
		bit = 1
	}
	m.update(bit)
	for d.rng < 1<<24 {
		d.rng <<= 8
		d.code = d.code<<8 | uint32(d.next())
	}
	return bit
}

// err reports a stream that ran past its end or did not end where its
// decoding did: both mean the bytes are not what an encoder wrote.
func (d *rangeDecoder) err() error {
	if d.overrun || d.pos != len(d.in) {
		return errCoded
	}
	return nil
}

// treeModel codes symbols of a fixed number of bits as a binary tree of
// bit models, most significant bit first: an adaptive model of up to
// 2^bits symbols.
type treeModel struct {
	bits  uint8
	nodes []bitModel
}

func newTreeModel(bits uint8) treeModel {
	return treeModel{bits: bits, nodes: make([]bitModel, 1<<bits)}
}

func (t *treeModel) encode(e *rangeEncoder, sym uint32) {
	node := uint32(1)
	for i := int(t.bits) - 1; i >= 0; i-- {
		b := sym >> i & 1
		e.encode(&t.nodes[node], b)
		node = node<<1 | b
	}
}

func (t *treeModel) decode(d *rangeDecoder) uint32 {
	node := uint32(1)
	for range t.bits {
		node = node<<1 | d.decode(&t.nodes[node])
	}
	return node - 1<<t.bits
}

// int8Model codes int8 values by magnitude class, then sign, then the
// bits below the magnitude's leading one: small magnitudes, which
// quantized weights mostly are, take few decisions, and each class
// learns its own distribution.
type int8Model struct {
	length   treeModel      // bits.Len of |v|: 0 to 8
	sign     bitModel       //
	mantissa [9][8]bitModel // [length][bit below the leading one]
}

func newInt8Model() *int8Model { return &int8Model{length: newTreeModel(4)} }

func (m *int8Model) encode(e *rangeEncoder, v int8) {
	mag := uint32(v)
	if v < 0 {
		mag = uint32(-int32(v))
	}
	l := bits.Len32(mag)
	m.length.encode(e, uint32(l))
	if l == 0 {
		return
	}
	if v < 0 {
		e.encode(&m.sign, 1)
	} else {
		e.encode(&m.sign, 0)
	}
	for i := l - 2; i >= 0; i-- {
		e.encode(&m.mantissa[l][i], mag>>i&1)
	}
}

func (m *int8Model) decode(d *rangeDecoder) (int8, bool) {
	l := int(m.length.decode(d))
	if l == 0 {
		return 0, true
	}
	if l > 8 {
		return 0, false
	}
	neg := d.decode(&m.sign) == 1
	mag := int32(1)
	for i := l - 2; i >= 0; i-- {
		mag = mag<<1 | int32(d.decode(&m.mantissa[l][i]))
	}
	if neg {
		mag = -mag
	}
	if mag > 127 || mag < -128 {
		return 0, false
	}
	return int8(mag), true
}

// bytesModel codes fixed-width values (float32, float16) byte by byte,
// each byte position under its own adaptive model: the sign and exponent
// bytes of trained weights, scales and statistics take few values, the
// low mantissa bytes are near uniform and cost about their 8 bits.
type bytesModel struct{ pos []treeModel }

func newBytesModel(width int) *bytesModel {
	m := &bytesModel{pos: make([]treeModel, width)}
	for i := range m.pos {
		m.pos[i] = newTreeModel(8)
	}
	return m
}

func (m *bytesModel) encode(e *rangeEncoder, v []byte) {
	for i, b := range v {
		m.pos[i].encode(e, uint32(b))
	}
}

func (m *bytesModel) decode(d *rangeDecoder, dst []byte) {
	for i := range dst {
		dst[i] = byte(m.pos[i].decode(d))
	}
}
