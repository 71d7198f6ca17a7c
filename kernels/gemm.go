package kernels

import (
	"fmt"
	"sync"
)

// The GEMM driver follows Goto/BLIS: C[M×N] (+)= A[M×K]·B[K×N] with A and B
// read through strides, so the three matmuls of a linear layer (forward,
// input grad, weight grad) share one code path. Blocks of A are packed into
// MR-row micro-panels and blocks of B into NR-column micro-panels (k-major,
// zero-padded), then a register-tile microkernel runs over them. B may be
// bfloat16: it is widened while packing, one cache-sized panel at a time.
// Work is split across the worker pool by columns of C (or rows when C is
// narrow); each goroutine packs its own panels.

// matA is the left operand, float32, element (i,p) at f[i*rs+p*cs]. In a
// pairs GEMM (matB.pairs) it is either rows of bf16 pairs (as float32 bit
// patterns, rs in pairs, cs 1), or, with round set, rows of kk float32
// values (rs in values, cs 1) rounded to pairs while they are packed.
// With pk set the pairs are already packed, rows from pi on (prepackA).
type matA struct {
	f      []float32
	rs, cs int
	round  bool
	kk     int
	pk     []float32
	pm, pi int
}

// matB is the right operand, element (p,j) at f[p*rs+j*cs] (or h, BF16),
// or, with pk set, columns from pj on of a prepacked weight. With pairs set
// the GEMM runs in ComputeBF16: k counts bf16 pairs (a holds pairs too, as
// float32 bit patterns), B's panels are packed as pairs of rows (2q, 2q+1)
// of B, and kk is B's number of rows in values (the last pair may be half).
type matB struct {
	f      []float32
	h      []uint16
	rs, cs int
	pk     *packedB
	pj     int
	q      *Matrix // NF4 w (with pairs, rs 1): columns from pj on dequantized per panel
	pairs  bool
	kk     int
}

// MatMulT computes y[m×n] (+)= x[m×k] · wᵀ where w is [n×k] (the forward of a
// linear layer). With accumulate false y is overwritten. For m ≤ 8 (decoding)
// it streams w once (GEMV), split across the pool by rows of w; for n ≤ 32
// (a LoRA down-projection) it also uses the unpacked dot-product kernels.
func MatMulT(y, x []float32, m int, w *Matrix, accumulate bool) {
	if w.IsQuantized() {
		quantMatMulT(y, x, m, w, accumulate, false) // quant.go
		return
	}
	n, k := w.Rows, w.Cols
	checkLen("MatMulT y", y, m*n)
	checkLen("MatMulT x", x, m*k)
	checkW("MatMulT", w)
	if m <= 0 || n <= 0 {
		return
	}
	if (m <= gemvMaxM || n <= gemvMaxN) && k > 0 {
		gemvT(active.Load(), y, x, m, w, accumulate)
		return
	}
	l := active.Load()
	b := matB{f: w.F32, h: w.BF16, rs: 1, cs: k, pk: w.packedFor(l, ComputeF32)}
	gemm(l, m, n, k, matA{f: x, rs: k, cs: 1}, b, y, n, accumulate)
}

// MatMulTRows is MatMulTCompute against rows [lo,hi) of w: y[m×(hi−lo)] (+)=
// x[m×k]·w[lo:hi]ᵀ, as an LM head is applied a block of the vocabulary at a
// time. It reads w's prepacked copy (Pack, in mode c) when w has one, which
// MatMulT on w.RowRange(lo, hi) cannot. lo must be a multiple of 64 (the
// microkernels' panel widths divide it); w must not be quantized. With
// ComputeBF16, w must be BF16: a few rows (m ≤ 8, GEMV: reading w is the
// cost) and CPUs without AVX512_BF16 round x to bfloat16 and take the
// float32 path, whose products are the native kernel's (a bf16 product is
// exact in float32), so that results do not depend on how many rows a call
// has beyond the order of float32 sums.
func MatMulTRows(y, x []float32, m int, w *Matrix, lo, hi int, accumulate bool, c Compute) {
	if lo%64 != 0 || lo < 0 || hi < lo || hi > w.Rows {
		panic(fmt.Sprintf("kernels.MatMulTRows: rows [%d,%d) of %d (lo a multiple of 64)", lo, hi, w.Rows))
	}
	if c == ComputeBF16 && w.DType != BF16 {
		panic("kernels.MatMulTRows: ComputeBF16 needs BF16 weights")
	}
	n, k := hi-lo, w.Cols
	checkLen("MatMulTRows y", y, m*n)
	checkLen("MatMulTRows x", x, m*k)
	if m <= 0 || n <= 0 {
		return
	}
	l := active.Load()
	if c == ComputeBF16 {
		if l.kernBF16 != nil && m > gemvMaxM && n > gemvMaxN && k > 0 {
			a := matA{f: x, rs: k, cs: 1, round: true, kk: k}
			b := matB{h: w.BF16, rs: 1, cs: k, pairs: true, kk: k, pk: w.packedFor(l, ComputeBF16)}
			gemm(l, m, n, (k+1)/2, a, b.shift(lo), y, n, accumulate)
			return
		}
		xr, put := bf16Rounded(x[:m*k])
		defer put()
		x = xr
	}
	pk := w.packedFor(l, ComputeF32)
	if pk == nil || m <= gemvMaxM || n <= gemvMaxN {
		MatMulT(y, x, m, w.RowRange(lo, hi), accumulate)
		return
	}
	b := matB{f: w.F32, h: w.BF16, rs: 1, cs: k, pk: pk}
	gemm(l, m, n, k, matA{f: x, rs: k, cs: 1}, b.shift(lo), y, n, accumulate)
}

// MatMulN computes dx[m×k] (+)= dy[m×n] · w where w is [n×k] (the input
// gradient of a linear layer). For k ≤ 32 it multiplies by a transposed copy
// of the (then small) w with the dot-product kernels.
func MatMulN(dx, dy []float32, m int, w *Matrix, accumulate bool) {
	if w.IsQuantized() {
		quantMatMulN(dx, dy, m, w, accumulate, false) // quant.go
		return
	}
	n, k := w.Rows, w.Cols
	checkLen("MatMulN dx", dx, m*k)
	checkLen("MatMulN dy", dy, m*n)
	checkW("MatMulN", w)
	if m <= 0 || k <= 0 {
		return
	}
	if k <= gemvMaxN && n > 0 {
		// Few input features (a LoRA up-projection): dx = dy·w is a
		// dot product of dy's rows with wᵀ's rows; wᵀ is small.
		gemvT(active.Load(), dx, dy, m, transposeSmall(w), accumulate)
		return
	}
	b := matB{f: w.F32, h: w.BF16, rs: k, cs: 1}
	gemm(active.Load(), m, k, n, matA{f: dy, rs: n, cs: 1}, b, dx, k, accumulate)
}

// transposeSmall returns wᵀ [Cols×Rows] in w's dtype.
func transposeSmall(w *Matrix) *Matrix {
	n, k := w.Rows, w.Cols
	if w.DType == BF16 {
		t := make([]uint16, n*k)
		for j := 0; j < n; j++ {
			for p, v := range w.BF16[j*k : (j+1)*k] {
				t[p*n+j] = v
			}
		}
		return NewBF16(k, n, t)
	}
	t := make([]float32, n*k)
	for j := 0; j < n; j++ {
		for p, v := range w.F32[j*k : (j+1)*k] {
			t[p*n+j] = v
		}
	}
	return NewF32(k, n, t)
}

// MatMulTN computes dw[n×k] (+)= dyᵀ · x where dy is [m×n] and x is [m×k]
// (the weight gradient of a linear layer).
func MatMulTN(dw, dy, x []float32, m, n, k int, accumulate bool) {
	checkLen("MatMulTN dw", dw, n*k)
	checkLen("MatMulTN dy", dy, m*n)
	checkLen("MatMulTN x", x, m*k)
	if n <= 0 || k <= 0 {
		return
	}
	gemm(active.Load(), n, k, m, matA{f: dy, rs: 1, cs: n}, matB{f: x, rs: k, cs: 1}, dw, k, accumulate)
}

// checkLen panics with a clear message on a too-short buffer: a shape bug in
// the caller, like an index out of range.
func checkLen(what string, s []float32, n int) {
	if len(s) < n {
		panic("kernels: " + what + ": buffer too short for the shape")
	}
}

func checkW(what string, w *Matrix) {
	n := w.Rows * w.Cols
	switch w.DType {
	case F32:
		if len(w.F32) < n {
			panic("kernels: " + what + ": F32 weight shorter than Rows*Cols")
		}
	case BF16:
		if len(w.BF16) < n {
			panic("kernels: " + what + ": BF16 weight shorter than Rows*Cols")
		}
	default:
		panic("kernels: " + what + ": unknown weight dtype")
	}
}

// gemm computes c[m×n] (+)= a·b, c with row stride ldc, in parallel.
func gemm(l *impl, m, n, k int, a matA, b matB, c []float32, ldc int, acc bool) {
	if k == 0 {
		if !acc {
			for i := 0; i < m; i++ {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	t := Threads()
	// Split C by columns in NR multiples when wide enough, else by rows.
	// Each goroutine packs all of the operand the split does not divide,
	// so when A is the taller one (m > n, a training step's 2048 tokens
	// against 896 features) rows are split instead: over the 0.5B training
	// shapes in ComputeBF16 the mean went from 510 to 590 GFLOP/s per CPU
	// second (machine at load 5).
	nb, mb := (n+l.nr-1)/l.nr, (m+l.mr-1)/l.mr
	if (nb >= 2*t || nb >= mb) && !(m > n && mb >= 2*t) {
		if b.pairs && a.pk == nil && min(t, nb) > 1 {
			// Every goroutine reads all of A: pack it once for all.
			pa, buf := prepackA(l, a, m, k)
			defer packPool.Put(buf)
			a = pa
		}
		parallelChunks(nb, min(t, nb), func(lo, hi int) {
			j0, j1 := lo*l.nr, min(hi*l.nr, n)
			gemmSerial(l, m, j1-j0, k, a, b.shift(j0), c[j0:], ldc, acc)
		})
		return
	}
	parallelChunks(mb, min(t, mb), func(lo, hi int) {
		i0, i1 := lo*l.mr, min(hi*l.mr, m)
		gemmSerial(l, i1-i0, n, k, a.shift(i0), b, c[i0*ldc:], ldc, acc)
	})
}

func (a matA) shift(i int) matA {
	if a.pk != nil {
		a.pi += i
	} else {
		a.f = a.f[i*a.rs:]
	}
	return a
}

func (b matB) shift(j int) matB {
	if b.pk != nil || b.q != nil {
		b.pj += j
	} else if b.h != nil {
		b.h = b.h[j*b.cs:]
	} else {
		b.f = b.f[j*b.cs:]
	}
	return b
}

// packBufs are one goroutine's packing buffers, recycled across calls.
type packBufs struct {
	a, b, tile, sc []float32
	stage          []uint16
}

var bufPool = sync.Pool{New: func() any { return new(packBufs) }}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// gemmSerial is the blocked GEMM on one goroutine, for the three kinds of
// B micro-panel: float32 (packed from float32 or bfloat16 B, or prepacked),
// prepacked bfloat16 widened in registers, and bf16 pairs (ComputeBF16).
func gemmSerial(l *impl, m, n, k int, a matA, b matB, c []float32, ldc int, acc bool) {
	bufs := bufPool.Get().(*packBufs)
	defer bufPool.Put(bufs)
	mr, nr := l.mr, l.nr
	// The tile kernels for float32 (or pair) panels.
	kFull, k8 := l.kern, l.kern8
	if b.pairs {
		kFull, k8 = l.kernBF16, l.kern8BF16
	}
	bufs.tile = grow(bufs.tile, mr*nr)
	mcb := blockSize(m, l.mc, mr)
	kcb := l.kcFor(b.pairs)
	for jc := 0; jc < n; jc += l.nc {
		nc := min(l.nc, n-jc)
		ncp := (nc + nr - 1) / nr * nr
		for pc := 0; pc < k; pc += kcb {
			kc := min(kcb, k-pc)
			kca := kc // an A micro-panel's length: pairs come in whole groups
			if b.pairs {
				kca = pairSteps(kc)
			}
			bufs.b = grow(bufs.b, ncp*kc)
			accum := acc || pc > 0
			for ic := 0; ic < m; ic += mcb {
				mc := min(mcb, m-ic)
				mcp := (mc + mr - 1) / mr * mr
				ablk := bufs.a
				switch {
				case a.pk != nil:
					ablk = a.pk[pc*a.pm+(a.pi+ic)*kca:]
				case b.pairs:
					bufs.a = grow(bufs.a, mcp*kca)
					ablk = bufs.a
					packAPairs(l, bufs.a, a, ic, mc, pc, kc, mr)
				default:
					bufs.a = grow(bufs.a, mcp*kca)
					ablk = bufs.a
					packA(l, bufs.a, a, ic, mc, pc, kc, mr)
				}
				for jr := 0; jr < nc; jr += nr {
					bp := bufs.b[jr*kc : (jr+nr)*kc]
					var bh []uint16
					nv := min(nr, nc-jr)
					switch {
					case b.pk != nil:
						bp, bh = b.pk.panel(pc, kc, b.pj+jc+jr)
					case ic > 0:
						// packed for the first block of A
					case b.q != nil:
						packBQuant(l, bufs, bufs.b[jr*kc:], b, pc, kc, jc+jr, nv)
					case b.pairs:
						packBPairs(l, bufs.b[jr*kc:], b, pc, kc, jc+jr, nv)
					default:
						// Pack each B micro-panel just before its first use,
						// so it is still in L1 for the first block of A.
						packB(l, bufs.b[jr*kc:], b, pc, kc, jc+jr, nv)
					}
					// kern runs kf on the float32 (or pair) panel bp, or
					// kh on the prepacked bfloat16 panel bh.
					kern := func(kf tileKern, kh tileKernPBF16, ap, c []float32, ldc int, acc bool) {
						if bh != nil {
							kh(kc, ap, bh, c, ldc, acc)
						} else {
							kf(kc, ap, bp, c, ldc, acc)
						}
					}
					for ir := 0; ir < mc; ir += mr {
						ap := ablk[ir*kca : (ir+mr)*kca]
						mv := min(mr, mc-ir)
						ct := c[(ic+ir)*ldc+jc+jr:]
						if mv == mr && nv == nr {
							kern(kFull, l.kernPBF16, ap, ct, ldc, accum)
							continue
						}
						if mv == 8 && nv == nr && k8 != nil {
							kern(k8, l.kern8PBF16, ap, ct, ldc, accum)
							continue
						}
						// Edge tile: compute into a scratch tile, copy the valid part.
						kern(kFull, l.kernPBF16, ap, bufs.tile, nr, false)
						for i := 0; i < mv; i++ {
							src := bufs.tile[i*nr : i*nr+nv]
							dst := ct[i*ldc : i*ldc+nv]
							if accum {
								for j, v := range src {
									dst[j] += v
								}
							} else {
								copy(dst, src)
							}
						}
					}
				}
			}
		}
	}
}

// kcFor is the KC block along k: in pairs for bf16-pair panels.
func (l *impl) kcFor(pairs bool) int {
	if pairs {
		return l.kcPairs
	}
	return l.kc
}

// packA packs rows [i0,i0+mc) × cols [p0,p0+kc) of a into MR-row
// micro-panels: panel r holds, for each p, MR values (zero past mc).
func packA(l *impl, dst []float32, a matA, i0, mc, p0, kc, mr int) {
	for ir := 0; ir < mc; ir += mr {
		pan := dst[ir*kc : (ir+mr)*kc]
		mv := min(mr, mc-ir)
		if a.cs == 1 {
			// Rows of a are contiguous: transpose 8 rows at a time in
			// assembly, the rest (and the k tail) in Go.
			r0, kb := 0, kc/8
			if kb > 0 {
				for ; r0+8 <= mv; r0 += 8 {
					l.packBT8(pan[r0:], mr, a.f[(i0+ir+r0)*a.rs+p0:], a.rs, kb)
				}
			}
			for r := 0; r < mv; r++ {
				ps := 0
				if r < r0 {
					ps = kb * 8
				}
				row := a.f[(i0+ir+r)*a.rs+p0:]
				row = row[ps:kc]
				for p, v := range row {
					pan[(ps+p)*mr+r] = v
				}
			}
		} else {
			for p := 0; p < kc; p++ {
				src := a.f[(p0+p)*a.cs+(i0+ir)*a.rs:]
				d := pan[p*mr : p*mr+mv]
				if a.rs == 1 {
					copy(d, src[:mv])
				} else {
					for r := range d {
						d[r] = src[r*a.rs]
					}
				}
			}
		}
		if mv < mr {
			for p := 0; p < kc; p++ {
				clear(pan[p*mr+mv : (p+1)*mr])
			}
		}
	}
}

// packB packs rows [p0,p0+kc) × cols [j0,j0+nc) of b into NR-column
// micro-panels: panel j holds, for each p, NR values (zero past nc).
func packB(l *impl, dst []float32, b matB, p0, kc, j0, nc int) {
	nr := l.nr
	for jr := 0; jr < nc; jr += nr {
		pan := dst[jr*kc : (jr+nr)*kc]
		nv := min(nr, nc-jr)
		if b.cs == 1 {
			// Rows of b are contiguous: copy (widen) NR values per p.
			p := 0
			if b.h != nil && nv >= 8 {
				off := p0*b.rs + j0 + jr
				l.widenBF16(pan, nr, b.h[off:], b.rs, kc, nv/8)
				if nv%8 == 0 {
					p = kc
				}
			}
			for ; p < kc; p++ {
				off := (p0+p)*b.rs + j0 + jr
				d := pan[p*nr : p*nr+nv]
				if b.h != nil {
					for j, v := range b.h[off : off+nv] {
						d[j] = BF16ToF32(v)
					}
				} else {
					copy(d, b.f[off:off+nv])
				}
			}
		} else {
			// Transpose: column j of b is contiguous (row j of a weight).
			kb := kc / 8
			j8 := 0
			if kb > 0 {
				j8 = nv / 8 * 8
			}
			for j := 0; j < j8; j += 8 {
				off := (j0+jr+j)*b.cs + p0
				if b.h != nil {
					l.packBT8BF16(pan[j:], nr, b.h[off:], b.cs, kb)
				} else {
					l.packBT8(pan[j:], nr, b.f[off:], b.cs, kb)
				}
			}
			// Leftover columns (all p), then leftover p of the 8-blocks.
			for j := j8; j < nv; j++ {
				packCol(pan, nr, j, b, (j0+jr+j)*b.cs+p0, 0, kc)
			}
			for j := 0; j < j8; j++ {
				packCol(pan, nr, j, b, (j0+jr+j)*b.cs+p0, kb*8, kc)
			}
		}
		if nv < nr {
			for p := 0; p < kc; p++ {
				clear(pan[p*nr+nv : (p+1)*nr])
			}
		}
	}
}

// packCol writes pan[p*nr+j] = b column at off, for p in [p0,p1).
func packCol(pan []float32, nr, j int, b matB, off, p0, p1 int) {
	if b.h != nil {
		for p, v := range b.h[off+p0 : off+p1] {
			pan[(p0+p)*nr+j] = BF16ToF32(v)
		}
		return
	}
	for p, v := range b.f[off+p0 : off+p1] {
		pan[(p0+p)*nr+j] = v
	}
}

// blockSize splits n into the fewest blocks of at most max, as even as
// possible, rounded up to a multiple of unit (so m = 256 becomes 2×128, not
// 240 + 16 with a mostly empty last tile).
func blockSize(n, max, unit int) int {
	nb := (n + max - 1) / max
	b := (n + nb - 1) / nb
	return (b + unit - 1) / unit * unit
}
