package compress

import (
	"math/rand/v2"
	"testing"
)

// Sums longer than one int32 run (65,536 terms) at the largest products
// stay exact.
func TestDotInt8Long(t *testing.T) {
	const n = 3*(1<<16) + 5
	rng := rand.New(rand.NewPCG(1, 2))
	var a [4][]int8
	w := make([]int8, n)
	for i := range w {
		w[i] = 127
	}
	for k := range a {
		a[k] = make([]int8, n)
		for i := range a[k] {
			a[k][i] = 127
			if k > 0 {
				a[k][i] = int8(rng.IntN(255) - 127)
			}
		}
	}
	want := func(x []int8) int64 {
		var s int64
		for i, v := range x {
			s += int64(v) * int64(w[i])
		}
		return s
	}
	d0, d1, d2, d3 := dot4Int8(a[0], a[1], a[2], a[3], w)
	for k, got := range []int64{d0, d1, d2, d3} {
		if got != want(a[k]) || dotInt8(a[k], w) != want(a[k]) {
			t.Errorf("row %d: dot4Int8 %d, dotInt8 %d, want %d", k, got, dotInt8(a[k], w), want(a[k]))
		}
	}
}
