package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestDropoutTwins: every assembly level's masking pass equals the pure-Go
// twin bit for bit (the mask is part of the training semantics), on awkward
// lengths, offsets, thresholds and an index range that wraps 2³².
func TestDropoutTwins(t *testing.T) {
	forEachSIMD(t, func(t *testing.T, avxOps *opsKern) {
		rng := rand.New(rand.NewPCG(40, 41))
		for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 31, 33, 64, 100, 1000} {
			for _, thr := range []uint32{0, 1, 838861, 1 << 23, 1<<24 - 1, 1 << 24} {
				for _, acc := range []bool{false, true} {
					idx0, k1, k2 := rng.Uint32(), rng.Uint32(), rng.Uint32()
					if n == 33 {
						idx0 = math.MaxUint32 - 20
					}
					off := rng.IntN(4)
					src := randVec(rng, off+n, 3)[off:]
					if n > 0 {
						src[0] = float32(math.Inf(-1)) // dropped: +0, not NaN
					}
					dg := randVec(rng, n, 2)
					da := append([]float32(nil), dg...)
					goOps.dropout(dg, src, idx0, k1, k2, thr, 1.25, acc)
					avxOps.dropout(da, src, idx0, k1, k2, thr, 1.25, acc)
					for i := range dg {
						if math.Float32bits(dg[i]) != math.Float32bits(da[i]) {
							t.Fatalf("n=%d thr=%d acc=%v: element %d = %g, the Go twin's %g", n, thr, acc, i, da[i], dg[i])
						}
					}
				}
			}
		}
	})
}

// TestDropoutMask checks the mask's statistics on every level and thread
// count: the drop rate within 5σ of p, kept values scaled by exactly
// 1/(1−p), neighbours and different keys independent (P(both dropped)
// within 5σ of p²), and the same mask for any thread count, in place or
// not, as accumulation or not (so a forward and its recomputation agree).
func TestDropoutMask(t *testing.T) {
	defer SetThreads(Threads())
	const n = 1<<20 + 13
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(i%97) + 1
	}
	for _, p := range []float32{0.05, 0.1, 0.3, 0.5} {
		var ref []float32
		eachLevel(t, func(t *testing.T) {
			for _, th := range []int{1, 2, 3} {
				SetThreads(th)
				name := fmt.Sprintf("p=%g threads=%d", p, th)
				out := make([]float32, n)
				Dropout(out, src, 42, p, false)
				if ref == nil {
					ref = out
					checkDropStats(t, name, src, out, p)
					other := make([]float32, n)
					Dropout(other, src, 43, p, false)
					both := 0
					for i := range out {
						if out[i] == 0 && other[i] == 0 {
							both++
						}
					}
					checkRate(t, name+" two keys both dropped", both, n, float64(p)*float64(p))
				}
				for i := range out {
					if out[i] != ref[i] {
						t.Fatalf("%s: element %d = %g, %g on the first level and thread count", name, i, out[i], ref[i])
					}
				}
				acc := make([]float32, n)
				for i := range acc {
					acc[i] = 0.5
				}
				Dropout(acc, src, 42, p, true)
				inPlace := append([]float32(nil), src...)
				Dropout(inPlace, inPlace, 42, p, false)
				for i := range out {
					if acc[i] != 0.5+out[i] || inPlace[i] != out[i] {
						t.Fatalf("%s: element %d: accumulated %g, in place %g, want 0.5+%g", name, i, acc[i], inPlace[i], out[i])
					}
				}
			}
		})
	}
}

func checkDropStats(t *testing.T, name string, src, out []float32, p float32) {
	t.Helper()
	scale := 1 / (1 - p)
	dropped, pairs := 0, 0
	for i := range out {
		switch out[i] {
		case 0:
			dropped++
			if i%2 == 1 && out[i-1] == 0 {
				pairs++
			}
		case src[i] * scale:
		default:
			t.Fatalf("%s: element %d = %g, want 0 or %g", name, i, out[i], src[i]*scale)
		}
	}
	checkRate(t, name+" drop rate", dropped, len(out), float64(p))
	checkRate(t, name+" neighbours both dropped", pairs, len(out)/2, float64(p)*float64(p))
}

// checkRate fails when k of n trials is more than 5σ from probability q.
func checkRate(t *testing.T, what string, k, n int, q float64) {
	t.Helper()
	sigma := math.Sqrt(q * (1 - q) / float64(n))
	if got := float64(k) / float64(n); math.Abs(got-q) > 5*sigma {
		t.Errorf("%s: %.5f, want %.5f ± %.5f (5σ)", what, got, q, 5*sigma)
	} else {
		t.Logf("%s: %.5f (want %.5f)", what, got, q)
	}
}

// BenchmarkDropout is the masking pass over one LoRA input of the 0.5B
// training step (2048 tokens × 896).
func BenchmarkDropout(b *testing.B) {
	n := 2048 * 896
	src, dst := make([]float32, n), make([]float32, n)
	b.SetBytes(int64(8 * n))
	for range b.N {
		Dropout(dst, src, 7, 0.05, false)
	}
}
