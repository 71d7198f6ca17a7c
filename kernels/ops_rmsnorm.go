package kernels

import "math"

// RMSNorm: out[r,:] = x[r,:] * rstd[r] * w[:], rstd[r] = 1/sqrt(mean(x[r,:]²)+eps).
// x, out [rows×n], w [n]. rstd [rows] is written when non-nil (saved for
// backward). out may alias x. The sum of squares is added up in float64 over
// float32 chunks, so large hidden sizes lose nothing.
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
	k := opsKernels()
	parallelFor(rows, 3*n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr := x[r*n : (r+1)*n]
			var ss float64
			for c := 0; c < n; c += rmsChunk {
				ss += float64(k.sumSq(xr[c:min(c+rmsChunk, n)]))
			}
			rs := float32(1 / math.Sqrt(ss/float64(n)+float64(eps)))
			if rstd != nil {
				rstd[r] = rs
			}
			k.mulScaled(out[r*n:(r+1)*n], xr, w[:n], rs)
		}
	})
}

// rmsChunk is how many elements are summed in float32 before the partial sum
// is added to a float64 total.
const rmsChunk = 1024

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
	k := opsKernels()
	w = w[:n]
	parallelFor(rows, 6*n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr := x[r*n : (r+1)*n]
			dr := dout[r*n : (r+1)*n]
			rs := rstd[r]
			// Σ g·x̂ = rstd · Σ dout·w·x
			var acc float64
			for c := 0; c < n; c += rmsChunk {
				e := min(c+rmsChunk, n)
				acc += float64(k.dot3(dr[c:e], w[c:e], xr[c:e]))
			}
			// dx = rstd·dout·w − x·rstd³·mean(dout·w·x)
			kk := float32(acc/float64(n)) * rs * rs * rs
			k.rmsBackRow(dx[r*n:(r+1)*n], dr, w, xr, rs, kk, accumulate)
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
			k.mulAddScaled(acc, dout[r*n+lo:r*n+hi], x[r*n+lo:r*n+hi], rstd[r])
		}
		Add(dw[lo:hi], acc)
	})
}

func sumSqGo(x []float32) float32 {
	var s0, s1, s2, s3 float32
	n := len(x)
	i := 0
	for ; i+4 <= n; i += 4 {
		b := x[i : i+4 : i+4]
		s0 += b[0] * b[0]
		s1 += b[1] * b[1]
		s2 += b[2] * b[2]
		s3 += b[3] * b[3]
	}
	for ; i < n; i++ {
		s0 += x[i] * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dot3Go(a, b, c []float32) float32 {
	n := len(a)
	b, c = b[:n], c[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += a[i] * b[i] * c[i]
		s1 += a[i+1] * b[i+1] * c[i+1]
		s2 += a[i+2] * b[i+2] * c[i+2]
		s3 += a[i+3] * b[i+3] * c[i+3]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i] * c[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// mulScaled computes out[i] = (x[i]·s)·w[i]; out may alias x.
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

func rmsBackRowGo(dx, d, w, x []float32, rs, k float32, acc bool) {
	n := len(dx)
	d, w, x = d[:n], w[:n], x[:n]
	if acc {
		for i := range dx {
			dx[i] += rs*d[i]*w[i] - k*x[i]
		}
		return
	}
	for i := range dx {
		dx[i] = rs*d[i]*w[i] - k*x[i]
	}
}

func mulAddScaledGo(acc, a, b []float32, s float32) {
	n := len(acc)
	a, b = a[:n], b[:n]
	for i := range acc {
		acc[i] += a[i] * b[i] * s
	}
}
