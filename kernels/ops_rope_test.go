package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func ropeInvFreq(D int, theta float64) []float32 {
	f := make([]float32, D/2)
	for i := range f {
		f[i] = float32(1 / math.Pow(theta, float64(2*i)/float64(D)))
	}
	return f
}

// ropeRef rotates x [T×heads×D] in float64 by sign·θ (HF rotate_half layout).
func ropeRef(x []float64, invFreq []float32, T, heads, D int, pos []int32, sign float64) []float64 {
	out := make([]float64, len(x))
	half := D / 2
	for t := 0; t < T; t++ {
		for h := 0; h < heads; h++ {
			b := (t*heads + h) * D
			for i := 0; i < half; i++ {
				a := float64(float32(pos[t]) * invFreq[i])
				c, s := math.Cos(a), sign*math.Sin(a)
				x1, x2 := x[b+i], x[b+half+i]
				out[b+i] = x1*c - x2*s
				out[b+half+i] = x2*c + x1*s
			}
		}
	}
	return out
}

func TestRoPE(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, D := range []int{2, 8, 16, 64, 128} {
		for _, T := range []int{1, 5, 37} {
			heads := 3
			invFreq := ropeInvFreq(D, 1e6)
			tab := NewRoPETable(invFreq, 20) // positions ≥ 20 are computed on the fly
			pos := make([]int32, T)
			for i := range pos {
				pos[i] = int32(rng.IntN(40))
			}
			pos[0] = 19
			x := randVec(rng, T*heads*D, 1)
			name := fmt.Sprintf("D=%d T=%d", D, T)
			y := append([]float32(nil), x...)
			tab.Apply(y, T, heads, D, pos)
			compare(t, name+" Apply", y, ropeRef(to64(x), invFreq, T, heads, D, pos, 1), 1e-6, 1e-6)

			// Backward: ∂(Σ rope(x)·g)/∂x by finite differences on the reference.
			g := randVec(rng, T*heads*D, 1)
			// (Large cases use the analytic transpose, to keep the test fast.)
			want := ropeRef(to64(g), invFreq, T, heads, D, pos, -1)
			if len(x) <= 2000 {
				want = numGrad(func(v []float64) float64 {
					return dot64(ropeRef(v, invFreq, T, heads, D, pos, 1), g)
				}, to64(x), 1e-6)
			}
			dx := append([]float32(nil), g...)
			tab.ApplyBackward(dx, T, heads, D, pos)
			compare(t, name+" ApplyBackward", dx, want, 1e-6, 1e-5)

			// Round trip.
			tab.ApplyBackward(y, T, heads, D, pos)
			compare(t, name+" round trip", y, to64(x), 1e-6, 1e-5)
		}
	}
}

func TestRoPETableMatchesOnTheFly(t *testing.T) {
	invFreq := ropeInvFreq(64, 1e4)
	big, small := NewRoPETable(invFreq, 4096), NewRoPETable(invFreq, 0)
	rng := rand.New(rand.NewPCG(9, 9))
	pos := []int32{0, 1, 4095, 2047, 17}
	x := randVec(rng, len(pos)*2*64, 1)
	a, b := append([]float32(nil), x...), append([]float32(nil), x...)
	big.Apply(a, len(pos), 2, 64, pos)
	small.Apply(b, len(pos), 2, 64, pos)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("table and on-the-fly rotation differ at %d: %g vs %g", i, a[i], b[i])
		}
	}
	if big.HeadDim() != 64 || big.MaxPos() != 4096 {
		t.Fatalf("HeadDim %d MaxPos %d", big.HeadDim(), big.MaxPos())
	}
}

func TestRoPEWrongHeadDimPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("no panic")
		}
	}()
	NewRoPETable(ropeInvFreq(8, 1e4), 4).Apply(make([]float32, 16), 1, 1, 16, []int32{0})
}
