package kernels

// AVX-512F kernels of the fused ops (ops_avx512_amd64.s), used when the
// active dispatch level is "avx512" (see opsKernels). Each has a pure-Go twin
// in ops_kern.go or ops_swiglu.go.

const haveOpsAVX512 = true

//go:noescape
func scores64AVX512(s *float32, q *float32, d int, kt *float32)

//go:noescape
func dotRowsAVX512(s *float32, n int, x *float32, m *float32, stride int, d16 int)

//go:noescape
func axpyRowsAVX512(acc *float32, d16 int, p *float32, n int, m *float32, stride int)

//go:noescape
func expAffineAVX512(dst, x *float32, n int, a, b float32) float32

//go:noescape
func maxAVX512(x *float32, n int) float32

//go:noescape
func swigluAVX512(out, gate, up *float32, n int)

//go:noescape
func swigluBackAVX512(dgate, dup, dout, gate, up *float32, n int)

//go:noescape
func sumSqAVX512(x *float32, n int) float32

//go:noescape
func dot3AVX512(a, b, c *float32, n int) float32

//go:noescape
func mulScaledAVX512(out, x, w *float32, n int, s float32)

//go:noescape
func rmsBackRowAVX512(dx, d, w, x *float32, n int, rs, k float32, acc bool)

//go:noescape
func mulAddScaledAVX512(acc, a, b *float32, n int, s float32)

//go:noescape
func dotAVX512(a, b *float32, n int) float32

//go:noescape
func axpyAVX512(y *float32, a float32, x *float32, n int)

//go:noescape
func scaleAVX512(x *float32, s float32, n int)
