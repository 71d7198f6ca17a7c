package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// quantForLevels runs f under every kernel level this CPU supports.
func quantForLevels(t *testing.T, f func(t *testing.T)) {
	defer SetLevel(Level())
	for _, name := range Levels() {
		t.Run(name, func(t *testing.T) {
			if err := SetLevel(name); err != nil {
				t.Skip(err)
			}
			f(t)
		})
	}
}

func quantRand(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// quantFormats are the formats under test, by name.
var quantFormats = []struct {
	name string
	q    func(*Matrix) *Matrix
}{
	{"q8", QuantizeQ8},
	{"nf4", func(w *Matrix) *Matrix { return QuantizeNF4(w, false) }},
	{"nf4dq", func(w *Matrix) *Matrix { return QuantizeNF4(w, true) }},
}

// quantCheck compares got with ref to 1e-5 of the sum of |products|.
func quantCheck(t *testing.T, what string, got []float32, ref, mag []float64) {
	t.Helper()
	for i := range ref {
		if d := math.Abs(float64(got[i]) - ref[i]); d > 1e-5*mag[i]+1e-30 {
			t.Fatalf("%s: [%d] = %g, want %g (|Δ| %.3g, scale %.3g)", what, i, got[i], ref[i], d, mag[i])
		}
	}
}

// testQuantT checks MatMulT(x, quantized w) against float64 math on
// w.Dequantize(), m×n×k, with and without accumulate.
func testQuantT(t *testing.T, r *rand.Rand, q *Matrix, m int) {
	n, k := q.Rows, q.Cols
	wd := q.Dequantize().F32
	x := quantRand(r, m*k)
	for _, acc := range []bool{false, true} {
		y := quantRand(r, m*n)
		ref := make([]float64, m*n)
		mag := make([]float64, m*n)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var s, a float64
				if acc {
					s, a = float64(y[i*n+j]), math.Abs(float64(y[i*n+j]))
				}
				for p := 0; p < k; p++ {
					v := float64(x[i*k+p]) * float64(wd[j*k+p])
					s += v
					a += math.Abs(v)
				}
				ref[i*n+j], mag[i*n+j] = s, a
			}
		}
		MatMulT(y, x, m, q, acc)
		quantCheck(t, fmt.Sprintf("MatMulT %s m=%d n=%d k=%d acc=%v", q.DType, m, n, k, acc), y, ref, mag)
	}
}

// testQuantN checks MatMulN(dy, quantized w) the same way: dx = dy·w.
func testQuantN(t *testing.T, r *rand.Rand, q *Matrix, m int) {
	n, k := q.Rows, q.Cols
	wd := q.Dequantize().F32
	dy := quantRand(r, m*n)
	for _, acc := range []bool{false, true} {
		dx := quantRand(r, m*k)
		ref := make([]float64, m*k)
		mag := make([]float64, m*k)
		for i := 0; i < m; i++ {
			for p := 0; p < k; p++ {
				var s, a float64
				if acc {
					s, a = float64(dx[i*k+p]), math.Abs(float64(dx[i*k+p]))
				}
				for j := 0; j < n; j++ {
					v := float64(dy[i*n+j]) * float64(wd[j*k+p])
					s += v
					a += math.Abs(v)
				}
				ref[i*k+p], mag[i*k+p] = s, a
			}
		}
		MatMulN(dx, dy, m, q, acc)
		quantCheck(t, fmt.Sprintf("MatMulN %s m=%d n=%d k=%d acc=%v", q.DType, m, n, k, acc), dx, ref, mag)
	}
}

func TestQuantMatMulSmallShapes(t *testing.T) {
	// N and K off the block sizes, K below a block, odd K (NF4 row padding).
	shapes := [][2]int{{1, 1}, {3, 7}, {5, 31}, {4, 33}, {9, 64}, {7, 65}, {33, 100}, {40, 129}, {17, 200}, {70, 320}, {37, 256}}
	quantForLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, f := range quantFormats {
			for _, s := range shapes {
				w := NewF32(s[0], s[1], quantRand(r, s[0]*s[1]))
				q := f.q(w)
				for m := 1; m <= 17; m++ {
					testQuantT(t, r, q, m)
					testQuantN(t, r, q, m)
				}
			}
		}
	})
}

func TestQuantMatMulPanels(t *testing.T) {
	// Shapes spanning several dequantized panels, at 1 and 2+ threads.
	defer SetThreads(Threads())
	for _, th := range []int{1, 3} {
		SetThreads(th)
		quantForLevels(t, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			for _, f := range quantFormats {
				w := NewF32(300, 600, quantRand(r, 300*600))
				q := f.q(w)
				for _, m := range []int{1, 5, 40} {
					testQuantT(t, r, q, m)
					testQuantN(t, r, q, m)
				}
			}
		})
	}
}

func TestQuantEmpty(t *testing.T) {
	for _, f := range quantFormats {
		q := f.q(NewF32(3, 0, nil))
		y := []float32{1, 2, 3, 4, 5, 6}
		MatMulT(y, nil, 2, q, false)
		for _, v := range y {
			if v != 0 {
				t.Fatalf("%s: k=0 MatMulT left %v", f.name, y)
			}
		}
		MatMulN(nil, y, 2, q, false) // k = 0: nothing to write
	}
}

// TestDequantTwins compares the block dequantizers of the active (SIMD)
// level with the pure-Go ones, bit for bit.
func TestDequantTwins(t *testing.T) {
	quantForLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, n := range []int{1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64} {
			src := make([]byte, n)
			for i := range src {
				src[i] = byte(r.Uint32())
			}
			a, b := make([]float32, n), make([]float32, n)
			dequantQ8(a, src, 0.37)
			dequantQ8Go(b, src, 0.37)
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("Q8 n=%d [%d]: %g vs Go %g", n, i, a[i], b[i])
				}
			}
			dequantNF4(a, src[:(n+1)/2], 1.7)
			dequantNF4Go(b, src[:(n+1)/2], 1.7)
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("NF4 n=%d [%d]: %g vs Go %g", n, i, a[i], b[i])
				}
			}
		}
		// Whole NF4 blocks into bfloat16 (the ComputeBF16 panels).
		for _, nblk := range []int{1, 2, 5} {
			src := make([]byte, 32*nblk)
			for i := range src {
				src[i] = byte(r.Uint32())
			}
			sc := randF32(r, nblk)
			a, b := make([]uint16, 64*nblk), make([]uint16, 64*nblk)
			active.Load().quant.dequantNF4BF16(a, src, sc, nblk)
			dequantNF4BF16Go(b, src, sc, nblk)
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("NF4 to bf16 nblk=%d [%d]: %#04x vs Go %#04x", nblk, i, a[i], b[i])
				}
			}
		}
	})
}

// TestQuantError measures the RMS relative error ‖Ŵ−W‖/‖W‖ on Gaussian
// weights. Measured (seed below, 256×1024): Q8 ≈ 0.0054, NF4 ≈ 0.092, NF4
// with double quantization ≈ 0.092 (the scale rounding adds < 0.0001).
func TestQuantError(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	f := quantRand(r, 256*1024)
	h := make([]uint16, len(f))
	for i, v := range f {
		h[i] = F32ToBF16(v)
		f[i] = BF16ToF32(h[i]) // compare against the bf16 values, as stored
	}
	bounds := map[string][2]float64{"q8": {0.001, 0.015}, "nf4": {0.05, 0.12}, "nf4dq": {0.05, 0.12}}
	for _, fm := range quantFormats {
		for _, w := range []*Matrix{NewF32(256, 1024, f), NewBF16(256, 1024, h)} {
			d := fm.q(w).Dequantize().F32
			var se, ss float64
			for i, v := range f {
				e := float64(d[i] - v)
				se += e * e
				ss += float64(v) * float64(v)
			}
			rel := math.Sqrt(se / ss)
			t.Logf("%s from %s: RMS relative error %.4f", fm.name, w.DType, rel)
			if b := bounds[fm.name]; rel < b[0] || rel > b[1] {
				t.Errorf("%s: RMS relative error %.4f outside [%g, %g]", fm.name, rel, b[0], b[1])
			}
		}
	}
}

func TestQuantRowAndValidate(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	w := NewF32(3, 70, quantRand(r, 210))
	for _, f := range quantFormats {
		q := f.q(w)
		if err := q.Validate(); err != nil {
			t.Fatal(err)
		}
		d := q.Dequantize()
		row := make([]float32, 70)
		q.Row(row, 2)
		for j, v := range row {
			if v != d.F32[2*70+j] {
				t.Fatalf("%s: Row(2)[%d] = %g, Dequantize %g", f.name, j, v, d.F32[2*70+j])
			}
		}
		bad := *q
		qd := *q.Quant
		qd.Q = qd.Q[:len(qd.Q)-1]
		bad.Quant = &qd
		if bad.Validate() == nil {
			t.Fatalf("%s: short value bytes accepted", f.name)
		}
	}
	if (&Matrix{Rows: 1, Cols: 1, DType: Q8}).Validate() == nil {
		t.Fatal("Q8 without data accepted")
	}
}

// NF4 codes: the table is sorted, symmetric at ±1 and has an exact zero.
func TestNF4Table(t *testing.T) {
	for c := 1; c < 16; c++ {
		if nf4Table[c] <= nf4Table[c-1] {
			t.Fatalf("nf4Table not increasing at %d", c)
		}
	}
	if nf4Table[0] != -1 || nf4Table[7] != 0 || nf4Table[15] != 1 {
		t.Fatal("nf4Table endpoints")
	}
	for c := range 16 {
		if got := nf4Code(nf4Table[c]); int(got) != c {
			t.Fatalf("nf4Code(table[%d]) = %d", c, got)
		}
	}
	// The binary search agrees with a linear scan of the midpoints,
	// including exactly on them.
	r := rand.New(rand.NewPCG(17, 18))
	vals := append([]float32{}, nf4Mid[:]...)
	for range 10000 {
		vals = append(vals, float32(r.Float64()*2.2-1.1))
	}
	for _, v := range vals {
		want := byte(0)
		for want < 15 && v > nf4Mid[want] {
			want++
		}
		if got := nf4Code(v); got != want {
			t.Fatalf("nf4Code(%g) = %d, linear scan %d", v, got, want)
		}
	}
}

// TestQuantDotTwins compares the fused block dot products of the active
// level with the pure-Go twins (to float32 rounding: the sums are ordered
// differently).
func TestQuantDotTwins(t *testing.T) {
	quantForLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(15, 16))
		for _, nblk := range []int{1, 2, 3, 7, 30} {
			x := quantRand(r, nblk*NF4Block)
			q := make([]byte, nblk*NF4Block)
			for i := range q {
				q[i] = byte(r.Uint32())
			}
			s := quantRand(r, nblk)
			for _, c := range []struct {
				name     string
				got, ref float32
				mag      float64
			}{
				{"nf4", dotNF4(x, q, s, nblk), dotNF4Go(x, q, s, nblk), float64(nblk * NF4Block)},
			} {
				if d := math.Abs(float64(c.got - c.ref)); d > 1e-5*c.mag {
					t.Fatalf("%s nblk=%d: %g vs Go %g", c.name, nblk, c.got, c.ref)
				}
			}
			// the permuted-input rows kernel, where the level has one
			if xp := permuteNF4(nil, x, len(x)); xp != nil {
				got, ref := make([]float32, 1), dotNF4Go(x, q, s, nblk)
				active.Load().quant.dotNF4Rows(got, xp, q, s, nblk, 0, 0)
				if d := math.Abs(float64(got[0] - ref)); d > 1e-5*float64(nblk*NF4Block) {
					t.Fatalf("nf4 permuted nblk=%d: %g vs Go %g", nblk, got[0], ref)
				}
			}
		}
	})
}

// nf4RowsCase makes the operands of an NF4 rows kernel for c = {rows,
// nblk, row padding in bytes, scale padding}: x, random codes, scales and
// the strides.
func nf4RowsCase(r *rand.Rand, c [4]int) (x []float32, q []byte, s []float32, qstride, sstride int) {
	rows, nblk, qpad, spad := c[0], c[1], c[2], c[3]
	qstride, sstride = 32*nblk+qpad, nblk+spad
	x = quantRand(r, nblk*NF4Block)
	q = make([]byte, rows*qstride)
	for i := range q {
		q[i] = byte(r.Uint32())
	}
	return x, q, quantRand(r, rows*sstride), qstride, sstride
}

// TestNF4RowsTwins: the levels' dotNF4Rows (one call over rows with row
// strides, x permuted) equals dotNF4RowsGo and, row by row, dotNF4Go on the
// unpermuted x, within 1e-6 of the sum of |terms|, for odd and even block
// counts, a row stride longer than the blocks and double-quantized-like
// scale strides.
func TestNF4RowsTwins(t *testing.T) {
	quantForLevels(t, func(t *testing.T) {
		if active.Load().quant.dotNF4Rows == nil {
			t.Skip("the level dots NF4 rows one by one")
		}
		r := rand.New(rand.NewPCG(17, 18))
		for _, c := range [][4]int{{1, 1, 0, 0}, {5, 1, 1, 0}, {3, 2, 0, 1}, {7, 3, 2, 1}, {13, 12, 0, 0}, {4, 32, 5, 3}} {
			rows, nblk := c[0], c[1]
			x, q, s, qstride, sstride := nf4RowsCase(r, c)
			xp := permuteNF4(nil, x, len(x))
			got, twin := make([]float32, rows), make([]float32, rows)
			active.Load().quant.dotNF4Rows(got, xp, q, s, nblk, qstride, sstride)
			dotNF4RowsGo(twin, xp, q, s, nblk, qstride, sstride)
			for j := range rows {
				ref := dotNF4Go(x, q[j*qstride:], s[j*sstride:], nblk)
				var mag float64 // Σ|x·w|: the scale of float32 rounding
				for b := 0; b < nblk; b++ {
					for p := 0; p < NF4Block; p++ {
						v := q[j*qstride+b*32+p/2] >> (4 * (p % 2)) & 15
						mag += math.Abs(float64(x[b*NF4Block+p] * nf4Table[v] * s[j*sstride+b]))
					}
				}
				for _, v := range []float32{got[j], twin[j]} {
					if d := math.Abs(float64(v - ref)); d > 1e-6*mag {
						t.Fatalf("rows=%d nblk=%d row %d: %g (twin %g) vs dotNF4Go %g", rows, nblk, j, got[j], twin[j], ref)
					}
				}
			}
		}
	})
}

// TestQ8RowsTwins: the levels' dotQ8Rows (one call over rows with row
// strides) equals dotQ8Go row by row within 1e-6 of the sum of |terms|,
// for odd and even block counts, a row stride longer than the blocks and
// padded scale strides.
func TestQ8RowsTwins(t *testing.T) {
	quantForLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(19, 20))
		for _, c := range [][4]int{{1, 1, 0, 0}, {5, 1, 1, 0}, {3, 2, 0, 1}, {7, 3, 2, 1}, {13, 12, 0, 0}, {4, 64, 5, 3}} {
			rows, nblk, qpad, spad := c[0], c[1], c[2], c[3]
			qstride, sstride := Q8Block*nblk+qpad, nblk+spad
			x := quantRand(r, nblk*Q8Block)
			q := make([]byte, rows*qstride)
			for i := range q {
				q[i] = byte(r.Uint32())
			}
			s := quantRand(r, rows*sstride)
			got := make([]float32, rows)
			active.Load().quant.dotQ8Rows(got, x, q, s, nblk, qstride, sstride)
			for j := range rows {
				ref := dotQ8Go(x, q[j*qstride:], s[j*sstride:], nblk)
				var mag float64 // Σ|x·w|: the scale of float32 rounding
				for p := 0; p < nblk*Q8Block; p++ {
					mag += math.Abs(float64(x[p] * float32(int8(q[j*qstride+p])) * s[j*sstride+p/Q8Block]))
				}
				if d := math.Abs(float64(got[j] - ref)); d > 1e-6*mag {
					t.Fatalf("rows=%d nblk=%d row %d: %g vs dotQ8Go %g", rows, nblk, j, got[j], ref)
				}
			}
		}
	})
}

// TestQuantBF16Compute: a quantized w in ComputeBF16 computes exactly what
// the BF16 matrix of its rounded dequantized values computes (both
// directions, odd k and n, several panels and KC blocks, accumulate). Levels
// without AVX512_BF16 multiply quantized panels in float32 instead.
func TestQuantBF16Compute(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		if !HasBF16Compute() {
			t.Skip("no native bf16: quantized panels stay float32")
		}
		r := rand.New(rand.NewPCG(31, 32))
		for i, sh := range [][3]int{{40, 70, 300}, {300, 129, 257}, {16, 600, 64}} {
			m, n, k := sh[0], sh[1], sh[2]
			bf := NewF32(n, k, quantRand(r, n*k))
			for _, w := range []*Matrix{QuantizeQ8(bf), QuantizeNF4(bf, false), QuantizeNF4(bf, true)} {
				d := w.Dequantize()
				h := make([]uint16, n*k)
				for j, v := range d.F32 {
					h[j] = F32ToBF16(v)
				}
				ref := NewBF16(n, k, h)
				acc := i%2 == 1
				x, dy := randF32(r, m*k), randF32(r, m*n)
				for _, dir := range []string{"T", "N"} {
					ln := m * n
					if dir == "N" {
						ln = m * k
					}
					got, want := randF32(r, ln), make([]float32, ln)
					copy(want, got)
					if dir == "T" {
						MatMulTCompute(got, x, m, w, acc, ComputeBF16)
						MatMulTCompute(want, x, m, ref, acc, ComputeBF16)
					} else {
						MatMulNCompute(got, dy, m, w, acc, ComputeBF16)
						MatMulNCompute(want, dy, m, ref, acc, ComputeBF16)
					}
					for j := range got {
						if got[j] != want[j] {
							t.Fatalf("%v %s m=%d n=%d k=%d acc=%v: [%d] = %g, BF16 reference %g", w.DType, dir, m, n, k, acc, j, got[j], want[j])
						}
					}
				}
			}
		}
	})
}

// nf4BF16Ref is the float64 reference of dotNF4RowsBF16's stated numerics
// on the unpermuted x: Σ bf16(x)·bf16(nf4[code]·s) over the first k values
// of a row of codes q with block scales s, and Σ|terms| for the tolerance.
func nf4BF16Ref(x []float32, q []byte, s []float32, k int) (ref, mag float64) {
	for p := 0; p < k; p++ {
		code := q[p/2] >> (4 * (p % 2)) & 15
		v := float64(BF16ToF32(F32ToBF16(x[p]))) * float64(BF16ToF32(F32ToBF16(nf4Table[code]*s[p/NF4Block])))
		ref += v
		mag += math.Abs(v)
	}
	return ref, mag
}

// TestNF4RowsBF16Twins: dotNF4RowsBF16Go, and the level's dotNF4RowsBF16
// where it has one (AVX512_BF16), equal the float64 reference of
// Σ bf16(x)·bf16(nf4·s) within 1e-6 of Σ|terms| (float32 sums in another
// order), for odd and even block counts, row strides longer than the blocks
// and padded scale strides.
func TestNF4RowsBF16Twins(t *testing.T) {
	quantForLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		for _, c := range [][4]int{{1, 1, 0, 0}, {5, 1, 1, 0}, {3, 2, 0, 1}, {7, 3, 2, 1}, {13, 12, 0, 0}, {4, 33, 5, 3}} {
			rows, nblk := c[0], c[1]
			x, q, s, qstride, sstride := nf4RowsCase(r, c)
			xh := permuteNF4BF16(nil, x, len(x))
			twin := make([]float32, rows)
			dotNF4RowsBF16Go(twin, xh, q, s, nblk, qstride, sstride)
			got := twin
			if k := active.Load().quant.dotNF4RowsBF16; k != nil {
				got = make([]float32, rows)
				k(got, xh, q, s, nblk, qstride, sstride)
			}
			for j := range rows {
				ref, mag := nf4BF16Ref(x, q[j*qstride:], s[j*sstride:], nblk*NF4Block)
				for _, v := range []float32{got[j], twin[j]} {
					if d := math.Abs(float64(v) - ref); d > 1e-6*mag {
						t.Fatalf("rows=%d nblk=%d row %d: %g (twin %g), reference %g", rows, nblk, j, got[j], twin[j], ref)
					}
				}
			}
		}
	})
}

// TestQuantBF16Decode: in ComputeBF16 on AVX512_BF16, a few rows of x times
// an NF4 w (MatMulTCompute's GEMV) equal the float64 reference of
// Σ bf16(x)·bf16(nf4·s) — the weights the bf16 GEMM's panels hold — for k
// with odd block counts, short last blocks and fewer than a block, rows not
// a multiple of 4, double-quantized scales and accumulate; and the bf16
// GEMM on the same operands agrees to bf16 accuracy. Without AVX512_BF16
// quantized weights stay float32 (TestQuantMatMulSmallShapes).
func TestQuantBF16Decode(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		if !HasBF16Compute() {
			t.Skip("no native bf16: quantized weights multiply in float32")
		}
		r := rand.New(rand.NewPCG(23, 24))
		for _, k := range []int{1, 40, 64, 65, 127, 128, 129, 200, 320, 2112} {
			for _, n := range []int{1, 5, 7, 33} {
				bf := NewF32(n, k, quantRand(r, n*k))
				for _, w := range []*Matrix{QuantizeNF4(bf, false), QuantizeNF4(bf, true)} {
					nb := QuantBlocks(NF4, k)
					rb := QuantRowBytes(NF4, k)
					for _, m := range []int{1, 2, 3, 8} {
						acc := (m+n)%2 == 1
						x := quantRand(r, m*k)
						y := quantRand(r, m*n)
						y0 := append([]float32(nil), y...)
						MatMulTCompute(y, x, m, w, acc, ComputeBF16)
						// the GEMM: x padded to MinGEMMRows
						xg := make([]float32, MinGEMMRows*k)
						copy(xg, x)
						yg := make([]float32, MinGEMMRows*n)
						MatMulTCompute(yg, xg, MinGEMMRows, w, false, ComputeBF16)
						sc := make([]float32, nb)
						for i := 0; i < m; i++ {
							for j := 0; j < n; j++ {
								ref, mag := nf4BF16Ref(x[i*k:], w.Quant.Q[j*rb:], w.Quant.rowScales(sc, j, nb), k)
								if acc {
									ref += float64(y0[i*n+j])
									mag += math.Abs(float64(y0[i*n+j]))
								}
								if d := math.Abs(float64(y[i*n+j]) - ref); d > 1e-6*mag+1e-30 {
									t.Fatalf("k=%d n=%d m=%d dq=%v acc=%v [%d,%d]: %g, reference %g", k, n, m, w.Quant.Scales == nil, acc, i, j, y[i*n+j], ref)
								}
								g := float64(yg[i*n+j])
								if acc {
									g += float64(y0[i*n+j])
								}
								if d := math.Abs(g - ref); d > 1e-5*mag+1e-30 {
									t.Fatalf("k=%d n=%d m=%d: GEMV %g, GEMM %g", k, n, m, ref, g)
								}
							}
						}
					}
				}
			}
		}
	})
}
