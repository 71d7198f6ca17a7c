//go:build !purego

package kernels

// Assembly in quant_avx512_amd64.s and quant_avx2_amd64.s; the wrappers
// check lengths first and finish tails in Go.

//go:noescape
func dotQ8AVX512(x *float32, q *byte, s *float32, nblk int) float32

//go:noescape
func dotNF4AVX512(x *float32, q *byte, s *float32, nblk int) float32

//go:noescape
func dotNF4RowsAVX512(xp *float32, q *byte, s *float32, nblk int, y *float32, rows, qstride, sstride int)

//go:noescape
func dequantQ8AVX512(dst *float32, q *byte, s float32, n16 int)

//go:noescape
func dequantNF4AVX512(dst *float32, q *byte, s float32, n32 int)

//go:noescape
func dotQ8AVX2(x *float32, q *byte, s *float32, nblk int) float32

//go:noescape
func dotNF4AVX2(x *float32, q *byte, s *float32, nblk int) float32

//go:noescape
func dequantQ8AVX2(dst *float32, q *byte, s float32, n8 int)

//go:noescape
func dequantNF4AVX2(dst *float32, q *byte, s float32, n16 int)

var (
	avx512Quant = withNF4Rows(simdQuant(dotQ8AVX512, dotNF4AVX512, dequantQ8AVX512, dequantNF4AVX512, 16, 32), dotNF4RowsAVX512)
	avx2Quant   = simdQuant(dotQ8AVX2, dotNF4AVX2, dequantQ8AVX2, dequantNF4AVX2, 8, 16)
)

// simdQuant wraps one level's assembly: the dequant kernels widen q8 (int8)
// or nf4 (4-bit) values per unit, the Go twins finish the tail.
func simdQuant(dotQ8, dotNF4 func(x *float32, q *byte, s *float32, nblk int) float32,
	deqQ8, deqNF4 func(dst *float32, q *byte, s float32, units int), q8, nf4 int) quantKern {
	return quantKern{
		dotQ8: func(x []float32, q []byte, s []float32, nblk int) float32 {
			_, _, _ = x[32*nblk-1], q[32*nblk-1], s[nblk-1]
			return dotQ8(&x[0], &q[0], &s[0], nblk)
		},
		dotNF4: func(x []float32, q []byte, s []float32, nblk int) float32 {
			_, _, _ = x[64*nblk-1], q[32*nblk-1], s[nblk-1]
			return dotNF4(&x[0], &q[0], &s[0], nblk)
		},
		dequantQ8: func(dst []float32, src []byte, s float32) {
			u := len(dst) / q8
			if u > 0 {
				_ = src[q8*u-1]
				deqQ8(&dst[0], &src[0], s, u)
			}
			if t := q8 * u; t < len(dst) {
				dequantQ8Go(dst[t:], src[t:], s)
			}
		},
		dequantNF4: func(dst []float32, src []byte, s float32) {
			u := len(dst) / nf4
			if u > 0 {
				_ = src[nf4/2*u-1]
				deqNF4(&dst[0], &src[0], s, u)
			}
			if t := nf4 * u; t < len(dst) {
				dequantNF4Go(dst[t:], src[t/2:], s)
			}
		},
	}
}

// withNF4Rows adds a level's dotNF4Rows kernel to its quantKern.
func withNF4Rows(k quantKern, dot func(xp *float32, q *byte, s *float32, nblk int, y *float32, rows, qstride, sstride int)) quantKern {
	k.dotNF4Rows = func(y, xp []float32, q []byte, s []float32, nblk, qstride, sstride int) {
		n := len(y)
		if n == 0 {
			return
		}
		if nblk < 1 || qstride < 0 || sstride < 0 {
			panic("kernels: dotNF4Rows: bad block count or stride")
		}
		_, _, _ = xp[64*nblk-1], q[(n-1)*qstride+32*nblk-1], s[(n-1)*sstride+nblk-1]
		dot(&xp[0], &q[0], &s[0], nblk, &y[0], n, qstride, sstride)
	}
	return k
}
