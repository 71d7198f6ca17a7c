package kernels

import "math"

// Softmax replaces each row of x [rows × n] with its softmax, in place.
// Rows that are all −Inf become all zero rather than NaN.
func Softmax(x []float32, rows, n int) {
	needLen("Softmax", "x", x, rows*n)
	if n == 0 {
		return
	}
	parallelFor(rows, 12*n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := x[r*n : (r+1)*n]
			m := maxf(row)
			if math.IsInf(float64(m), -1) {
				clear(row)
				continue
			}
			s := expSubInPlace(row, m)
			Scale(row, float32(1/s))
		}
	})
}

// expSubInPlace sets x[i] = exp(x[i]−m) and returns Σ x[i], accumulated in
// float32 blocks flushed to float64.
func expSubInPlace(x []float32, m float32) float64 {
	var acc float64
	n := len(x)
	for base := 0; base < n; base += 512 {
		blk := x[base:min(base+512, n)]
		var s0, s1, s2, s3 float32
		i := 0
		for ; i+4 <= len(blk); i += 4 {
			b := blk[i : i+4 : i+4]
			e0, e1, e2, e3 := expf(b[0]-m), expf(b[1]-m), expf(b[2]-m), expf(b[3]-m)
			b[0], b[1], b[2], b[3] = e0, e1, e2, e3
			s0 += e0
			s1 += e1
			s2 += e2
			s3 += e3
		}
		for ; i < len(blk); i++ {
			e := expf(blk[i] - m)
			blk[i] = e
			s0 += e
		}
		acc += float64((s0 + s1) + (s2 + s3))
	}
	return acc
}

// sumExpSub returns Σ exp(x[i]−m) without writing x.
func sumExpSub(x []float32, m float32) float64 {
	var acc float64
	n := len(x)
	for base := 0; base < n; base += 512 {
		blk := x[base:min(base+512, n)]
		var s0, s1, s2, s3 float32
		i := 0
		for ; i+4 <= len(blk); i += 4 {
			b := blk[i : i+4 : i+4]
			s0 += expf(b[0] - m)
			s1 += expf(b[1] - m)
			s2 += expf(b[2] - m)
			s3 += expf(b[3] - m)
		}
		for ; i < len(blk); i++ {
			s0 += expf(blk[i] - m)
		}
		acc += float64((s0 + s1) + (s2 + s3))
	}
	return acc
}
