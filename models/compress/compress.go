package compress

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/snapshot"
	"gonum.org/v1/gonum/mat"
)

// Mask marks the parameters pruning kept (true), by position in
// Model.Params; biases are always kept.
type Mask []bool

// Apply zeroes the pruned parameters of m.
func (mask Mask) Apply(m *models.Model) {
	p := m.Params()
	for i, keep := range mask {
		if !keep {
			p[i] = 0
		}
	}
}

// Sparsity is the fraction of weights (not biases) that are zero.
func Sparsity(m *models.Model) float64 {
	zero, n := 0, 0
	for _, t := range m.Tensors() {
		if t.Bias {
			continue
		}
		for _, v := range t.Values {
			if v == 0 {
				zero++
			}
		}
		n += len(t.Values)
	}
	if n == 0 {
		return 0
	}
	return float64(zero) / float64(n)
}

// Prune zeroes the weights of smallest magnitude so that a fraction
// sparsity of them is zero: over all weight tensors at once (one
// threshold), or, perLayer, in each tensor. Ties at the threshold are
// broken by position, so the result is exact and deterministic.
func Prune(m *models.Model, sparsity float64, perLayer bool) (Mask, error) {
	if sparsity < 0 || sparsity >= 1 || math.IsNaN(sparsity) {
		return nil, fmt.Errorf("compress: sparsity %v: want a fraction in [0, 1)", sparsity)
	}
	mask := make(Mask, m.NumParams())
	for i := range mask {
		mask[i] = true
	}
	type pos struct {
		at  int
		abs float64
	}
	prune := func(ps []pos) {
		sort.Slice(ps, func(i, j int) bool {
			if ps[i].abs != ps[j].abs {
				return ps[i].abs < ps[j].abs
			}
			return ps[i].at < ps[j].at
		})
		for _, p := range ps[:int(math.Round(sparsity*float64(len(ps))))] {
			mask[p.at] = false
		}
	}
	var all []pos
	for _, t := range m.Tensors() {
		if t.Bias {
			continue
		}
		ps := make([]pos, len(t.Values))
		for i, v := range t.Values {
			ps[i] = pos{t.Offset + i, math.Abs(v)}
		}
		if perLayer {
			prune(ps)
		} else {
			all = append(all, ps...)
		}
	}
	if !perLayer {
		prune(all)
	}
	mask.Apply(m)
	return mask, nil
}

// FineTune trains m for epochs more epochs of minibatch SGD with opt,
// keeping the pruned weights at zero after every step, and returns the
// mean loss of the last epoch.
func FineTune(m *models.Model, mask Mask, opt *models.Optimizer, x *mat.Dense, y models.Targets, epochs, batchSize int, rng *rand.Rand) float64 {
	tr := models.NewTrainer(m, opt)
	rows, cols := x.Dims()
	k := max(1, len(y.Values)/max(1, rows))
	var loss float64
	for range epochs {
		order := rng.Perm(rows)
		loss = 0
		for lo := 0; lo < rows; lo += batchSize {
			hi := min(rows, lo+batchSize)
			bx := mat.NewDense(hi-lo, cols, nil)
			var by models.Targets
			for r, i := range order[lo:hi] {
				bx.SetRow(r, x.RawRowView(i))
				if y.Classes != nil {
					by.Classes = append(by.Classes, y.Classes[i])
				} else {
					by.Values = append(by.Values, y.Values[i*k:(i+1)*k]...)
				}
			}
			loss += tr.Step(bx, by) * float64(hi-lo)
			mask.Apply(m)
		}
		opt.EndEpoch()
		loss /= float64(rows)
	}
	return loss
}

// DefaultSharedBits is the width of Shared weights' codes when Tensors is
// not told.
const DefaultSharedBits = 4

// Tensors stores m's parameters as snapshot tensors: weights as weights
// (Float32, Float16, Int8 with a symmetric scale per output channel, or
// Shared: a k-means codebook of 2^bits float32 values per tensor and a
// code per weight; bits 0 is DefaultSharedBits), biases as float32 (float16
// beside shared weights). A weight tensor at least half zeros is stored
// sparse.
func Tensors(m *models.Model, weights snapshot.DType, bits ...int) ([]snapshot.Tensor, error) {
	b := DefaultSharedBits
	if len(bits) > 0 && bits[0] != 0 {
		b = bits[0]
	}
	if b < 1 || b > snapshot.MaxSharedBits {
		return nil, fmt.Errorf("compress: shared weights of %d bits, want 1 to %d", b, snapshot.MaxSharedBits)
	}
	var out []snapshot.Tensor
	for _, t := range m.Tensors() {
		st := snapshot.Tensor{Name: t.Name, Shape: t.Shape, DType: snapshot.Float32}
		dtype := snapshot.Float32
		switch {
		case !t.Bias:
			dtype = weights
		case weights == snapshot.Shared:
			// Biases are a few values a layer; shared weights are for the
			// smallest files, so they go as float16.
			dtype = snapshot.Float16
		}
		st.DType = dtype
		var positions []int
		zeros := 0
		for _, v := range t.Values {
			if v == 0 {
				zeros++
			}
		}
		if !t.Bias && 2*zeros >= len(t.Values) {
			st.Index = make([]uint32, 0, len(t.Values)-zeros)
			for i, v := range t.Values {
				if v != 0 {
					st.Index = append(st.Index, uint32(i))
					positions = append(positions, i)
				}
			}
		} else {
			positions = make([]int, len(t.Values))
			for i := range positions {
				positions[i] = i
			}
		}
		switch dtype {
		case snapshot.Float32:
			st.F32 = make([]float32, len(positions))
			for k, i := range positions {
				st.F32[k] = float32(t.Values[i])
			}
		case snapshot.Float16:
			st.F16 = make([]uint16, len(positions))
			for k, i := range positions {
				st.F16[k] = Float16(t.Values[i])
			}
		case snapshot.Int8:
			ch := t.Shape[len(t.Shape)-1]
			st.Scales = ChannelScales(t.Values, ch)
			st.I8 = make([]int8, len(positions))
			for k, i := range positions {
				st.I8[k] = QuantizeInt8(t.Values[i], st.Scales[i%ch])
			}
		case snapshot.Shared:
			vals := make([]float64, len(positions))
			for k, i := range positions {
				vals[k] = t.Values[i]
			}
			st.Codebook, st.Codes = KMeans(vals, 1<<b)
			st.Bits = uint8(b)
		default:
			return nil, fmt.Errorf("compress: weights as %s: want float32, float16, int8 or shared", dtype)
		}
		out = append(out, st)
	}
	return out, nil
}

// ChannelScales are the symmetric int8 scales of a tensor whose last
// dimension has ch output channels: max |w| / 127 per channel (1 for a
// channel of zeros, so that dequantizing gives zeros).
func ChannelScales(values []float64, ch int) []float32 {
	top := make([]float64, ch)
	for i, v := range values {
		top[i%ch] = max(top[i%ch], math.Abs(v))
	}
	scales := make([]float32, ch)
	for c, t := range top {
		scales[c] = 1
		if t > 0 {
			scales[c] = float32(t / 127)
		}
	}
	return scales
}

// QuantizeInt8 is round(v / scale), clamped to [−127, 127]; 0 stays 0.
func QuantizeInt8(v float64, scale float32) int8 {
	q := math.RoundToEven(v / float64(scale))
	return int8(max(-127, min(127, q)))
}

// FromTensors rebuilds a float model of descriptor d from snapshot
// tensors (dequantizing int8 and float16 weights), checking that every
// tensor of d is there with its shape.
func FromTensors(d models.Desc, ts []snapshot.Tensor) (*models.Model, error) {
	m, err := models.New(d, 1)
	if err != nil {
		return nil, err
	}
	stored, err := matchTensors(m, ts)
	if err != nil {
		return nil, err
	}
	for i, t := range m.Tensors() {
		if err := dequantize(t.Values, stored[i]); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// matchTensors pairs each of m's tensors, in m.Tensors order, with the
// snapshot tensor of its name, checking that ts holds exactly those, with
// the model's shapes.
func matchTensors(m *models.Model, ts []snapshot.Tensor) ([]*snapshot.Tensor, error) {
	byName := make(map[string]*snapshot.Tensor, len(ts))
	for i := range ts {
		byName[ts[i].Name] = &ts[i]
	}
	if len(byName) != len(ts) {
		return nil, fmt.Errorf("compress: repeated tensor names")
	}
	want := m.Tensors()
	if len(ts) != len(want) {
		return nil, fmt.Errorf("compress: %d tensors for a model of %d", len(ts), len(want))
	}
	out := make([]*snapshot.Tensor, len(want))
	for i, t := range want {
		st, ok := byName[t.Name]
		if !ok {
			return nil, fmt.Errorf("compress: no tensor %s", t.Name)
		}
		if fmt.Sprint(st.Shape) != fmt.Sprint(t.Shape) {
			return nil, fmt.Errorf("compress: tensor %s is %v, the model's is %v", t.Name, st.Shape, t.Shape)
		}
		out[i] = st
	}
	return out, nil
}

// dequantize writes the values st stores into dst, st.Len() long: int8
// times its channel's scale, float16 widened, positions a sparse tensor
// does not store 0.
func dequantize(dst []float64, st *snapshot.Tensor) error {
	clear(dst)
	at := func(k int) int { return k }
	if st.Sparse() {
		at = func(k int) int { return int(st.Index[k]) }
	}
	switch st.DType {
	case snapshot.Float32:
		for k, v := range st.F32 {
			dst[at(k)] = float64(v)
		}
	case snapshot.Float16:
		for k, v := range st.F16 {
			dst[at(k)] = Float16To64(v)
		}
	case snapshot.Int8:
		ch := st.Channels()
		for k, v := range st.I8 {
			i := at(k)
			dst[i] = float64(v) * float64(st.Scales[i%ch])
		}
	case snapshot.Shared:
		for k, c := range st.Codes {
			dst[at(k)] = float64(st.Codebook[c])
		}
	default:
		return fmt.Errorf("compress: tensor %s stored as %s", st.Name, st.DType)
	}
	return nil
}

// KMeans shares values among at most k float32 centroids (Lloyd's
// algorithm in one dimension, started from values spread evenly between
// the smallest and the largest, as Han et al.'s Deep Compression found
// best for weights): the centroids, ascending, and each value's code.
// Empty clusters are dropped. It is deterministic.
func KMeans(values []float64, k int) (centroids []float32, codes []uint8) {
	codes = make([]uint8, len(values))
	if len(values) == 0 {
		return []float32{0}, codes
	}
	lo, hi := values[0], values[0]
	for _, v := range values {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	c := make([]float64, k)
	for i := range c {
		c[i] = lo
		if k > 1 {
			c[i] = lo + (hi-lo)*float64(i)/float64(k-1)
		}
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	sum := make([]float64, k)
	n := make([]int, k)
	for iter := 0; iter < 100; iter++ {
		clear(sum)
		clear(n)
		// Values sorted and centroids ascending: each cluster is a run.
		j := 0
		for _, v := range sorted {
			for j+1 < k && math.Abs(v-c[j+1]) < math.Abs(v-c[j]) {
				j++
			}
			sum[j] += v
			n[j]++
		}
		moved := false
		for i := range c {
			if n[i] > 0 {
				m := sum[i] / float64(n[i])
				if m != c[i] {
					c[i], moved = m, true
				}
			}
		}
		if !moved {
			break
		}
	}
	// Keep the clusters that hold values, in ascending order.
	var kept []float64
	for i := range c {
		if n[i] > 0 {
			kept = append(kept, c[i])
		}
	}
	slices.Sort(kept)
	kept = slices.Compact(kept)
	centroids = make([]float32, len(kept))
	for i, v := range kept {
		centroids[i] = float32(v)
	}
	for i, v := range values {
		j, _ := slices.BinarySearch(kept, v)
		best := min(j, len(kept)-1)
		if j > 0 && (j == len(kept) || math.Abs(v-kept[j-1]) <= math.Abs(v-kept[j])) {
			best = j - 1
		}
		codes[i] = uint8(best)
	}
	return centroids, codes
}
