package kernels

import (
	"fmt"
	"math"
)

// KeySpan is a half-open range [Lo, Hi) of key rows.
type KeySpan struct{ Lo, Hi int32 }

// Block sizes of the flash-style loops: a query block is one unit of parallel
// work (per head); a key block is how many scores live in scratch at a time.
const (
	attnQB = 16
	attnKB = 64
)

// Attention: causal grouped-query attention, flash-style (online softmax over
// key blocks; never a T×S matrix in memory). q [T × Hq × D], k, v [S × Hkv × D]
// (rows are key positions in the KV buffer), out [T × Hq × D]. Query t attends
// exactly to keys in spans[2t] ∪ spans[2t+1] (either may be empty, Lo==Hi; they
// must not overlap). Query head h uses kv head h / (Hq/Hkv). scale = 1/sqrt(D)
// is passed in. lse [T × Hq] (log-sum-exp of the scaled scores) is written when
// non-nil, for backward. A query with no keys gets out = 0 and lse = −Inf.
//
// This covers plain causal attention with a KV cache (spans[2t] = {0, past+t+1}),
// several sequences packed into one stream ({seqStart, pos+1}), and a shared
// prompt prefix followed by several short continuations in one KV buffer
// ({0, P} ∪ {contStart, pos+1}). Work is split over cores by (query block, head).
func Attention(out, lse, q, k, v []float32, T, S, Hq, Hkv, D int, scale float32, spans []KeySpan) {
	checkAttn("Attention", q, k, v, T, S, Hq, Hkv, D, spans)
	needLen("Attention", "out", out, T*Hq*D)
	if lse != nil {
		needLen("Attention", "lse", lse, T*Hq)
	}
	group := Hq / Hkv
	kvStride := Hkv * D
	nqb := (T + attnQB - 1) / attnQB
	ko := opsKernels()
	parallelFor(Hq*nqb, 1<<20, func(lo, hi int) {
		s := make([]float32, attnKB)
		acc := make([]float32, D)
		qs := make([]float32, D)
		for it := lo; it < hi; it++ {
			h := it / nqb
			qb := zigzag(it%nqb, nqb)
			g := h / group
			for t := qb * attnQB; t < min(T, (qb+1)*attnQB); t++ {
				r := t*Hq + h
				// Scores come out scaled when q is scaled first (D, not S, multiplies).
				for i, x := range q[r*D : (r+1)*D] {
					qs[i] = x * scale
				}
				orow := out[r*D : (r+1)*D]
				m := float32(math.Inf(-1))
				var l float32
				clear(acc)
				for _, sp := range spans[2*t : 2*t+2] {
					for j0 := int(sp.Lo); j0 < int(sp.Hi); j0 += attnKB {
						nb := min(attnKB, int(sp.Hi)-j0)
						kv := (j0*Hkv + g) * D
						sb := s[:nb]
						ko.dotRows(sb, qs, k[kv:], kvStride)
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
						ko.axpyRows(acc, sb, v[kv:], kvStride)
					}
				}
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
	})
}

// AttentionBackward: dq [T×Hq×D] (overwritten), dk, dv [S×Hkv×D] (accumulated
// into), given dout, the forward's q, k, v, out, lse. Flash-style: the
// probabilities are recomputed from lse, no T×S matrix is stored.
//
// With p = exp(s − lse), dp = dout·v, δ = dout·out: ds = p·(dp − δ),
// dq = scale·Σ ds·k, dk += scale·ds·q, dv += p·dout. It runs as two passes so
// that every output row has exactly one writer (no locks, deterministic): one
// over (query block, head) for dq, one over (key block, kv head) for dk, dv.
func AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, T, S, Hq, Hkv, D int, scale float32, spans []KeySpan) {
	const op = "AttentionBackward"
	checkAttn(op, q, k, v, T, S, Hq, Hkv, D, spans)
	needLen(op, "dq", dq, T*Hq*D)
	needLen(op, "dk", dk, S*Hkv*D)
	needLen(op, "dv", dv, S*Hkv*D)
	needLen(op, "dout", dout, T*Hq*D)
	needLen(op, "out", out, T*Hq*D)
	needLen(op, "lse", lse, T*Hq)
	group := Hq / Hkv
	kvStride := Hkv * D

	// δ[t,h] = dout·out, the softmax's row correction.
	delta := make([]float32, T*Hq)
	for i := range delta {
		delta[i] = Dot(dout[i*D:(i+1)*D], out[i*D:(i+1)*D])
	}

	ko := opsKernels()

	// Pass 1: dq, one writer per (t, h).
	nqb := (T + attnQB - 1) / attnQB
	parallelFor(Hq*nqb, 1<<20, func(lo, hi int) {
		s := make([]float32, attnKB)
		dp := make([]float32, attnKB)
		for it := lo; it < hi; it++ {
			h := it / nqb
			qb := zigzag(it%nqb, nqb)
			g := h / group
			for t := qb * attnQB; t < min(T, (qb+1)*attnQB); t++ {
				r := t*Hq + h
				qrow := q[r*D : (r+1)*D]
				dorow := dout[r*D : (r+1)*D]
				dqrow := dq[r*D : (r+1)*D]
				clear(dqrow)
				L, dl := lse[r], delta[r]
				if math.IsInf(float64(L), -1) {
					continue
				}
				for _, sp := range spans[2*t : 2*t+2] {
					for j0 := int(sp.Lo); j0 < int(sp.Hi); j0 += attnKB {
						nb := min(attnKB, int(sp.Hi)-j0)
						kv := (j0*Hkv + g) * D
						sb, db := s[:nb], dp[:nb]
						ko.dotRows(sb, qrow, k[kv:], kvStride)
						ko.dotRows(db, dorow, v[kv:], kvStride)
						ko.expAffine(sb, sb, scale, L)
						for j, p := range sb {
							sb[j] = p * (db[j] - dl) * scale
						}
						ko.axpyRows(dqrow, sb, k[kv:], kvStride)
					}
				}
			}
		}
	})

	// Pass 2: dk, dv, one writer per (key block, kv head). Each item scans all
	// queries for spans that reach into its block.
	nkb := (S + attnKB - 1) / attnKB
	parallelFor(Hkv*nkb, 1<<20, func(lo, hi int) {
		s := make([]float32, attnKB)
		dp := make([]float32, attnKB)
		p := make([]float32, attnKB)
		for it := lo; it < hi; it++ {
			g := it / nkb
			kb := zigzag(it%nkb, nkb)
			b0, b1 := kb*attnKB, min(S, (kb+1)*attnKB)
			for t := 0; t < T; t++ {
				for _, sp := range spans[2*t : 2*t+2] {
					j0, j1 := max(int(sp.Lo), b0), min(int(sp.Hi), b1)
					if j0 >= j1 {
						continue
					}
					nb := j1 - j0
					kv := (j0*Hkv + g) * D
					for h := g * group; h < (g+1)*group; h++ {
						r := t*Hq + h
						L, dl := lse[r], delta[r]
						if math.IsInf(float64(L), -1) {
							continue
						}
						qrow := q[r*D : (r+1)*D]
						dorow := dout[r*D : (r+1)*D]
						sb, db, pb := s[:nb], dp[:nb], p[:nb]
						ko.dotRows(sb, qrow, k[kv:], kvStride)
						ko.dotRows(db, dorow, v[kv:], kvStride)
						ko.expAffine(pb, sb, scale, L)
						for j, pj := range pb {
							sb[j] = pj * (db[j] - dl) * scale
						}
						ko.gerRows(dv[kv:], pb, dorow, kvStride)
						ko.gerRows(dk[kv:], sb, qrow, kvStride)
					}
				}
			}
		}
	})
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
	if len(spans) < 2*T {
		panic(fmt.Sprintf("kernels.%s: len(spans)=%d, need 2·T=%d", op, len(spans), 2*T))
	}
	for t := 0; t < T; t++ {
		a, b := spans[2*t], spans[2*t+1]
		for _, sp := range [2]KeySpan{a, b} {
			if sp.Lo < 0 || sp.Lo > sp.Hi || int(sp.Hi) > S {
				panic(fmt.Sprintf("kernels.%s: query %d: span [%d,%d) outside [0,%d)", op, t, sp.Lo, sp.Hi, S))
			}
		}
		if a.Lo < a.Hi && b.Lo < b.Hi && a.Lo < b.Hi && b.Lo < a.Hi {
			panic(fmt.Sprintf("kernels.%s: query %d: spans [%d,%d) and [%d,%d) overlap", op, t, a.Lo, a.Hi, b.Lo, b.Hi))
		}
	}
}
