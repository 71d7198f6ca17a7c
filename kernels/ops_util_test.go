package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// randVec returns n uniform values in [-amp, amp).
func randVec(rng *rand.Rand, n int, amp float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32((rng.Float64()*2 - 1) * amp)
	}
	return x
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// closeTo reports whether got is within atol + rtol·|want| of want.
func closeTo(got, want, atol, rtol float64) bool {
	if math.IsNaN(got) || math.IsNaN(want) {
		return math.IsNaN(got) && math.IsNaN(want)
	}
	if math.IsInf(want, 0) {
		return got == want
	}
	return math.Abs(got-want) <= atol+rtol*math.Abs(want)
}

// compare fails t at the first element of got that is not close to want.
func compare(t *testing.T, what string, got []float32, want []float64, atol, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !closeTo(float64(got[i]), want[i], atol, rtol) {
			t.Fatalf("%s[%d] = %.8g, want %.8g (diff %.3g)", what, i, got[i], want[i], float64(got[i])-want[i])
		}
	}
}

// numGrad returns the central finite-difference gradient of the float64
// function f at x (x is restored afterwards).
func numGrad(f func(x []float64) float64, x []float64, h float64) []float64 {
	g := make([]float64, len(x))
	for i := range x {
		old := x[i]
		x[i] = old + h
		fp := f(x)
		x[i] = old - h
		fm := f(x)
		x[i] = old
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

// dot64 returns Σ a·b in float64.
func dot64(a []float64, b []float32) float64 {
	var s float64
	for i := range a {
		s += a[i] * float64(b[i])
	}
	return s
}

// reportFlops reports GFLOP/s per wall second and per CPU second (the
// latter summed over threads, so for a parallel run it is per-core speed).
func reportFlops(b *testing.B, flopsPerOp float64, cpu time.Duration) {
	total := flopsPerOp * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu > 0 {
		b.ReportMetric(total/cpu.Seconds()/1e9, "GFLOP/cpu-s")
	}
}

func TestExpf(t *testing.T) {
	var worst float64
	for x := -87.3; x <= 88.7; x += 0.000731 {
		got := float64(expf(float32(x)))
		want := math.Exp(float64(float32(x)))
		rel := math.Abs(got-want) / want
		worst = max(worst, rel)
	}
	if worst > 3e-7 {
		t.Errorf("expf worst relative error %.3g", worst)
	}
	specials := []struct{ x, want float32 }{
		{0, 1}, {float32(math.Inf(-1)), 0}, {-1000, 0}, {float32(math.Inf(1)), float32(math.Inf(1))},
		{89, float32(math.Inf(1))}, {-88, 0},
	}
	for _, c := range specials {
		if got := expf(c.x); got != c.want {
			t.Errorf("expf(%g) = %g, want %g", c.x, got, c.want)
		}
	}
	if got := expf(float32(math.NaN())); got == got {
		t.Errorf("expf(NaN) = %g, want NaN", got)
	}
	// The top of the range must not overflow in the 2^n scaling.
	if got, want := float64(expf(88.72)), math.Exp(float64(float32(88.72))); !closeTo(got, want, 0, 1e-6) {
		t.Errorf("expf(88.72) = %g, want %g", got, want)
	}
}

func TestVectorHelpers(t *testing.T) {
	eachLevel(t, testVectorHelpers)
}

func testVectorHelpers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 300; n += 1 + n/16 {
		a, b := randVec(rng, n, 1), randVec(rng, n, 1)
		var want float64
		for i := range a {
			want += float64(a[i]) * float64(b[i])
		}
		if got := Dot(a, b); !closeTo(float64(got), want, 1e-6, 1e-6) {
			t.Fatalf("Dot n=%d: %g, want %g", n, got, want)
		}
		sum := make([]float64, n)
		scaled := make([]float64, n)
		ax := make([]float64, n)
		for i := range a {
			sum[i] = float64(a[i]) + float64(b[i])
			scaled[i] = float64(a[i]) * 0.75
			ax[i] = float64(a[i]) + 0.5*float64(b[i])
		}
		c := append([]float32(nil), a...)
		Add(c, b)
		compare(t, fmt.Sprintf("Add n=%d", n), c, sum, 1e-7, 1e-7)
		c = append(c[:0], a...)
		Scale(c, 0.75)
		compare(t, fmt.Sprintf("Scale n=%d", n), c, scaled, 1e-7, 1e-7)
		c = append(c[:0], a...)
		axpy(c, 0.5, b)
		compare(t, fmt.Sprintf("axpy n=%d", n), c, ax, 1e-7, 1e-7)
		if n > 0 {
			m := a[0]
			for _, v := range a {
				m = max(m, v)
			}
			if got := maxf(a); got != m {
				t.Fatalf("maxf n=%d: %g, want %g", n, got, m)
			}
		}
	}
}

func TestZigzag(t *testing.T) {
	for n := 1; n < 20; n++ {
		seen := make([]bool, n)
		for i := 0; i < n; i++ {
			j := zigzag(i, n)
			if j < 0 || j >= n || seen[j] {
				t.Fatalf("zigzag(%d,%d)=%d not a permutation", i, n, j)
			}
			seen[j] = true
		}
	}
}

// TestZeroSizes: empty shapes are no-ops, never panics.
func TestZeroSizes(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		RMSNorm(nil, nil, make([]float32, 8), 0, 8, 1e-6, nil)
		RMSNorm(nil, nil, nil, 3, 0, 1e-6, nil)
		RMSNormBackward(nil, nil, nil, nil, nil, make([]float32, 3), 3, 0, false)
		SwiGLU(nil, nil, nil)
		SwiGLUBackward(nil, nil, nil, nil, nil)
		Softmax(nil, 0, 5)
		Softmax(nil, 5, 0)
		LogProbs(nil, nil, 0, 10, nil)
		if l := CrossEntropyGrad(nil, 0, 10, nil, nil); l != 0 {
			t.Fatalf("empty CrossEntropyGrad = %g", l)
		}
		NewRoPETable(nil, 0).Apply(nil, 0, 4, 0, nil)
		Attention(nil, nil, nil, nil, nil, 0, 0, 2, 1, 16, 0.25, nil)
		AttentionBackward(nil, nil, nil, nil, nil, nil, nil, nil, nil, 0, 0, 2, 1, 16, 0.25, nil)
		// Keys but no queries, and queries with no keys at all.
		k := make([]float32, 5*16)
		Attention(nil, nil, nil, k, k, 0, 5, 2, 1, 16, 0.25, nil)
		out, lse := randVec(rand.New(rand.NewPCG(1, 1)), 2*16, 1), make([]float32, 2)
		Attention(out, lse, make([]float32, 2*16), nil, nil, 1, 0, 2, 1, 16, 0.25, make([]KeySpan, 2))
		for i := range out {
			if out[i] != 0 {
				t.Fatalf("query without keys: out[%d] = %g", i, out[i])
			}
		}
		if !math.IsInf(float64(lse[0]), -1) {
			t.Fatalf("query without keys: lse = %g", lse[0])
		}
		dq := randVec(rand.New(rand.NewPCG(1, 1)), 2*16, 1)
		AttentionBackward(dq, nil, nil, make([]float32, 2*16), make([]float32, 2*16), nil, nil, out, lse, 1, 0, 2, 1, 16, 0.25, make([]KeySpan, 2))
		for i := range dq {
			if dq[i] != 0 {
				t.Fatalf("query without keys: dq[%d] = %g", i, dq[i])
			}
		}
	})
}
