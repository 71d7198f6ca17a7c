package kernels

import (
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
	a, buf := toPairs(l, dy, m, n)
	defer pairPool.Put(buf)
	gemm(l, m, k, (n+1)/2, a, matB{f: w.F32, h: w.BF16, rs: k, cs: 1, pairs: true, kk: n}, dx, k, accumulate)
}

// pairBF16 packs two float32 values rounded to bfloat16 into the 32-bit
// pair VDPBF16PS reads (first element in the low half).
func pairBF16(lo, hi float32) uint32 {
	return uint32(F32ToBF16(lo)) | uint32(F32ToBF16(hi))<<16
}

// gemmBF16T computes y[m×n] (+)= bf16(x)·bf16(w)ᵀ with the native kernel:
// x is rounded once into rows of bf16 pairs, then the one GEMM driver runs
// over k in pairs.
func gemmBF16T(l *impl, y, x []float32, m int, w *Matrix, acc bool) {
	n, k := w.Rows, w.Cols
	a, buf := toPairs(l, x, m, k)
	defer pairPool.Put(buf)
	b := matB{f: w.F32, h: w.BF16, rs: 1, cs: k, pairs: true, kk: k, pk: w.packedFor(l, ComputeBF16)}
	gemm(l, m, n, (k+1)/2, a, b, y, n, acc)
}

// pairPool recycles toPairs's buffers: a training step converts tens of
// MiB of activations per layer.
var pairPool = sync.Pool{New: func() any { return new([]uint16) }}

// toPairs rounds x [m×k] to bfloat16, each row padded to an even length,
// and returns it as the left operand of a pairs GEMM: rows of (k+1)/2
// pairs held as float32 bit patterns, which the packing code copies as is.
// The caller returns buf to pairPool when the GEMM is done.
func toPairs(l *impl, x []float32, m, k int) (matA, *[]uint16) {
	k2 := (k + 1) / 2
	buf := pairPool.Get().(*[]uint16)
	if cap(*buf) < m*2*k2 {
		*buf = make([]uint16, m*2*k2)
	}
	xb := (*buf)[:m*2*k2]
	if k%2 == 1 {
		for i := 0; i < m; i++ {
			xb[i*2*k2+k] = 0 // the padding half of each row's last pair
		}
	}
	parallelChunks(m, min(m, Threads()), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			l.cvtBF16(xb[i*2*k2:i*2*k2+k], x[i*k:(i+1)*k])
		}
	})
	return matA{f: unsafe.Slice((*float32)(unsafe.Pointer(&xb[0])), m*k2), rs: k2, cs: 1}, buf
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
