package kernels

import "sync"

// gemvMaxM is the largest m MatMulT treats as matrix-vector: decoding a few
// tokens is bound by reading w, so w is streamed once, unpacked.
const gemvMaxM = 8

// MinGEMMRows is the fewest rows of x from which MatMulT, MatMulTRows,
// MatMulTCompute and MatMulTGroup (in either compute mode) multiply as a GEMM:
// with fewer they stream w as GEMVs, whose sums run in another order, so a
// row's result would depend on how many rows share the call. Callers that
// need each row's result independent of its batch pad x with zero rows to
// this many.
const MinGEMMRows = gemvMaxM + 1

// gemvMaxN is the largest n (rows of w, e.g. a LoRA rank) for which MatMulT
// uses the dot-product kernels at any m: with so few columns of y, packing x
// would cost as much as the multiply.
const gemvMaxN = 32

// gemvChunks sets the smallest piece of a GEMV job (parallelGuided) at
// 1/(gemvChunks·threads) of it: a thread that finds none left idles for
// the rest of the other's last piece, on average half of one, in each of
// the ~290 jobs of a 30B-A3B decoding step.
const gemvChunks = 16

// gemvParallel runs a GEMV job over n units (groups of rows) in guided
// pieces (see parallelGuided).
func gemvParallel(n int, fn func(lo, hi int)) {
	parallelGuided(n, n/(gemvChunks*Threads()), fn)
}

// gemvT computes y[m×n] (+)= x[m×k]·wᵀ with dot-product kernels (4 rows of
// w against gemvX rows of x, reduced horizontally), reading w in place. It
// splits rows of w (groups of 4) across the pool, or rows of x when w has
// too few rows to share.
func gemvT(l *impl, y, x []float32, m int, w *Matrix, acc bool) {
	n, k := w.Rows, w.Cols
	if m == 1 && l.gemv1 != nil {
		nb := (n + 3) / 4
		gemvParallel(nb, func(lo, hi int) { gemv1Rows(l, y, x, w, lo, hi, acc) })
		return
	}
	gx := l.gemvX
	ng := (m + gx - 1) / gx // groups of x rows; the last may be short
	var xpad []float32      // the short last group, zero-padded
	if m%gx != 0 {
		xpad = make([]float32, gx*k)
		copy(xpad, x[(ng-1)*gx*k:m*k])
	}
	k16 := k / 16
	kt := k16 * 16
	nb := (n + 3) / 4

	// block computes w groups [jb0,jb1) × x groups [g0,g1).
	block := func(jb0, jb1, g0, g1 int) {
		var out [16]float32
		for jb := jb0; jb < jb1; jb++ {
			j0 := jb * 4
			nv := min(4, n-j0)
			for g := g0; g < g1; g++ {
				xg := x[min(g*gx*k, len(x)):]
				if xpad != nil && g == ng-1 {
					xg = xpad
				}
				switch {
				case nv < 4:
					clear(out[:])
				case w.DType == BF16:
					l.gemvBF16(out[:], xg, k, w.BF16[j0*k:], k, k16)
				default:
					l.gemv(out[:], xg, k, w.F32[j0*k:], k, k16)
				}
				// The k tail (and whole dots for a short last group of w).
				p0 := kt
				if nv < 4 {
					p0 = 0
				}
				for r := 0; r < gx && g*gx+r < m; r++ {
					i := g*gx + r
					xr := x[i*k : (i+1)*k]
					yr := y[i*n+j0 : i*n+j0+nv]
					for c := range yr {
						s := dotFrom(xr, w, j0+c, p0) + out[r*4+c]
						if acc {
							yr[c] += s
						} else {
							yr[c] = s
						}
					}
				}
			}
		}
	}
	t := Threads()
	if nb >= 2*t || ng == 1 {
		// More chunks than threads so a slow core does not hold up the rest.
		parallelChunks(nb, min(nb, 4*t), func(lo, hi int) { block(lo, hi, 0, ng) })
		return
	}
	parallelChunks(ng, min(ng, 4*t), func(lo, hi int) { block(0, nb, lo, hi) })
}

// dotFrom returns Σ x[p]·w[j][p] over p ≥ p0: the part of a dot product the
// SIMD kernels leave (the k tail, or a whole short group of rows).
func dotFrom(x []float32, w *Matrix, j, p0 int) float32 {
	k := w.Cols
	var s float32
	if w.DType == BF16 {
		for p, v := range w.BF16[j*k+p0 : (j+1)*k] {
			s += x[p0+p] * BF16ToF32(v)
		}
	} else {
		for p, v := range w.F32[j*k+p0 : (j+1)*k] {
			s += x[p0+p] * v
		}
	}
	return s
}

// gemv1Rows computes y[j] (+)= x·(row j of w) for one row of x and the rows
// of w in groups [jb0, jb1) of four (the last group may be short).
func gemv1Rows(l *impl, y, x []float32, w *Matrix, jb0, jb1 int, acc bool) {
	n, k := w.Rows, w.Cols
	k16 := k / 16
	var out [4]float32
	for jb := jb0; jb < jb1; jb++ {
		j0 := jb * 4
		nv := min(4, n-j0)
		p0 := k16 * 16 // the k tail, or whole dots for a short group
		switch {
		case nv < 4:
			clear(out[:])
			p0 = 0
		case w.DType == BF16:
			l.gemv1BF16(out[:], x, w.BF16[j0*k:], k, k16)
		default:
			l.gemv1(out[:], x, w.F32[j0*k:], k, k16)
		}
		for c := range nv {
			s := dotFrom(x, w, j0+c, p0) + out[c]
			if acc {
				y[j0+c] += s
			} else {
				y[j0+c] = s
			}
		}
	}
}

// MatMulTGroup computes ys[i] = x·ws[i]ᵀ for weights that read the same
// input x [m × k], such as a layer's q, k and v projections. For one row of
// x (decoding) the GEMVs run as a single job of the worker pool over all
// their rows (MatMulTManyCompute): a call's start and tail cost the short
// ones more than their share of the memory stream; in ComputeBF16 too for
// quantized weights and for BF16 weights, on x rounded once (as
// MatMulTCompute does for a few rows). In ComputeBF16 with the native
// kernel and more rows, x is rounded and packed once for all of them.
// Otherwise it is MatMulTCompute on each.
func MatMulTGroup(ys [][]float32, x []float32, m int, ws []*Matrix, c Compute) {
	// a few rows of quantized weights take quantMatMulT's GEMV in either
	// mode: as one job rather than a job each, which cost Qwen3-30B-A3B's
	// NF4 decoding a quarter of its rate under bf16
	many := c == ComputeF32 || m <= gemvMaxM && allQuantized(ws)
	if c == ComputeBF16 && m > 0 && m <= gemvMaxM && allBF16(ws) {
		checkLen("MatMulTGroup x", x, m*ws[0].Cols)
		xr, put := bf16Rounded(x[:m*ws[0].Cols])
		defer put()
		x, c, many = xr, ComputeF32, true
	}
	if l := active.Load(); c == ComputeBF16 && l.kernBF16 != nil && m > gemvMaxM && len(ys) == len(ws) && len(ws) > 1 && sharedPairs(ws) {
		k := ws[0].Cols
		checkLen("MatMulTGroup x", x, m*k)
		if m <= 0 {
			return
		}
		a, buf := prepackA(l, matA{f: x, rs: k, cs: 1, round: true, kk: k}, m, (k+1)/2)
		defer packPool.Put(buf)
		for i, w := range ws {
			n := w.Rows
			checkLen("MatMulTGroup y", ys[i], m*n)
			checkW("MatMulTGroup", w)
			b := matB{f: w.F32, h: w.BF16, rs: 1, cs: k, pairs: true, kk: k, pk: w.packedFor(l, ComputeBF16)}
			gemm(l, m, n, (k+1)/2, a, b, ys[i], n, false)
		}
		return
	}
	if m != 1 || !many || len(ys) != len(ws) {
		for i, w := range ws {
			MatMulTCompute(ys[i], x, m, w, false, c)
		}
		return
	}
	xs := make([][]float32, len(ws))
	for i := range xs {
		xs[i] = x
	}
	MatMulTManyCompute(ys, xs, ws, c)
}

// sharedPairs reports whether MatMulTGroup can pack x once for ws: dense
// weights of one width, which the pairs GEMM multiplies.
func sharedPairs(ws []*Matrix) bool {
	for _, w := range ws {
		if w.IsQuantized() || w.Cols != ws[0].Cols || w.Cols == 0 || w.Rows == 0 {
			return false
		}
	}
	return true
}

// allQuantized reports whether every one of ws is quantized.
func allQuantized(ws []*Matrix) bool {
	for _, w := range ws {
		if !w.IsQuantized() {
			return false
		}
	}
	return len(ws) > 0
}

// allBF16 reports whether ws are dense BF16 weights of one width, which
// MatMulTCompute multiplies in ComputeBF16 by a float32 GEMV on rounded x
// for a few rows.
func allBF16(ws []*Matrix) bool {
	for _, w := range ws {
		if w.IsQuantized() || w.DType != BF16 || w.Cols != ws[0].Cols {
			return false
		}
	}
	return len(ws) > 0
}

// scratchPool recycles float32 scratch of the decoding step's kernels
// (NF4-permuted inputs, softmax and attention rows). A decoding step
// allocated 0.6 MB of it anew, and fresh memory costs page faults: a
// 128-value softmax took 14–40 µs with its 2 KB scratch made per call,
// 1–3 µs from the pool (30B-A3B decode, in one process, load 2–5).
var scratchPool = sync.Pool{New: func() any { return new([]float32) }}

// MatMulTMany computes ys[i] = xs[i]·ws[i]ᵀ for single rows xs[i] (float32
// compute), as one job of the worker pool over all the weights' rows in
// groups of 4: the GEMVs of a decoding step that are ready together, such as
// a mixture-of-experts token's experts (whose own calls were an eighth of
// the decoding time in pool hand-offs). Quantized weights are dotted straight
// from their bytes.
func MatMulTMany(ys, xs [][]float32, ws []*Matrix) { MatMulTManyCompute(ys, xs, ws, ComputeF32) }

// MatMulTManyCompute is MatMulTMany with a choice of compute mode: what
// MatMulTCompute computes for each, as one job when the weights are
// quantized (NF4 by dotNF4RowsBF16 in ComputeBF16 on AVX512_BF16), else a
// call each in ComputeBF16.
func MatMulTManyCompute(ys, xs [][]float32, ws []*Matrix, c Compute) {
	l := active.Load()
	if l.gemv1 == nil || len(ys) != len(ws) || len(xs) != len(ws) || c == ComputeBF16 && !allQuantized(ws) {
		for i, w := range ws {
			MatMulTCompute(ys[i], xs[i], 1, w, false, c)
		}
		return
	}
	bf16 := c == ComputeBF16 && l.quant.dotNF4RowsBF16 != nil
	start := make([]int, len(ws)+1) // first group of 4 rows of each matrix
	for i, w := range ws {
		checkLen("MatMulTMany y", ys[i], w.Rows)
		checkLen("MatMulTMany x", xs[i], w.Cols)
		if err := w.Validate(); err != nil {
			panic(err.Error())
		}
		if !w.IsQuantized() {
			checkW("MatMulTMany", w)
		}
		start[i+1] = start[i] + (w.Rows+3)/4
	}
	nb := start[len(ws)]
	// NF4 inputs permuted for dotNF4Rows (or rounded and permuted for
	// dotNF4RowsBF16) once, shared by matrices that read the same input (an
	// expert's gate and up)
	xps := make([][]float32, len(ws))
	xhs := make([][]uint16, len(ws))
	nf4 := func(i int) bool { return ws[i].DType == NF4 && (bf16 || ws[i].Cols >= NF4Block) }
	shared := func(i int) bool { // the previous NF4 matrix reads the same input
		return i > 0 && nf4(i-1) && len(xs[i]) > 0 && &xs[i-1][0] == &xs[i][0] && len(xs[i-1]) == len(xs[i])
	}
	total := 0
	for i, w := range ws {
		if nf4(i) && !shared(i) {
			total += w.Cols / NF4Block * NF4Block
		}
	}
	var bp *[]float32
	var hp *[]uint16
	if bf16 {
		hp = pairPool.Get().(*[]uint16)
		defer pairPool.Put(hp)
		*hp = growU16(*hp, total)
	} else {
		bp = scratchPool.Get().(*[]float32)
		defer scratchPool.Put(bp)
		*bp = grow(*bp, total)
	}
	off := 0
	for i, w := range ws {
		n := w.Cols / NF4Block * NF4Block
		switch {
		case !nf4(i):
		case shared(i):
			xps[i], xhs[i] = xps[i-1], xhs[i-1]
		case bf16:
			xhs[i] = permuteNF4BF16((*hp)[off:off+n:off+n], xs[i], w.Cols)
			off += n
		default:
			xps[i] = permuteNF4((*bp)[off:off+n:off+n], xs[i], w.Cols)
			off += n
		}
	}
	gemvParallel(nb, func(lo, hi int) {
		var sbuf []float32
		for i, w := range ws {
			a, b := max(lo, start[i]), min(hi, start[i+1])
			if a >= b {
				continue
			}
			if !w.IsQuantized() {
				gemv1Rows(l, ys[i], xs[i], w, a-start[i], b-start[i], false)
				continue
			}
			j0, j1 := 4*(a-start[i]), min(4*(b-start[i]), w.Rows)
			if w.DType == Q8 || xps[i] != nil || xhs[i] != nil { // one kernel call for the rows
				sbuf = w.Quant.rowsDot(ys[i][j0:j1], xs[i], xps[i], xhs[i], w.DType, w.Cols, j0, sbuf)
				continue
			}
			nbk := QuantBlocks(w.DType, w.Cols)
			if cap(sbuf) < nbk {
				sbuf = make([]float32, nbk)
			}
			for j := j0; j < j1; j++ {
				ys[i][j] = w.Quant.nf4RowDot(xs[i], w.Cols, j, w.Quant.rowScales(sbuf[:nbk], j, nbk))
			}
		}
	})
}
