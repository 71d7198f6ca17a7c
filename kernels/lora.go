package kernels

import "sync"

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

// loraBufs are one goroutine's block buffers, or (part) one call's
// partial sums of dA.
type loraBufs struct{ xd, dxd, part []float32 }

var loraPool = sync.Pool{New: func() any { return new(loraBufs) }}

// LoRAScratchBytes is the most memory LoRADown, LoRAInputGrad and
// LoRAOutputGrad hold at once on threads goroutines for rank r and inputs
// and outputs at most in wide (for the memory plan).
func LoRAScratchBytes(threads, r, in int) int64 {
	return 4 * (int64(threads)*2*loraRows*int64(in) + loraGroups*int64(r)*int64(in))
}

// LoRADown computes u[T×r] = scale · dropout(x)·Aᵀ for x [T×in] and A
// [r×in], with the dropout mask of Dropout(·, x, key, p, ·).
func LoRADown(u, x []float32, T int, A []float32, r, in int, scale float32, key uint64, p float32) {
	checkLen("LoRADown u", u, T*r)
	checkLen("LoRADown x", x, T*in)
	checkLen("LoRADown A", A, r*in)
	if T <= 0 || r <= 0 {
		return
	}
	l, ops := active.Load(), opsKernels()
	thr, keep := dropParams(p)
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
			gemmSerial(l, rows, r, in, matA{xb, in, 1}, matB{f: A, rs: 1, cs: in}, ub, r, false)
			ops.scale(ub, scale)
		}
	})
}

// LoRAInputGrad is the backward of LoRADown without its scale, given dz
// [T×r], the gradient of dropout(x)·Aᵀ: dA [r×in] += dzᵀ·dropout(x) and
// dx [T×in] += dropout(dz·A), with LoRADown's mask.
func LoRAInputGrad(dx, dA, dz, x, A []float32, T, r, in int, key uint64, p float32) {
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
	nb := (T + loraRows - 1) / loraRows
	ng := min(nb, loraGroups)
	// each group's dA, summed in group order below
	parts := loraPool.Get().(*loraBufs)
	defer loraPool.Put(parts)
	parts.part = grow(parts.part, ng*r*in)
	part := func(g int) []float32 { return parts.part[g*r*in : (g+1)*r*in] }
	parallelChunks(ng, ng, func(g0, g1 int) {
		bufs := loraPool.Get().(*loraBufs)
		defer loraPool.Put(bufs)
		for g := g0; g < g1; g++ {
			for b := g * nb / ng; b < (g+1)*nb/ng; b++ {
				t0 := b * loraRows
				rows := min(loraRows, T-t0)
				xb, dzb, dxb := x[t0*in:(t0+rows)*in], dz[t0*r:(t0+rows)*r], dx[t0*in:(t0+rows)*in]
				j0 := uint64(t0 * in)
				if p > 0 {
					bufs.xd = grow(bufs.xd, rows*in)
					dropSpan(ops, bufs.xd, xb, key, j0, thr, keep, false)
					xb = bufs.xd
				}
				gemmSerial(l, r, in, rows, matA{dzb, 1, r}, matB{f: xb, rs: in, cs: 1}, part(g), in, b > g*nb/ng)
				bufs.dxd = grow(bufs.dxd, rows*in)
				gemmSerial(l, rows, in, r, matA{dzb, r, 1}, matB{f: A, rs: in, cs: 1}, bufs.dxd, in, false)
				if p > 0 {
					dropSpan(ops, dxb, bufs.dxd, key, j0, thr, keep, true)
				} else {
					ops.add(dxb, bufs.dxd)
				}
			}
		}
	})
	Parallel((r*in+63)/64, func(lo, hi int) {
		a, b := lo*64, min(hi*64, r*in)
		for g := range ng {
			ops.add(dA[a:b], part(g)[a:b])
		}
	})
}

// LoRAOutputGrad is the backward of y += u·Bᵀ for u [T×r] and B [out×r],
// given dy [T×out]: dB += dyᵀ·u and dz [T×r] = scale·dy·B, the two products
// reading each block of dy's rows while it is in cache.
func LoRAOutputGrad(dB, dz, dy, u, B []float32, T, r, out int, scale float32) {
	checkLen("LoRAOutputGrad dB", dB, out*r)
	checkLen("LoRAOutputGrad dz", dz, T*r)
	checkLen("LoRAOutputGrad dy", dy, T*out)
	checkLen("LoRAOutputGrad u", u, T*r)
	if T <= 0 || r <= 0 || out <= 0 {
		return
	}
	l, ops := active.Load(), opsKernels()
	nb := (T + loraRows - 1) / loraRows
	ng := min(nb, loraGroups)
	// each group's dBᵀ [r×out] (a wide GEMM output), added in group order
	parts := loraPool.Get().(*loraBufs)
	defer loraPool.Put(parts)
	parts.part = grow(parts.part, ng*r*out)
	part := func(g int) []float32 { return parts.part[g*r*out : (g+1)*r*out] }
	parallelChunks(ng, ng, func(g0, g1 int) {
		for g := g0; g < g1; g++ {
			for b := g * nb / ng; b < (g+1)*nb/ng; b++ {
				t0 := b * loraRows
				rows := min(loraRows, T-t0)
				dyb, ub, dzb := dy[t0*out:(t0+rows)*out], u[t0*r:(t0+rows)*r], dz[t0*r:(t0+rows)*r]
				gemmSerial(l, r, out, rows, matA{ub, 1, r}, matB{f: dyb, rs: out, cs: 1}, part(g), out, b > g*nb/ng)
				gemmSerial(l, rows, r, out, matA{dyb, out, 1}, matB{f: B, rs: r, cs: 1}, dzb, r, false)
				ops.scale(dzb, scale)
			}
		}
	})
	Parallel(out, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			d := dB[o*r : (o+1)*r]
			for g := range ng {
				pg := part(g)
				for j := range d {
					d[j] += pg[j*out+o]
				}
			}
		}
	})
}
