package kernels

// dequantQ8 and dequantNF4 widen one block; the AVX-512 versions (when the
// active level is avx512) are in quant_amd64.go.
func dequantQ8(dst []float32, src []byte, s float32) {
	if len(dst) >= 16 && quantAVX512() {
		dequantQ8AVX512Go(dst, src, s)
		return
	}
	dequantQ8Go(dst, src, s)
}

func dequantNF4(dst []float32, src []byte, s float32) {
	if len(dst) >= 16 && quantAVX512() {
		dequantNF4AVX512Go(dst, src, s)
		return
	}
	dequantNF4Go(dst, src, s)
}
