package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func softmaxRef(x []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, v)
	}
	out := make([]float64, len(x))
	var s float64
	for i, v := range x {
		out[i] = math.Exp(v - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

func TestSoftmax(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(14, 15))
		for _, rows := range []int{1, 3, 40} {
			for _, n := range []int{1, 2, 3, 7, 16, 33, 67, 513, 1500} {
				x := randVec(rng, rows*n, 20)
				if n > 2 {
					x[1] = float32(math.Inf(-1)) // masked entry
				}
				var want []float64
				for r := 0; r < rows; r++ {
					want = append(want, softmaxRef(to64(x[r*n:(r+1)*n]))...)
				}
				Softmax(x, rows, n)
				compare(t, fmt.Sprintf("rows=%d n=%d", rows, n), x, want, 1e-7, 1e-5)
			}
		}
		// A fully masked row becomes zeros, not NaN.
		x := []float32{float32(math.Inf(-1)), float32(math.Inf(-1)), 1, 2}
		Softmax(x, 2, 2)
		compare(t, "masked row", x, append([]float64{0, 0}, softmaxRef([]float64{1, 2})...), 1e-7, 1e-6)
	})
}

func TestLogSumExp(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(16, 17))
		for _, rows := range []int{1, 5} {
			for _, n := range []int{1, 7, 513, 151936} {
				x := randVec(rng, rows*n, 20)
				out := make([]float64, rows)
				LogSumExp(out, x, rows, n)
				for r := 0; r < rows; r++ {
					m := math.Inf(-1)
					for _, v := range x[r*n : (r+1)*n] {
						m = max(m, float64(v))
					}
					var s float64
					for _, v := range x[r*n : (r+1)*n] {
						s += math.Exp(float64(v) - m)
					}
					if want := m + math.Log(s); math.Abs(out[r]-want) > 1e-6*max(1, math.Abs(want)) {
						t.Errorf("rows=%d n=%d row %d: %v, want %v", rows, n, r, out[r], want)
					}
				}
			}
		}
		out := []float64{0}
		LogSumExp(out, []float32{float32(math.Inf(-1))}, 1, 1)
		if !math.IsInf(out[0], -1) {
			t.Errorf("all −Inf row: %v", out[0])
		}
	})
}
