package kernels

import (
	"fmt"
	"math"
	"sync"
)

// KeySpan is a half-open range [Lo, Hi) of key rows.
type KeySpan struct{ Lo, Hi int32 }

// Block sizes of the flash-style loops: a query block (all heads of one kv
// group) is one unit of parallel work; keys are visited in blocks of 64, the
// width of the scores64 kernel, aligned to multiples of 64 so that a block's
// transposed copy is shared by every query and head of the work item.
const (
	attnQB = 16
	attnKB = 64
	// attnGEMMRows: from this many query rows per work item (a query block
	// times the heads of a kv group) the forward and backward run as blocked
	// GEMMs; with fewer (decoding) the row-at-a-time kernels.
	attnGEMMRows = 32
	// attnDirectRows: below this many query rows per work item the forward
	// takes dot products with the keys in place instead of transposing them.
	attnDirectRows = 16
)

// attnQBlock is the query block, in tokens, of a work item: attnQB, doubled
// until it holds 64 query rows (query heads sharing a kv head), so that
// models without GQA (group 1) still fill the GEMM's tiles.
func attnQBlock(group int) int {
	qb := attnQB
	for qb*group < 64 {
		qb *= 2
	}
	return qb
}

// Attention: causal grouped-query attention, flash-style (online softmax over
// key blocks; never a T×S matrix in memory). q [T × Hq × D], k, v [S × Hkv × D]
// (rows are key positions in the KV buffer), out [T × Hq × D]. Query t attends
// exactly to the keys in its n = len(spans)/T spans, spans[n·t:n·t+n] (any may
// be empty, Lo==Hi; they must not overlap). Query head h uses kv head h / (Hq/Hkv). scale = 1/sqrt(D)
// is passed in. lse [T × Hq] (log-sum-exp of the scaled scores) is written when
// non-nil, for backward. A query with no keys gets out = 0 and lse = −Inf.
//
// This covers plain causal attention with a KV cache (spans[2t] = {0, past+t+1}),
// several sequences packed into one stream ({seqStart, pos+1}), and a shared
// prompt prefix followed by several short continuations in one KV buffer
// ({0, P} ∪ {contStart, pos+1}), or with n = 4, rows of several prompts that
// share prefixes batched together (prefix, prompt tail, continuation). Work is split over cores by (query block, kv
// head), each item covering the Hq/Hkv query heads that share the kv head.
func Attention(out, lse, q, k, v []float32, T, S, Hq, Hkv, D int, scale float32, spans []KeySpan) {
	AttentionCompute(out, lse, q, k, v, T, S, Hq, Hkv, D, scale, spans, ComputeF32)
}

// AttentionCompute is Attention with a choice of compute mode for its two
// products. A work item with at least attnGEMMRows query rows (prefill,
// training) runs them as blocked GEMMs on the GEMM driver's microkernels:
// per key block S = Q·Kᵀ, the causal mask and the online softmax in
// float32, then O += P·V. With ComputeBF16 (and AVX512_BF16) Q, K, P and V
// are rounded to bfloat16 and the products accumulate in float32, as
// autocast's attention does; elsewhere, and for fewer rows (decoding), the
// products are float32.
func AttentionCompute(out, lse, q, k, v []float32, T, S, Hq, Hkv, D int, scale float32, spans []KeySpan, c Compute) {
	checkAttn("Attention", q, k, v, T, S, Hq, Hkv, D, spans)
	ns := spansPer(spans, T)
	needLen("Attention", "out", out, T*Hq*D)
	if lse != nil {
		needLen("Attention", "lse", lse, T*Hq)
	}
	group := Hq / Hkv
	qbT := attnQBlock(group)
	kvStride := Hkv * D
	nqb := (T + qbT - 1) / qbT
	nkb := (S + attnKB - 1) / attnKB
	ko := opsKernels()
	l := active.Load()
	pairs := c == ComputeBF16 && l.kernBF16 != nil
	var kh, vh []uint16 // K and V rounded to bfloat16 once, for the pair GEMMs
	if pairs && min(T, qbT)*group >= attnGEMMRows {
		bk, bv := pairPool.Get().(*[]uint16), pairPool.Get().(*[]uint16)
		defer pairPool.Put(bk)
		defer pairPool.Put(bv)
		kh, vh = bf16Copy(l, bk, k[:S*kvStride]), bf16Copy(l, bv, v[:S*kvStride])
	}
	parallelFor(Hkv*nqb, 1<<20, func(lo, hi int) {
		kt := newTBlocks(nkb, D)
		defer kt.release()
		var gb *attnGEMMBufs
		bp := scratchPool.Get().(*[]float32)
		defer scratchPool.Put(bp)
		*bp = grow(*bp, attnKB+2*D)
		s, acc, qs := (*bp)[:attnKB:attnKB], (*bp)[attnKB:attnKB+D:attnKB+D], (*bp)[attnKB+D:attnKB+2*D]
		for it := lo; it < hi; it++ {
			g := it / nqb
			qb := zigzag(it%nqb, nqb)
			t0, t1 := qb*qbT, min(T, (qb+1)*qbT)
			if (t1-t0)*group >= attnGEMMRows {
				if gb == nil {
					gb = attnGEMMPool.Get().(*attnGEMMBufs)
					defer attnGEMMPool.Put(gb)
				}
				attnBlockGEMM(l, ko, gb, out, lse, q, k, v, kh, vh, t0, t1, g, S, Hq, Hkv, D, scale, spans, ns)
				continue
			}
			kt.reset()
			// Few query rows (decoding) do not pay for transposing K.
			direct := (t1-t0)*group < attnDirectRows
			for t := t0; t < t1; t++ {
				for h := g * group; h < (g+1)*group; h++ {
					r := t*Hq + h
					// Scores come out scaled when q is scaled first.
					for i, x := range q[r*D : (r+1)*D] {
						qs[i] = x * scale
					}
					m := float32(math.Inf(-1))
					var l float32
					clear(acc)
					for _, sp := range spans[ns*t : ns*t+ns] {
						for b := int(sp.Lo) / attnKB; sp.Lo < sp.Hi && b*attnKB < int(sp.Hi); b++ {
							ja, jb := max(int(sp.Lo), b*attnKB), min(int(sp.Hi), (b+1)*attnKB)
							var sb []float32
							if direct {
								sb = s[:jb-ja]
								ko.dotRows(sb, qs, k[(ja*Hkv+g)*D:], kvStride)
							} else {
								ko.scores64(s, qs, kt.get(b, k, S, Hkv, g, D))
								sb = s[ja-b*attnKB : jb-b*attnKB]
							}
							if bm := ko.maxf(sb); bm > m {
								// Rescale what was accumulated under the old max.
								if l != 0 {
									c := expf(m - bm)
									l *= c
									Scale(acc, c)
								}
								m = bm
							}
							l += ko.expAffine(sb, sb, 1, m)
							ko.axpyRows(acc, sb, v[(ja*Hkv+g)*D:], kvStride)
						}
					}
					orow := out[r*D : (r+1)*D]
					if l == 0 {
						clear(orow)
						if lse != nil {
							lse[r] = float32(math.Inf(-1))
						}
						continue
					}
					inv := 1 / l
					for i := range orow {
						orow[i] = acc[i] * inv
					}
					if lse != nil {
						lse[r] = m + float32(math.Log(float64(l)))
					}
				}
			}
		}
	})
}

// attnGEMMBufs are one goroutine's buffers for attnBlockGEMM, recycled.
type attnGEMMBufs struct {
	q, s, acc, m, l, mask []float32
	keep                  []bool
	qp                    []float32 // Q's packed pair panels
	qh                    []uint16
	// the backward's: gathered dout rows, dP (then dS), lse and δ rows, tokens;
	// with bf16 pairs dout's rows rounded and Pᵀ or dSᵀ as pairs over rows
	do, dp, lse, delta []float32
	toks               []int32
	doh                []uint16
	pt                 []uint32
}

var attnGEMMPool = sync.Pool{New: func() any { return new(attnGEMMBufs) }}

// attnRowsByKeys writes s[r*attnKB+j] = a's row r · key row j of a block
// (S = Q·Kᵀ, or dP = dO·Vᵀ) for R rows and the nb keys whose first value is
// at k[o:] (row stride kvStride): on bf16 pairs from kh when it is set (a
// then holds pairs), in float32 otherwise.
func attnRowsByKeys(l *impl, s []float32, a matA, k []float32, kh []uint16, o, R, nb, D, kvStride int) {
	if kh != nil {
		gemmSerial(l, R, nb, (D+1)/2, a, matB{h: kh[o:], rs: 1, cs: kvStride, pairs: true, kk: D}, s, attnKB, false)
		return
	}
	gemmSerial(l, R, nb, D, a, matB{f: k[o:], rs: 1, cs: kvStride}, s, attnKB, false)
}

// reached sets and returns b.keep: for each attnKB-key block of S keys,
// whether some key span of b.toks's tokens (ns spans a token) reaches it.
func (b *attnGEMMBufs) reached(spans []KeySpan, ns, S int) []bool {
	const KB = attnKB
	nkb := (S + KB - 1) / KB
	if cap(b.keep) < nkb {
		b.keep = make([]bool, nkb)
	}
	b.keep = b.keep[:nkb]
	clear(b.keep)
	for _, t := range b.toks {
		for _, sp := range spans[ns*int(t) : ns*int(t)+ns] {
			if sp.Lo < sp.Hi {
				for kb := int(sp.Lo) / KB; kb <= int(sp.Hi-1)/KB; kb++ {
					b.keep[kb] = true
				}
			}
		}
	}
	return b.keep
}

// attnBlockGEMM computes the attention of queries [t0,t1) of kv group g, all
// its query heads at once: R = (t1−t0)·group rows (row i·group+h: token t0+i,
// head g·group+h). For each key block of attnKB keys that some query reaches,
// S = Q·Kᵀ (Q scaled), masked to each query's spans, goes through the online
// softmax in float32, and O += P·V; both products are GEMMs on the tile
// kernels (bf16 pairs when kh and vh, K and V rounded to bfloat16, are set).
func attnBlockGEMM(l *impl, ko *opsKern, b *attnGEMMBufs, out, lse, q, k, v []float32, kh, vh []uint16, t0, t1, g, S, Hq, Hkv, D int, scale float32, spans []KeySpan, ns int) {
	pairs := kh != nil
	group := Hq / Hkv
	nt := t1 - t0
	R := nt * group
	kvStride := Hkv * D
	const KB = attnKB
	D2 := (D + 1) / 2
	b.q = grow(b.q, R*D)
	b.s = grow(b.s, R*KB)
	b.acc = grow(b.acc, R*D)
	b.m, b.l = grow(b.m, R), grow(b.l, R)
	b.mask = grow(b.mask, nt*KB)
	clear(b.acc)
	clear(b.l)
	ninf := float32(math.Inf(-1))
	for i := range b.m {
		b.m[i] = ninf
	}
	// Q, scaled so that the scores come out scaled, in row order.
	for i := 0; i < nt; i++ {
		src := q[((t0+i)*Hq+g*group)*D : ((t0+i)*Hq+(g+1)*group)*D]
		dst := b.q[i*group*D : (i+1)*group*D]
		for j, x := range src {
			dst[j] = x * scale
		}
	}
	// Under pairs Q and P are rounded to bfloat16 as they are packed, Q
	// once for every key block.
	qa := matA{f: b.q, rs: D, cs: 1}
	if pairs {
		b.qp = grow(b.qp, prepackSize(l, R, D2))
		np := (R + l.mr - 1) / l.mr
		prepackRows(l, b.qp, matA{f: b.q, rs: D, cs: 1, round: true, kk: D}, R, D2, 0, np)
		qa = matA{pk: b.qp, pm: np * l.mr}
	}
	b.toks = b.toks[:0]
	for t := t0; t < t1; t++ {
		b.toks = append(b.toks, int32(t))
	}
	keep := b.reached(spans, ns, S)
	for kb, use := range keep {
		if !use {
			continue
		}
		j0 := kb * KB
		nb := min(KB, S-j0)
		masked := attnMask(b.mask, b.toks, spans, ns, j0, nb)
		o := (j0*Hkv + g) * D
		attnRowsByKeys(l, b.s, qa, k, kh, o, R, nb, D, kvStride)
		for r := 0; r < R; r++ {
			sr := b.s[r*KB : r*KB+nb]
			if masked {
				for j, x := range b.mask[r/group*KB : r/group*KB+nb] {
					sr[j] += x
				}
			}
			bm := ko.maxf(sr)
			if bm == ninf { // no key of this block for this query
				clear(sr)
				continue
			}
			if m := b.m[r]; bm > m {
				// Rescale what was accumulated under the old max.
				if b.l[r] != 0 {
					c := expf(m - bm)
					b.l[r] *= c
					Scale(b.acc[r*D:(r+1)*D], c)
				}
				b.m[r] = bm
			}
			b.l[r] += ko.expAffine(sr, sr, 1, b.m[r])
		}
		if pairs {
			pa := matA{f: b.s, rs: KB, cs: 1, round: true, kk: nb}
			gemmSerial(l, R, D, (nb+1)/2, pa, matB{h: vh[o:], rs: kvStride, cs: 1, pairs: true, kk: nb}, b.acc, D, true)
		} else {
			gemmSerial(l, R, D, nb, matA{f: b.s, rs: KB, cs: 1}, matB{f: v[o:], rs: kvStride, cs: 1}, b.acc, D, true)
		}
	}
	for r := 0; r < R; r++ {
		t, h := t0+r/group, g*group+r%group
		o := (t*Hq + h) * D
		orow := out[o : o+D]
		if b.l[r] == 0 {
			clear(orow)
			if lse != nil {
				lse[t*Hq+h] = ninf
			}
			continue
		}
		inv := 1 / b.l[r]
		for i, x := range b.acc[r*D : (r+1)*D] {
			orow[i] = x * inv
		}
		if lse != nil {
			lse[t*Hq+h] = b.m[r] + float32(math.Log(float64(b.l[r])))
		}
	}
}

// attnMask fills mask[i·attnKB+j] with 0 where token toks[i] attends to key
// j0+j (j < nb), −Inf elsewhere, and reports whether any key is masked; when
// none is (below the causal diagonal) it leaves mask alone.
func attnMask(mask []float32, toks []int32, spans []KeySpan, ns, j0, nb int) bool {
	masked := false
	for _, t := range toks {
		full := false
		for _, sp := range spans[ns*int(t) : ns*int(t)+ns] {
			full = full || int(sp.Lo) <= j0 && int(sp.Hi) >= j0+nb
		}
		if !full {
			masked = true
			break
		}
	}
	if !masked {
		return false
	}
	ninf := float32(math.Inf(-1))
	for i, t := range toks {
		mk := mask[i*attnKB : i*attnKB+nb]
		for j := range mk {
			mk[j] = ninf
		}
		for _, sp := range spans[ns*int(t) : ns*int(t)+ns] {
			for j := max(int(sp.Lo), j0); j < min(int(sp.Hi), j0+nb); j++ {
				mk[j-j0] = 0
			}
		}
	}
	return true
}

// attnBackGEMM is the backward's work on the query rows of tokens b.toks
// (all query heads of kv group g; row i·group+h) as float32 GEMMs, with
// p = exp(scale·q·k − lse) and ds = p·(dout·v − δ)·scale. With dq set
// (pass 1) it visits every key block the tokens reach and writes their dq
// rows, dq = Σ ds·k. Otherwise (pass 2) it adds key block kb's share,
// dv += pᵀ·dout and dk += dsᵀ·q, into dk and dv.
//
// With kh and vh (K and V rounded to bfloat16) set, the five products take
// bf16 operands (pairs) and accumulate in float32, as the forward's do.
func attnBackGEMM(l *impl, ko *opsKern, b *attnGEMMBufs, dq, dk, dv, dout, q, k, v, lse, delta []float32, kh, vh []uint16, kb, g, S, Hq, Hkv, D int, scale float32, spans []KeySpan, ns int) {
	pairs := kh != nil
	D2 := (D + 1) / 2
	group := Hq / Hkv
	nt := len(b.toks)
	R := nt * group
	kvStride := Hkv * D
	const KB = attnKB
	b.q, b.do = grow(b.q, R*D), grow(b.do, R*D)
	b.s, b.dp = grow(b.s, R*KB), grow(b.dp, R*KB)
	b.lse, b.delta = grow(b.lse, R), grow(b.delta, R)
	b.mask = grow(b.mask, nt*KB)
	for i, t := range b.toks {
		r0 := int(t)*Hq + g*group
		copy(b.q[i*group*D:(i+1)*group*D], q[r0*D:(r0+group)*D])
		copy(b.do[i*group*D:(i+1)*group*D], dout[r0*D:(r0+group)*D])
		copy(b.lse[i*group:(i+1)*group], lse[r0:r0+group])
		copy(b.delta[i*group:(i+1)*group], delta[r0:r0+group])
	}
	qa, doa := matA{f: b.q, rs: D, cs: 1}, matA{f: b.do, rs: D, cs: 1}
	if pairs {
		qa, b.qh = bf16Rows(l, &b.qh, b.q, R, D, D)
		doa, b.doh = bf16Rows(l, &b.doh, b.do, R, D, D)
	}
	nkb := (S + KB - 1) / KB
	kb0, kb1 := kb, kb+1
	if dq != nil {
		kb0, kb1 = 0, nkb
		b.acc = grow(b.acc, R*D)
		clear(b.acc)
		b.reached(spans, ns, S)
	}
	ninf := float32(math.Inf(-1))
	for blk := kb0; blk < kb1; blk++ {
		if dq != nil && !b.keep[blk] {
			continue
		}
		j0 := blk * KB
		nb := min(KB, S-j0)
		masked := attnMask(b.mask, b.toks, spans, ns, j0, nb)
		o := (j0*Hkv + g) * D
		attnRowsByKeys(l, b.s, qa, k, kh, o, R, nb, D, kvStride)
		attnRowsByKeys(l, b.dp, doa, v, vh, o, R, nb, D, kvStride)
		for r := 0; r < R; r++ {
			p, ds := b.s[r*KB:r*KB+nb], b.dp[r*KB:r*KB+nb]
			L, dl := b.lse[r], b.delta[r]
			if L == ninf { // a query with no keys
				clear(p)
				clear(ds)
				continue
			}
			if masked {
				for j, x := range b.mask[r/group*KB : r/group*KB+nb] {
					p[j] += x
				}
			}
			ko.expAffine(p, p, scale, L)
			for j, x := range p {
				ds[j] = x * (ds[j] - dl) * scale
			}
		}
		nb2, R2 := (nb+1)/2, (R+1)/2
		switch {
		case dq != nil && pairs:
			// dS rounded into the pair panels as they are packed, as the forward's P
			pa := matA{f: b.dp, rs: KB, cs: 1, round: true, kk: nb}
			gemmSerial(l, R, D, nb2, pa, matB{h: kh[o:], rs: kvStride, cs: 1, pairs: true, kk: nb}, b.acc, D, true)
		case dq != nil:
			gemmSerial(l, R, D, nb, matA{f: b.dp, rs: KB, cs: 1}, matB{f: k[o:], rs: kvStride, cs: 1}, b.acc, D, true)
		case pairs:
			gemmSerial(l, nb, D, R2, pairsT(l, &b.pt, b.s, R, nb, KB), matB{h: b.doh, rs: 2 * D2, cs: 1, pairs: true, kk: R}, dv[o:], kvStride, true)
			gemmSerial(l, nb, D, R2, pairsT(l, &b.pt, b.dp, R, nb, KB), matB{h: b.qh, rs: 2 * D2, cs: 1, pairs: true, kk: R}, dk[o:], kvStride, true)
		default:
			gemmSerial(l, nb, D, R, matA{f: b.s, rs: 1, cs: KB}, matB{f: b.do, rs: D, cs: 1}, dv[o:], kvStride, true)
			gemmSerial(l, nb, D, R, matA{f: b.dp, rs: 1, cs: KB}, matB{f: b.q, rs: D, cs: 1}, dk[o:], kvStride, true)
		}
	}
	if dq != nil {
		for i, t := range b.toks {
			r0 := int(t)*Hq + g*group
			copy(dq[r0*D:(r0+group)*D], b.acc[i*group*D:(i+1)*group*D])
		}
	}
}

// bf16Copy rounds x to bfloat16 into *buf (grown as needed), in parallel.
func bf16Copy(l *impl, buf *[]uint16, x []float32) []uint16 {
	if cap(*buf) < len(x) {
		*buf = make([]uint16, len(x))
	}
	h := (*buf)[:len(x)]
	const chunk = 1 << 14
	n := (len(x) + chunk - 1) / chunk
	parallelChunks(n, min(n, Threads()), func(lo, hi int) {
		l.cvtBF16(h[lo*chunk:], x[lo*chunk:min(len(x), hi*chunk)])
	})
	return h
}

// AttentionBackward: dq [T×Hq×D] (overwritten), dk, dv [S×Hkv×D] (accumulated
// into), given dout, the forward's q, k, v, out, lse. Flash-style: the
// probabilities are recomputed from lse, no T×S matrix is stored.
//
// With p = exp(s − lse), dp = dout·v, δ = dout·out: ds = p·(dp − δ),
// dq = scale·Σ ds·k, dk += scale·ds·q, dv += p·dout. It runs as two passes so
// that every output row has exactly one writer (no locks, deterministic): one
// over (query block, kv head) for dq, one over (key block, kv head) for dk, dv.
func AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, T, S, Hq, Hkv, D int, scale float32, spans []KeySpan) {
	AttentionBackwardCompute(dq, dk, dv, dout, q, k, v, out, lse, T, S, Hq, Hkv, D, scale, spans, ComputeF32)
}

// AttentionBackwardCompute is AttentionBackward with a choice of compute
// mode: with ComputeBF16 (and AVX512_BF16) the products of query blocks
// large enough to run as GEMMs (training) take bf16 operands (Q, K, V, dO,
// P and dS rounded) and accumulate in float32, as AttentionCompute's; the
// softmax's exponentials, δ and the gradients stay float32.
func AttentionBackwardCompute(dq, dk, dv, dout, q, k, v, out, lse []float32, T, S, Hq, Hkv, D int, scale float32, spans []KeySpan, c Compute) {
	const op = "AttentionBackward"
	checkAttn(op, q, k, v, T, S, Hq, Hkv, D, spans)
	ns := spansPer(spans, T)
	needLen(op, "dq", dq, T*Hq*D)
	needLen(op, "dk", dk, S*Hkv*D)
	needLen(op, "dv", dv, S*Hkv*D)
	needLen(op, "dout", dout, T*Hq*D)
	needLen(op, "out", out, T*Hq*D)
	needLen(op, "lse", lse, T*Hq)
	group := Hq / Hkv
	qbT := attnQBlock(group)
	kvStride := Hkv * D
	nqb := (T + qbT - 1) / qbT
	nkb := (S + attnKB - 1) / attnKB
	ko := opsKernels()

	// δ[t,h] = dout·out, the softmax's row correction.
	delta := make([]float32, T*Hq)
	for i := range delta {
		delta[i] = Dot(dout[i*D:(i+1)*D], out[i*D:(i+1)*D])
	}

	l := active.Load()
	var kh, vh []uint16 // K and V rounded to bfloat16 once, for the pair GEMMs
	if c == ComputeBF16 && l.kernBF16 != nil && min(T, qbT)*group >= attnGEMMRows {
		bk, bv := pairPool.Get().(*[]uint16), pairPool.Get().(*[]uint16)
		defer pairPool.Put(bk)
		defer pairPool.Put(bv)
		kh, vh = bf16Copy(l, bk, k[:S*kvStride]), bf16Copy(l, bv, v[:S*kvStride])
	}
	// Pass 1: dq, one writer per (t, h).
	parallelFor(Hkv*nqb, 1<<20, func(lo, hi int) {
		kt, vt := newTBlocks(nkb, D), newTBlocks(nkb, D)
		defer kt.release()
		defer vt.release()
		var gb *attnGEMMBufs
		s := make([]float32, attnKB)
		dp := make([]float32, attnKB)
		for it := lo; it < hi; it++ {
			g := it / nqb
			qb := zigzag(it%nqb, nqb)
			if t0, t1 := qb*qbT, min(T, (qb+1)*qbT); (t1-t0)*group >= attnGEMMRows {
				if gb == nil {
					gb = attnGEMMPool.Get().(*attnGEMMBufs)
					defer attnGEMMPool.Put(gb)
				}
				gb.toks = gb.toks[:0]
				for t := t0; t < t1; t++ {
					gb.toks = append(gb.toks, int32(t))
				}
				attnBackGEMM(l, ko, gb, dq, nil, nil, dout, q, k, v, lse, delta, kh, vh, -1, g, S, Hq, Hkv, D, scale, spans, ns)
				continue
			}
			kt.reset()
			vt.reset()
			for t := qb * qbT; t < min(T, (qb+1)*qbT); t++ {
				for h := g * group; h < (g+1)*group; h++ {
					r := t*Hq + h
					qrow := q[r*D : (r+1)*D]
					dorow := dout[r*D : (r+1)*D]
					dqrow := dq[r*D : (r+1)*D]
					clear(dqrow)
					L, dl := lse[r], delta[r]
					if math.IsInf(float64(L), -1) {
						continue
					}
					for _, sp := range spans[ns*t : ns*t+ns] {
						for b := int(sp.Lo) / attnKB; sp.Lo < sp.Hi && b*attnKB < int(sp.Hi); b++ {
							ja, jb := max(int(sp.Lo), b*attnKB), min(int(sp.Hi), (b+1)*attnKB)
							ko.scores64(s, qrow, kt.get(b, k, S, Hkv, g, D))
							ko.scores64(dp, dorow, vt.get(b, v, S, Hkv, g, D))
							sb := s[ja-b*attnKB : jb-b*attnKB]
							db := dp[ja-b*attnKB : jb-b*attnKB]
							ko.expAffine(sb, sb, scale, L)
							for j, p := range sb {
								sb[j] = p * (db[j] - dl) * scale
							}
							ko.axpyRows(dqrow, sb, k[(ja*Hkv+g)*D:], kvStride)
						}
					}
				}
			}
		}
	})

	// Pass 2: dk, dv, one writer per (key block, kv head). Each item scans all
	// queries for spans that reach into its block and gathers up to attnRB
	// (query, head) rows; their p and ds are kept transposed so that each key
	// row is then updated once per batch, its gradient held in registers.
	const attnRB = 16
	if min(T, qbT)*group >= attnGEMMRows {
		// Many queries (training): gather them in query blocks per key block
		// and run the four products as GEMMs.
		parallelFor(Hkv*nkb, 1<<20, func(lo, hi int) {
			gb := attnGEMMPool.Get().(*attnGEMMBufs)
			defer attnGEMMPool.Put(gb)
			for it := lo; it < hi; it++ {
				g := it / nkb
				b := zigzag(it%nkb, nkb)
				b0, b1 := b*attnKB, min(S, (b+1)*attnKB)
				gb.toks = gb.toks[:0]
				for t := 0; t < T; t++ {
					for _, sp := range spans[ns*t : ns*t+ns] {
						if max(int(sp.Lo), b0) < min(int(sp.Hi), b1) {
							gb.toks = append(gb.toks, int32(t))
							break
						}
					}
				}
				all := gb.toks
				for i := 0; i < len(all); i += qbT {
					gb.toks = all[i:min(len(all), i+qbT)]
					attnBackGEMM(l, ko, gb, nil, dk, dv, dout, q, k, v, lse, delta, kh, vh, b, g, S, Hq, Hkv, D, scale, spans, ns)
				}
				gb.toks = all[:0]
			}
		})
		return
	}
	parallelFor(Hkv*nkb, 1<<20, func(lo, hi int) {
		ktb := make([]float32, D*attnKB) // this item's K block, transposed
		vtb := make([]float32, D*attnKB)
		s := make([]float32, attnKB)
		dp := make([]float32, attnKB)
		pT := make([]float32, attnKB*attnRB)  // [key × row]
		dsT := make([]float32, attnKB*attnRB) // [key × row]
		qB := make([]float32, attnRB*D)       // gathered q rows
		doB := make([]float32, attnRB*D)      // gathered dout rows
		for it := lo; it < hi; it++ {
			g := it / nkb
			b := zigzag(it%nkb, nkb)
			b0, b1 := b*attnKB, min(S, (b+1)*attnKB)
			transposeBlock(ktb, k, b, S, Hkv, g, D)
			transposeBlock(vtb, v, b, S, Hkv, g, D)
			nr := 0
			flush := func() {
				for j := b0; j < b1; j++ {
					jj := j - b0
					row := (j*Hkv + g) * D
					ko.axpyRows(dv[row:row+D], pT[jj*attnRB:jj*attnRB+nr], doB, D)
					ko.axpyRows(dk[row:row+D], dsT[jj*attnRB:jj*attnRB+nr], qB, D)
				}
				nr = 0
			}
			for t := 0; t < T; t++ {
				for _, sp := range spans[ns*t : ns*t+ns] {
					ja, jb := max(int(sp.Lo), b0)-b0, min(int(sp.Hi), b1)-b0
					if ja >= jb {
						continue
					}
					for h := g * group; h < (g+1)*group; h++ {
						r := t*Hq + h
						L, dl := lse[r], delta[r]
						if math.IsInf(float64(L), -1) {
							continue
						}
						qrow := q[r*D : (r+1)*D]
						dorow := dout[r*D : (r+1)*D]
						ko.scores64(s, qrow, ktb)
						ko.scores64(dp, dorow, vtb)
						ko.expAffine(s, s, scale, L)
						for jj := 0; jj < attnKB; jj++ {
							var p, ds float32
							if jj >= ja && jj < jb {
								p = s[jj]
								ds = p * (dp[jj] - dl) * scale
							}
							pT[jj*attnRB+nr] = p
							dsT[jj*attnRB+nr] = ds
						}
						copy(qB[nr*D:(nr+1)*D], qrow)
						copy(doB[nr*D:(nr+1)*D], dorow)
						if nr++; nr == attnRB {
							flush()
						}
					}
				}
			}
			if nr > 0 {
				flush()
			}
		}
	})
}

// tBlocks caches 64-key blocks of one kv head of K or V transposed to
// [D × 64], filled on first use, so scores64 can stream them. Blocks are
// aligned to multiples of 64 keys; lanes past S are never read as results.
type tBlocks struct {
	t      []float32 // [nkb × D × 64]
	stamp  []int     // stamp[b] == cur: block b is filled for the current item
	cur    int
	nkb, D int
}

// tBlocksPool keeps caches between calls: a training step calls attention
// hundreds of times, and S×D floats per call and thread were most of the
// garbage it left.
var tBlocksPool sync.Pool

// newTBlocks returns an empty cache, pooled; memory is allocated on first use.
func newTBlocks(nkb, D int) *tBlocks {
	c, _ := tBlocksPool.Get().(*tBlocks)
	if c == nil {
		c = new(tBlocks)
	}
	c.nkb, c.D = nkb, D
	return c
}

// release returns c to the pool.
func (c *tBlocks) release() { tBlocksPool.Put(c) }

// reset invalidates every block (a new work item, maybe another kv head).
// cur only grows, so stamps left from an earlier call never match.
func (c *tBlocks) reset() { c.cur++ }

// get returns block b of kv head g of m [S × Hkv × D], transposed.
func (c *tBlocks) get(b int, m []float32, S, Hkv, g, D int) []float32 {
	if n := c.nkb * c.D * attnKB; len(c.t) < n || len(c.stamp) < c.nkb {
		c.t = make([]float32, n)
		c.stamp = make([]int, c.nkb) // zeros: cur ≥ 1 after the first reset
	}
	blk := c.t[b*D*attnKB : (b+1)*D*attnKB]
	if c.stamp[b] != c.cur {
		c.stamp[b] = c.cur
		transposeBlock(blk, m, b, S, Hkv, g, D)
	}
	return blk
}

// transposeBlock writes keys [64b, 64b+64) ∩ [0,S) of kv head g of
// m [S × Hkv × D] into blk [D × 64].
func transposeBlock(blk, m []float32, b, S, Hkv, g, D int) {
	j0, j1 := b*attnKB, min(S, (b+1)*attnKB)
	for j := j0; j < j1; j++ {
		for d, x := range m[(j*Hkv+g)*D : (j*Hkv+g+1)*D] {
			blk[d*attnKB+j-j0] = x
		}
	}
}

// zigzag maps 0,1,2,3,… to 0,n−1,1,n−2,…: with causal masks the cost of a
// block grows with its index, and interleaving cheap and dear blocks keeps
// contiguous chunks of work balanced.
func zigzag(i, n int) int {
	if i%2 == 0 {
		return i / 2
	}
	return n - 1 - i/2
}

// checkAttn validates the shapes and spans shared by Attention and its backward.
func checkAttn(op string, q, k, v []float32, T, S, Hq, Hkv, D int, spans []KeySpan) {
	if T < 0 || S < 0 || Hq <= 0 || Hkv <= 0 || D <= 0 || Hq%Hkv != 0 {
		panic(fmt.Sprintf("kernels.%s: bad shape T=%d S=%d Hq=%d Hkv=%d D=%d (Hq must be a multiple of Hkv)", op, T, S, Hq, Hkv, D))
	}
	needLen(op, "q", q, T*Hq*D)
	needLen(op, "k", k, S*Hkv*D)
	needLen(op, "v", v, S*Hkv*D)
	n := spansPer(spans, T)
	if T > 0 && (n < 1 || len(spans) != n*T) {
		panic(fmt.Sprintf("kernels.%s: len(spans)=%d, need a positive multiple of T=%d", op, len(spans), T))
	}
	for t := 0; t < T; t++ {
		sp := spans[n*t : n*t+n]
		for i, a := range sp {
			if a.Lo < 0 || a.Lo > a.Hi || int(a.Hi) > S {
				panic(fmt.Sprintf("kernels.%s: query %d: span [%d,%d) outside [0,%d)", op, t, a.Lo, a.Hi, S))
			}
			for _, b := range sp[:i] {
				if a.Lo < a.Hi && b.Lo < b.Hi && a.Lo < b.Hi && b.Lo < a.Hi {
					panic(fmt.Sprintf("kernels.%s: query %d: spans [%d,%d) and [%d,%d) overlap", op, t, b.Lo, b.Hi, a.Lo, a.Hi))
				}
			}
		}
	}
}

// spansPer is the number of key spans per query.
func spansPer(spans []KeySpan, T int) int {
	if T == 0 {
		return 0
	}
	return len(spans) / T
}
