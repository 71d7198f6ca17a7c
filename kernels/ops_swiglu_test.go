package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func swigluRef(gate, up []float64) []float64 {
	out := make([]float64, len(gate))
	for i, g := range gate {
		out[i] = g / (1 + math.Exp(-g)) * up[i]
	}
	return out
}

func TestSwiGLU(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(10, 11))
		for _, n := range []int{0, 1, 2, 3, 7, 16, 31, 67, 5000} {
			gate, up := randVec(rng, n, 6), randVec(rng, n, 2)
			if n > 3 {
				gate[0], gate[1], gate[2] = 100, -100, 0 // saturated sigmoid both ways
			}
			want := swigluRef(to64(gate), to64(up))
			out := make([]float32, n)
			SwiGLU(out, gate, up)
			name := fmt.Sprintf("n=%d", n)
			compare(t, name, out, want, 1e-6, 1e-5)
			// Aliasing: out = gate, then out = up.
			g2, u2 := append([]float32(nil), gate...), append([]float32(nil), up...)
			SwiGLU(g2, g2, up)
			compare(t, name+" out=gate", g2, want, 1e-6, 1e-5)
			SwiGLU(u2, gate, u2)
			compare(t, name+" out=up", u2, want, 1e-6, 1e-5)
		}
	})
}

func TestSwiGLUBackward(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(12, 13))
		for _, n := range []int{1, 2, 5, 16, 67} {
			gate, up, g := randVec(rng, n, 5), randVec(rng, n, 2), randVec(rng, n, 1)
			g64, u64 := to64(gate), to64(up)
			wantDg := numGrad(func(v []float64) float64 { return dot64(swigluRef(v, u64), g) }, g64, 1e-6)
			wantDu := numGrad(func(v []float64) float64 { return dot64(swigluRef(g64, v), g) }, u64, 1e-6)
			dgate, dup := make([]float32, n), make([]float32, n)
			SwiGLUBackward(dgate, dup, g, gate, up)
			name := fmt.Sprintf("n=%d", n)
			compare(t, name+" dgate", dgate, wantDg, 1e-5, 1e-4)
			compare(t, name+" dup", dup, wantDu, 1e-5, 1e-4)
			// In place: gradients written over gate and up.
			gc, uc := append([]float32(nil), gate...), append([]float32(nil), up...)
			SwiGLUBackward(gc, uc, g, gc, uc)
			compare(t, name+" dgate in place", gc, wantDg, 1e-5, 1e-4)
			compare(t, name+" dup in place", uc, wantDu, 1e-5, 1e-4)
			// dout in the dgate buffer (the model reuses it).
			dd := append([]float32(nil), g...)
			SwiGLUBackward(dd, dup, dd, gate, up)
			compare(t, name+" dgate over dout", dd, wantDg, 1e-5, 1e-4)
			compare(t, name+" dup with dout=dgate", dup, wantDu, 1e-5, 1e-4)
		}
	})
}

func TestSwiGLUTwins(t *testing.T) {
	forEachSIMD(t, func(t *testing.T, avxOps *opsKern) {
		rng := rand.New(rand.NewPCG(32, 33))
		for n := 1; n <= 100; n += 1 + n/5 {
			gate, up, d := randVec(rng, n, 12), randVec(rng, n, 2), randVec(rng, n, 1)
			gate[0] = -200 // exp(−g) overflows: silu → −0
			og, oa := make([]float32, n), make([]float32, n)
			goOps.swiglu(og, gate, up)
			avxOps.swiglu(oa, gate, up)
			name := fmt.Sprintf("n=%d", n)
			compare(t, name+" swiglu", oa, to64(og), 1e-7, 2e-6)
			dgg, dug, dga, dua := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
			goOps.swigluBack(dgg, dug, d, gate, up)
			avxOps.swigluBack(dga, dua, d, gate, up)
			compare(t, name+" dgate", dga, to64(dgg), 1e-7, 2e-6)
			compare(t, name+" dup", dua, to64(dug), 1e-7, 2e-6)
		}
	})
}

func BenchmarkSwiGLU(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	n := 512 * 8960
	gate, up, out := randVec(rng, n, 4), randVec(rng, n, 1), make([]float32, n)
	b.SetBytes(int64(n * 12))
	for b.Loop() {
		SwiGLU(out, gate, up)
	}
}
