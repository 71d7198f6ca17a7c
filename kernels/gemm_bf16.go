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
// exactly MatMulT.
func MatMulTCompute(y, x []float32, m int, w *Matrix, accumulate bool, c Compute) {
	if c != ComputeBF16 || w.IsQuantized() { // quantized weights: float32 math on dequantized panels
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

// pairBF16 packs two float32 values rounded to bfloat16 into the 32-bit
// pair VDPBF16PS reads (first element in the low half).
func pairBF16(lo, hi float32) uint32 {
	return uint32(F32ToBF16(lo)) | uint32(F32ToBF16(hi))<<16
}

// gemmBF16T computes y[m×n] (+)= bf16(x)·bf16(w)ᵀ with the native kernel:
// x is rounded once into rows of bf16 pairs (shared by all goroutines), then
// the same blocking as gemm runs over k in pairs. Pairs are moved around as
// float32 bit patterns by the float32 packing code, which copies bits.
func gemmBF16T(l *impl, y, x []float32, m int, w *Matrix, acc bool) {
	n, k := w.Rows, w.Cols
	k2 := (k + 1) / 2
	xb := make([]uint16, m*2*k2)
	parallelChunks(m, min(m, Threads()), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			l.cvtBF16(xb[i*2*k2:i*2*k2+k], x[i*k:(i+1)*k])
		}
	})
	xp := unsafe.Slice((*float32)(unsafe.Pointer(&xb[0])), m*k2)
	a := matA{f: xp, rs: k2, cs: 1}
	t := Threads()
	if nb := (n + l.nr - 1) / l.nr; nb >= 2*t || nb >= (m+l.mr-1)/l.mr {
		parallelChunks(nb, min(t, nb), func(lo, hi int) {
			j0, j1 := lo*l.nr, min(hi*l.nr, n)
			gemmBF16Serial(l, m, j0, j1, k, a, w, y[j0:], n, acc)
		})
		return
	}
	mb := (m + l.mr - 1) / l.mr
	parallelChunks(mb, min(t, mb), func(lo, hi int) {
		i0, i1 := lo*l.mr, min(hi*l.mr, m)
		gemmBF16Serial(l, i1-i0, 0, n, k, a.shift(i0), w, y[i0*n:], n, acc)
	})
}

// cvtBF16Go rounds src to bfloat16 into dst (len(dst) ≥ len(src)).
func cvtBF16Go(dst []uint16, src []float32) {
	for i, v := range src {
		dst[i] = F32ToBF16(v)
	}
}

// bf16Bufs are one goroutine's packing buffers for the BF16 kernel.
type bf16Bufs struct {
	a, tile []float32
	b       []uint32
}

var bf16Pool = sync.Pool{New: func() any { return new(bf16Bufs) }}

func growU32(s []uint32, n int) []uint32 {
	if cap(s) < n {
		return make([]uint32, n)
	}
	return s[:n]
}

// gemmBF16Serial computes columns [j0,j1) of y (y already offset to j0) on
// one goroutine; a holds x as rows of bf16 pairs.
func gemmBF16Serial(l *impl, m, j0, j1, k int, a matA, w *Matrix, y []float32, ldy int, acc bool) {
	bufs := bf16Pool.Get().(*bf16Bufs)
	defer bf16Pool.Put(bufs)
	mr, nr := l.mr, l.nr
	n := j1 - j0
	k2 := (k + 1) / 2
	kcb := l.kc // pairs per block: 2·KC values of k
	bufs.tile = grow(bufs.tile, mr*nr)
	mcb := blockSize(m, l.mc, mr)
	pk := w.packedFor(l, ComputeBF16)
	for jc := 0; jc < n; jc += l.nc {
		nc := min(l.nc, n-jc)
		ncp := (nc + nr - 1) / nr * nr
		for pc := 0; pc < k2; pc += kcb {
			kc2 := min(kcb, k2-pc)
			bufs.b = growU32(bufs.b, ncp*kc2)
			accum := acc || pc > 0
			for ic := 0; ic < m; ic += mcb {
				mc := min(mcb, m-ic)
				mcp := (mc + mr - 1) / mr * mr
				bufs.a = grow(bufs.a, mcp*kc2)
				packA(l, bufs.a, a, ic, mc, pc, kc2, mr)
				au := unsafe.Slice((*uint32)(unsafe.Pointer(&bufs.a[0])), len(bufs.a))
				for jr := 0; jr < nc; jr += nr {
					bp := bufs.b[jr*kc2 : (jr+nr)*kc2]
					nv := min(nr, nc-jr)
					if pk != nil {
						bp = pk.pairPanel(pc, kc2, j0+jc+jr)
					} else if ic == 0 {
						// Pack each B micro-panel just before its first use,
						// so it is still in L1 for the first block of A.
						packBPairsT(l, bufs.b[jr*kc2:], w, j0+jc+jr, nv, pc, kc2)
					}
					for ir := 0; ir < mc; ir += mr {
						ap := au[ir*kc2 : (ir+mr)*kc2]
						mv := min(mr, mc-ir)
						ct := y[(ic+ir)*ldy+jc+jr:]
						if mv == mr && nv == nr {
							l.kernBF16(kc2, ap, bp, ct, ldy, accum)
							continue
						}
						l.kernBF16(kc2, ap, bp, bufs.tile, nr, false)
						for i := 0; i < mv; i++ {
							src := bufs.tile[i*nr : i*nr+nv]
							dst := ct[i*ldy : i*ldy+nv]
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

// packBPairsT packs weight rows [j0,j0+nc), pairs [q0,q0+kc2), into
// NR-column panels of bf16 pairs. BF16 weights with even k are already
// pairs in memory: a 32-bit transpose.
func packBPairsT(l *impl, dst []uint32, w *Matrix, j0, nc, q0, kc2 int) {
	nr := l.nr
	k := w.Cols
	for jr := 0; jr < nc; jr += nr {
		pan := dst[jr*kc2 : (jr+nr)*kc2]
		nv := min(nr, nc-jr)
		j8 := 0
		kb := kc2 / 8
		if w.DType == BF16 && k%2 == 0 && kb > 0 {
			j8 = nv / 8 * 8
			k2 := k / 2
			src := unsafe.Slice((*float32)(unsafe.Pointer(&w.BF16[0])), w.Rows*k2)
			dstF := unsafe.Slice((*float32)(unsafe.Pointer(&pan[0])), len(pan))
			for j := 0; j < j8; j += 8 {
				l.packBT8(dstF[j:], nr, src[(j0+jr+j)*k2+q0:], k2, kb)
			}
		}
		for j := 0; j < nv; j++ {
			qs := 0
			if j < j8 {
				qs = kb * 8
			}
			row := (j0 + jr + j) * k
			for q := qs; q < kc2; q++ {
				p := 2 * (q0 + q)
				var v uint32
				if w.DType == BF16 {
					v = uint32(w.BF16[row+p])
					if p+1 < k {
						v |= uint32(w.BF16[row+p+1]) << 16
					}
				} else {
					var hi float32
					if p+1 < k {
						hi = w.F32[row+p+1]
					}
					v = pairBF16(w.F32[row+p], hi)
				}
				pan[q*nr+j] = v
			}
		}
		if nv < nr {
			for q := 0; q < kc2; q++ {
				clear(pan[q*nr+nv : (q+1)*nr])
			}
		}
	}
}
