package kernels

import (
	"sync"
	"unsafe"
)

// LoRA in training, block by block of rows. The input side: the rank-r
// products with A [r × in] of an input x [T × in] that LoRA dropout masks. Done as separate passes (mask x
// into a copy, multiply, then for the backward mask x again, multiply twice
// and mask-add the input gradient), each pass streamed T × in floats through
// memory, 7 of them per module in the backward: a memory-bound 10–16% of a
// bf16 0.5B LoRA step. Here each goroutine takes blocks of loraRows rows and
// runs every pass on the block while it is in cache, so x, dx and dx's
// update cross memory once. The masks are Dropout's (same key, element
// t·in + i), so forward, recomputation and backward agree with it. The
// output side's two products (LoRAOutputGrad) read each block of dy once.

// loraRows is the row block: 128 rows of a 896-wide input (458 KB, L2) and
// enough rows for the dA product's k = rows to run the GEMM microkernel well.
const loraRows = 128

// loraGroups bounds the partial sums of dA: the T rows are cut into at most
// this many groups, by T alone, so the sum order (and so the result) does
// not depend on the thread count.
const loraGroups = 8

// loraBufs are one goroutine's block buffers (xd, dxd; h and pt their
// bf16 forms), or (part, w) one call's partial sums of dA or dBᵀ and its
// weight rounded to bf16.
type loraBufs struct {
	xd, dxd, part []float32
	h, w          []uint16
	pt            []uint32
}

var loraPool = sync.Pool{New: func() any { return new(loraBufs) }}

// LoRAScratchBytes is the most memory LoRADown, LoRAInputGrad and
// LoRAOutputGrad hold at once on threads goroutines for rank r and inputs
// and outputs at most in wide (for the memory plan).
func LoRAScratchBytes(threads, r, in int) int64 {
	perThread := int64(loraRows) * (int64(in) + 1) * (2*4 + 2) // xd, dxd, h
	return int64(threads)*perThread + (loraGroups*4+2)*int64(r)*(int64(in)+1)
}

// loraBF16 reports whether LoRA's products run on the native bf16 kernel:
// with ComputeBF16 on a CPU with AVX512_BF16 (elsewhere they stay float32,
// not emulated: they are a small share of the step).
func loraBF16(l *impl, c Compute) bool { return c == ComputeBF16 && l.kernBF16 != nil }

// bf16Rows rounds rows × k of x (row stride ldx) into *buf as rows of
// (k+1)/2 bf16 pairs (an odd row's last pair padded with 0), returned as
// the left operand of a pairs GEMM and, with row stride rowStride(k), as a
// row-major bf16 right operand.
func bf16Rows(l *impl, buf *[]uint16, x []float32, rows, k, ldx int) (matA, []uint16) {
	k2 := (k + 1) / 2
	if cap(*buf) < rows*2*k2 {
		*buf = make([]uint16, rows*2*k2)
	}
	h := (*buf)[:rows*2*k2]
	for i := 0; i < rows; i++ {
		l.cvtBF16(h[i*2*k2:], x[i*ldx:i*ldx+k])
		if k%2 == 1 {
			h[i*2*k2+k] = 0
		}
	}
	return matA{f: unsafe.Slice((*float32)(unsafe.Pointer(&h[0])), rows*k2), rs: k2, cs: 1}, h
}

// rowStride is bf16Rows's row stride in bf16 values.
func rowStride(k int) int { return 2 * ((k + 1) / 2) }

// pairsT returns xᵀ for x [rows × r] (row stride ldx) as the left operand
// of a pairs GEMM over the rows: element (i, q) pairs x[2q][i] and
// x[2q+1][i] (0 past the last row), r rows of (rows+1)/2 pairs. Each row
// pair is rounded with the vector cvtBF16 first, then interleaved.
func pairsT(l *impl, buf *[]uint32, x []float32, rows, r, ldx int) matA {
	rows2 := (rows + 1) / 2
	if cap(*buf) < r*rows2+r {
		*buf = make([]uint32, r*rows2+r)
	}
	pt := (*buf)[:r*rows2]
	tmp := unsafe.Slice((*uint16)(unsafe.Pointer(&(*buf)[r*rows2])), 2*r) // two rounded rows
	lo, hi := tmp[:r], tmp[r:]
	for q := 0; q < rows2; q++ {
		l.cvtBF16(lo, x[2*q*ldx:2*q*ldx+r])
		if 2*q+1 < rows {
			l.cvtBF16(hi, x[(2*q+1)*ldx:(2*q+1)*ldx+r])
		} else {
			clear(hi)
		}
		for i := range lo {
			pt[i*rows2+q] = uint32(lo[i]) | uint32(hi[i])<<16
		}
	}
	return matA{f: unsafe.Slice((*float32)(unsafe.Pointer(&pt[0])), r*rows2), rs: rows2, cs: 1}
}

// LoRADown computes u[T×r] = scale · dropout(x)·Aᵀ for x [T×in] and A
// [r×in], with the dropout mask of Dropout(·, x, key, p, ·); with
// ComputeBF16 the product takes bf16 operands (as autocast's).
func LoRADown(u, x []float32, T int, A []float32, r, in int, scale float32, key uint64, p float32, c Compute) {
	checkLen("LoRADown u", u, T*r)
	checkLen("LoRADown x", x, T*in)
	checkLen("LoRADown A", A, r*in)
	if T <= 0 || r <= 0 || in <= 0 {
		return
	}
	l, ops := active.Load(), opsKernels()
	thr, keep := dropParams(p)
	bf16 := loraBF16(l, c)
	b := matB{f: A, rs: 1, cs: in}
	if bf16 { // A's rows as pairs, read transposed
		wb := loraPool.Get().(*loraBufs)
		defer loraPool.Put(wb)
		_, ah := bf16Rows(l, &wb.w, A, r, in, in)
		b = matB{h: ah, rs: 1, cs: rowStride(in), pairs: true, kk: in}
	}
	nb := (T + loraRows - 1) / loraRows
	parallelChunks(nb, nb, func(lo, hi int) {
		bufs := loraPool.Get().(*loraBufs)
		defer loraPool.Put(bufs)
		for t0 := lo * loraRows; t0 < min(hi*loraRows, T); t0 += loraRows {
			rows := min(loraRows, T-t0)
			xb := x[t0*in : (t0+rows)*in]
			if p > 0 {
				bufs.xd = grow(bufs.xd, rows*in)
				dropSpan(ops, bufs.xd, xb, key, uint64(t0*in), thr, keep, false)
				xb = bufs.xd
			}
			ub := u[t0*r : (t0+rows)*r]
			if bf16 { // x rounded into the pair panels as they are packed
				gemmSerial(l, rows, r, (in+1)/2, matA{f: xb, rs: in, cs: 1, round: true, kk: in}, b, ub, r, false)
			} else {
				gemmSerial(l, rows, r, in, matA{f: xb, rs: in, cs: 1}, b, ub, r, false)
			}
			ops.scale(ub, scale)
		}
	})
}

// LoRAInputGrad is the backward of LoRADown without its scale, given dz
// [T×r], the gradient of dropout(x)·Aᵀ: dA [r×in] += dzᵀ·dropout(x) and
// dx [T×in] += dropout(dz·A), with LoRADown's mask (and compute mode).
func LoRAInputGrad(dx, dA, dz, x, A []float32, T, r, in int, key uint64, p float32, c Compute) {
	checkLen("LoRAInputGrad dx", dx, T*in)
	checkLen("LoRAInputGrad dA", dA, r*in)
	checkLen("LoRAInputGrad dz", dz, T*r)
	checkLen("LoRAInputGrad x", x, T*in)
	checkLen("LoRAInputGrad A", A, r*in)
	if T <= 0 || r <= 0 || in <= 0 {
		return
	}
	l, ops := active.Load(), opsKernels()
	thr, keep := dropParams(p)
	bf16 := loraBF16(l, c)
	parts := loraPool.Get().(*loraBufs)
	defer loraPool.Put(parts)
	bA := matB{f: A, rs: in, cs: 1}
	if bf16 { // A's rows as bf16, read as is: pairs of rows
		_, ah := bf16Rows(l, &parts.w, A, r, in, in)
		bA = matB{h: ah, rs: rowStride(in), cs: 1, pairs: true, kk: r}
	}
	ng := loraBlocks(T, r*in, parts, func(bufs *loraBufs, part []float32, t0, rows int, acc bool) {
		xb, dzb, dxb := x[t0*in:(t0+rows)*in], dz[t0*r:(t0+rows)*r], dx[t0*in:(t0+rows)*in]
		j0 := uint64(t0 * in)
		if p > 0 {
			bufs.xd = grow(bufs.xd, rows*in)
			dropSpan(ops, bufs.xd, xb, key, j0, thr, keep, false)
			xb = bufs.xd
		}
		bufs.dxd = grow(bufs.dxd, rows*in)
		if bf16 {
			_, xh := bf16Rows(l, &bufs.h, xb, rows, in, in)
			gemmSerial(l, r, in, (rows+1)/2, pairsT(l, &bufs.pt, dzb, rows, r, r),
				matB{h: xh, rs: rowStride(in), cs: 1, pairs: true, kk: rows}, part, in, acc)
			gemmSerial(l, rows, in, (r+1)/2, matA{f: dzb, rs: r, cs: 1, round: true, kk: r}, bA, bufs.dxd, in, false)
		} else {
			gemmSerial(l, r, in, rows, matA{f: dzb, rs: 1, cs: r}, matB{f: xb, rs: in, cs: 1}, part, in, acc)
			gemmSerial(l, rows, in, r, matA{f: dzb, rs: r, cs: 1}, bA, bufs.dxd, in, false)
		}
		if p > 0 {
			dropSpan(ops, dxb, bufs.dxd, key, j0, thr, keep, true)
		} else {
			ops.add(dxb, bufs.dxd)
		}
	})
	Parallel((r*in+63)/64, func(lo, hi int) {
		a, b := lo*64, min(hi*64, r*in)
		for g := range ng {
			ops.add(dA[a:b], parts.part[g*r*in+a:g*r*in+b])
		}
	})
}

// loraBlocks runs blk over the row blocks of T rows, grouped (by T alone)
// into ng ≤ loraGroups groups on the pool. Each group has its own partial
// sum of n floats in parts.part (part, to be added to in group order; acc
// is false for a group's first block) and blk gets its goroutine's buffers.
func loraBlocks(T, n int, parts *loraBufs, blk func(bufs *loraBufs, part []float32, t0, rows int, acc bool)) (ng int) {
	nb := (T + loraRows - 1) / loraRows
	ng = min(nb, loraGroups)
	parts.part = grow(parts.part, ng*n)
	parallelChunks(ng, ng, func(g0, g1 int) {
		bufs := loraPool.Get().(*loraBufs)
		defer loraPool.Put(bufs)
		for g := g0; g < g1; g++ {
			for b := g * nb / ng; b < (g+1)*nb/ng; b++ {
				t0 := b * loraRows
				blk(bufs, parts.part[g*n:(g+1)*n], t0, min(loraRows, T-t0), b > g*nb/ng)
			}
		}
	})
	return ng
}

// LoRAOutputGrad is the backward of y += u·Bᵀ for u [T×r] and B [out×r],
// given dy [T×out]: dB += dyᵀ·u and dz [T×r] = scale·dy·B, the two products
// reading each block of dy's rows while it is in cache (bf16 operands with
// ComputeBF16, as LoRADown).
func LoRAOutputGrad(dB, dz, dy, u, B []float32, T, r, out int, scale float32, c Compute) {
	checkLen("LoRAOutputGrad dB", dB, out*r)
	checkLen("LoRAOutputGrad dz", dz, T*r)
	checkLen("LoRAOutputGrad dy", dy, T*out)
	checkLen("LoRAOutputGrad u", u, T*r)
	if T <= 0 || r <= 0 || out <= 0 {
		return
	}
	l, ops := active.Load(), opsKernels()
	bf16 := loraBF16(l, c)
	parts := loraPool.Get().(*loraBufs)
	defer loraPool.Put(parts)
	bB := matB{f: B, rs: r, cs: 1}
	if bf16 { // Bᵀ's rows as pairs, read transposed
		bt := grow(parts.xd, r*out)
		for o := 0; o < out; o++ {
			for j, v := range B[o*r : (o+1)*r] {
				bt[j*out+o] = v
			}
		}
		parts.xd = bt
		_, bh := bf16Rows(l, &parts.w, bt, r, out, out)
		bB = matB{h: bh, rs: 1, cs: rowStride(out), pairs: true, kk: out}
	}
	// each group's dBᵀ [r×out] (a wide GEMM output), added in group order
	ng := loraBlocks(T, r*out, parts, func(bufs *loraBufs, part []float32, t0, rows int, acc bool) {
		dyb, ub, dzb := dy[t0*out:(t0+rows)*out], u[t0*r:(t0+rows)*r], dz[t0*r:(t0+rows)*r]
		if bf16 {
			a, dyh := bf16Rows(l, &bufs.h, dyb, rows, out, out)
			gemmSerial(l, r, out, (rows+1)/2, pairsT(l, &bufs.pt, ub, rows, r, r),
				matB{h: dyh, rs: rowStride(out), cs: 1, pairs: true, kk: rows}, part, out, acc)
			gemmSerial(l, rows, r, (out+1)/2, a, bB, dzb, r, false)
		} else {
			gemmSerial(l, r, out, rows, matA{f: ub, rs: 1, cs: r}, matB{f: dyb, rs: out, cs: 1}, part, out, acc)
			gemmSerial(l, rows, r, out, matA{f: dyb, rs: out, cs: 1}, bB, dzb, r, false)
		}
		ops.scale(dzb, scale)
	})
	Parallel(out, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			d := dB[o*r : (o+1)*r]
			for g := range ng {
				pg := parts.part[g*r*out : (g+1)*r*out]
				for j := range d {
					d[j] += pg[j*out+o]
				}
			}
		}
	})
}
