package kernels

// dequantQ8 and dequantNF4 widen one block with the active level's kernel
// (quant_amd64.go: AVX-512 or AVX2; the Go twins otherwise).
func dequantQ8(dst []float32, src []byte, s float32) {
	if len(dst) >= 8 {
		dequantQ8SIMD(dst, src, s)
		return
	}
	dequantQ8Go(dst, src, s)
}

func dequantNF4(dst []float32, src []byte, s float32) {
	if len(dst) >= 16 {
		dequantNF4SIMD(dst, src, s)
		return
	}
	dequantNF4Go(dst, src, s)
}
