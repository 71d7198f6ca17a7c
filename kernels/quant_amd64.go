package kernels

func quantAVX512() bool { return active.Load().name == "avx512" }

func dequantQ8AVX512Go(dst []float32, src []byte, s float32)  { dequantQ8Go(dst, src, s) }
func dequantNF4AVX512Go(dst []float32, src []byte, s float32) { dequantNF4Go(dst, src, s) }
