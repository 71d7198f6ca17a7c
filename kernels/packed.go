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
	pairs []uint32  // ComputeBF16: bf16 pairs of k for kernBF16 (KC pairs a block)
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
	if w.IsQuantized() || w.Rows == 0 || w.Cols == 0 {
		return
	}
	checkW("Pack", w)
	l := active.Load()
	n, k := w.Rows, w.Cols
	npad := (n + l.nr - 1) / l.nr * l.nr
	pk := &packedB{level: l, npad: npad}
	if c == ComputeBF16 {
		if l.kernBF16 == nil {
			return // emulated: MatMulTCompute rounds and runs the float32 path
		}
		k2 := (k + 1) / 2
		pk.pairs = make([]uint32, npad*k2)
		parallelChunks(npad/l.nr, Threads(), func(lo, hi int) {
			for q0 := 0; q0 < k2; q0 += l.kc {
				kc2 := min(l.kc, k2-q0)
				for jp := lo; jp < hi; jp++ {
					j0 := jp * l.nr
					off := q0*npad + j0*kc2
					packBPairsT(l, pk.pairs[off:off+l.nr*kc2], w, j0, min(l.nr, n-j0), q0, kc2)
				}
			}
		})
		w.packed = pk
		return
	}
	if w.DType == BF16 {
		pk.bf16 = make([]uint16, npad*k)
	} else {
		pk.f32 = make([]float32, npad*k)
	}
	b := matB{f: w.F32, h: w.BF16, rs: 1, cs: k}
	parallelChunks(npad/l.nr, Threads(), func(lo, hi int) {
		var tmp []float32
		for pc := 0; pc < k; pc += l.kc {
			kc := min(l.kc, k-pc)
			for jp := lo; jp < hi; jp++ {
				j0 := jp * l.nr
				off := pc*npad + j0*kc
				if pk.f32 != nil {
					packB(l, pk.f32[off:off+l.nr*kc], b, pc, kc, j0, min(l.nr, n-j0))
					continue
				}
				// Through float32 (the assembly transpose); the upper
				// half of a widened bfloat16 is the bfloat16.
				tmp = grow(tmp, l.nr*kc)
				packB(l, tmp, b, pc, kc, j0, min(l.nr, n-j0))
				dst := pk.bf16[off : off+l.nr*kc]
				for i, v := range tmp {
					dst[i] = uint16(math.Float32bits(v) >> 16)
				}
			}
		}
	})
	w.packed = pk
}

// Packed reports whether w has a prepacked copy for the active level and
// compute mode c.
func (w *Matrix) Packed(c Compute) bool { return w.packedFor(c) != nil }

// packedFor returns w's prepacked copy if it serves the active level and c.
func (w *Matrix) packedFor(c Compute) *packedB {
	pk := w.packed
	if pk == nil || pk.level != active.Load() || (pk.pairs != nil) != (c == ComputeBF16) {
		return nil
	}
	return pk
}

// pairPanel returns the prepacked ComputeBF16 panel of pairs [q0, q0+kc2)
// and rows [j, j+NR) of w.
func (pk *packedB) pairPanel(q0, kc2, j int) []uint32 {
	off := q0*pk.npad + j*kc2
	return pk.pairs[off : off+pk.level.nr*kc2]
}

// panel returns the prepacked B micro-panel of columns [pc, pc+kc) and rows
// [j, j+NR) of w (j a multiple of NR).
func (pk *packedB) panel(pc, kc, j int) (f []float32, h []uint16) {
	off := pc*pk.npad + j*kc
	n := pk.level.nr * kc
	if pk.f32 != nil {
		return pk.f32[off : off+n], nil
	}
	return nil, pk.bf16[off : off+n]
}

// PackBytes is the memory Pack(c) adds to w on the active level (0 for a
// quantized or empty matrix).
func (w *Matrix) PackBytes(c Compute) int64 {
	l := active.Load()
	if w.IsQuantized() || w.Rows == 0 || w.Cols == 0 || c == ComputeBF16 && l.kernBF16 == nil {
		return 0
	}
	nr := int64(l.nr)
	rows := (int64(w.Rows) + nr - 1) / nr * nr
	if c == ComputeBF16 {
		return rows * int64((w.Cols+1)/2) * 4
	}
	elt := int64(4)
	if w.DType == BF16 {
		elt = 2
	}
	return rows * int64(w.Cols) * elt
}
