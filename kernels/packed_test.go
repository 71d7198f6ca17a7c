package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// testPacked checks that MatMulTCompute by a prepacked w gives bit for bit
// what it gives unpacked (itself checked against float64 in testT and
// testTBF16) on this level, in both compute modes.
func testPacked(t *testing.T, r *rand.Rand, m, n, k int, dt DType, acc bool) {
	t.Helper()
	x := randF32(r, m*k)
	y0 := randF32(r, m*n)
	for _, c := range []Compute{ComputeF32, ComputeBF16} {
		w := randMatrix(r, n, k, dt)
		want := slices.Clone(y0)
		MatMulTCompute(want, x, m, w, acc, c)
		w.Pack(c)
		if c == ComputeBF16 && !HasBF16Compute() {
			if w.Packed(c) || w.PackBytes(c) != 0 {
				t.Fatalf("packed for emulated ComputeBF16")
			}
			continue
		}
		if !w.Packed(c) || w.Packed(otherMode(c)) {
			t.Fatalf("Pack(%v) of %d×%d %v: Packed %v, other mode %v", c, n, k, dt, w.Packed(c), w.Packed(otherMode(c)))
		}
		got := slices.Clone(y0)
		MatMulTCompute(got, x, m, w, acc, c)
		eqF32(t, fmt.Sprintf("packed MatMulT m=%d n=%d k=%d %v acc=%v %v", m, n, k, dt, acc, c), got, want)
		// used in the other mode, the copy is ignored
		other := slices.Clone(y0)
		MatMulTCompute(other, x, m, w, acc, otherMode(c))
		ref := slices.Clone(y0)
		MatMulTCompute(ref, x, m, unpackedCopy(w), acc, otherMode(c))
		eqF32(t, "prepacked for the other mode", other, ref)
	}
}

func otherMode(c Compute) Compute {
	if c == ComputeF32 {
		return ComputeBF16
	}
	return ComputeF32
}

// unpackedCopy is w without its prepacked copy.
func unpackedCopy(w *Matrix) *Matrix {
	c := *w
	c.packed = nil
	return &c
}

func TestMatMulTPacked(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for i, sh := range shapes(r) {
			for _, dt := range []DType{F32, BF16} {
				testPacked(t, r, sh[0], sh[1], sh[2], dt, i%2 == 1)
			}
		}
		threads := Threads()
		for _, th := range []int{1, 3} {
			SetThreads(th)
			testPacked(t, r, 130, 300, 17, BF16, true)
			testPacked(t, r, 37, 100, 45, F32, false)
		}
		SetThreads(threads)
		if !testing.Short() {
			testPacked(t, r, 300, 4864, 896, BF16, false) // crosses MC, KC and (generic) NC
			testPacked(t, r, 250, 3200, 300, F32, true)
		}
	})
}

// TestMatMulTRows: a block of w's rows, from w's prepacked copy or not,
// gives bit for bit what MatMulT (MatMulTCompute) gives on that block alone,
// on every level, with one thread and with several. With ComputeBF16 a few
// rows, and CPUs without AVX512_BF16, take float32 math on x rounded to
// bfloat16: the same products, so every path is held to a float64
// reference of bf16(x)·wᵀ too.
func TestMatMulTRows(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(15, 16))
		threads := Threads()
		defer SetThreads(threads)
		for _, th := range []int{1, 3} {
			SetThreads(th)
			for _, mode := range []struct {
				dt DType
				c  Compute
			}{{F32, ComputeF32}, {BF16, ComputeF32}, {BF16, ComputeBF16}} {
				for _, sh := range [][3]int{{1, 300, 40}, {8, 300, 40}, {9, 700, 70}, {101, 1000, 300}, {40, 130, 17}} {
					m, n, k := sh[0], sh[1], sh[2]
					w := randMatrix(r, n, k, mode.dt)
					x := randF32(r, m*k)
					xr := make([]float32, len(x))
					for i, v := range x {
						xr[i] = BF16ToF32(F32ToBF16(v))
					}
					for _, packed := range []bool{false, true} {
						if packed {
							w.Pack(mode.c)
						}
						for _, b := range [][2]int{{0, n}, {64, n}, {128, min(n, 128+70)}, {0, 64}, {n / 64 * 64, n}} {
							lo, hi := b[0], b[1]
							y0 := randF32(r, m*(hi-lo))
							want, got := slices.Clone(y0), slices.Clone(y0)
							block := unpackedCopy(w).RowRange(lo, hi)
							switch {
							case mode.c == ComputeF32:
								MatMulT(want, x, m, block, true)
							case HasBF16Compute() && m > gemvMaxM && hi-lo > gemvMaxN:
								MatMulTCompute(want, x, m, block, true, ComputeBF16)
							default:
								MatMulT(want, xr, m, block, true)
							}
							MatMulTRows(got, x, m, w, lo, hi, true, mode.c)
							what := fmt.Sprintf("MatMulTRows m=%d rows [%d,%d) of %d×%d %v %v packed=%v threads=%d", m, lo, hi, n, k, mode.dt, mode.c, packed, th)
							eqF32(t, what, got, want)
							if mode.c != ComputeBF16 {
								continue
							}
							for i := range m {
								for j := range hi - lo {
									ref, mag := float64(y0[i*(hi-lo)+j]), math.Abs(float64(y0[i*(hi-lo)+j]))
									for p := range k {
										v := float64(xr[i*k+p]) * float64(BF16ToF32(w.BF16[(lo+j)*k+p]))
										ref, mag = ref+v, mag+math.Abs(v)
									}
									if d := math.Abs(float64(got[i*(hi-lo)+j]) - ref); d > 1e-6*mag {
										t.Fatalf("%s: [%d,%d] = %g, float64 reference %g", what, i, j, got[i*(hi-lo)+j], ref)
									}
								}
							}
						}
					}
				}
			}
		}
	})
}

// A packed copy made for one level is ignored on another.
func TestPackedOtherLevel(t *testing.T) {
	defer SetLevel(Level())
	r := rand.New(rand.NewPCG(13, 14))
	x := randF32(r, 40*70)
	w := randMatrix(r, 90, 70, BF16)
	want := make([]float32, 40*90)
	if err := SetLevel("generic"); err != nil {
		t.Fatal(err)
	}
	MatMulT(want, x, 40, w, false)
	SetLevel(Levels()[0])
	w.Pack(ComputeF32)
	if Levels()[0] == "generic" {
		t.Skip("one level only")
	}
	SetLevel("generic")
	if w.Packed(ComputeF32) {
		t.Fatal("Packed() true on another level")
	}
	got := make([]float32, len(want))
	MatMulT(got, x, 40, w, false)
	eqF32(t, "MatMulT, packed for another level", got, want)
}

func TestPackSkips(t *testing.T) {
	for _, w := range []*Matrix{NewF32(0, 5, nil), NewBF16(3, 0, nil)} {
		w.Pack(ComputeF32)
		if w.Packed(ComputeF32) {
			t.Fatalf("empty %d×%d packed", w.Rows, w.Cols)
		}
	}
}
