package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// forEachLevel runs f with every level this CPU supports forced in turn.
func forEachLevel(t *testing.T, f func(t *testing.T)) {
	defer SetLevel(Level())
	for _, name := range []string{"avx512", "avx2", "generic"} {
		t.Run(name, func(t *testing.T) {
			if err := SetLevel(name); err != nil {
				t.Skip(err)
			}
			f(t)
		})
	}
}

func randF32(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// randMatrix returns an n×k weight in dtype dt; bf16 values are exact in f32.
func randMatrix(r *rand.Rand, n, k int, dt DType) *Matrix {
	f := randF32(r, n*k)
	if dt == F32 {
		return NewF32(n, k, f)
	}
	h := make([]uint16, n*k)
	for i, v := range f {
		h[i] = F32ToBF16(v)
	}
	return NewBF16(n, k, h)
}

func wAt(w *Matrix, j, p int) float64 {
	if w.DType == BF16 {
		return float64(BF16ToF32(w.BF16[j*w.Cols+p]))
	}
	return float64(w.F32[j*w.Cols+p])
}

// check compares got with the float64 reference ref; scale[i] is Σ|a||b| of
// element i, and the tolerance is relative to it (plus the initial value when
// accumulating).
func check(t *testing.T, what string, got []float32, ref, scale []float64, terms int) {
	t.Helper()
	eps := 2 * float64(terms+2) * 0x1p-24
	for i := range ref {
		if scale[i] < 0 {
			continue // not sampled
		}
		if d := math.Abs(float64(got[i]) - ref[i]); d > eps*scale[i]+1e-30 || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s: element %d: got %g want %g (|diff| %g > tol %g)", what, i, got[i], ref[i], d, eps*scale[i])
		}
	}
}

// picker returns which output elements of a rows×cols result to check
// against the slow float64 reference: all of them for small problems, else
// the border rows and columns plus a random sample.
func picker(r *rand.Rand, rows, cols, k int) func(i, j int) bool {
	if rows*cols*k <= 20_000_000 {
		return func(i, j int) bool { return true }
	}
	seed := r.Uint64()
	return func(i, j int) bool {
		if i == 0 || j == 0 || i == rows-1 || j == cols-1 {
			return true
		}
		h := (uint64(i)*0x9e3779b97f4a7c15 ^ uint64(j)*0xbf58476d1ce4e5b9 ^ seed) * 0x94d049bb133111eb
		return h>>54 == 0 // 1 in 1024
	}
}

// testT checks MatMulT for one shape against float64.
func testT(t *testing.T, r *rand.Rand, m, n, k int, dt DType, acc bool) {
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
				v := float64(x[i*k+p]) * wAt(w, j, p)
				s += v
				a += math.Abs(v)
			}
			ref[i*n+j], scale[i*n+j] = s, a
		}
	}
	MatMulT(y, x, m, w, acc)
	check(t, fmt.Sprintf("MatMulT m=%d n=%d k=%d %v acc=%v", m, n, k, dt, acc), y, ref, scale, k)
}

func testN(t *testing.T, r *rand.Rand, m, n, k int, dt DType, acc bool) {
	dy := randF32(r, m*n)
	w := randMatrix(r, n, k, dt)
	dx := randF32(r, m*k)
	ref := make([]float64, m*k)
	scale := make([]float64, m*k)
	pick := picker(r, m, k, n)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			if !pick(i, p) {
				scale[i*k+p] = -1
				continue
			}
			var s, a float64
			if acc {
				s, a = float64(dx[i*k+p]), math.Abs(float64(dx[i*k+p]))
			}
			for j := 0; j < n; j++ {
				v := float64(dy[i*n+j]) * wAt(w, j, p)
				s += v
				a += math.Abs(v)
			}
			ref[i*k+p], scale[i*k+p] = s, a
		}
	}
	MatMulN(dx, dy, m, w, acc)
	check(t, fmt.Sprintf("MatMulN m=%d n=%d k=%d %v acc=%v", m, n, k, dt, acc), dx, ref, scale, n)
}

func testTN(t *testing.T, r *rand.Rand, m, n, k int, acc bool) {
	dy := randF32(r, m*n)
	x := randF32(r, m*k)
	dw := randF32(r, n*k)
	ref := make([]float64, n*k)
	scale := make([]float64, n*k)
	pick := picker(r, n, k, m)
	for j := 0; j < n; j++ {
		for p := 0; p < k; p++ {
			if !pick(j, p) {
				scale[j*k+p] = -1
				continue
			}
			var s, a float64
			if acc {
				s, a = float64(dw[j*k+p]), math.Abs(float64(dw[j*k+p]))
			}
			for i := 0; i < m; i++ {
				v := float64(dy[i*n+j]) * float64(x[i*k+p])
				s += v
				a += math.Abs(v)
			}
			ref[j*k+p], scale[j*k+p] = s, a
		}
	}
	MatMulTN(dw, dy, x, m, n, k, acc)
	check(t, fmt.Sprintf("MatMulTN m=%d n=%d k=%d acc=%v", m, n, k, acc), dw, ref, scale, m)
}

// shapes covers every size 1..67 in each dimension, the other two random.
func shapes(r *rand.Rand) [][3]int {
	var s [][3]int
	for d := 1; d <= 67; d++ {
		s = append(s, [3]int{d, 1 + r.IntN(67), 1 + r.IntN(67)})
		s = append(s, [3]int{1 + r.IntN(67), d, 1 + r.IntN(67)})
		s = append(s, [3]int{1 + r.IntN(67), 1 + r.IntN(67), d})
	}
	return s
}

func TestMatMulSmallShapes(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for i, sh := range shapes(r) {
			m, n, k := sh[0], sh[1], sh[2]
			acc := i%2 == 1
			for _, dt := range []DType{F32, BF16} {
				testT(t, r, m, n, k, dt, acc)
				testN(t, r, m, n, k, dt, acc)
			}
			testTN(t, r, m, n, k, !acc)
		}
	})
}

func TestMatMulThreads(t *testing.T) {
	defer SetThreads(Threads())
	r := rand.New(rand.NewPCG(3, 4))
	for _, th := range []int{1, 3, 5} {
		SetThreads(th)
		forEachLevel(t, func(t *testing.T) {
			for _, sh := range [][3]int{{1, 67, 33}, {5, 130, 70}, {37, 100, 45}, {100, 9, 40}, {130, 300, 17}, {513, 16, 300}, {66, 32, 35}} {
				testT(t, r, sh[0], sh[1], sh[2], F32, th == 3)
				testN(t, r, sh[0], sh[1], sh[2], BF16, th == 3)
				testTN(t, r, sh[0], sh[1], sh[2], th != 3)
			}
		})
	}
}

// TestMatMulLarge crosses every cache block (M > MC, K > KC, N > NC).
func TestMatMulLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large shapes")
	}
	r := rand.New(rand.NewPCG(5, 6))
	forEachLevel(t, func(t *testing.T) {
		if Level() == "generic" {
			testT(t, r, 70, 2100, 300, BF16, true)
			return
		}
		if Level() == "avx512" {
			testT(t, r, 300, 4864, 896, F32, false)
		}
		testT(t, r, 250, 3200, 300, BF16, true)
		testN(t, r, 260, 300, 1000, BF16, false)
		testTN(t, r, 530, 300, 700, true)
		testT(t, r, 1, 4864, 896, BF16, false)
		testT(t, r, 7, 896, 4864, F32, true)
	})
}

func TestEmptyAndZeroK(t *testing.T) {
	y := []float32{1, 2, 3, 4}
	MatMulT(y, nil, 2, NewF32(2, 0, nil), false)
	for _, v := range y {
		if v != 0 {
			t.Fatalf("k=0 overwrite left %v", y)
		}
	}
	y = []float32{1, 2, 3, 4}
	MatMulT(y, nil, 2, NewF32(2, 0, nil), true)
	if y[3] != 4 {
		t.Fatalf("k=0 accumulate changed y: %v", y)
	}
	MatMulT(nil, nil, 0, NewF32(3, 3, make([]float32, 9)), false)
	MatMulTN(nil, nil, nil, 0, 0, 0, false)
	dw := []float32{5}
	MatMulTN(dw, nil, nil, 0, 1, 1, false)
	if dw[0] != 0 {
		t.Fatalf("m=0 MatMulTN left %v", dw)
	}
}

// TestKernelTwins compares each assembly routine with its Go twin directly.
func TestKernelTwins(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	forEachLevel(t, func(t *testing.T) {
		l := active.Load()
		for _, kc := range []int{1, 2, 7, 256} {
			a := randF32(r, l.mr*kc)
			b := randF32(r, l.nr*kc)
			ldc := l.nr + 3
			c1 := randF32(r, l.mr*ldc)
			c2 := append([]float32(nil), c1...)
			for _, acc := range []bool{false, true} {
				l.kern(kc, a, b, c1, ldc, acc)
				kernGo(kc, a, b, c2, ldc, acc)
				for i := range c1 {
					if d := math.Abs(float64(c1[i] - c2[i])); d > 1e-4*math.Sqrt(float64(kc)) {
						t.Fatalf("kern kc=%d acc=%v: c[%d] = %g, Go twin %g", kc, acc, i, c1[i], c2[i])
					}
				}
			}
			// The bfloat16-panel kernel equals kern on the widened panel.
			bh := randMatrix(r, 1, l.nr*kc, BF16).BF16
			for i, v := range bh {
				b[i] = BF16ToF32(v)
			}
			for _, acc := range []bool{false, true} {
				c2 := slices.Clone(c1)
				c3 := slices.Clone(c1)
				l.kern(kc, a, b, c1, ldc, acc)
				l.kernPBF16(kc, a, bh, c2, ldc, acc)
				eqF32(t, fmt.Sprintf("kernPBF16 kc=%d acc=%v", kc, acc), c2, c1)
				kernPBF16Go(kc, a, bh, c3, ldc, acc)
				near(t, fmt.Sprintf("kernPBF16Go kc=%d acc=%v", kc, acc), c3, c1)
			}
			// The 8-row edge kernels equal the first 8 rows of the full tile
			// and leave the rest of c alone.
			if l.kern8 != nil {
				for _, acc := range []bool{false, true} {
					before := slices.Clone(c1)
					c8 := slices.Clone(c1)
					c8h := slices.Clone(c1)
					l.kern(kc, a, b, c1, ldc, acc)
					l.kern8(kc, a, b, c8, ldc, acc)
					l.kern8PBF16(kc, a, bh, c8h, ldc, acc)
					eqF32(t, fmt.Sprintf("kern8 kc=%d acc=%v", kc, acc), c8[:8*ldc], c1[:8*ldc])
					eqF32(t, fmt.Sprintf("kern8PBF16 kc=%d acc=%v", kc, acc), c8h[:8*ldc], c1[:8*ldc])
					eqF32(t, "kern8 rows ≥ 8", c8[8*ldc:], before[8*ldc:])
					eqF32(t, "kern8PBF16 rows ≥ 8", c8h[8*ldc:], before[8*ldc:])
				}
			}
		}
		for _, nblk := range []int{1, 3} {
			lds, ldd := 8*nblk+5, 19
			src := randF32(r, 8*lds)
			h := make([]uint16, len(src))
			for i, v := range src {
				h[i] = F32ToBF16(v)
			}
			d1 := make([]float32, 8*nblk*ldd)
			d2 := make([]float32, len(d1))
			l.packBT8(d1, ldd, src, lds, nblk)
			packBT8Go(d2, ldd, src, lds, nblk)
			eqF32(t, "packBT8", d1, d2)
			l.packBT8BF16(d1, ldd, h, lds, nblk)
			packBT8BF16Go(d2, ldd, h, lds, nblk)
			eqF32(t, "packBT8BF16", d1, d2)
		}
		for _, n8 := range []int{1, 4} {
			lds, ldd, rows := 8*n8+3, 8*n8+5, 7
			w := randMatrix(r, rows, lds, BF16)
			d1 := make([]float32, rows*ldd)
			d2 := make([]float32, rows*ldd)
			l.widenBF16(d1, ldd, w.BF16, lds, rows, n8)
			widenBF16Go(d2, ldd, w.BF16, lds, rows, n8)
			eqF32(t, "widenBF16", d1, d2)
		}
		for _, k16 := range []int{1, 5} {
			ldx, ldw := 16*k16+3, 16*k16+1
			x := randF32(r, 4*ldx)
			w := randMatrix(r, 4, ldw, BF16)
			wf := make([]float32, len(w.BF16))
			for i, v := range w.BF16 {
				wf[i] = BF16ToF32(v)
			}
			o1, o2 := make([]float32, 16), make([]float32, 16)
			l.gemv(o1, x, ldx, wf, ldw, k16)
			gemvGo(o2, x, ldx, wf, ldw, k16)
			near(t, "gemv", o1[:4*l.gemvX], o2[:4*l.gemvX])
			l.gemvBF16(o1, x, ldx, w.BF16, ldw, k16)
			gemvBF16Go(o2, x, ldx, w.BF16, ldw, k16)
			near(t, "gemvBF16", o1[:4*l.gemvX], o2[:4*l.gemvX])
			if l.gemv1 != nil {
				l.gemv1(o1, x, wf, ldw, k16)
				gemvGo(o2, x, ldx, wf, ldw, k16)
				near(t, "gemv1", o1[:4], o2[:4])
				l.gemv1BF16(o1, x, w.BF16, ldw, k16)
				gemvBF16Go(o2, x, ldx, w.BF16, ldw, k16)
				near(t, "gemv1BF16", o1[:4], o2[:4])
			}
		}
	})
}

func eqF32(t *testing.T, what string, a, b []float32) {
	t.Helper()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("%s: [%d] = %g, Go twin %g", what, i, a[i], b[i])
		}
	}
}

func near(t *testing.T, what string, a, b []float32) {
	t.Helper()
	for i := range a {
		if d := math.Abs(float64(a[i] - b[i])); d > 1e-3 {
			t.Fatalf("%s: [%d] = %g, Go twin %g", what, i, a[i], b[i])
		}
	}
}

func FuzzMatMulT(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint8(5), uint8(7), false, false)
	f.Add(uint64(2), uint8(13), uint8(33), uint8(17), true, true)
	f.Add(uint64(3), uint8(1), uint8(64), uint8(100), true, false)
	f.Add(uint64(4), uint8(40), uint8(1), uint8(1), false, true)
	f.Fuzz(func(t *testing.T, seed uint64, m, n, k uint8, bf16, acc bool) {
		r := rand.New(rand.NewPCG(seed, 9))
		dt := F32
		if bf16 {
			dt = BF16
		}
		testT(t, r, int(m%80)+1, int(n%80)+1, int(k%80), dt, acc)
	})
}

// TestMatMulTGroup: the fused one-token GEMVs equal MatMulT on each matrix
// (bit for bit: the same kernels on the same rows), for awkward row counts
// and k, and so does the bf16 group's shared packing of x.
func TestMatMulTGroup(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 9))
		for _, k := range []int{1, 15, 16, 33, 67, 896} {
			for _, m := range []int{1, 2} {
				for _, dt := range []DType{F32, BF16} {
					ws := []*Matrix{randMatrix(r, 1+r.IntN(67), k, dt), randMatrix(r, 3, k, dt), randMatrix(r, 4+r.IntN(40), k, dt)}
					x := randF32(r, m*k)
					ys := make([][]float32, len(ws))
					for i, w := range ws {
						ys[i] = make([]float32, m*w.Rows)
					}
					MatMulTGroup(ys, x, m, ws, ComputeF32)
					for i, w := range ws {
						want := make([]float32, m*w.Rows)
						MatMulT(want, x, m, w, false)
						if !slices.Equal(ys[i], want) {
							t.Fatalf("k=%d m=%d %s matrix %d: group %v, MatMulT %v", k, m, dt, i, ys[i][:min(4, len(want))], want[:min(4, len(want))])
						}
					}
				}
			}
			// ComputeBF16: x packed once for the group equals MatMulTCompute
			// on each (prepacked weights too), over row counts that split the
			// pool by rows and by columns.
			for _, m := range []int{1, 13, 300} {
				ws := []*Matrix{randMatrix(r, 1+r.IntN(67), k, BF16), randMatrix(r, 130, k, F32), randMatrix(r, 40, k, BF16)}
				ws[2].Pack(ComputeBF16)
				x := randF32(r, m*k)
				ys := make([][]float32, len(ws))
				for i, w := range ws {
					ys[i] = make([]float32, m*w.Rows)
				}
				MatMulTGroup(ys, x, m, ws, ComputeBF16)
				for i, w := range ws {
					want := make([]float32, m*w.Rows)
					MatMulTCompute(want, x, m, w, false, ComputeBF16)
					if !slices.Equal(ys[i], want) {
						t.Fatalf("bf16 k=%d m=%d matrix %d: group %v, MatMulTCompute %v", k, m, i, ys[i][:min(4, len(want))], want[:min(4, len(want))])
					}
				}
			}
			// MatMulTMany: a mixed bag of dtypes (quantized included), each
			// with its own input row
			var ws []*Matrix
			for _, w := range []*Matrix{randMatrix(r, 1+r.IntN(67), k, F32), randMatrix(r, 5, k, BF16), randMatrix(r, 9+r.IntN(20), k, F32)} {
				ws = append(ws, w, QuantizeNF4(w, false), QuantizeQ8(w), QuantizeNF4(w, true))
			}
			ys, xs := make([][]float32, len(ws)), make([][]float32, len(ws))
			for i, w := range ws {
				ys[i], xs[i] = make([]float32, w.Rows), randF32(r, k)
			}
			MatMulTMany(ys, xs, ws)
			for i, w := range ws {
				want := make([]float32, w.Rows)
				MatMulT(want, xs[i], 1, w, false)
				if !slices.Equal(ys[i], want) {
					t.Fatalf("k=%d %s matrix %d: MatMulTMany %v, MatMulT %v", k, w.DType, i, ys[i][:min(4, len(want))], want[:min(4, len(want))])
				}
			}
			// ComputeBF16: quantized weights as one job (NF4 by dotNF4RowsBF16,
			// gate and up sharing one rounded input), the mixed bag a call
			// each, and a group of quantized ones, as MatMulTCompute
			qs, qys, qxs := []*Matrix{}, [][]float32{}, [][]float32{}
			for i, w := range ws {
				if w.IsQuantized() {
					qs, qys, qxs = append(qs, w), append(qys, ys[i]), append(qxs, xs[i])
				}
			}
			qxs[1] = qxs[0]
			for _, set := range []struct {
				ys, xs [][]float32
				ws     []*Matrix
			}{{ys, xs, ws}, {qys, qxs, qs}} {
				MatMulTManyCompute(set.ys, set.xs, set.ws, ComputeBF16)
				for i, w := range set.ws {
					want := make([]float32, w.Rows)
					MatMulTCompute(want, set.xs[i], 1, w, false, ComputeBF16)
					if !slices.Equal(set.ys[i], want) {
						t.Fatalf("bf16 k=%d %s matrix %d: MatMulTManyCompute %v, MatMulTCompute %v", k, w.DType, i, set.ys[i][:min(4, len(want))], want[:min(4, len(want))])
					}
				}
			}
			MatMulTGroup(qys, qxs[0], 1, qs, ComputeBF16)
			for i, w := range qs {
				want := make([]float32, w.Rows)
				MatMulTCompute(want, qxs[0], 1, w, false, ComputeBF16)
				if !slices.Equal(qys[i], want) {
					t.Fatalf("bf16 k=%d %s matrix %d: MatMulTGroup %v, MatMulTCompute %v", k, w.DType, i, qys[i][:min(4, len(want))], want[:min(4, len(want))])
				}
			}
		}
	})
}
