package kernels

import "math"

// Softmax replaces each row of x [rows × n] with its softmax, in place.
// Rows that are all −Inf become all zero rather than NaN.
func Softmax(x []float32, rows, n int) {
	needLen("Softmax", "x", x, rows*n)
	if n == 0 {
		return
	}
	k := opsKernels()
	parallelFor(rows, 12*n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := x[r*n : (r+1)*n]
			m := k.maxf(row)
			if math.IsInf(float64(m), -1) {
				clear(row)
				continue
			}
			s := expSubInPlace(k, row, m)
			Scale(row, float32(1/s))
		}
	})
}

// expSubInPlace sets x[i] = exp(x[i]−m) and returns Σ x[i]: float32 sums of
// 512-element blocks, added in float64.
func expSubInPlace(k *opsKern, x []float32, m float32) float64 {
	var acc float64
	for base := 0; base < len(x); base += 512 {
		blk := x[base:min(base+512, len(x))]
		acc += float64(k.expAffine(blk, blk, 1, m))
	}
	return acc
}

// sumExpSub returns Σ exp(x[i]−m) without writing x; buf [512] is scratch.
func sumExpSub(k *opsKern, x []float32, m float32, buf []float32) float64 {
	var acc float64
	for base := 0; base < len(x); base += 512 {
		blk := x[base:min(base+512, len(x))]
		acc += float64(k.expAffine(buf[:len(blk)], blk, 1, m))
	}
	return acc
}
