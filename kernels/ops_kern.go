package kernels

import "fmt"

// opsKern is the set of inner kernels the fused ops are built from, in a
// pure-Go and an AVX-512 flavour chosen per call from the package's dispatch
// level, so SetLevel("generic") runs the ops on the Go twins too.
type opsKern struct {
	// scores64 sets s[0:64] = Σ_i x[i] · kt[64i : 64i+64] for i < len(x): the
	// dot products of x with 64 rows stored transposed (kt [len(x) × 64]).
	scores64 func(s, x, kt []float32)
	// dotRows sets s[j] = x · m[j·stride : j·stride+len(x)] for j < len(s)
	// (row-major keys, one horizontal sum per key: used when too few query
	// rows share the keys to pay for transposing them).
	dotRows func(s, x, m []float32, stride int)
	// axpyRows computes acc += Σ_j p[j] · m[j·stride : j·stride+len(acc)].
	axpyRows func(acc, p, m []float32, stride int)
	// expAffine sets dst[i] = exp(a·x[i] − b) over len(x) and returns Σ dst[i]
	// (summed in float32: callers keep len(x) ≤ 512). dst may equal x.
	expAffine func(dst, x []float32, a, b float32) float32
	// maxf returns the largest element of a non-empty x.
	maxf func(x []float32) float32
	// sumSq returns Σ x[i]² and dot3 Σ (a[i]·b[i])·c[i], summed in float32
	// (callers pass chunks of at most rmsChunk and add them in float64).
	sumSq func(x []float32) float32
	dot3  func(a, b, c []float32) float32
	// mulScaled sets out[i] = (x[i]·s)·w[i]; out may alias x.
	mulScaled func(out, x, w []float32, s float32)
	// rmsBackRow sets (or with acc adds to) dx[i] the value (rs·d[i])·w[i] − k·x[i].
	rmsBackRow func(dx, d, w, x []float32, rs, k float32, acc bool)
	// mulAddScaled computes acc[i] += (a[i]·b[i])·s.
	mulAddScaled func(acc, a, b []float32, s float32)
	// swiglu and swigluBack are SwiGLU and SwiGLUBackward on one chunk
	// (lengths already checked).
	swiglu     func(out, gate, up []float32)
	swigluBack func(dgate, dup, dout, gate, up []float32)
}

var (
	goOps = opsKern{
		scores64: scores64Go, dotRows: dotRowsGo, axpyRows: axpyRowsGo,
		expAffine: expAffineGo, maxf: maxf,
		sumSq: sumSqGo, dot3: dot3Go, mulScaled: mulScaled,
		rmsBackRow: rmsBackRowGo, mulAddScaled: mulAddScaledGo,
		swiglu: swigluGo, swigluBack: swigluBackGo,
	}
	avxOps = opsKern{
		scores64: scores64AVX, dotRows: dotRowsAVX, axpyRows: axpyRowsAVX,
		expAffine: expAffineAVX, maxf: maxAVX,
		sumSq: sumSqAVX, dot3: dot3AVX, mulScaled: mulScaledAVX,
		rmsBackRow: rmsBackRowAVX, mulAddScaled: mulAddScaledAVX,
		swiglu: swigluAVX, swigluBack: swigluBackAVX,
	}
)

// opsKernels returns the kernels for the active dispatch level.
func opsKernels() *opsKern {
	if useOpsAVX512() {
		return &avxOps
	}
	return &goOps
}

// useOpsAVX512 reports whether the active level is avx512 (which the
// dispatch code only offers when the CPU has AVX-512F).
func useOpsAVX512() bool { return haveOpsAVX512 && Level() == "avx512" }

func scores64Go(s, x, kt []float32) {
	s = s[:64]
	clear(s)
	for i, xi := range x {
		axpy(s, xi, kt[64*i:64*i+64])
	}
}

func dotRowsGo(s, x, m []float32, stride int) {
	D := len(x)
	for j := range s {
		s[j] = Dot(x, m[j*stride:j*stride+D])
	}
}

func axpyRowsGo(acc, p, m []float32, stride int) {
	D := len(acc)
	for j, pj := range p {
		axpy(acc, pj, m[j*stride:j*stride+D])
	}
}

func expAffineGo(dst, x []float32, a, b float32) float32 {
	n := len(x)
	dst = dst[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		xx := x[i : i+4 : i+4]
		d := dst[i : i+4 : i+4]
		e0, e1, e2, e3 := expf(a*xx[0]-b), expf(a*xx[1]-b), expf(a*xx[2]-b), expf(a*xx[3]-b)
		d[0], d[1], d[2], d[3] = e0, e1, e2, e3
		s0 += e0
		s1 += e1
		s2 += e2
		s3 += e3
	}
	for ; i < n; i++ {
		e := expf(a*x[i] - b)
		dst[i] = e
		s0 += e
	}
	return (s0 + s1) + (s2 + s3)
}

// rowsNeed is how many elements len(rows) strided rows of width D span; the
// assembly does no bounds checks, so the wrappers check before calling.
func rowsNeed(op string, m []float32, rows, stride, D int) {
	if rows > 0 && len(m) < (rows-1)*stride+D {
		panic(fmt.Sprintf("kernels.%s: %d rows of %d with stride %d need %d elements, have %d", op, rows, D, stride, (rows-1)*stride+D, len(m)))
	}
}

func dotRowsAVX(s, x, m []float32, stride int) {
	D := len(x)
	if D%16 != 0 || len(s) == 0 {
		dotRowsGo(s, x, m, stride)
		return
	}
	rowsNeed("dotRows", m, len(s), stride, D)
	dotRowsAVX512(&s[0], len(s), &x[0], &m[0], stride, D/16)
}

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
