package models

import "math"

// softmaxCrossEntropy returns the mean over rows of the cross-entropy of
// the softmax of logits (rows × k) against the classes y, computed as
// log Σ exp(z − max z) + max z − z_y so that no exponential overflows. When
// dz is not nil it receives the gradient of that mean with respect to the
// logits, (softmax(z) − onehot(y)) / rows.
func softmaxCrossEntropy(dz, logits []float64, rows, k int, y []int) float64 {
	var loss float64
	inv := 1 / float64(rows)
	for r := 0; r < rows; r++ {
		z := logits[r*k : (r+1)*k]
		zmax := z[0]
		for _, v := range z[1:] {
			zmax = max(zmax, v)
		}
		var sum float64
		if dz != nil {
			d := dz[r*k : (r+1)*k]
			for i, v := range z {
				e := math.Exp(v - zmax)
				d[i] = e
				sum += e
			}
			scale := inv / sum
			for i := range d {
				d[i] *= scale
			}
			d[y[r]] -= inv
		} else {
			for _, v := range z {
				sum += math.Exp(v - zmax)
			}
		}
		loss += math.Log(sum) + zmax - z[y[r]]
	}
	return loss * inv
}

// softmaxRows writes the row-wise softmax of z (rows × k) into dst, which
// may be z.
func softmaxRows(dst, z []float64, rows, k int) {
	for r := 0; r < rows; r++ {
		zr, d := z[r*k:(r+1)*k], dst[r*k:(r+1)*k]
		zmax := zr[0]
		for _, v := range zr[1:] {
			zmax = max(zmax, v)
		}
		var sum float64
		for i, v := range zr {
			e := math.Exp(v - zmax)
			d[i] = e
			sum += e
		}
		inv := 1 / sum
		for i := range d {
			d[i] *= inv
		}
	}
}

// squaredError returns the mean over rows of ½‖out − t‖² for out and t of
// rows × k values. When dz is not nil it receives the gradient of that mean
// with respect to out, (out − t) / rows.
func squaredError(dz, out []float64, rows, k int, t []float64) float64 {
	n := rows * k
	out, t = out[:n], t[:n]
	inv := 1 / float64(rows)
	var loss float64
	if dz != nil {
		dz = dz[:n]
		for i, v := range out {
			d := v - t[i]
			loss += d * d
			dz[i] = d * inv
		}
	} else {
		for i, v := range out {
			d := v - t[i]
			loss += d * d
		}
	}
	return 0.5 * loss * inv
}
