//go:build !purego

package kernels

// Assembly in quant_avx512_amd64.s and quant_avx2_amd64.s; the wrappers
// check lengths first and finish tails in Go.

//go:noescape
func dotQ8AVX512(x *float32, q *byte, s *float32, nblk int) float32

//go:noescape
func dotNF4AVX512(x *float32, q *byte, s *float32, nblk int) float32

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
	avx512Quant = quantKern{
		dotQ8: func(x []float32, q []byte, s []float32, nblk int) float32 {
			_, _, _ = x[32*nblk-1], q[32*nblk-1], s[nblk-1]
			return dotQ8AVX512(&x[0], &q[0], &s[0], nblk)
		},
		dotNF4: func(x []float32, q []byte, s []float32, nblk int) float32 {
			_, _, _ = x[64*nblk-1], q[32*nblk-1], s[nblk-1]
			return dotNF4AVX512(&x[0], &q[0], &s[0], nblk)
		},
		dequantQ8: func(dst []float32, src []byte, s float32) {
			n16 := len(dst) / 16
			if n16 > 0 {
				_ = src[16*n16-1]
				dequantQ8AVX512(&dst[0], &src[0], s, n16)
			}
			if t := 16 * n16; t < len(dst) {
				dequantQ8Go(dst[t:], src[16*n16:], s)
			}
		},
		dequantNF4: func(dst []float32, src []byte, s float32) {
			n32 := len(dst) / 32
			if n32 > 0 {
				_ = src[16*n32-1]
				dequantNF4AVX512(&dst[0], &src[0], s, n32)
			}
			if t := 32 * n32; t < len(dst) {
				dequantNF4Go(dst[t:], src[16*n32:], s)
			}
		},
	}
	avx2Quant = quantKern{
		dotQ8: func(x []float32, q []byte, s []float32, nblk int) float32 {
			_, _, _ = x[32*nblk-1], q[32*nblk-1], s[nblk-1]
			return dotQ8AVX2(&x[0], &q[0], &s[0], nblk)
		},
		dotNF4: func(x []float32, q []byte, s []float32, nblk int) float32 {
			_, _, _ = x[64*nblk-1], q[32*nblk-1], s[nblk-1]
			return dotNF4AVX2(&x[0], &q[0], &s[0], nblk)
		},
		dequantQ8: func(dst []float32, src []byte, s float32) {
			n8 := len(dst) / 8
			if n8 > 0 {
				_ = src[8*n8-1]
				dequantQ8AVX2(&dst[0], &src[0], s, n8)
			}
			if t := 8 * n8; t < len(dst) {
				dequantQ8Go(dst[t:], src[8*n8:], s)
			}
		},
		dequantNF4: func(dst []float32, src []byte, s float32) {
			n16 := len(dst) / 16
			if n16 > 0 {
				_ = src[8*n16-1]
				dequantNF4AVX2(&dst[0], &src[0], s, n16)
			}
			if t := 16 * n16; t < len(dst) {
				dequantNF4Go(dst[t:], src[8*n16:], s)
			}
		},
	}
)
