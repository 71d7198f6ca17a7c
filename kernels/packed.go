package kernels

import "math"

// Prepacked weights. At m = 128 the forward GEMM spends 10–16% of its time
// transposing the weight into micro-panels (packB): it is read in short
// strided runs, mostly from memory. A frozen weight can be packed once.

// packedB is a weight [n×k] laid out as one dispatch level's B
// micro-panels: for each block of KC columns of k, for each NR rows of n
// (zero-padded to npad), KC×NR values k-major. Block pc starts at pc·npad,
// its panel j at pc·npad + j·kc(block), so blocks need no index.
type packedB struct {
	level *impl
	f32   []float32 // F32 weights
	bf16  []uint16  // BF16 weights, widened in registers by kernPBF16
	pairs []float32 // ComputeBF16: bf16 pairs of k for kernBF16 (KC pairs a block), as bits
	npad  int
}

// Pack stores alongside w a copy of it laid out for the active kernel
// level's microkernel in compute mode c, so that MatMulTCompute in that mode
// with more than a few rows skips repacking w on every call. For ComputeF32
// the copy keeps w's dtype (BF16 stays BF16, widened in registers); for
// ComputeBF16 it holds w rounded to bfloat16 pairs, as that mode reads it.
// It costs as much memory again as a BF16 w (an F32 w packed for
// ComputeF32: as much as w). The copy is used only while that level is
// active and for that mode; every other operation reads w as before.
// Quantized and empty matrices are left as they are. Pack is not safe to
// call concurrently with uses of w.
func (w *Matrix) Pack(c Compute) {
	l := active.Load()
	npad, kk, _, ok := packShape(w, l, c)
	if !ok {
		return
	}
	checkW("Pack", w)
	n := w.Rows
	pk := &packedB{level: l, npad: npad}
	switch {
	case c == ComputeBF16:
		pk.pairs = make([]float32, npad*kk)
	case w.DType == BF16:
		pk.bf16 = make([]uint16, npad*kk)
	default:
		pk.f32 = make([]float32, npad*kk)
	}
	b := matB{f: w.F32, h: w.BF16, rs: 1, cs: w.Cols, pairs: c == ComputeBF16, kk: w.Cols}
	kcb := l.kcFor(c == ComputeBF16)
	parallelChunks(npad/l.nr, Threads(), func(lo, hi int) {
		var tmp []float32
		for p0 := 0; p0 < kk; p0 += kcb {
			kc := min(kcb, kk-p0)
			for jp := lo; jp < hi; jp++ {
				j0 := jp * l.nr
				off, size, nv := p0*npad+j0*kc, l.nr*kc, min(l.nr, n-j0)
				switch {
				case pk.pairs != nil:
					packBPairs(l, pk.pairs[off:off+size], b, p0, kc, j0, nv)
				case pk.f32 != nil:
					packB(l, pk.f32[off:off+size], b, p0, kc, j0, nv)
				default:
					// Through float32 (the assembly transpose); the upper
					// half of a widened bfloat16 is the bfloat16.
					tmp = grow(tmp, size)
					packB(l, tmp, b, p0, kc, j0, nv)
					for i, v := range tmp {
						pk.bf16[off+i] = uint16(math.Float32bits(v) >> 16)
					}
				}
			}
		}
	})
	w.packed = pk
}

// Packed reports whether w has a prepacked copy for the active level and
// compute mode c.
func (w *Matrix) Packed(c Compute) bool { return w.packedFor(active.Load(), c) != nil }

// packedFor returns w's prepacked copy if it serves level l and mode c.
func (w *Matrix) packedFor(l *impl, c Compute) *packedB {
	pk := w.packed
	if pk == nil || pk.level != l || (pk.pairs != nil) != (c == ComputeBF16) {
		return nil
	}
	return pk
}

// panel returns the prepacked B micro-panel of columns [pc, pc+kc) and rows
// [j, j+NR) of w (j a multiple of NR).
func (pk *packedB) panel(pc, kc, j int) (f []float32, h []uint16) {
	off := pc*pk.npad + j*kc
	n := pk.level.nr * kc
	if pk.f32 != nil {
		return pk.f32[off : off+n], nil
	}
	if pk.pairs != nil {
		return pk.pairs[off : off+n], nil
	}
	return nil, pk.bf16[off : off+n]
}

// PackBytes is the memory Pack(c) adds to w on the active level (0 for a
// quantized or empty matrix).
func (w *Matrix) PackBytes(c Compute) int64 {
	npad, kk, elt, _ := packShape(w, active.Load(), c)
	return int64(npad) * int64(kk) * int64(elt)
}

// packShape is the layout Pack(c) gives w on level l: npad rows (NR
// multiples), kk values (or, for ComputeBF16, pairs) along k, elt bytes
// each. ok is false when nothing is packed: a quantized or empty w, or
// ComputeBF16 emulated (MatMulTCompute rounds and runs the float32 path).
func packShape(w *Matrix, l *impl, c Compute) (npad, kk, elt int, ok bool) {
	if w.IsQuantized() || w.Rows == 0 || w.Cols == 0 || c == ComputeBF16 && l.kernBF16 == nil {
		return 0, 0, 0, false
	}
	npad = (w.Rows + l.nr - 1) / l.nr * l.nr
	switch {
	case c == ComputeBF16:
		return npad, (w.Cols + 1) / 2, 4, true
	case w.DType == BF16:
		return npad, w.Cols, 2, true
	}
	return npad, w.Cols, 4, true
}
