package kernels

// Pure-Go twins of every assembly routine. The generic level uses them; the
// tests compare each assembly level against them.

// genericImpl is the portable level.
var genericImpl = &impl{
	name: "generic",
	mr:   4, nr: 8, kc: 256, mc: 128, nc: 2048, kcPairs: 128,
	kern:        kernGo,
	kernPBF16:   kernPBF16Go,
	packBT8:     packBT8Go,
	packBT8BF16: packBT8BF16Go,
	widenBF16:   widenBF16Go,
	gemvX:       4,
	gemv:        gemvGo,
	gemvBF16:    gemvBF16Go,
	cvtBF16:     cvtBF16Go,
	ops:         goOps,
	quant:       goQuant,
	fmaLoop:     fmaLoopGo,
	readSum:     readSumGo,
}

// kernGo is the microkernel: c[MR×NR] (+)= a·b with MR = len(a)/kc and
// NR = len(b)/kc.
func kernGo(kc int, a, b, c []float32, ldc int, acc bool) {
	mr, nr := len(a)/kc, len(b)/kc
	var t [16 * 64]float32
	tile := t[:mr*nr]
	for p := 0; p < kc; p++ {
		ap := a[p*mr : (p+1)*mr]
		bp := b[p*nr : (p+1)*nr]
		for i, av := range ap {
			row := tile[i*nr : (i+1)*nr]
			for j, bv := range bp {
				row[j] += av * bv
			}
		}
	}
	storeTile(c, ldc, tile, mr, nr, acc)
}

// kernPBF16Go is kernGo with b prepacked bfloat16.
func kernPBF16Go(kc int, a []float32, b []uint16, c []float32, ldc int, acc bool) {
	mr, nr := len(a)/kc, len(b)/kc
	var t [16 * 64]float32
	tile := t[:mr*nr]
	for p := 0; p < kc; p++ {
		ap := a[p*mr : (p+1)*mr]
		bp := b[p*nr : (p+1)*nr]
		for i, av := range ap {
			row := tile[i*nr : (i+1)*nr]
			for j, bv := range bp {
				row[j] += av * BF16ToF32(bv)
			}
		}
	}
	storeTile(c, ldc, tile, mr, nr, acc)
}

// storeTile writes (acc: adds) the mr×nr tile into c (row stride ldc).
func storeTile(c []float32, ldc int, tile []float32, mr, nr int, acc bool) {
	for i := 0; i < mr; i++ {
		dst := c[i*ldc : i*ldc+nr]
		src := tile[i*nr : (i+1)*nr]
		if acc {
			for j, v := range src {
				dst[j] += v
			}
		} else {
			copy(dst, src)
		}
	}
}

// packBT8Go: dst[p*ldd+r] = src[r*lds+p] for r < 8, p < 8*nblk.
func packBT8Go(dst []float32, ldd int, src []float32, lds, nblk int) {
	for r := 0; r < 8; r++ {
		row := src[r*lds : r*lds+8*nblk]
		for p, v := range row {
			dst[p*ldd+r] = v
		}
	}
}

// packBT8BF16Go is packBT8Go for a bfloat16 source, widened.
func packBT8BF16Go(dst []float32, ldd int, src []uint16, lds, nblk int) {
	for r := 0; r < 8; r++ {
		row := src[r*lds : r*lds+8*nblk]
		for p, v := range row {
			dst[p*ldd+r] = BF16ToF32(v)
		}
	}
}

// gemvGo: out[r*4+c] = x row r · w row c over k16*16 columns, r < 4.
func gemvGo(out []float32, x []float32, ldx int, w []float32, ldw, k16 int) {
	k := k16 * 16
	for r := 0; r < 4; r++ {
		xr := x[r*ldx : r*ldx+k]
		for c := 0; c < 4; c++ {
			wr := w[c*ldw : c*ldw+k]
			var s float32
			for p, v := range xr {
				s += v * wr[p]
			}
			out[r*4+c] = s
		}
	}
}

// gemvBF16Go is gemvGo for bfloat16 w.
func gemvBF16Go(out []float32, x []float32, ldx int, w []uint16, ldw, k16 int) {
	k := k16 * 16
	for r := 0; r < 4; r++ {
		xr := x[r*ldx : r*ldx+k]
		for c := 0; c < 4; c++ {
			wr := w[c*ldw : c*ldw+k]
			var s float32
			for p, v := range xr {
				s += v * BF16ToF32(wr[p])
			}
			out[r*4+c] = s
		}
	}
}

// widenBF16Go: dst[r*ldd+j] = src[r*lds+j] widened, r < rows, j < 8*n8.
func widenBF16Go(dst []float32, ldd int, src []uint16, lds, rows, n8 int) {
	for r := 0; r < rows; r++ {
		d := dst[r*ldd : r*ldd+8*n8]
		for j, v := range src[r*lds : r*lds+8*n8] {
			d[j] = BF16ToF32(v)
		}
	}
}
