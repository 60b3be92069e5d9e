package snapshot

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
)

// Binary decisions under any mix of models round-trip, including streams
// that push a model to the probability clamp and streams that defy it.
func TestRangeCoderRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	streams := map[string]func(i int) (ctx int, bit uint32){
		"empty":         nil,
		"all zeros":     func(int) (int, uint32) { return 0, 0 },
		"all ones":      func(int) (int, uint32) { return 0, 1 },
		"alternating":   func(i int) (int, uint32) { return 0, uint32(i & 1) },
		"random":        func(int) (int, uint32) { return rng.IntN(4), uint32(rng.IntN(2)) },
		"skewed 1/1000": func(int) (int, uint32) { return 0, b2u(rng.IntN(1000) == 0) },
		// Long runs, then a surprise: the model is at its clamp when
		// the rare bit comes, the widest carry the encoder sees.
		"runs then surprise": func(i int) (int, uint32) { return i % 3, b2u(i%5000 == 4999) },
		"contexts disagree":  func(i int) (int, uint32) { return i % 2, uint32(i % 2) },
	}
	for name, next := range streams {
		for _, n := range []int{0, 1, 7, 1000, 50_000} {
			if next == nil && n > 0 {
				continue
			}
			ctx, want := make([]int, n), make([]uint32, n)
			for i := range n {
				ctx[i], want[i] = next(i)
			}
			e := newRangeEncoder(nil)
			var enc [4]bitModel
			for i := range n {
				e.encode(&enc[ctx[i]], want[i])
			}
			coded := e.finish()
			d := newRangeDecoder(coded)
			var dec [4]bitModel
			for i := range n {
				if got := d.decode(&dec[ctx[i]]); got != want[i] {
					t.Fatalf("%s, %d bits: bit %d decoded as %d", name, n, i, got)
				}
			}
			if err := d.err(); err != nil {
				t.Fatalf("%s, %d bits: %v after %d of %d bytes", name, n, err, d.pos, len(coded))
			}
		}
	}
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// Every int8 and every code of every width round-trips, in random order
// and in adversarial ones (extremes only, one value repeated).
func TestValueModelsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	var all []int8
	for v := -128; v <= 127; v++ {
		all = append(all, int8(v))
	}
	for name, vals := range map[string][]int8{
		"every value":  all,
		"shuffled":     shuffled(rng, all),
		"extremes":     {-128, 127, -127, 127, -128, 0, 0, 1, -1},
		"one repeated": bytes8(bytes.Repeat([]byte{0x81}, 3000)),
	} {
		e := newRangeEncoder(nil)
		m := newInt8Model()
		for _, v := range vals {
			m.encode(e, v)
		}
		d := newRangeDecoder(e.finish())
		m = newInt8Model()
		for i, want := range vals {
			if got, ok := m.decode(d); !ok || got != want {
				t.Fatalf("%s: value %d decoded as %d (%v)", name, i, got, ok)
			}
		}
		if err := d.err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for bits := uint8(1); bits <= MaxSharedBits; bits++ {
		codes := make([]uint32, 5000)
		for i := range codes {
			codes[i] = uint32(rng.IntN(1 << bits))
			if i%2 == 0 {
				codes[i] = 1<<bits - 1 // skew towards the top code
			}
		}
		e := newRangeEncoder(nil)
		m := newTreeModel(bits)
		for _, c := range codes {
			m.encode(e, c)
		}
		d := newRangeDecoder(e.finish())
		m = newTreeModel(bits)
		for i, want := range codes {
			if got := m.decode(d); got != want {
				t.Fatalf("%d bits: code %d decoded as %d, want %d", bits, i, got, want)
			}
		}
		if err := d.err(); err != nil {
			t.Fatalf("%d bits: %v", bits, err)
		}
	}
}

func shuffled(rng *rand.Rand, v []int8) []int8 {
	out := append([]int8(nil), v...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func bytes8(b []byte) []int8 {
	out := make([]int8, len(b))
	for i, v := range b {
		out[i] = int8(v)
	}
	return out
}

// codedTensors are int8 and shared tensors, dense and sparse, as pruning
// and quantization leave them: values near zero far more common, rows
// that keep more than others.
func codedTensors(rng *rand.Rand) []Tensor {
	var out []Tensor
	for _, shape := range [][]int{{1}, {7}, {64, 100}, {3, 3, 4, 8}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		ch := shape[len(shape)-1]
		scales := make([]float32, ch)
		for i := range scales {
			scales[i] = float32(i+1) / 127
		}
		book := []float32{-0.5, -0.1, 0.1, 0.2, 0.7}
		var index []uint32
		for at := range n {
			if rng.Float64() < float64(at/ch%5)/5 { // rows keep 0% to 80%
				index = append(index, uint32(at))
			}
		}
		for _, sparse := range []bool{false, true} {
			stored := n
			idx := []uint32(nil)
			if sparse {
				stored, idx = len(index), append([]uint32{}, index...)
			}
			i8 := make([]int8, stored)
			codes := make([]uint8, stored)
			f32 := make([]float32, stored)
			f16 := make([]uint16, stored)
			for k := range stored {
				i8[k] = int8(max(-127, min(127, rng.NormFloat64()*20)))
				codes[k] = uint8(min(4, int(rng.ExpFloat64())))
				f32[k] = float32(rng.NormFloat64() / 10)
				f16[k] = uint16(rng.Uint32())
			}
			out = append(out,
				Tensor{Name: "q", Shape: shape, DType: Int8, I8: i8, Scales: scales, Index: idx},
				Tensor{Name: "s", Shape: shape, DType: Shared, Codes: codes, Codebook: book, Bits: 3, Index: idx},
				Tensor{Name: "f", Shape: shape, DType: Float32, F32: f32, Index: idx},
				Tensor{Name: "h", Shape: shape, DType: Float16, F16: f16, Index: idx})
		}
	}
	// Everything pruned, and a single code in its book.
	out = append(out,
		Tensor{Name: "none", Shape: []int{10, 10}, DType: Int8, I8: []int8{}, Scales: make([]float32, 10), Index: []uint32{}},
		Tensor{Name: "one", Shape: []int{5, 2}, DType: Shared, Codes: make([]uint8, 10), Codebook: []float32{0.25}, Bits: 1})
	return out
}

// fresh is t with only what the coded layout stores outside its stream:
// the shape, the type, a shared tensor's bits and codebook length.
func fresh(t *Tensor) Tensor {
	out := Tensor{Name: t.Name, Shape: t.Shape, DType: t.DType, Bits: t.Bits}
	if t.Codebook != nil {
		out.Codebook = make([]float32, len(t.Codebook))
	}
	return out
}

func TestCodedValuesRoundTrip(t *testing.T) {
	for _, want := range codedTensors(rand.New(rand.NewPCG(3, 3))) {
		for mode := range uint8(maskModes) {
			coded := encodeValues(&want, mode)
			got := fresh(&want)
			if err := decodeValues(&got, coded, want.Sparse(), mode); err != nil {
				t.Fatalf("%s %v sparse %v, mask mode %d: %v", want.Name, want.Shape, want.Sparse(), mode, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %v sparse %v, mask mode %d: read back differently", want.Name, want.Shape, want.Sparse(), mode)
			}
			if err := got.check(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Damaged coded bytes are refused or decode to a tensor that passes the
// writer's checks; never a panic. Truncation and bytes added at the end
// are always refused: a decoder reads exactly what the encoder wrote.
func TestCodedValuesDamaged(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, want := range codedTensors(rng) {
		coded := encodeValues(&want, maskRow)
		try := func(what string, b []byte) error {
			got := fresh(&want)
			err := decodeValues(&got, b, want.Sparse(), maskRow)
			if err == nil {
				if cerr := got.check(); cerr != nil {
					t.Fatalf("%s %v, %s: decoded without an error into a bad tensor: %v", want.Name, want.Shape, what, cerr)
				}
			} else if !errors.Is(err, errCoded) {
				t.Fatalf("%s %v, %s: error %v, want errCoded", want.Name, want.Shape, what, err)
			}
			return err
		}
		for cut := 1; cut <= min(len(coded), 6); cut++ {
			if try("truncated", coded[:len(coded)-cut]) == nil {
				t.Errorf("%s %v: %d bytes cut off and not noticed", want.Name, want.Shape, cut)
			}
		}
		if try("a byte added", append(append([]byte{}, coded...), 0)) == nil {
			t.Errorf("%s %v: a byte added and not noticed", want.Name, want.Shape)
		}
		for range 50 {
			b := append([]byte{}, coded...)
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
			try("a byte changed", b)
		}
		try("empty", nil)
		try("garbage", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	}
	// A shape far larger than its bytes could hold is refused before the
	// decoder allocates for it.
	big := Tensor{Name: "w", Shape: []int{1 << 13, 1 << 14}, DType: Shared, Codebook: []float32{1}, Bits: 1}
	if err := decodeValues(&big, []byte{1, 2, 3, 4}, true, maskGlobal); !errors.Is(err, errCoded) {
		t.Errorf("2^27 positions in 4 bytes: %v", err)
	}
}

// FuzzDecodeValues: arbitrary coded bytes under every shape of up to
// 1000 rows and 256 channels, value type and mask mode decode or fail,
// never panic.
func FuzzDecodeValues(f *testing.F) {
	for _, tt := range codedTensors(rand.New(rand.NewPCG(5, 5)))[:24] {
		ch := tt.Channels()
		f.Add(encodeValues(&tt, maskRow), uint16(tt.Len()/ch-1), uint8(ch-1), uint8(tt.DType-1), tt.Sparse(), uint8(maskRow))
	}
	f.Fuzz(func(t *testing.T, coded []byte, rows uint16, channels, dtype uint8, sparse bool, mode uint8) {
		tt := Tensor{Name: "w", Shape: []int{int(rows%1000) + 1, int(channels) + 1}, DType: DType(dtype%4 + 1)}
		if tt.DType == Shared {
			// As codedTensors' shared tensors: 5 values, 3-bit codes.
			tt.Codebook, tt.Bits = make([]float32, 5), 3
		}
		if err := decodeValues(&tt, coded, sparse, mode%maskModes); err == nil {
			if err := tt.check(); err != nil {
				t.Fatalf("decoded without an error into a bad tensor: %v", err)
			}
		}
	})
}

func BenchmarkEncodeValues(b *testing.B) {
	for _, tt := range benchTensors() {
		b.Run(tt.DType.String(), func(b *testing.B) {
			b.SetBytes(int64(tt.Len()))
			b.ReportAllocs()
			for range b.N {
				encodeValues(&tt, maskRow)
			}
		})
	}
}

func BenchmarkDecodeValues(b *testing.B) {
	for _, tt := range benchTensors() {
		coded := encodeValues(&tt, maskRow)
		b.Run(tt.DType.String(), func(b *testing.B) {
			b.SetBytes(int64(tt.Len()))
			b.ReportAllocs()
			for range b.N {
				got := fresh(&tt)
				if err := decodeValues(&got, coded, true, maskRow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchTensors are a 256×256 weight tensor half pruned, int8 and 3-bit
// shared.
func benchTensors() []Tensor {
	rng := rand.New(rand.NewPCG(6, 6))
	n := 256 * 256
	var index []uint32
	var i8 []int8
	var codes []uint8
	for at := range n {
		if rng.IntN(2) == 0 {
			index = append(index, uint32(at))
			i8 = append(i8, int8(max(-127, min(127, rng.NormFloat64()*30))))
			codes = append(codes, uint8(rng.IntN(8)))
		}
	}
	return []Tensor{
		{Name: "q", Shape: []int{256, 256}, DType: Int8, I8: i8, Scales: make([]float32, 256), Index: index},
		{Name: "s", Shape: []int{256, 256}, DType: Shared, Codes: codes, Codebook: make([]float32, 8), Bits: 3, Index: index},
	}
}
