package kernels

import (
	"fmt"
	"os"
	"sync/atomic"
)

// tileKern and tileKernPBF16 are the microkernels' signatures: B a float32
// panel, or a prepacked bfloat16 one.
type (
	tileKern      func(kc int, a, b, c []float32, ldc int, acc bool)
	tileKernPBF16 func(kc int, a []float32, b []uint16, c []float32, ldc int, acc bool)
)

// impl is one dispatch level: every routine of the package that has an
// assembly version, with the block sizes the GEMM driver uses. Each level's
// table is built once, at package initialisation (levelTables); every
// function pointer has a pure-Go twin in the generic level.
type impl struct {
	name string
	// Register tile MR×NR and cache blocks: an A block MC×KC stays in L2, a
	// packed B micro-panel KC×NR in L1, a B panel KC×NC in L3.
	mr, nr, kc, mc, nc int
	// kcPairs is KC for bf16-pair panels (ComputeBF16), in pairs.
	kcPairs int
	// kern computes the MR×NR tile c (+)= a·b from packed panels a (KC×MR,
	// k-major) and b (KC×NR, k-major); ldc is c's row stride.
	kern tileKern
	// kernPBF16 is kern with b a prepacked bfloat16 panel (see Matrix.Pack).
	kernPBF16 tileKernPBF16
	// kern8 and kern8PBF16 (optional) are kern and kernPBF16 for the first
	// 8 rows of the tile only: the last tile of m = 128 or 512 rows.
	kern8      tileKern
	kern8PBF16 tileKernPBF16
	// packBT8 transposes 8 rows of src (stride lds) into dst, 8 columns per
	// block: dst[p*ldd+r] = src[r*lds+p] for r<8, p<8*nblk.
	packBT8     func(dst []float32, ldd int, src []float32, lds, nblk int)
	packBT8BF16 func(dst []float32, ldd int, src []uint16, lds, nblk int)
	// widenBF16 widens rows of bfloat16: dst[r*ldd+j] = src[r*lds+j] for
	// r < rows, j < 8*n8.
	widenBF16 func(dst []float32, ldd int, src []uint16, lds, rows, n8 int)
	// gemv computes out[r*4+c] = x row r · w row c for gemvX rows of x and
	// 4 rows of w, over k16*16 columns (k16 ≥ 0); strides in elements.
	gemvX    int
	gemv     func(out []float32, x []float32, ldx int, w []float32, ldw, k16 int)
	gemvBF16 func(out []float32, x []float32, ldx int, w []uint16, ldw, k16 int)
	// gemv1 computes out[c] = x · w row c for one row of x, c < 4 (nil:
	// use gemv with padding).
	gemv1     func(out []float32, x []float32, w []float32, ldw, k16 int)
	gemv1BF16 func(out []float32, x []float32, w []uint16, ldw, k16 int)
	// kernBF16 and kern8BF16 are kern and kern8 for ComputeBF16: a and b
	// hold bf16 pairs (as float32 bit patterns; a in groups, see
	// pairGroup), kc counts pairs, VDPBF16PS multiplies (nil when the CPU
	// lacks AVX512_BF16: ComputeBF16 is then emulated).
	kernBF16, kern8BF16 tileKern
	// packPairs (optional, with kernBF16; packAPairs rounds in Go without
	// it) rounds whole groups of float32 rows into an A micro-panel of
	// pairs: for r < rows, g < ng, group g of row r from src[r*lds+16g :
	// r*lds+16g+16].
	packPairs func(dst, src []float32, lds, rows, ng int)
	// pairRows (optional, with kernBF16) packs a full B panel of pairs from
	// a row-major bfloat16 B: dst[q*NR+j] = src[2q*rs+j] | src[(2q+1)*rs+j]<<16
	// for j < NR, q < kc2.
	pairRows func(dst []float32, src []uint16, rs, kc2 int)
	// cvtBF16 rounds src to bfloat16 into dst (len(dst) ≥ len(src)).
	cvtBF16 func(dst []uint16, src []float32)

	// ops are the inner kernels of the fused ops (ops_kern.go).
	ops opsKern
	// quant are the quantized-weight kernels (quant.go).
	quant quantKern
	// fmaLoop runs fmaIters trips of independent FMAs in registers and
	// returns the flops; fmaLoopBF16 the same with VDPBF16PS (nil without
	// AVX512_BF16). readSum sums a buffer with the widest loads.
	fmaLoop     func() int
	fmaLoopBF16 func() int
	readSum     func(buf []float32) float32
}

// levelTables holds every level this CPU supports, fastest first, each
// built once: a packed matrix records the table it was packed for and is
// used only while that same table is active.
var levelTables = append(simdLevels(), genericImpl)

// active is the dispatch table, the package's one global mutable state.
var active atomic.Pointer[impl]

func init() {
	want := os.Getenv("GOTRAIN_KERNELS")
	best := levelTables[0]
	active.Store(best)
	if want != "" {
		if err := SetLevel(want); err != nil {
			fmt.Fprintf(os.Stderr, "kernels: GOTRAIN_KERNELS=%q: %v; using %s\n", want, err, best.name)
		}
	}
}

// Level reports the active kernel level: "avx512", "avx2" or "generic".
func Level() string { return active.Load().name }

// Levels lists the levels this CPU supports, fastest first.
func Levels() []string {
	var s []string
	for _, l := range levelTables {
		s = append(s, l.name)
	}
	return s
}

// SetLevel forces a kernel level ("avx512", "avx2" or "generic"). It fails
// when the CPU (or a purego build) lacks the level. Tests use it to run
// every path in turn.
func SetLevel(name string) error {
	for _, l := range levelTables {
		if l.name == name {
			active.Store(l)
			return nil
		}
	}
	return fmt.Errorf("kernels: level %q not supported on this CPU (have %v)", name, Levels())
}

// HasBF16Compute reports whether the active level has a native BF16 dot
// product (AVX512_BF16); without it the BF16-compute GEMM is emulated.
func HasBF16Compute() bool { return active.Load().kernBF16 != nil }
