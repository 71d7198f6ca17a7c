//go:build !purego

package kernels

// Assembly in quant_avx512_amd64.s and quant_avx2_amd64.s; the wrappers
// check lengths first and finish tails in Go.

//go:noescape
func dotNF4AVX512(x *float32, q *byte, s *float32, nblk int) float32

//go:noescape
func dotNF4RowsAVX512(xp *float32, q *byte, s *float32, nblk int, y *float32, rows, qstride, sstride int)

//go:noescape
func dotNF4RowsBF16AVX512(xh *uint16, q *byte, s *float32, nblk int, y *float32, rows, qstride, sstride int)

//go:noescape
func dotQ8RowsAVX512(x *float32, q *byte, s *float32, nblk int, y *float32, rows, qstride, sstride int)

//go:noescape
func dotQ8RowsAVX2(x *float32, q *byte, s *float32, nblk int, y *float32, rows, qstride, sstride int)

//go:noescape
func dequantQ8AVX512(dst *float32, q *byte, s float32, n16 int)

//go:noescape
func dequantNF4AVX512(dst *float32, q *byte, s float32, n32 int)

//go:noescape
func dequantNF4BF16AVX512(dst *uint16, q *byte, s *float32, nblk int)

//go:noescape
func dotNF4AVX2(x *float32, q *byte, s *float32, nblk int) float32

//go:noescape
func dequantQ8AVX2(dst *float32, q *byte, s float32, n8 int)

//go:noescape
func dequantNF4AVX2(dst *float32, q *byte, s float32, n16 int)

var (
	avx512Quant = withRows(simdQuant(dotNF4AVX512, dequantQ8AVX512, dequantNF4AVX512, 16, 32), dotQ8RowsAVX512, dotNF4RowsAVX512)
	avx2Quant   = withRows(simdQuant(dotNF4AVX2, dequantQ8AVX2, dequantNF4AVX2, 8, 16), dotQ8RowsAVX2, nil)
)

// simdQuant wraps one level's assembly: the dequant kernels widen q8 (int8)
// or nf4 (4-bit) values per unit, the Go twins finish the tail.
func simdQuant(dotNF4 func(x *float32, q *byte, s *float32, nblk int) float32,
	deqQ8, deqNF4 func(dst *float32, q *byte, s float32, units int), q8, nf4 int) quantKern {
	return quantKern{
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
		dequantNF4BF16: dequantNF4BF16Go,
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

// withNF4BF16 adds the AVX512_BF16 level's dequantNF4BF16.
func withNF4BF16(k quantKern) quantKern {
	k.dequantNF4BF16 = func(dst []uint16, src []byte, s []float32, nblk int) {
		if nblk <= 0 {
			return
		}
		_, _, _ = dst[64*nblk-1], src[32*nblk-1], s[nblk-1]
		dequantNF4BF16AVX512(&dst[0], &src[0], &s[0], nblk)
	}
	k.dotNF4RowsBF16 = rowsKernel(dotNF4RowsBF16AVX512, NF4Block, NF4Block/2)
	return k
}

// withRows adds a level's row-run kernels to its quantKern: dotQ8Rows, and
// dotNF4Rows unless nf4 is nil.
func withRows(k quantKern, q8, nf4 func(x *float32, q *byte, s *float32, nblk int, y *float32, rows, qstride, sstride int)) quantKern {
	k.dotQ8Rows = rowsKernel(q8, Q8Block, Q8Block)
	if nf4 != nil {
		k.dotNF4Rows = rowsKernel(nf4, NF4Block, NF4Block/2)
	}
	return k
}

// rowsKernel wraps a row-run assembly kernel whose blocks span xb values
// of x (float32, or bf16 for dotNF4RowsBF16) and qb bytes of a row: the
// bounds of x, q and s checked once for the whole run of rows.
func rowsKernel[X float32 | uint16](dot func(x *X, q *byte, s *float32, nblk int, y *float32, rows, qstride, sstride int), xb, qb int) func(y []float32, x []X, q []byte, s []float32, nblk, qstride, sstride int) {
	return func(y []float32, x []X, q []byte, s []float32, nblk, qstride, sstride int) {
		n := len(y)
		if n == 0 {
			return
		}
		if nblk < 1 || qstride < 0 || sstride < 0 {
			panic("kernels: quantized rows dot: bad block count or stride")
		}
		_, _, _ = x[xb*nblk-1], q[(n-1)*qstride+qb*nblk-1], s[(n-1)*sstride+nblk-1]
		dot(&x[0], &q[0], &s[0], nblk, &y[0], n, qstride, sstride)
	}
}
