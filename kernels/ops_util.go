package kernels

import (
	"fmt"
	"math"
)

// Small vector helpers shared by the fused ops. Go does not auto-vectorise, so
// the loops keep 8 independent accumulators: that breaks the add-latency chain
// and lets the out-of-order core overlap iterations.

// vecAVXMin is the length from which the exported vector helpers call the
// assembly (below it the call and dispatch cost more than they save).
const vecAVXMin = 32

// Dot returns Σ a[i]·b[i] over len(a) elements (b must be at least as long).
func Dot(a, b []float32) float32 { return active.Load().ops.dot(a, b) }

// Add computes dst[i] += src[i] over len(dst) elements.
func Add(dst, src []float32) { active.Load().ops.add(dst, src) }

// Scale computes x[i] *= s.
func Scale(x []float32, s float32) { active.Load().ops.scale(x, s) }

func dotGo(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= n; i += 8 {
		aa := a[i : i+8 : i+8]
		bb := b[i : i+8 : i+8]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
		s4 += aa[4] * bb[4]
		s5 += aa[5] * bb[5]
		s6 += aa[6] * bb[6]
		s7 += aa[7] * bb[7]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

func addGo(dst, src []float32) {
	n := len(dst)
	src = src[:n]
	i := 0
	for ; i+8 <= n; i += 8 {
		d := dst[i : i+8 : i+8]
		s := src[i : i+8 : i+8]
		d[0] += s[0]
		d[1] += s[1]
		d[2] += s[2]
		d[3] += s[3]
		d[4] += s[4]
		d[5] += s[5]
		d[6] += s[6]
		d[7] += s[7]
	}
	for ; i < n; i++ {
		dst[i] += src[i]
	}
}

func scaleGo(x []float32, s float32) {
	n := len(x)
	i := 0
	for ; i+8 <= n; i += 8 {
		d := x[i : i+8 : i+8]
		d[0] *= s
		d[1] *= s
		d[2] *= s
		d[3] *= s
		d[4] *= s
		d[5] *= s
		d[6] *= s
		d[7] *= s
	}
	for ; i < n; i++ {
		x[i] *= s
	}
}

// axpy computes y[i] += a·x[i] over len(y) elements.
func axpy(y []float32, a float32, x []float32) {
	n := len(y)
	x = x[:n]
	i := 0
	for ; i+8 <= n; i += 8 {
		d := y[i : i+8 : i+8]
		s := x[i : i+8 : i+8]
		d[0] += a * s[0]
		d[1] += a * s[1]
		d[2] += a * s[2]
		d[3] += a * s[3]
		d[4] += a * s[4]
		d[5] += a * s[5]
		d[6] += a * s[6]
		d[7] += a * s[7]
	}
	for ; i < n; i++ {
		y[i] += a * x[i]
	}
}

// maxf returns the largest element of a non-empty x (NaN-oblivious).
func maxf(x []float32) float32 {
	m0, m1, m2, m3 := x[0], x[0], x[0], x[0]
	n := len(x)
	i := 0
	for ; i+4 <= n; i += 4 {
		xx := x[i : i+4 : i+4]
		m0 = max(m0, xx[0])
		m1 = max(m1, xx[1])
		m2 = max(m2, xx[2])
		m3 = max(m3, xx[3])
	}
	for ; i < n; i++ {
		m0 = max(m0, x[i])
	}
	return max(max(m0, m1), max(m2, m3))
}

// Constants of expf (Cephes): ln2 split in a part exact in float32 and a
// correction, so that x - n·ln2 is computed without cancellation error.
const (
	expHi   = 88.72283
	expLo   = -87.33654 // below this 2^n would be subnormal: the result is flushed to 0
	log2e   = 1.44269504088896341
	ln2Hi   = 0.693359375
	ln2Lo   = -2.12194440e-4
	expP0   = 1.9875691500e-4
	expP1   = 1.3981999507e-3
	expP2   = 8.3334519073e-3
	expP3   = 4.1665795894e-2
	expP4   = 1.6666665459e-1
	expP5   = 5.0000001201e-1
	expHalf = 0.5
)

// expf is a float32 exp accurate to about 2 ulp, several times faster than
// math.Exp. Results below the smallest normal float32 are flushed to 0.
func expf(x float32) float32 {
	if !(x >= expLo) { // also catches NaN
		if x != x {
			return x
		}
		return 0
	}
	if x > expHi {
		return float32(math.Inf(1))
	}
	// Round x·log2(e) to the nearest integer (half away from zero) so |r| ≤ ln2/2.
	t := x * log2e
	if t >= 0 {
		t += expHalf
	} else {
		t -= expHalf
	}
	n := int32(t)
	fn := float32(n)
	r := x - fn*ln2Hi
	r -= fn * ln2Lo
	z := r * r
	p := ((((expP0*r+expP1)*r+expP2)*r+expP3)*r+expP4)*r + expP5
	p = p*z + r + 1
	if n >= 128 { // only at the very top of the range: split the scaling
		return p * 2 * math.Float32frombits(uint32(n-1+127)<<23)
	}
	return p * math.Float32frombits(uint32(n+127)<<23)
}

// checkLen panics with a message naming the op and argument when a slice is
// shorter than the shape says. The ops' signatures have no error result, so a
// shape mismatch is a programming error, reported clearly before any write.
func needLen(op, name string, x []float32, want int) {
	if len(x) < want {
		panic(fmt.Sprintf("kernels.%s: len(%s)=%d, shape needs %d", op, name, len(x), want))
	}
}

// parallelFor runs fn over [0,n) split across cores when the total work
// (n·costPer, roughly in flops) is large enough to pay for the goroutines.
func parallelFor(n, costPer int, fn func(lo, hi int)) {
	if n <= 1 || n*costPer < 1<<15 {
		fn(0, n)
		return
	}
	Parallel(n, fn)
}
