//go:build !purego

package kernels

// AVX-512F kernels of the fused ops (ops_avx512_amd64.s), the avx512 level's
// opsKern. Each has a pure-Go twin in ops_kern.go, ops_swiglu.go or
// ops_util.go; the wrappers check lengths, the assembly does not.

var avx512Ops = opsKern{
	scores64: scores64AVX, axpyRows: axpyRowsAVX,
	expAffine: expAffineAVX, maxf: maxAVX,
	sumSq: sumSqAVX, dot3: dot3AVX, mulScaled: mulScaledAVX,
	rmsBackRow: rmsBackRowAVX, mulAddScaled: mulAddScaledAVX,
	swiglu: swigluAVX, swigluBack: swigluBackAVX,
	dot: dotAVX, add: addAVX, scale: scaleAVX,
	dropout: dropoutAVX,
}

//go:noescape
func scores64AVX512(s *float32, q *float32, d int, kt *float32)

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

func axpyRowsAVX(acc, p, m []float32, stride int) {
	D := len(acc)
	if D%16 != 0 || len(p) == 0 {
		axpyRowsGo(acc, p, m, stride)
		return
	}
	rowsNeed("axpyRows", m, len(p), stride, D)
	axpyRowsAVX512(&acc[0], D/16, &p[0], len(p), &m[0], stride)
}

func expAffineAVX(dst, x []float32, a, b float32) float32 {
	if len(x) == 0 {
		return 0
	}
	dst = dst[:len(x)] // bounds check for the assembly
	return expAffineAVX512(&dst[0], &x[0], len(x), a, b)
}

func maxAVX(x []float32) float32 {
	_ = x[0]
	return maxAVX512(&x[0], len(x))
}

func swigluAVX(out, gate, up []float32) {
	n := len(out)
	if n == 0 {
		return
	}
	_, _ = gate[n-1], up[n-1]
	swigluAVX512(&out[0], &gate[0], &up[0], n)
}

func swigluBackAVX(dgate, dup, dout, gate, up []float32) {
	n := len(dout)
	if n == 0 {
		return
	}
	_, _, _, _ = dgate[n-1], dup[n-1], gate[n-1], up[n-1]
	swigluBackAVX512(&dgate[0], &dup[0], &dout[0], &gate[0], &up[0], n)
}

func scores64AVX(s, x, kt []float32) {
	_ = s[63]
	if len(x) == 0 {
		clear(s[:64])
		return
	}
	_ = kt[64*len(x)-1]
	scores64AVX512(&s[0], &x[0], len(x), &kt[0])
}

func sumSqAVX(x []float32) float32 {
	if len(x) == 0 {
		return 0
	}
	return sumSqAVX512(&x[0], len(x))
}

func dot3AVX(a, b, c []float32) float32 {
	n := len(a)
	if n == 0 {
		return 0
	}
	_, _ = b[n-1], c[n-1]
	return dot3AVX512(&a[0], &b[0], &c[0], n)
}

func mulScaledAVX(out, x, w []float32, s float32) {
	n := len(out)
	if n == 0 {
		return
	}
	_, _ = x[n-1], w[n-1]
	mulScaledAVX512(&out[0], &x[0], &w[0], n, s)
}

func rmsBackRowAVX(dx, d, w, x []float32, rs, k float32, acc bool) {
	n := len(dx)
	if n == 0 {
		return
	}
	_, _, _ = d[n-1], w[n-1], x[n-1]
	rmsBackRowAVX512(&dx[0], &d[0], &w[0], &x[0], n, rs, k, acc)
}

func mulAddScaledAVX(acc, a, b []float32, s float32) {
	n := len(acc)
	if n == 0 {
		return
	}
	_, _ = a[n-1], b[n-1]
	mulAddScaledAVX512(&acc[0], &a[0], &b[0], n, s)
}

func dotAVX(a, b []float32) float32 {
	n := len(a)
	if n < vecAVXMin {
		return dotGo(a, b)
	}
	_ = b[n-1]
	return dotAVX512(&a[0], &b[0], n)
}

func addAVX(dst, src []float32) {
	n := len(dst)
	if n < vecAVXMin {
		addGo(dst, src)
		return
	}
	_ = src[n-1]
	axpyAVX512(&dst[0], 1, &src[0], n)
}

func scaleAVX(x []float32, s float32) {
	n := len(x)
	if n < vecAVXMin {
		scaleGo(x, s)
		return
	}
	scaleAVX512(&x[0], s, n)
}
