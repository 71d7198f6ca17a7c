package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestLoRABlocks: LoRADown, LoRAInputGrad and LoRAOutputGrad equal the
// separate passes they fuse (Dropout, then the float32 matmuls) on every
// level, with and without dropout, in float32 and (within bf16 rounding,
// as a norm) in ComputeBF16, on row counts that leave a short last block and groups of
// several blocks; and each level gives the same bits on 1, 2 and 3 threads.
func TestLoRABlocks(t *testing.T) {
	defer SetThreads(Threads())
	rng := rand.New(rand.NewPCG(50, 51))
	for _, tc := range []struct{ T, r, in int }{{1, 4, 16}, {37, 8, 40}, {300, 16, 96}, {1100, 4, 33}} {
		T, r, in := tc.T, tc.r, tc.in
		x, A, dz := randVec(rng, T*in, 1), randVec(rng, r*in, 1), randVec(rng, T*r, 1)
		dx0, dA0 := randVec(rng, T*in, 1), randVec(rng, r*in, 1)
		for _, pc := range []struct {
			p float32
			c Compute
		}{{0, ComputeF32}, {0.1, ComputeF32}, {0, ComputeBF16}, {0.1, ComputeBF16}} {
			p, c := pc.p, pc.c
			eachLevel(t, func(t *testing.T) {
				var ref [5][]float32 // the level's first thread count
				for _, th := range []int{1, 2, 3} {
					SetThreads(th)
					name := fmt.Sprintf("T=%d r=%d in=%d p=%g %v threads=%d", T, r, in, p, c, th)
					u := make([]float32, T*r)
					LoRADown(u, x, T, A, r, in, 0.5, 9, p, c)
					dx, dA := append([]float32(nil), dx0...), append([]float32(nil), dA0...)
					LoRAInputGrad(dx, dA, dz, x, A, T, r, in, 9, p, c)
					// the output side, with A as B [in×r] and x as dy
					dB, dzo := append([]float32(nil), dA0...), make([]float32, T*r)
					LoRAOutputGrad(dB, dzo, x, u, A, T, r, in, 0.5, c)
					got := [5][]float32{u, dx, dA, dB, dzo}
					if ref[0] == nil {
						ref = got
						// the separate passes
						xd := make([]float32, T*in)
						Dropout(xd, x, 9, p, false)
						wu := make([]float32, T*r)
						MatMulT(wu, xd, T, NewF32(r, in, A), false)
						Scale(wu, 0.5)
						wdA := append([]float32(nil), dA0...)
						MatMulTN(wdA, dz, xd, T, r, in, true)
						dxd := make([]float32, T*in)
						MatMulN(dxd, dz, T, NewF32(r, in, A), false)
						wdx := append([]float32(nil), dx0...)
						Dropout(wdx, dxd, 9, p, true)
						wdB := append([]float32(nil), dA0...)
						MatMulTN(wdB, x, u, T, in, r, true)
						wdz := make([]float32, T*r)
						MatMulN(wdz, x, T, NewF32(in, r, A), false)
						Scale(wdz, 0.5)
						// bf16 operands: 2⁻⁹ relative per product; as a norm
						tol := 2e-6
						if c == ComputeBF16 && HasBF16Compute() {
							tol = 1e-2
						}
						for k, want := range [5][]float32{wu, wdx, wdA, wdB, wdz} {
							if e := relNormErr(got[k], want); e > tol {
								t.Errorf("%s: %s relative error %.2g > %.2g", name, []string{"u", "dx", "dA", "dB", "dz"}[k], e, tol)
							}
						}
						continue
					}
					for k, what := range []string{"u", "dx", "dA", "dB", "dz"} {
						for i := range got[k] {
							if got[k][i] != ref[k][i] {
								t.Fatalf("%s: %s[%d] = %g, %g on 1 thread", name, what, i, got[k][i], ref[k][i])
							}
						}
					}
				}
			})
		}
	}
}

// relNormErr is ‖got − want‖ / ‖want‖ (‖got − want‖ when want is 0).
func relNormErr(got, want []float32) float64 {
	var d, n float64
	for i, w := range want {
		e := float64(got[i]) - float64(w)
		d += e * e
		n += float64(w) * float64(w)
	}
	if n == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / n)
}
