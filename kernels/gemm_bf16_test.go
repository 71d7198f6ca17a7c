package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func roundBF16(v float32) float64 { return float64(BF16ToF32(F32ToBF16(v))) }

// testTBF16 checks MatMulTCompute(ComputeBF16) against float64 products of
// the bf16-rounded inputs.
func testTBF16(t *testing.T, r *rand.Rand, m, n, k int, dt DType, acc bool) {
	x := randF32(r, m*k)
	w := randMatrix(r, n, k, dt)
	y := randF32(r, m*n)
	ref := make([]float64, m*n)
	scale := make([]float64, m*n)
	pick := picker(r, m, n, k)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			if !pick(i, j) {
				scale[i*n+j] = -1
				continue
			}
			var s, a float64
			if acc {
				s, a = float64(y[i*n+j]), math.Abs(float64(y[i*n+j]))
			}
			for p := 0; p < k; p++ {
				wv := wAt(w, j, p)
				if dt == F32 {
					wv = roundBF16(float32(wv))
				}
				v := roundBF16(x[i*k+p]) * wv
				s += v
				a += math.Abs(v)
			}
			ref[i*n+j], scale[i*n+j] = s, a
		}
	}
	MatMulTCompute(y, x, m, w, acc, ComputeBF16)
	check(t, fmt.Sprintf("MatMulTCompute(bf16) m=%d n=%d k=%d %v acc=%v", m, n, k, dt, acc), y, ref, scale, k)
}

func TestMatMulTBF16Compute(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		t.Logf("native BF16 dot product: %v", HasBF16Compute())
		r := rand.New(rand.NewPCG(11, 12))
		for i, sh := range shapes(r) {
			testTBF16(t, r, sh[0], sh[1], sh[2], []DType{BF16, F32}[i%2], i%3 == 0)
		}
		if !testing.Short() && HasBF16Compute() {
			testTBF16(t, r, 250, 3200, 600, BF16, true)
			testTBF16(t, r, 20, 300, 1001, F32, false)
		}
	})
}

// testNBF16 checks MatMulNCompute(ComputeBF16) against float64 products of
// the bf16-rounded inputs (exact float32 ones where it falls back).
func testNBF16(t *testing.T, r *rand.Rand, m, n, k int, dt DType, acc bool) {
	dy := randF32(r, m*n)
	w := randMatrix(r, n, k, dt)
	dx := randF32(r, m*k)
	native := HasBF16Compute() && k > gemvMaxN
	ref := make([]float64, m*k)
	scale := make([]float64, m*k)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			var s, a float64
			if acc {
				s, a = float64(dx[i*k+p]), math.Abs(float64(dx[i*k+p]))
			}
			for j := 0; j < n; j++ {
				wv, dv := wAt(w, j, p), float64(dy[i*n+j])
				if native {
					wv, dv = roundBF16(float32(wv)), roundBF16(dy[i*n+j])
				}
				s += dv * wv
				a += math.Abs(dv * wv)
			}
			ref[i*k+p], scale[i*k+p] = s, a
		}
	}
	MatMulNCompute(dx, dy, m, w, acc, ComputeBF16)
	check(t, fmt.Sprintf("MatMulNCompute(bf16) m=%d n=%d k=%d %v acc=%v", m, n, k, dt, acc), dx, ref, scale, n)
}

func TestMatMulNBF16Compute(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(15, 16))
		for i, sh := range [][3]int{{1, 40, 40}, {7, 33, 65}, {8, 64, 96}, {13, 101, 257}, {20, 7, 600}, {128, 70, 130}, {64, 600, 33}, {3, 17, 32}} {
			testNBF16(t, r, sh[0], sh[1], sh[2], []DType{BF16, F32}[i%2], i%3 == 0)
		}
		if !testing.Short() && HasBF16Compute() {
			testNBF16(t, r, 200, 1000, 700, BF16, true)
		}
	})
}

// TestMatMulTBF16Edge runs the 8-row edge kernel and prepacked pairs (150
// pairs: two KC blocks; m = 300 > n splits rows across the pool).
func TestMatMulTBF16Edge(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(17, 18))
		for _, m := range []int{20, 128, 300} {
			x := randF32(r, m*300)
			w := randMatrix(r, 70, 300, BF16)
			want := make([]float32, m*70)
			MatMulTCompute(want, x, m, w, false, ComputeBF16)
			w.Pack(ComputeBF16)
			got := make([]float32, m*70)
			MatMulTCompute(got, x, m, w, false, ComputeBF16)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("m=%d: prepacked %g, unpacked %g at %d", m, got[i], want[i], i)
				}
			}
		}
	})
}

func TestComputeString(t *testing.T) {
	if ComputeBF16.String() != "bf16" || ComputeF32.String() != "f32" {
		t.Fatal("Compute.String")
	}
}

// TestCvtBF16Twin compares the assembly rounding with F32ToBF16 on normal
// values, exact ties, infinities and NaN (denormals differ by design).
func TestCvtBF16Twin(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		l := active.Load()
		if l.cvtBF16 == nil {
			t.Skip("no native bf16 conversion")
		}
		r := rand.New(rand.NewPCG(13, 14))
		src := randF32(r, 1000)
		src = append(src, 1+0x1p-8, 1+3*0x1p-8, -1-0x1p-8, float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 3.4e38, float32(math.NaN()))
		got := make([]uint16, len(src))
		want := make([]uint16, len(src))
		l.cvtBF16(got, src)
		cvtBF16Go(want, src)
		for i := range src {
			gn, wn := math.IsNaN(float64(BF16ToF32(got[i]))), math.IsNaN(float64(BF16ToF32(want[i])))
			if gn != wn || (!gn && got[i] != want[i]) {
				t.Fatalf("bf16(%g): asm %#04x, Go %#04x", src[i], got[i], want[i])
			}
		}
	})
}

// TestPackAPairs checks the pair kernels' A panels: the assembly rounding
// against the Go rounding, and rounding float32 rows while packing against
// packing rows rounded beforehand, over odd lengths, partial groups and
// edge rows.
func TestPackAPairs(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		l := active.Load()
		if l.kernBF16 == nil {
			t.Skip("no native BF16 dot product: no pair panels")
		}
		r := rand.New(rand.NewPCG(19, 20))
		for _, sh := range [][4]int{{12, 16, 0, 8}, {7, 35, 3, 16}, {30, 301, 20, 128}, {5, 9, 0, 5}, {24, 64, 16, 16}} {
			m, k, q0, kc2 := sh[0], sh[1], sh[2], sh[3]
			x := randF32(r, m*k)
			k2 := (k + 1) / 2
			xp := make([]float32, m*k2) // rows rounded to pairs beforehand
			for i := 0; i < m; i++ {
				for q := 0; q < k2; q++ {
					var hi float32
					if 2*q+1 < k {
						hi = x[i*k+2*q+1]
					}
					xp[i*k2+q] = math.Float32frombits(pairBF16(x[i*k+2*q], hi))
				}
			}
			kc2 = min(kc2, k2-q0)
			mcp := (m + l.mr - 1) / l.mr * l.mr
			got, want := randF32(r, mcp*pairSteps(kc2)), randF32(r, mcp*pairSteps(kc2))
			packAPairs(l, got, matA{f: x, rs: k, cs: 1, round: true, kk: k}, 0, m, q0, kc2, l.mr)
			packAPairs(l, want, matA{f: xp, rs: k2, cs: 1}, 0, m, q0, kc2, l.mr)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("m=%d k=%d q0=%d kc2=%d: [%d] rounded while packing %#x, beforehand %#x", m, k, q0, kc2, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
				}
			}
			if l.packPairs != nil { // the assembly against packAPairs's Go rounding
				goOnly := *l
				goOnly.packPairs = nil
				packAPairs(&goOnly, want, matA{f: x, rs: k, cs: 1, round: true, kk: k}, 0, m, q0, kc2, l.mr)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("m=%d k=%d q0=%d kc2=%d: [%d] packPairs %#x, Go %#x", m, k, q0, kc2, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
					}
				}
			}
		}
	})
}
