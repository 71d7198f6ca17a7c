//go:build !amd64

package kernels

func dequantQ8SIMD(dst []float32, src []byte, s float32)  { dequantQ8Go(dst, src, s) }
func dequantNF4SIMD(dst []float32, src []byte, s float32) { dequantNF4Go(dst, src, s) }

func dotQ8(x []float32, q []byte, s []float32, nblk int) float32  { return dotQ8Go(x, q, s, nblk) }
func dotNF4(x []float32, q []byte, s []float32, nblk int) float32 { return dotNF4Go(x, q, s, nblk) }
