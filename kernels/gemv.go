package kernels

// gemvMaxM is the largest m MatMulT treats as matrix-vector: decoding a few
// tokens is bound by reading w, so w is streamed once, unpacked.
const gemvMaxM = 8

// gemvT computes y[m×n] (+)= x[m×k]·wᵀ for small m, splitting rows of w
// (in groups of 4) across the pool.
func gemvT(l *impl, y, x []float32, m int, w *Matrix, acc bool) {
	n, k := w.Rows, w.Cols
	gx := l.gemvX
	one := m == 1 && l.gemv1 != nil
	if one {
		gx = 1 // a single token: no padded rows of x
	}
	mp := (m + gx - 1) / gx * gx
	xp := x
	if mp != m {
		// Zero-pad x to whole kernel groups (tiny: at most 8 rows).
		xp = make([]float32, mp*k)
		copy(xp, x[:m*k])
	}
	k16 := k / 16
	kt := k16 * 16
	nb := (n + 3) / 4
	// More chunks than threads so a slow core does not hold up the rest.
	parallelChunks(nb, min(nb, 4*Threads()), func(lo, hi int) {
		var out [16]float32
		for jb := lo; jb < hi; jb++ {
			j0 := jb * 4
			nv := min(4, n-j0)
			for g := 0; g < mp; g += gx {
				if nv == 4 && one {
					if w.DType == BF16 {
						l.gemv1BF16(out[:], xp, w.BF16[j0*k:], k, k16)
					} else {
						l.gemv1(out[:], xp, w.F32[j0*k:], k, k16)
					}
				} else if nv == 4 {
					if w.DType == BF16 {
						l.gemvBF16(out[:], xp[g*k:], k, w.BF16[j0*k:], k, k16)
					} else {
						l.gemv(out[:], xp[g*k:], k, w.F32[j0*k:], k, k16)
					}
				} else {
					clear(out[:])
				}
				for r := 0; r < gx && g+r < m; r++ {
					xr := xp[(g+r)*k : (g+r+1)*k]
					yr := y[(g+r)*n+j0 : (g+r)*n+j0+nv]
					for c := range yr {
						var s float32
						p0 := kt
						if nv < 4 {
							p0 = 0
						}
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
	})
}
