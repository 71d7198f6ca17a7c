package kernels

import "fmt"

// opsKern is the set of inner kernels the fused ops are built from: each
// dispatch level holds one (pure Go, AVX2 or AVX-512), so SetLevel("generic")
// runs the ops on the Go twins too.
type opsKern struct {
	// scores64 sets s[0:64] = Σ_i x[i] · kt[64i : 64i+64] for i < len(x): the
	// dot products of x with 64 rows stored transposed (kt [len(x) × 64]).
	scores64 func(s, x, kt []float32)
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
	// dot, add and scale are Dot, Add and Scale.
	dot   func(a, b []float32) float32
	add   func(dst, src []float32)
	scale func(x []float32, s float32)
	// dropout is Dropout's pass over one chunk of the mask (ops_dropout.go).
	dropout func(dst, src []float32, idx0, k1, k2, thr uint32, scale float32, acc bool)
}

// goOps are the pure-Go twins, the generic level's ops.
var goOps = opsKern{
	scores64: scores64Go, axpyRows: axpyRowsGo,
	expAffine: expAffineGo, maxf: maxf,
	sumSq: sumSqGo, dot3: dot3Go, mulScaled: mulScaled,
	rmsBackRow: rmsBackRowGo, mulAddScaled: mulAddScaledGo,
	swiglu: swigluGo, swigluBack: swigluBackGo,
	dot: dotGo, add: addGo, scale: scaleGo,
	dropout: dropoutGo,
}

// opsKernels returns the kernels of the active dispatch level.
func opsKernels() *opsKern { return &active.Load().ops }

func scores64Go(s, x, kt []float32) {
	s = s[:64]
	clear(s)
	for i, xi := range x {
		axpy(s, xi, kt[64*i:64*i+64])
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
