package compress

import "math"

// Float16 converts v to IEEE 754 half precision, rounding to nearest even;
// values beyond the range become ±Inf, NaN stays NaN, tiny values become
// subnormals or ±0.
func Float16(v float64) uint16 {
	if math.IsNaN(v) {
		return 0x7e00
	}
	var sign uint16
	if math.Signbit(v) {
		sign, v = 0x8000, -v
	}
	if math.IsInf(v, 0) || v >= 65520 { // 65520 and above round to Inf
		return sign | 0x7c00
	}
	if v < 0x1p-14 {
		// Subnormal: multiples of 2^-24 (1024 of them is the smallest
		// normal, which the bits spell the same way).
		return sign | uint16(math.RoundToEven(v*0x1p24))
	}
	frac, exp := math.Frexp(v) // v = frac × 2^exp, frac in [0.5, 1)
	e := exp - 1 + 15          // biased exponent of 1.xxx × 2^(exp-1)
	m := math.RoundToEven((frac*2 - 1) * 1024)
	if m == 1024 { // rounded up into the next binade
		m, e = 0, e+1
		if e >= 31 {
			return sign | 0x7c00
		}
	}
	return sign | uint16(e)<<10 | uint16(m)
}

// Float16To64 converts a half-precision value to float64, exactly.
func Float16To64(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * mant * 0x1p-24
	case 31:
		if mant != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * (1 + mant/1024) * math.Ldexp(1, exp-15)
}
