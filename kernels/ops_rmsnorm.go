package kernels

import "math"

// RMSNorm: out[r,:] = x[r,:] * rstd[r] * w[:], rstd[r] = 1/sqrt(mean(x[r,:]²)+eps).
// x, out [rows×n], w [n]. rstd [rows] is written when non-nil (saved for
// backward). out may alias x. The sum of squares is accumulated in float64 so
// large hidden sizes lose nothing.
func RMSNorm(out, x, w []float32, rows, n int, eps float32, rstd []float32) {
	needLen("RMSNorm", "x", x, rows*n)
	needLen("RMSNorm", "out", out, rows*n)
	needLen("RMSNorm", "w", w, n)
	if rstd != nil {
		needLen("RMSNorm", "rstd", rstd, rows)
	}
	if n == 0 {
		return
	}
	parallelFor(rows, 3*n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr := x[r*n : (r+1)*n]
			or := out[r*n : (r+1)*n]
			ss := sumSquares(xr)
			rs := float32(1 / math.Sqrt(ss/float64(n)+float64(eps)))
			if rstd != nil {
				rstd[r] = rs
			}
			mulScaled(or, xr, w, rs)
		}
	})
}

// RMSNormBackward: dx [rows×n] (+)= ∂L/∂x (overwritten unless accumulate),
// dw [n] += ∂L/∂w when dw != nil, given dout [rows×n], the forward's input x,
// weight w and saved rstd [rows].
//
// With x̂ = x·rstd and g = dout·w: dx = rstd·(g − x̂·mean(g·x̂)), dw = Σ_r dout·x̂.
func RMSNormBackward(dx, dw, dout, x, w, rstd []float32, rows, n int, accumulate bool) {
	needLen("RMSNormBackward", "dx", dx, rows*n)
	needLen("RMSNormBackward", "dout", dout, rows*n)
	needLen("RMSNormBackward", "x", x, rows*n)
	needLen("RMSNormBackward", "w", w, n)
	needLen("RMSNormBackward", "rstd", rstd, rows)
	if dw != nil {
		needLen("RMSNormBackward", "dw", dw, n)
	}
	if n == 0 {
		return
	}
	parallelFor(rows, 6*n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr := x[r*n : (r+1)*n]
			dr := dout[r*n : (r+1)*n]
			dxr := dx[r*n : (r+1)*n]
			rs := rstd[r]
			// Σ g·x̂ = rstd · Σ dout·w·x
			var acc float64
			c0, c1, c2, c3 := float32(0), float32(0), float32(0), float32(0)
			i := 0
			for ; i+4 <= n; i += 4 {
				c0 += dr[i] * w[i] * xr[i]
				c1 += dr[i+1] * w[i+1] * xr[i+1]
				c2 += dr[i+2] * w[i+2] * xr[i+2]
				c3 += dr[i+3] * w[i+3] * xr[i+3]
				if i&255 == 252 { // flush to float64 every 256 elements
					acc += float64((c0 + c1) + (c2 + c3))
					c0, c1, c2, c3 = 0, 0, 0, 0
				}
			}
			for ; i < n; i++ {
				c0 += dr[i] * w[i] * xr[i]
			}
			acc += float64((c0 + c1) + (c2 + c3))
			// dx = rstd·g − x·rstd³·mean(dout·w·x)
			k := float32(acc/float64(n)) * rs * rs * rs
			if accumulate {
				for i := range dxr {
					dxr[i] += rs*dr[i]*w[i] - k*xr[i]
				}
			} else {
				for i := range dxr {
					dxr[i] = rs*dr[i]*w[i] - k*xr[i]
				}
			}
		}
	})
	if dw == nil {
		return
	}
	// dw is split by columns, not rows, so every element has one writer and the
	// row order of the sum is fixed (deterministic results).
	parallelFor(n, 2*rows, func(lo, hi int) {
		acc := make([]float32, hi-lo)
		for r := 0; r < rows; r++ {
			rs := rstd[r]
			xr := x[r*n+lo : r*n+hi]
			dr := dout[r*n+lo : r*n+hi]
			for i := range acc {
				acc[i] += dr[i] * xr[i] * rs
			}
		}
		Add(dw[lo:hi], acc)
	})
}

// sumSquares returns Σ x² accumulated in float32 lanes flushed to float64.
func sumSquares(x []float32) float64 {
	var acc float64
	n := len(x)
	for base := 0; base < n; base += 256 {
		blk := x[base:min(base+256, n)]
		var s0, s1, s2, s3 float32
		i := 0
		for ; i+4 <= len(blk); i += 4 {
			b := blk[i : i+4 : i+4]
			s0 += b[0] * b[0]
			s1 += b[1] * b[1]
			s2 += b[2] * b[2]
			s3 += b[3] * b[3]
		}
		for ; i < len(blk); i++ {
			s0 += blk[i] * blk[i]
		}
		acc += float64((s0 + s1) + (s2 + s3))
	}
	return acc
}

// mulScaled computes out[i] = x[i]·s·w[i]; out may alias x.
func mulScaled(out, x, w []float32, s float32) {
	n := len(out)
	x = x[:n]
	w = w[:n]
	i := 0
	for ; i+4 <= n; i += 4 {
		o := out[i : i+4 : i+4]
		xx := x[i : i+4 : i+4]
		ww := w[i : i+4 : i+4]
		o[0] = xx[0] * s * ww[0]
		o[1] = xx[1] * s * ww[1]
		o[2] = xx[2] * s * ww[2]
		o[3] = xx[3] * s * ww[3]
	}
	for ; i < n; i++ {
		out[i] = x[i] * s * w[i]
	}
}
