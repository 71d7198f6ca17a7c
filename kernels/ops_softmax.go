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
		bp := scratchPool.Get().(*[]float32)
		defer scratchPool.Put(bp)
		*bp = grow(*bp, softmaxBlock)
		buf := *bp
		for r := lo; r < hi; r++ {
			row := x[r*n : (r+1)*n]
			m, s := maxSumExp(k, row, buf)
			if s == 0 {
				clear(row)
				continue
			}
			expShifted(k, row, float32(float64(m)+math.Log(s)))
		}
	})
}

// LogSumExp sets out[r] = log Σ_j exp(x[r,j]) for each row of x [rows × n]
// (−Inf for an empty or all −Inf row).
func LogSumExp(out []float64, x []float32, rows, n int) {
	needLen("LogSumExp", "x", x, rows*n)
	if len(out) < rows {
		panic("kernels.LogSumExp: out shorter than rows")
	}
	k := opsKernels()
	parallelFor(rows, 12*n, func(lo, hi int) {
		buf := make([]float32, softmaxBlock)
		for r := lo; r < hi; r++ {
			m, s := maxSumExp(k, x[r*n:(r+1)*n], buf)
			out[r] = float64(m) + math.Log(s)
		}
	})
}

// softmaxBlock is the block the row loops work in: small enough to stay in L1
// between the max and the exp pass, so a row is read from memory once.
const softmaxBlock = 512

// maxSumExp returns m = max(x) and s = Σ exp(x−m) with one pass over memory:
// each block's max is found, the running sum is rescaled when the max grows,
// then the block (still in L1) is exponentiated into buf [softmaxBlock].
// Blocks are summed in float32, the block sums in float64. An all −Inf row
// gives m = −Inf, s = 0.
func maxSumExp(k *opsKern, x, buf []float32) (m float32, s float64) {
	m = float32(math.Inf(-1))
	for base := 0; base < len(x); base += softmaxBlock {
		blk := x[base:min(base+softmaxBlock, len(x))]
		if bm := k.maxf(blk); bm > m {
			if s != 0 {
				s *= math.Exp(float64(m) - float64(bm))
			}
			m = bm
		}
		if math.IsInf(float64(m), -1) {
			continue
		}
		s += float64(k.expAffine(buf[:len(blk)], blk, 1, m))
	}
	return m, s
}

// expShifted sets x[i] = exp(x[i] − b) in place.
func expShifted(k *opsKern, x []float32, b float32) {
	for base := 0; base < len(x); base += softmaxBlock {
		blk := x[base:min(base+softmaxBlock, len(x))]
		k.expAffine(blk, blk, 1, b)
	}
}
