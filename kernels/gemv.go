package kernels

// gemvMaxM is the largest m MatMulT treats as matrix-vector: decoding a few
// tokens is bound by reading w, so w is streamed once, unpacked.
const gemvMaxM = 8

// gemvMaxN is the largest n (rows of w, e.g. a LoRA rank) for which MatMulT
// uses the dot-product kernels at any m: with so few columns of y, packing x
// would cost as much as the multiply.
const gemvMaxN = 32

// gemvT computes y[m×n] (+)= x[m×k]·wᵀ with dot-product kernels (4 rows of
// w against gemvX rows of x, reduced horizontally), reading w in place. It
// splits rows of w (groups of 4) across the pool, or rows of x when w has
// too few rows to share.
func gemvT(l *impl, y, x []float32, m int, w *Matrix, acc bool) {
	n, k := w.Rows, w.Cols
	gx := l.gemvX
	one := m == 1 && l.gemv1 != nil
	if one {
		gx = 1 // a single token: no padded rows of x
	}
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
				case one && w.DType == BF16:
					l.gemv1BF16(out[:], xg, w.BF16[j0*k:], k, k16)
				case one:
					l.gemv1(out[:], xg, w.F32[j0*k:], k, k16)
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
						var s float32
						if w.DType == BF16 {
							wr := w.BF16[(j0+c)*k : (j0+c+1)*k]
							for p := p0; p < k; p++ {
								s += xr[p] * BF16ToF32(wr[p])
							}
						} else {
							wr := w.F32[(j0+c)*k : (j0+c+1)*k]
							for p := p0; p < k; p++ {
								s += xr[p] * wr[p]
							}
						}
						s += out[r*4+c]
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
