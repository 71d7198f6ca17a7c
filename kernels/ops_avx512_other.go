//go:build !amd64

package kernels

// Stubs so the dispatch code compiles off amd64; never called there.

func dotRowsAVX512(s *float32, n int, x *float32, m *float32, stride int, d16 int) {
	panic("kernels: AVX-512 unavailable")
}

func axpyRowsAVX512(acc *float32, d16 int, p *float32, n int, m *float32, stride int) {
	panic("kernels: AVX-512 unavailable")
}

func gerRowsAVX512(m *float32, stride int, p *float32, n int, x *float32, d16 int) {
	panic("kernels: AVX-512 unavailable")
}

func expAffineAVX512(dst, x *float32, n int, a, b float32) float32 {
	panic("kernels: AVX-512 unavailable")
}

func maxAVX512(x *float32, n int) float32 { panic("kernels: AVX-512 unavailable") }

const haveOpsAVX512 = false

func swigluAVX512(out, gate, up *float32, n int) { panic("kernels: AVX-512 unavailable") }

func swigluBackAVX512(dgate, dup, dout, gate, up *float32, n int) {
	panic("kernels: AVX-512 unavailable")
}
