//go:build !amd64

package kernels

// Stubs so the dispatch code compiles off amd64; never called there.

const haveOpsAVX512 = false

const noAVX512 = "kernels: AVX-512 kernels called off amd64"

func scores64AVX512(s *float32, q *float32, d int, kt *float32) { panic(noAVX512) }

func dotRowsAVX512(s *float32, n int, x *float32, m *float32, stride int, d16 int) {
	panic(noAVX512)
}

func axpyRowsAVX512(acc *float32, d16 int, p *float32, n int, m *float32, stride int) {
	panic(noAVX512)
}

func expAffineAVX512(dst, x *float32, n int, a, b float32) float32 { panic(noAVX512) }

func maxAVX512(x *float32, n int) float32 { panic(noAVX512) }

func swigluAVX512(out, gate, up *float32, n int) { panic(noAVX512) }

func swigluBackAVX512(dgate, dup, dout, gate, up *float32, n int) { panic(noAVX512) }

func sumSqAVX512(x *float32, n int) float32 { panic(noAVX512) }

func dot3AVX512(a, b, c *float32, n int) float32 { panic(noAVX512) }

func mulScaledAVX512(out, x, w *float32, n int, s float32) { panic(noAVX512) }

func rmsBackRowAVX512(dx, d, w, x *float32, n int, rs, k float32, acc bool) { panic(noAVX512) }

func mulAddScaledAVX512(acc, a, b *float32, n int, s float32) { panic(noAVX512) }

func dotAVX512(a, b *float32, n int) float32 { panic(noAVX512) }

func axpyAVX512(y *float32, a float32, x *float32, n int) { panic(noAVX512) }

func scaleAVX512(x *float32, s float32, n int) { panic(noAVX512) }
