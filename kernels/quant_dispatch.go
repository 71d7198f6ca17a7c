package kernels

// quantKern are one level's kernels of the quantized weights. The dequant
// kernels take any length (the SIMD ones finish the tail in Go); the dot
// kernels whole blocks (nblk ≥ 1).
type quantKern struct {
	// dotNF4 is Σ_b s[b]·(x·nf4[q]) over nblk whole blocks of 64 4-bit
	// codes (Q8 rows go through dotQ8Rows only).
	dotNF4 func(x []float32, q []byte, s []float32, nblk int) float32
	// dotNF4Rows sets y[r] to dotNF4 of row r (q[r·qstride:], s[r·sstride:])
	// over nblk whole blocks, with x permuted by permuteNF4: one call for a
	// run of a matrix's rows (nil: the level has none; dotNF4 on x is used
	// row by row).
	dotNF4Rows func(y, xp []float32, q []byte, s []float32, nblk, qstride, sstride int)
	// dotNF4RowsBF16 (nil without AVX512_BF16) sets y[r] = Σ_b Σ bf16(x)·
	// bf16(nf4[code]·s[r·sstride+b]) over nblk whole blocks of row r
	// (q[r·qstride:]), x rounded and permuted by permuteNF4BF16: dotNF4Rows
	// for ComputeBF16, multiplying the weights the bf16 GEMM's dequantized
	// panels hold.
	dotNF4RowsBF16 func(y []float32, xh []uint16, q []byte, s []float32, nblk, qstride, sstride int)
	// dotQ8Rows sets y[r] = Σ_b s[r·sstride+b]·(x·int8 q) over nblk whole
	// blocks of 32 of row r (q[r·qstride:]): one call for a run of a
	// matrix's rows.
	dotQ8Rows func(y, x []float32, q []byte, s []float32, nblk, qstride, sstride int)
	// dequantQ8 and dequantNF4 widen len(dst) values of one block scaled by s.
	dequantQ8, dequantNF4 func(dst []float32, src []byte, s float32)
	// dequantNF4BF16 dequantizes nblk whole NF4 blocks with scales s into
	// bfloat16 (the panels of ComputeBF16).
	dequantNF4BF16 func(dst []uint16, src []byte, s []float32, nblk int)
}

var goQuant = quantKern{dotQ8Rows: dotQ8RowsGo, dotNF4: dotNF4Go, dequantQ8: dequantQ8Go, dequantNF4: dequantNF4Go,
	dequantNF4BF16: dequantNF4BF16Go}

func dequantQ8(dst []float32, src []byte, s float32)  { active.Load().quant.dequantQ8(dst, src, s) }
func dequantNF4(dst []float32, src []byte, s float32) { active.Load().quant.dequantNF4(dst, src, s) }

// dotNF4 is Σ_b s[b]·(x·nf4[q]) over nblk whole blocks of 64.
func dotNF4(x []float32, q []byte, s []float32, nblk int) float32 {
	if nblk <= 0 {
		return 0
	}
	return active.Load().quant.dotNF4(x, q, s, nblk)
}
