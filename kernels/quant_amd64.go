package kernels

// Assembly in quant_avx512_amd64.s; the wrappers check lengths first.

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

func quantAVX512() bool { return active.Load().name == "avx512" }

// quantSIMD reports the active level's quantized kernels: 2 for AVX-512,
// 1 for AVX2, 0 for the Go twins.
func quantSIMD() int {
	switch active.Load().name {
	case "avx512":
		return 2
	case "avx2":
		return 1
	}
	return 0
}

// dequantQ8SIMD widens len(dst) values with the active level's kernel.
func dequantQ8SIMD(dst []float32, src []byte, s float32) {
	if quantSIMD() == 2 {
		dequantQ8AVX512Go(dst, src, s)
		return
	}
	n := len(dst)
	n8 := n / 8
	if quantSIMD() == 1 && n8 > 0 {
		_ = src[8*n8-1]
		_ = dst[8*n8-1]
		dequantQ8AVX2(&dst[0], &src[0], s, n8)
	} else {
		n8 = 0
	}
	if t := 8 * n8; t < n {
		dequantQ8Go(dst[t:], src[t:], s)
	}
}

// dequantNF4SIMD widens len(dst) values with the active level's kernel.
func dequantNF4SIMD(dst []float32, src []byte, s float32) {
	if quantSIMD() == 2 {
		dequantNF4AVX512Go(dst, src, s)
		return
	}
	n := len(dst)
	n16 := n / 16
	if quantSIMD() == 1 && n16 > 0 {
		_ = src[8*n16-1]
		_ = dst[16*n16-1]
		dequantNF4AVX2(&dst[0], &src[0], s, n16)
	} else {
		n16 = 0
	}
	if t := 16 * n16; t < n {
		dequantNF4Go(dst[t:], src[t/2:], s)
	}
}

// dequantQ8AVX512Go widens len(dst) values, 16 at a time in assembly.
func dequantQ8AVX512Go(dst []float32, src []byte, s float32) {
	n := len(dst)
	n16 := n / 16
	if n16 > 0 {
		_ = src[16*n16-1]
		dequantQ8AVX512(&dst[0], &src[0], s, n16)
	}
	if t := 16 * n16; t < n {
		dequantQ8Go(dst[t:], src[t:], s)
	}
}

// dequantNF4AVX512Go widens len(dst) values, 32 at a time in assembly.
func dequantNF4AVX512Go(dst []float32, src []byte, s float32) {
	n := len(dst)
	n32 := n / 32
	if n32 > 0 {
		_ = src[16*n32-1]
		_ = dst[32*n32-1]
		dequantNF4AVX512(&dst[0], &src[0], s, n32)
	}
	if t := 32 * n32; t < n {
		dequantNF4Go(dst[t:], src[t/2:], s)
	}
}

// dotQ8 is Σ_b s[b]·(x·q) over nblk whole blocks of 32.
func dotQ8(x []float32, q []byte, s []float32, nblk int) float32 {
	if nblk <= 0 {
		return 0
	}
	if l := quantSIMD(); l > 0 {
		_ = x[32*nblk-1]
		_ = q[32*nblk-1]
		_ = s[nblk-1]
		if l == 2 {
			return dotQ8AVX512(&x[0], &q[0], &s[0], nblk)
		}
		return dotQ8AVX2(&x[0], &q[0], &s[0], nblk)
	}
	return dotQ8Go(x, q, s, nblk)
}

// dotNF4 is Σ_b s[b]·(x·nf4[q]) over nblk whole blocks of 64.
func dotNF4(x []float32, q []byte, s []float32, nblk int) float32 {
	if nblk <= 0 {
		return 0
	}
	if l := quantSIMD(); l > 0 {
		_ = x[64*nblk-1]
		_ = q[32*nblk-1]
		_ = s[nblk-1]
		if l == 2 {
			return dotNF4AVX512(&x[0], &q[0], &s[0], nblk)
		}
		return dotNF4AVX2(&x[0], &q[0], &s[0], nblk)
	}
	return dotNF4Go(x, q, s, nblk)
}
