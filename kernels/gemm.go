package kernels

// MatMulT computes y[m×n] (+)= x[m×k] · wᵀ where w is [n×k] (the forward of a
// linear layer). With accumulate false y is overwritten.
func MatMulT(y, x []float32, m int, w *Matrix, accumulate bool) {
	n, k := w.Rows, w.Cols
	row := make([]float32, k)
	for j := 0; j < n; j++ {
		w.Row(row, j)
		for i := 0; i < m; i++ {
			xi := x[i*k : (i+1)*k]
			var s float32
			for p, v := range row {
				s += xi[p] * v
			}
			if accumulate {
				y[i*n+j] += s
			} else {
				y[i*n+j] = s
			}
		}
	}
}

// MatMulN computes dx[m×k] (+)= dy[m×n] · w where w is [n×k] (the input
// gradient of a linear layer).
func MatMulN(dx, dy []float32, m int, w *Matrix, accumulate bool) {
	n, k := w.Rows, w.Cols
	if !accumulate {
		clear(dx[:m*k])
	}
	row := make([]float32, k)
	for j := 0; j < n; j++ {
		w.Row(row, j)
		for i := 0; i < m; i++ {
			g := dy[i*n+j]
			if g == 0 {
				continue
			}
			dxi := dx[i*k : (i+1)*k]
			for p, v := range row {
				dxi[p] += g * v
			}
		}
	}
}

// MatMulTN computes dw[n×k] (+)= dyᵀ · x where dy is [m×n] and x is [m×k]
// (the weight gradient of a linear layer).
func MatMulTN(dw, dy, x []float32, m, n, k int, accumulate bool) {
	if !accumulate {
		clear(dw[:n*k])
	}
	for i := 0; i < m; i++ {
		xi := x[i*k : (i+1)*k]
		for j := 0; j < n; j++ {
			g := dy[i*n+j]
			if g == 0 {
				continue
			}
			dwj := dw[j*k : (j+1)*k]
			for p, v := range xi {
				dwj[p] += g * v
			}
		}
	}
}
