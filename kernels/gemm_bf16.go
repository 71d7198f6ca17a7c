package kernels

import (
	"math"
	"sync"
	"unsafe"
)

// Compute selects the arithmetic of a matrix multiply.
type Compute uint8

const (
	// ComputeF32 multiplies in float32 (BF16 weights are widened exactly).
	ComputeF32 Compute = iota
	// ComputeBF16 rounds the activations (and float32 weights) to bfloat16
	// and accumulates the exact products in float32, as PyTorch autocast
	// does: on AVX512_BF16 CPUs this runs VDPBF16PS at twice the float32
	// rate. Results differ from ComputeF32 by the input rounding, a relative
	// error of about 2⁻⁹ per product.
	ComputeBF16
)

// String names the compute mode as the CLI spells it.
func (c Compute) String() string {
	if c == ComputeBF16 {
		return "bf16"
	}
	return "f32"
}

// MatMulTCompute is MatMulT with a choice of compute mode. ComputeF32 is
// exactly MatMulT. A quantized w in ComputeBF16 (with AVX512_BF16) is
// dequantized panel by panel into bfloat16, so it computes exactly what the
// BF16 matrix of its rounded dequantized values would.
func MatMulTCompute(y, x []float32, m int, w *Matrix, accumulate bool, c Compute) {
	if c == ComputeBF16 && w.IsQuantized() && active.Load().kernBF16 != nil {
		quantMatMulT(y, x, m, w, accumulate, true)
		return
	}
	if c != ComputeBF16 || w.IsQuantized() { // quantized, no native bf16: float32 math on dequantized panels
		MatMulT(y, x, m, w, accumulate)
		return
	}
	n, k := w.Rows, w.Cols
	checkLen("MatMulTCompute y", y, m*n)
	checkLen("MatMulTCompute x", x, m*k)
	checkW("MatMulTCompute", w)
	if m <= 0 || n <= 0 {
		return
	}
	if m <= gemvMaxM && w.DType == BF16 {
		// A few rows (decoding): reading w is the cost, and the pairs GEMM
		// would pack all of it for them (bf16 decoding ran at half the
		// float32 rate). The float32 GEMV on x rounded to bfloat16 has the
		// native kernel's products (exact in float32).
		xr, put := bf16Rounded(x[:m*k])
		defer put()
		MatMulT(y, xr, m, w, accumulate)
		return
	}
	if l := active.Load(); l.kernBF16 != nil && k > 0 {
		gemmBF16T(l, y, x, m, w, accumulate)
		return
	}
	// Emulation on CPUs without AVX512_BF16 (and for k = 0): round x to
	// bf16 values held in float32, then the float32 path; the products are
	// the same as VDPBF16PS's. Float32 weights are rounded into a bf16 copy
	// here, so prefer BF16 weights with ComputeBF16.
	xr := make([]float32, m*k)
	for i, v := range x[:m*k] {
		xr[i] = BF16ToF32(F32ToBF16(v))
	}
	wr := w
	if w.DType == F32 {
		h := make([]uint16, n*k)
		for i, v := range w.F32[:n*k] {
			h[i] = F32ToBF16(v)
		}
		wr = NewBF16(n, k, h)
	}
	MatMulT(y, xr, m, wr, accumulate)
}

// MatMulNCompute is MatMulN with a choice of compute mode: with
// ComputeBF16 on a CPU with AVX512_BF16, dy and w are rounded to bfloat16
// and the products accumulate in float32 (the input gradient of a linear
// layer, as autocast computes it; a quantized w as in MatMulTCompute).
// Elsewhere (a small k, no native BF16 dot product) it is MatMulN.
func MatMulNCompute(dx, dy []float32, m int, w *Matrix, accumulate bool, c Compute) {
	l := active.Load()
	n, k := w.Rows, w.Cols
	if c == ComputeBF16 && l.kernBF16 != nil && w.IsQuantized() {
		quantMatMulN(dx, dy, m, w, accumulate, true)
		return
	}
	if c != ComputeBF16 || l.kernBF16 == nil || w.IsQuantized() || k <= gemvMaxN || n == 0 {
		MatMulN(dx, dy, m, w, accumulate)
		return
	}
	checkLen("MatMulNCompute dx", dx, m*k)
	checkLen("MatMulNCompute dy", dy, m*n)
	checkW("MatMulNCompute", w)
	if m <= 0 {
		return
	}
	a := matA{f: dy, rs: n, cs: 1, round: true, kk: n}
	gemm(l, m, k, (n+1)/2, a, matB{f: w.F32, h: w.BF16, rs: k, cs: 1, pairs: true, kk: n}, dx, k, accumulate)
}

// bf16Rounded returns x rounded to bfloat16 values (held in float32), in a
// buffer from packPool that put returns.
func bf16Rounded(x []float32) (xr []float32, put func()) {
	buf := packPool.Get().(*[]float32)
	*buf = grow(*buf, len(x))
	for i, v := range x {
		(*buf)[i] = BF16ToF32(F32ToBF16(v))
	}
	return *buf, func() { packPool.Put(buf) }
}

// pairBF16 packs two float32 values rounded to bfloat16 into the 32-bit
// pair VDPBF16PS reads (first element in the low half).
func pairBF16(lo, hi float32) uint32 {
	return uint32(F32ToBF16(lo)) | uint32(F32ToBF16(hi))<<16
}

// gemmBF16T computes y[m×n] (+)= bf16(x)·bf16(w)ᵀ with the native kernel:
// the one GEMM driver runs over k in pairs, rounding x into its packed
// panels.
func gemmBF16T(l *impl, y, x []float32, m int, w *Matrix, acc bool) {
	n, k := w.Rows, w.Cols
	a := matA{f: x, rs: k, cs: 1, round: true, kk: k}
	b := matB{f: w.F32, h: w.BF16, rs: 1, cs: k, pairs: true, kk: k, pk: w.packedFor(l, ComputeBF16)}
	gemm(l, m, n, (k+1)/2, a, b, y, n, acc)
}

// pairPool recycles the bfloat16 buffers of quantized panels and of
// attention's keys and values: a training step converts tens of MiB per
// layer.
var pairPool = sync.Pool{New: func() any { return new([]uint16) }}

// pairGroup is how many bf16 pairs of one row of A the pair kernels read
// contiguously (PAIR_GROUP in scripts/kernels/gen_gemm.py): an A
// micro-panel holds pair q = g·pairGroup+s of its row r at
// (g·MR+r)·pairGroup+s, so packing copies (or rounds) 32-byte runs of a
// row. The 12-row transpose this replaced was 5% of prefill and 12% of the
// 14B nf4 training step.
const pairGroup = 8

// pairSteps is the length, in pairs, of an A micro-panel of kc2 pairs:
// whole groups, zero-padded.
func pairSteps(kc2 int) int { return (kc2 + pairGroup - 1) / pairGroup * pairGroup }

// packPool recycles prepackA's buffers.
var packPool = sync.Pool{New: func() any { return new([]float32) }}

// prepackA packs all of a [m rows × k2 pairs] into the pair kernels' A
// micro-panels once, in parallel: the panel of rows [i, i+MR) and the KC
// block from pair pc is at pk[pc·mpad + i·pairSteps(kc)]. GEMMs that would
// pack the same rows more than once take it: the threads of a column
// split, which each packed all of A (reading it from memory in short runs
// per KC block: 5% of bf16 prefill), and a quantized matmul's panels. The
// caller returns buf to packPool when done.
func prepackA(l *impl, a matA, m, k2 int) (pa matA, buf *[]float32) {
	buf = packPool.Get().(*[]float32)
	*buf = grow(*buf, prepackSize(l, m, k2))
	np := (m + l.mr - 1) / l.mr
	parallelChunks(np, min(np, Threads()), func(lo, hi int) {
		prepackRows(l, *buf, a, m, k2, lo, hi)
	})
	return matA{pk: *buf, pm: np * l.mr}, buf
}

// prepackSize is the length of prepackA's buffer.
func prepackSize(l *impl, m, k2 int) int {
	last := k2 - (k2-1)/l.kcPairs*l.kcPairs // the last KC block's pairs
	return (m + l.mr - 1) / l.mr * l.mr * (k2 - last + pairSteps(last))
}

// prepackRows packs the micro-panels [lo,hi) (of MR rows) of prepackA.
func prepackRows(l *impl, pk []float32, a matA, m, k2, lo, hi int) {
	mr, kcb := l.mr, l.kcPairs
	mpad := (m + mr - 1) / mr * mr
	for p := lo; p < hi; p++ {
		i := p * mr
		for pc := 0; pc < k2; pc += kcb {
			kc := min(kcb, k2-pc)
			packAPairs(l, pk[pc*mpad+i*pairSteps(kc):], a, i, min(mr, m-i), pc, kc, mr)
		}
	}
}

// packAPairs packs rows [i0,i0+mc) × pairs [q0,q0+kc2) of a into MR-row
// micro-panels of the pair kernels (see pairGroup), zero past mc and kc2:
// a copy of rows of pairs, or, with a.round, rounding of float32 rows
// (the pair past a.kk values is zero, the half past an odd kk too).
func packAPairs(l *impl, dst []float32, a matA, i0, mc, q0, kc2, mr int) {
	const g = pairGroup
	kr := pairSteps(kc2)
	ng := kc2 / g // whole groups
	for ir := 0; ir < mc; ir += mr {
		pan := dst[ir*kr : (ir+mr)*kr]
		mv := min(mr, mc-ir)
		if a.round {
			qa := 0 // pairs rounded in assembly: whole groups of 16 values
			if l.packPairs != nil {
				if qa = min(ng, max(0, a.kk-2*q0)/(2*g)) * g; qa > 0 {
					l.packPairs(pan, a.f[(i0+ir)*a.rs+2*q0:], a.rs, mv, qa/g)
				}
			}
			for r := 0; r < mv; r++ {
				row := a.f[(i0+ir+r)*a.rs:]
				for q := qa; q < kr; q++ {
					var lo, hi float32
					if p := 2 * (q0 + q); q < kc2 && p < a.kk {
						lo = row[p]
						if p+1 < a.kk {
							hi = row[p+1]
						}
					}
					pan[(q/g*mr+r)*g+q%g] = math.Float32frombits(pairBF16(lo, hi))
				}
			}
		} else {
			for r := 0; r < mv; r++ {
				row := a.f[(i0+ir+r)*a.rs+q0:]
				q := 0
				for ; q+g <= kc2; q += g {
					*(*[g]float32)(pan[(q/g*mr+r)*g:]) = *(*[g]float32)(row[q:])
				}
				if q < kr {
					d := pan[(q/g*mr+r)*g : (q/g*mr+r+1)*g]
					clear(d[copy(d, row[q:kc2]):])
				}
			}
		}
		for r := mv; r < mr; r++ {
			for q := 0; q < kr; q += g {
				clear(pan[(q/g*mr+r)*g : (q/g*mr+r+1)*g])
			}
		}
	}
}

// cvtBF16Go rounds src to bfloat16 into dst (len(dst) ≥ len(src)).
func cvtBF16Go(dst []uint16, src []float32) {
	for i, v := range src {
		dst[i] = F32ToBF16(v)
	}
}

// packBPairs packs pairs [q0,q0+kc2) × columns [j0,j0+nc) of b into
// NR-column panels of bf16 pairs (as float32 bit patterns): pair q of column
// j holds B(2q,j) in its low half and B(2q+1,j) (0 past b.kk) in its high
// half. A BF16 weight read transposed (rs = 1) with even k is already pairs
// in memory: a 32-bit transpose.
func packBPairs(l *impl, dst []float32, b matB, q0, kc2, j0, nc int) {
	nr := l.nr
	for jr := 0; jr < nc; jr += nr {
		pan := dst[jr*kc2 : (jr+nr)*kc2]
		nv := min(nr, nc-jr)
		j8, kb := 0, kc2/8
		if b.h != nil && b.rs == 1 && b.cs%2 == 0 && kb > 0 {
			j8 = nv / 8 * 8
			src := unsafe.Slice((*float32)(unsafe.Pointer(&b.h[0])), len(b.h)/2)
			for j := 0; j < j8; j += 8 {
				l.packBT8(pan[j:], nr, src[(j0+jr+j)*b.cs/2+q0:], b.cs/2, kb)
			}
		}
		q0s := 0 // pairs done in assembly
		if b.h != nil && b.cs == 1 && nv == nr && l.pairRows != nil {
			// Rows of B contiguous (w read as is), both rows of each pair present.
			full := min(kc2, (b.kk-2*q0)/2)
			if full > 0 {
				l.pairRows(pan, b.h[2*q0*b.rs+j0+jr:], b.rs, full)
				q0s = full
			}
		}
		pu := unsafe.Slice((*uint32)(unsafe.Pointer(&pan[0])), len(pan))
		for q := q0s; q < kc2; q++ {
			p := 2 * (q0 + q)
			j := 0
			if q < kb*8 {
				j = j8
			}
			d := pu[q*nr+j : q*nr+nv]
			off := p*b.rs + (j0+jr+j)*b.cs
			hi := p+1 < b.kk
			switch {
			case b.h != nil && b.cs == 1:
				// Rows of B contiguous (w read as is): interleave two rows.
				lo := b.h[off : off+len(d)]
				if hi {
					up := b.h[off+b.rs : off+b.rs+len(d)]
					for i := range d {
						d[i] = uint32(lo[i]) | uint32(up[i])<<16
					}
				} else {
					for i := range d {
						d[i] = uint32(lo[i])
					}
				}
			case b.h != nil:
				for i := range d {
					v := uint32(b.h[off+i*b.cs])
					if hi {
						v |= uint32(b.h[off+i*b.cs+b.rs]) << 16
					}
					d[i] = v
				}
			default:
				for i := range d {
					var h float32
					if hi {
						h = b.f[off+i*b.cs+b.rs]
					}
					d[i] = pairBF16(b.f[off+i*b.cs], h)
				}
			}
		}
		if nv < nr {
			for q := 0; q < kc2; q++ {
				clear(pan[q*nr+nv : (q+1)*nr])
			}
		}
	}
}
