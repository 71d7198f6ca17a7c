package kernels

// fmaIters is how many loop trips one FMALoop call makes.
const fmaIters = 1 << 20

// FMALoop runs a register-only loop of independent fused multiply-adds on
// the calling goroutine with the active level's widest vectors and returns
// the floating-point operations it performed (2 per lane per FMA). Timing it
// on every thread gives the machine's compute peak for `gotrain bench peak`.
func FMALoop() int { return active.Load().fmaLoop() }

// FMALoopBF16 is FMALoop with the BF16 dot product (VDPBF16PS: 32 products
// and sums per instruction, twice VFMADD231PS's); ok is false when the
// active level has none.
func FMALoopBF16() (flops int, ok bool) {
	f := active.Load().fmaLoopBF16
	if f == nil {
		return 0, false
	}
	return f(), true
}

// ReadSum returns the sum of buf, reading it with the widest loads the
// active level has; `gotrain bench bandwidth` times it on buffers larger
// than the caches.
func ReadSum(buf []float32) float32 { return active.Load().readSum(buf) }

func readSumGo(buf []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(buf); i += 4 {
		s0 += buf[i]
		s1 += buf[i+1]
		s2 += buf[i+2]
		s3 += buf[i+3]
	}
	for ; i < len(buf); i++ {
		s0 += buf[i]
	}
	return s0 + s1 + s2 + s3
}

func fmaLoopGo() int {
	var a [8]float32
	for i := range a {
		a[i] = float32(i)
	}
	const iters = fmaIters / 16
	for n := 0; n < iters; n++ {
		for i := range a {
			a[i] = a[i]*0.999 + 0.001
		}
	}
	sink = a[0]
	return iters * 8 * 2
}

var sink float32
