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
