package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// eachLevel runs f under every level this CPU has (the pure-Go twins
// included), restoring the level afterwards.
func eachLevel(t *testing.T, f func(t *testing.T)) {
	old := Level()
	defer SetLevel(old)
	for _, l := range Levels() {
		if err := SetLevel(l); err != nil {
			t.Fatal(err)
		}
		t.Run(l, f)
	}
}

// forEachSIMD runs f on the fused-op kernels of every assembly level this
// CPU has, to compare them with goOps.
func forEachSIMD(t *testing.T, f func(t *testing.T, ops *opsKern)) {
	n := 0
	for _, l := range levelTables {
		if l != genericImpl {
			t.Run(l.name, func(t *testing.T) { f(t, &l.ops) })
			n++
		}
	}
	if n == 0 {
		t.Skip("no assembly level on this CPU (or a purego build)")
	}
}

// TestOpsKernelTwins compares every assembly kernel with its pure-Go twin on
// random awkward sizes, offsets and strides.
func TestOpsKernelTwins(t *testing.T) {
	forEachSIMD(t, func(t *testing.T, avxOps *opsKern) {
		rng := rand.New(rand.NewPCG(30, 31))
		for _, D := range []int{16, 32, 48, 64, 80, 128, 256} {
			for _, n := range []int{1, 2, 3, 5, 17, 64} {
				stride := D + 16*rng.IntN(3) + rng.IntN(2)*D // rows need not be adjacent
				off := rng.IntN(5)                           // unaligned start
				m := randVec(rng, off+(n-1)*stride+D, 1)[off:]
				p := randVec(rng, n, 1)
				name := fmt.Sprintf("D=%d n=%d stride=%d", D, n, stride)
				ag, aa := randVec(rng, D, 1), make([]float32, D)
				copy(aa, ag)
				goOps.axpyRows(ag, p, m, stride)
				avxOps.axpyRows(aa, p, m, stride)
				compare(t, name+" axpyRows", aa, to64(ag), 1e-5, 1e-5)
			}
		}
		for _, D := range []int{0, 1, 2, 3, 8, 63, 64, 128} {
			x, kt := randVec(rng, D, 1), randVec(rng, 64*D+3, 1)[3:]
			sg, sa := randVec(rng, 64, 1), randVec(rng, 64, 1) // overwritten
			goOps.scores64(sg, x, kt)
			avxOps.scores64(sa, x, kt)
			compare(t, fmt.Sprintf("scores64 D=%d", D), sa, to64(sg), 1e-5, 1e-5)
		}
		for n := 1; n <= 300; n += 1 + n/4 {
			x := randVec(rng, n, 30)
			x[rng.IntN(n)] = -200 // deep underflow
			a, b := float32(rng.Float64()+0.5), float32(rng.Float64()*10)
			dg, da := make([]float32, n), make([]float32, n)
			sg := goOps.expAffine(dg, x, a, b)
			sa := avxOps.expAffine(da, x, a, b)
			name := fmt.Sprintf("n=%d", n)
			// The Go twin flushes results below 2^-126 to zero, the assembly
			// returns subnormals: hence the tiny absolute tolerance.
			compare(t, name+" expAffine", da, to64(dg), 1e-37, 5e-7)
			compare(t, name+" expAffine sum", []float32{sa}, []float64{float64(sg)}, 0, 1e-5)
			// In place.
			xa := append([]float32(nil), x...)
			avxOps.expAffine(xa, xa, a, b)
			compare(t, name+" expAffine in place", xa, to64(da), 0, 0)

			if got, want := avxOps.maxf(x), goOps.maxf(x); got != want {
				t.Fatalf("%s maxf: %g, want %g", name, got, want)
			}
		}
	})
}

// TestExpAffineSpecials checks the assembly exp at the edges of its range.
func TestExpAffineSpecials(t *testing.T) {
	forEachSIMD(t, func(t *testing.T, avxOps *opsKern) {
		inf := float32(1) / float32(zero())
		x := []float32{-inf, inf, 0, 88.7, 89, -87, -100, 1000, -1000}
		got := make([]float32, len(x))
		avxOps.expAffine(got, x, 1, 0)
		want := []float32{0, inf, 1, expf(88.7), inf, expf(-87), 0, inf, 0}
		for i := range x {
			if i == 6 { // subnormal in assembly, flushed in Go
				if got[i] < 0 || got[i] > 1e-43 {
					t.Errorf("exp(%g) = %g, want ~3.7e-44", x[i], got[i])
				}
				continue
			}
			if !closeTo(float64(got[i]), float64(want[i]), 0, 5e-7) {
				t.Errorf("exp(%g) = %g, want %g", x[i], got[i], want[i])
			}
		}
		nan := inf - inf
		if r := avxOps.expAffine(got[:1], []float32{nan}, 1, 0); r == r {
			t.Errorf("exp(NaN) sum = %g, want NaN", r)
		}
	})
}

func zero() float64 { return 0 }
