package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// rmsNormRef is the float64 reference forward.
func rmsNormRef(x, w []float64, rows, n int, eps float64) (out, rstd []float64) {
	out = make([]float64, rows*n)
	rstd = make([]float64, rows)
	for r := 0; r < rows; r++ {
		var ss float64
		for i := 0; i < n; i++ {
			ss += x[r*n+i] * x[r*n+i]
		}
		rstd[r] = 1 / math.Sqrt(ss/float64(n)+eps)
		for i := 0; i < n; i++ {
			out[r*n+i] = x[r*n+i] * rstd[r] * w[i]
		}
	}
	return out, rstd
}

func TestRMSNorm(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		const eps = 1e-6
		for _, rows := range []int{1, 3, 70} {
			for n := 1; n <= 67; n += 1 + n/8 {
				x, w := randVec(rng, rows*n, 2), randVec(rng, n, 1.5)
				want, wantR := rmsNormRef(to64(x), to64(w), rows, n, eps)
				out := make([]float32, rows*n)
				rstd := make([]float32, rows)
				RMSNorm(out, x, w, rows, n, eps, rstd)
				name := fmt.Sprintf("rows=%d n=%d", rows, n)
				compare(t, name+" out", out, want, 1e-6, 1e-5)
				compare(t, name+" rstd", rstd, wantR, 0, 1e-5)
				// In place, no rstd.
				RMSNorm(x, x, w, rows, n, eps, nil)
				compare(t, name+" in place", x, want, 1e-6, 1e-5)
			}
		}
		// A long row (hidden size of Qwen2.5-1.5B) checks the float64 accumulation.
		n := 1536
		x, w := randVec(rng, n, 3), randVec(rng, n, 1)
		want, _ := rmsNormRef(to64(x), to64(w), 1, n, eps)
		out := make([]float32, n)
		RMSNorm(out, x, w, 1, n, eps, nil)
		compare(t, "n=1536", out, want, 1e-6, 1e-5)
	})
}

func TestRMSNormBackward(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		const eps = 1e-5
		for _, rows := range []int{1, 2, 5} {
			for _, n := range []int{1, 2, 7, 16, 33, 67} {
				x, w, g := randVec(rng, rows*n, 2), randVec(rng, n, 1.5), randVec(rng, rows*n, 1)
				loss := func(x, w []float64) float64 {
					out, _ := rmsNormRef(x, w, rows, n, eps)
					return dot64(out, g)
				}
				x64, w64 := to64(x), to64(w)
				wantDx := numGrad(func(v []float64) float64 { return loss(v, w64) }, x64, 1e-6)
				wantDw := numGrad(func(v []float64) float64 { return loss(x64, v) }, w64, 1e-6)

				rstd := make([]float32, rows)
				RMSNorm(make([]float32, rows*n), x, w, rows, n, eps, rstd)
				name := fmt.Sprintf("rows=%d n=%d", rows, n)
				dx := randVec(rng, rows*n, 1) // garbage: must be overwritten
				dw := make([]float32, n)
				RMSNormBackward(dx, dw, g, x, w, rstd, rows, n, false)
				compare(t, name+" dx", dx, wantDx, 1e-5, 1e-4)
				compare(t, name+" dw", dw, wantDw, 1e-5, 1e-4)

				// accumulate=true adds to dx; dw always accumulates; nil dw skips it.
				RMSNormBackward(dx, dw, g, x, w, rstd, rows, n, true)
				RMSNormBackward(dx, nil, g, x, w, rstd, rows, n, true)
				for i := range wantDx {
					wantDx[i] *= 3
				}
				for i := range wantDw {
					wantDw[i] *= 2
				}
				compare(t, name+" dx accumulated", dx, wantDx, 3e-5, 1e-4)
				compare(t, name+" dw accumulated", dw, wantDw, 3e-5, 1e-4)
			}
		}
	})
}

func TestRMSNormShapePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("short x did not panic")
		} else if s := fmt.Sprint(r); s != "kernels.RMSNorm: len(x)=3, shape needs 4" {
			t.Fatalf("panic message %q", s)
		}
	}()
	RMSNorm(make([]float32, 4), make([]float32, 3), make([]float32, 2), 2, 2, 1e-6, nil)
}

func TestRMSNormTwins(t *testing.T) {
	forEachSIMD(t, func(t *testing.T, avxOps *opsKern) {
		rng := rand.New(rand.NewPCG(34, 35))
		for n := 0; n <= 200; n += 1 + n/3 {
			a, b, c := randVec(rng, n, 2), randVec(rng, n, 2), randVec(rng, n, 2)
			name := fmt.Sprintf("n=%d", n)
			compare(t, name+" sumSq", []float32{avxOps.sumSq(a)}, []float64{float64(goOps.sumSq(a))}, 1e-6, 1e-5)
			compare(t, name+" dot3", []float32{avxOps.dot3(a, b, c)}, []float64{float64(goOps.dot3(a, b, c))}, 1e-5, 1e-5)
			og, oa := make([]float32, n), make([]float32, n)
			goOps.mulScaled(og, a, b, 0.7)
			avxOps.mulScaled(oa, a, b, 0.7)
			compare(t, name+" mulScaled", oa, to64(og), 0, 0)
			for _, acc := range []bool{false, true} {
				dg, da := randVec(rng, n, 1), make([]float32, n)
				copy(da, dg)
				goOps.rmsBackRow(dg, a, b, c, 0.9, 0.3, acc)
				avxOps.rmsBackRow(da, a, b, c, 0.9, 0.3, acc)
				compare(t, fmt.Sprintf("%s rmsBackRow acc=%v", name, acc), da, to64(dg), 0, 0)
			}
			ag, aa := randVec(rng, n, 1), make([]float32, n)
			copy(aa, ag)
			goOps.mulAddScaled(ag, a, b, 1.3)
			avxOps.mulAddScaled(aa, a, b, 1.3)
			compare(t, name+" mulAddScaled", aa, to64(ag), 0, 0)
		}
	})
}

func BenchmarkRMSNorm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	rows, n := 512, 1536
	x, w := randVec(rng, rows*n, 1), randVec(rng, n, 1)
	out, rstd := make([]float32, rows*n), make([]float32, rows)
	b.SetBytes(int64(rows * n * 8))
	for b.Loop() {
		RMSNorm(out, x, w, rows, n, 1e-6, rstd)
	}
}
