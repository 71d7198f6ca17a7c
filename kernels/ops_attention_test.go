package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// attnRef is the explicit (non-flash) reference in float64:
// out = softmax(q·kᵀ·scale + mask)·v, mask from spans.
func attnRef(q, k, v []float64, T, S, Hq, Hkv, D int, scale float64, spans []KeySpan) (out, lse []float64) {
	out = make([]float64, T*Hq*D)
	lse = make([]float64, T*Hq)
	group := Hq / Hkv
	for t := 0; t < T; t++ {
		keys := spanKeys(spans, t, T)
		for h := 0; h < Hq; h++ {
			g := h / group
			r := t*Hq + h
			if len(keys) == 0 {
				lse[r] = math.Inf(-1)
				continue
			}
			s := make([]float64, len(keys))
			m := math.Inf(-1)
			for i, j := range keys {
				for d := 0; d < D; d++ {
					s[i] += q[r*D+d] * k[(j*Hkv+g)*D+d]
				}
				s[i] *= scale
				m = max(m, s[i])
			}
			var sum float64
			for i := range s {
				s[i] = math.Exp(s[i] - m)
				sum += s[i]
			}
			lse[r] = m + math.Log(sum)
			for i, j := range keys {
				for d := 0; d < D; d++ {
					out[r*D+d] += s[i] / sum * v[(j*Hkv+g)*D+d]
				}
			}
		}
	}
	return out, lse
}

// attnBackRef is the explicit reference backward in float64.
func attnBackRef(dout, q, k, v []float64, T, S, Hq, Hkv, D int, scale float64, spans []KeySpan) (dq, dk, dv []float64) {
	dq = make([]float64, T*Hq*D)
	dk = make([]float64, S*Hkv*D)
	dv = make([]float64, S*Hkv*D)
	group := Hq / Hkv
	for t := 0; t < T; t++ {
		keys := spanKeys(spans, t, T)
		for h := 0; h < Hq; h++ {
			g := h / group
			r := t*Hq + h
			p := make([]float64, len(keys))
			dp := make([]float64, len(keys))
			m := math.Inf(-1)
			for i, j := range keys {
				for d := 0; d < D; d++ {
					p[i] += q[r*D+d] * k[(j*Hkv+g)*D+d]
					dp[i] += dout[r*D+d] * v[(j*Hkv+g)*D+d]
				}
				p[i] *= scale
				m = max(m, p[i])
			}
			var sum float64
			for i := range p {
				p[i] = math.Exp(p[i] - m)
				sum += p[i]
			}
			var pdp float64
			for i := range p {
				p[i] /= sum
				pdp += p[i] * dp[i]
			}
			for i, j := range keys {
				ds := p[i] * (dp[i] - pdp) * scale
				for d := 0; d < D; d++ {
					kv := (j*Hkv+g)*D + d
					dq[r*D+d] += ds * k[kv]
					dk[kv] += ds * q[r*D+d]
					dv[kv] += p[i] * dout[r*D+d]
				}
			}
		}
	}
	return dq, dk, dv
}

func spanKeys(spans []KeySpan, t, T int) []int {
	var keys []int
	n := len(spans) / T
	for _, sp := range spans[n*t : n*t+n] {
		for j := sp.Lo; j < sp.Hi; j++ {
			keys = append(keys, int(j))
		}
	}
	return keys
}

// attnCase is one attention layout: spans for T queries over S keys.
type attnCase struct {
	name  string
	T, S  int
	spans []KeySpan
}

// causalSpans: plain causal attention after past cached keys.
func causalSpans(T, past int) attnCase {
	sp := make([]KeySpan, 2*T)
	for t := 0; t < T; t++ {
		sp[2*t] = KeySpan{0, int32(past + t + 1)}
	}
	return attnCase{fmt.Sprintf("causal T=%d past=%d", T, past), T, past + T, sp}
}

// packedSpans: several sequences packed into one stream.
func packedSpans(lens ...int) attnCase {
	var sp []KeySpan
	start := 0
	for _, n := range lens {
		for i := 0; i < n; i++ {
			sp = append(sp, KeySpan{int32(start), int32(start + i + 1)}, KeySpan{})
		}
		start += n
	}
	return attnCase{fmt.Sprintf("packed %v", lens), start, start, sp}
}

// prefixSpans: a shared prompt prefix of P keys and continuations after it;
// the queries are the continuation tokens. The prefix span comes second for
// odd continuations, to test both orders.
func prefixSpans(P int, lens ...int) attnCase {
	var sp []KeySpan
	start := P
	for c, n := range lens {
		for i := 0; i < n; i++ {
			a, b := KeySpan{0, int32(P)}, KeySpan{int32(start), int32(start + i + 1)}
			if c%2 == 1 {
				a, b = b, a
			}
			sp = append(sp, a, b)
		}
		start += n
	}
	return attnCase{fmt.Sprintf("prefix P=%d %v", P, lens), start - P, start, sp}
}

// randomSpans: arbitrary non-overlapping pairs, often empty.
func randomSpans(rng *rand.Rand, T, S int) attnCase {
	sp := make([]KeySpan, 2*T)
	for t := 0; t < T; t++ {
		a, b := rng.IntN(S+1), rng.IntN(S+1)
		a, b = min(a, b), max(a, b)
		c := b + rng.IntN(S+1-b)
		d := c + rng.IntN(S+1-c)
		switch rng.IntN(4) {
		case 0:
			sp[2*t], sp[2*t+1] = KeySpan{int32(a), int32(b)}, KeySpan{int32(c), int32(d)}
		case 1:
			sp[2*t], sp[2*t+1] = KeySpan{int32(c), int32(d)}, KeySpan{int32(a), int32(b)}
		case 2:
			sp[2*t] = KeySpan{int32(a), int32(d)}
		case 3: // both empty
			sp[2*t], sp[2*t+1] = KeySpan{int32(a), int32(a)}, KeySpan{int32(d), int32(d)}
		}
	}
	return attnCase{fmt.Sprintf("random T=%d S=%d", T, S), T, S, sp}
}

// batchedSpans: rows of several prompts batched as the server does, four
// spans a query: a shared prefix (in two pieces: rows copied from a cache and
// rows computed now), each prompt's own tail, each continuation's own tokens.
func batchedSpans() attnCase {
	pre := []KeySpan{{0, 40}, {40, 70}}
	var sp []KeySpan
	start := 70
	for _, tail := range []int{3, 20} {
		tailSpan := KeySpan{int32(start), int32(start + tail)}
		for i := 0; i < tail; i++ {
			sp = append(sp, pre[0], pre[1], KeySpan{int32(start), int32(start + i + 1)}, KeySpan{})
		}
		start += tail
		for _, cont := range []int{1, 2} {
			for i := 0; i < cont; i++ {
				sp = append(sp, pre[1], tailSpan, KeySpan{int32(start), int32(start + i + 1)}, pre[0])
			}
			start += cont
		}
	}
	return attnCase{"batched prefixes", (start - 70), start, sp}
}

func attnCases(rng *rand.Rand) []attnCase {
	return []attnCase{
		causalSpans(1, 0),
		causalSpans(7, 0),
		causalSpans(3, 5),
		causalSpans(1, 130), // one decode step over a long cache: several key blocks
		causalSpans(37, 0),
		packedSpans(3, 1, 5),
		packedSpans(70, 11),
		prefixSpans(9, 2, 3, 1),
		prefixSpans(66, 4, 5),
		randomSpans(rng, 9, 13),
		randomSpans(rng, 19, 150),
		batchedSpans(),
	}
}

func TestAttention(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(20, 21))
		heads := [][2]int{{1, 1}, {2, 1}, {4, 2}, {7, 1}, {14, 2}}
		for _, D := range []int{8, 16, 64, 128} {
			for _, c := range attnCases(rng) {
				// Every head layout: work items of few and many query rows.
				for _, hh := range heads {
					Hq, Hkv := hh[0], hh[1]
					q := randVec(rng, c.T*Hq*D, 2)
					k := randVec(rng, c.S*Hkv*D, 2)
					v := randVec(rng, c.S*Hkv*D, 1)
					scale := float32(1 / math.Sqrt(float64(D)))
					wantOut, wantLse := attnRef(to64(q), to64(k), to64(v), c.T, c.S, Hq, Hkv, D, float64(scale), c.spans)
					out := randVec(rng, c.T*Hq*D, 1)
					lse := make([]float32, c.T*Hq)
					Attention(out, lse, q, k, v, c.T, c.S, Hq, Hkv, D, scale, c.spans)
					name := fmt.Sprintf("%s D=%d Hq=%d Hkv=%d", c.name, D, Hq, Hkv)
					compare(t, name+" out", out, wantOut, 1e-5, 1e-4)
					compare(t, name+" lse", lse, wantLse, 1e-5, 1e-5)

					// Backward against the explicit reference.
					dout := randVec(rng, c.T*Hq*D, 1)
					wq, wk, wv := attnBackRef(to64(dout), to64(q), to64(k), to64(v), c.T, c.S, Hq, Hkv, D, float64(scale), c.spans)
					dq := randVec(rng, len(q), 1) // overwritten
					dk0, dv0 := randVec(rng, len(k), 1), randVec(rng, len(v), 1)
					dk, dv := append([]float32(nil), dk0...), append([]float32(nil), dv0...)
					AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, c.T, c.S, Hq, Hkv, D, scale, c.spans)
					for i := range wk { // dk, dv accumulate
						wk[i] += float64(dk0[i])
						wv[i] += float64(dv0[i])
					}
					compare(t, name+" dq", dq, wq, 1e-5, 1e-4)
					compare(t, name+" dk", dk, wk, 1e-5, 1e-4)
					compare(t, name+" dv", dv, wv, 1e-5, 1e-4)
				}
			}
		}
	})
}

// TestAttentionBackwardFD checks the backward against central finite
// differences of the float64 reference forward, loss = Σ out·g.
func TestAttentionBackwardFD(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(22, 23))
		for _, c := range []attnCase{causalSpans(5, 2), prefixSpans(3, 2, 2), randomSpans(rng, 6, 7)} {
			const Hq, Hkv, D = 4, 2, 8
			scale := float32(1 / math.Sqrt(D))
			q, k, v := randVec(rng, c.T*Hq*D, 2), randVec(rng, c.S*Hkv*D, 2), randVec(rng, c.S*Hkv*D, 1)
			g := randVec(rng, c.T*Hq*D, 1)
			q64, k64, v64 := to64(q), to64(k), to64(v)
			loss := func(q, k, v []float64) float64 {
				out, _ := attnRef(q, k, v, c.T, c.S, Hq, Hkv, D, float64(scale), c.spans)
				return dot64(out, g)
			}
			wq := numGrad(func(x []float64) float64 { return loss(x, k64, v64) }, q64, 1e-6)
			wk := numGrad(func(x []float64) float64 { return loss(q64, x, v64) }, k64, 1e-6)
			wv := numGrad(func(x []float64) float64 { return loss(q64, k64, x) }, v64, 1e-6)

			out, lse := make([]float32, len(q)), make([]float32, c.T*Hq)
			Attention(out, lse, q, k, v, c.T, c.S, Hq, Hkv, D, scale, c.spans)
			dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
			AttentionBackward(dq, dk, dv, g, q, k, v, out, lse, c.T, c.S, Hq, Hkv, D, scale, c.spans)
			compare(t, c.name+" dq", dq, wq, 1e-5, 1e-4)
			compare(t, c.name+" dk", dk, wk, 1e-5, 1e-4)
			compare(t, c.name+" dv", dv, wv, 1e-5, 1e-4)
		}
	})
}

func TestAttentionBadSpansPanic(t *testing.T) {
	k := make([]float32, 16)
	for name, spans := range map[string][]KeySpan{
		"overlap":  {{0, 2}, {1, 2}},
		"past end": {{0, 3}, {}},
		"reversed": {{2, 1}, {}},
		"empty":    {},
		"ragged":   {{0, 1}, {}, {}}, // 3 spans for T = 2 queries
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			T := 1
			if name == "ragged" {
				T = 2
			}
			Attention(make([]float32, 8*T), nil, make([]float32, 8*T), k, k, T, 2, 1, 1, 8, 1, spans)
		}()
	}
}

// Benchmark shape: Qwen2.5-0.5B attention (Hq=14, Hkv=2, D=64), T=S=512
// causal. Flops: 4·D per (query, head, key) pair attended (QKᵀ and PV).
func benchAttn(b *testing.B, threads int, backward bool, cm ...Compute) {
	const T, Hq, Hkv, D = 512, 14, 2, 64
	rng := rand.New(rand.NewPCG(1, 1))
	c := causalSpans(T, 0)
	q, k, v := randVec(rng, T*Hq*D, 1), randVec(rng, T*Hkv*D, 1), randVec(rng, T*Hkv*D, 1)
	out, lse := make([]float32, len(q)), make([]float32, T*Hq)
	dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
	scale := float32(1 / math.Sqrt(D))
	SetThreads(threads)
	defer SetThreads(0)
	Attention(out, lse, q, k, v, T, T, Hq, Hkv, D, scale, c.spans)
	flops := 4.0 * D * Hq * float64(T*(T+1)/2)
	if backward {
		flops *= 2.5 // S=QKᵀ, dP=dO·Vᵀ, dQ, dK, dV: five matmuls to the forward's two
	}
	c0 := cpuTime()
	for b.Loop() {
		if backward {
			AttentionBackwardCompute(dq, dk, dv, out, q, k, v, out, lse, T, T, Hq, Hkv, D, scale, c.spans, append(cm, ComputeF32)[0])
		} else {
			AttentionCompute(out, lse, q, k, v, T, T, Hq, Hkv, D, scale, c.spans, append(cm, ComputeF32)[0])
		}
	}
	reportFlops(b, flops, cpuTime()-c0)
}

func BenchmarkAttention1T(b *testing.B)          { benchAttn(b, 1, false) }
func BenchmarkAttentionPar(b *testing.B)         { benchAttn(b, 0, false) }
func BenchmarkAttentionBF16_1T(b *testing.B)     { benchAttn(b, 1, false, ComputeBF16) }
func BenchmarkAttentionBackward1T(b *testing.B)  { benchAttn(b, 1, true) }
func BenchmarkAttentionBackwardPar(b *testing.B) { benchAttn(b, 0, true) }
func BenchmarkAttentionBackwardBF16_1T(b *testing.B) {
	benchAttn(b, 1, true, ComputeBF16)
}

// Decode: one new token over a 2048-row KV cache.
func BenchmarkAttentionDecode(b *testing.B) {
	const S, Hq, Hkv, D = 2048, 14, 2, 64
	rng := rand.New(rand.NewPCG(1, 1))
	q, k, v := randVec(rng, Hq*D, 1), randVec(rng, S*Hkv*D, 1), randVec(rng, S*Hkv*D, 1)
	out, lse := make([]float32, len(q)), make([]float32, Hq)
	spans := []KeySpan{{0, S}, {}}
	c0 := cpuTime()
	for b.Loop() {
		Attention(out, lse, q, k, v, 1, S, Hq, Hkv, D, float32(1/math.Sqrt(D)), spans)
	}
	reportFlops(b, 4.0*D*Hq*S, cpuTime()-c0)
}

// TestAttentionBF16 checks ComputeBF16 attention against the float64
// reference on the bfloat16-rounded operands (q·scale, k, v rounded as the
// kernel rounds them); what remains is P's rounding (2⁻⁹ relative) and the
// float32 sums, for work items of every size (decoding's too).
func TestAttentionBF16(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(22, 23))
		round := func(x []float32, s float32) []float64 {
			r := make([]float64, len(x))
			for i, v := range x {
				r[i] = float64(BF16ToF32(F32ToBF16(v*s))) / float64(s)
			}
			return r
		}
		for _, D := range []int{16, 64, 128} {
			for _, c := range attnCases(rng) {
				for _, hh := range [][2]int{{1, 1}, {4, 2}, {7, 1}, {14, 2}} {
					Hq, Hkv := hh[0], hh[1]
					q := randVec(rng, c.T*Hq*D, 2)
					k := randVec(rng, c.S*Hkv*D, 2)
					v := randVec(rng, c.S*Hkv*D, 1)
					scale := float32(1 / math.Sqrt(float64(D)))
					qr, kr, vr := round(q, scale), round(k, 1), round(v, 1)
					if !HasBF16Compute() {
						qr, kr, vr = to64(q), to64(k), to64(v)
					}
					wantOut, wantLse := attnRef(qr, kr, vr, c.T, c.S, Hq, Hkv, D, float64(scale), c.spans)
					out := randVec(rng, c.T*Hq*D, 1)
					lse := make([]float32, c.T*Hq)
					AttentionCompute(out, lse, q, k, v, c.T, c.S, Hq, Hkv, D, scale, c.spans, ComputeBF16)
					name := fmt.Sprintf("%s D=%d Hq=%d Hkv=%d", c.name, D, Hq, Hkv)
					compare(t, name+" out", out, wantOut, 4e-3, 1e-2)
					compare(t, name+" lse", lse, wantLse, 1e-4, 1e-4)
				}
			}
		}
	})
}

// TestAttentionBackwardBF16: with ComputeBF16 the backward's GEMM path (bf16
// operands, float32 accumulation) stays within bf16 rounding of the float32
// backward, as a norm over each gradient (at most 0.0085 measured; dS =
// P·(dP − δ) cancels), for every case and head layout
// (odd head dims, short last key blocks, masked blocks included).
func TestAttentionBackwardBF16(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(24, 25))
		cases := append(attnCases(rng), causalSpans(130, 0), packedSpans(70, 45, 33))
		for _, D := range []int{15, 64} {
			for _, c := range cases {
				for _, hh := range [][2]int{{1, 1}, {4, 2}, {14, 2}} {
					Hq, Hkv := hh[0], hh[1]
					q := randVec(rng, c.T*Hq*D, 2)
					k := randVec(rng, c.S*Hkv*D, 2)
					v := randVec(rng, c.S*Hkv*D, 1)
					dout := randVec(rng, c.T*Hq*D, 1)
					scale := float32(1 / math.Sqrt(float64(D)))
					out, lse := make([]float32, c.T*Hq*D), make([]float32, c.T*Hq)
					Attention(out, lse, q, k, v, c.T, c.S, Hq, Hkv, D, scale, c.spans)
					var g [2][3][]float32
					for i, cm := range []Compute{ComputeF32, ComputeBF16} {
						dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
						AttentionBackwardCompute(dq, dk, dv, dout, q, k, v, out, lse, c.T, c.S, Hq, Hkv, D, scale, c.spans, cm)
						g[i] = [3][]float32{dq, dk, dv}
					}
					name := fmt.Sprintf("%s D=%d Hq=%d Hkv=%d", c.name, D, Hq, Hkv)
					for j, what := range []string{"dq", "dk", "dv"} {
						if e := relNormErr(g[1][j], g[0][j]); e > 2e-2 || math.IsNaN(e) {
							t.Errorf("%s %s: bf16 relative error %.2g", name, what, e)
						}
					}
				}
			}
		}
	})
}

// TestAttentionInvariant: a query's output and lse are bit-identical when it
// is computed alone with its keys gathered into one run at another place in
// the cache (here after 37 rows of other keys), at every level, in both
// compute modes: the forward blocks a query's keys by their logical index,
// not by cache row, and runs every work item as the same GEMMs.
func TestAttentionInvariant(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(26, 27))
		cases := append(attnCases(rng), causalSpans(130, 0), prefixSpans(70, 60, 9, 3), packedSpans(200, 70, 66, 64))
		for _, cm := range []Compute{ComputeF32, ComputeBF16} {
			for _, D := range []int{8, 64} {
				for _, c := range cases {
					for _, hh := range [][2]int{{4, 2}, {7, 1}, {14, 2}} {
						Hq, Hkv := hh[0], hh[1]
						kvw := Hkv * D
						q := randVec(rng, c.T*Hq*D, 2)
						k := randVec(rng, c.S*kvw, 2)
						v := randVec(rng, c.S*kvw, 1)
						scale := float32(1 / math.Sqrt(float64(D)))
						out, lse := make([]float32, c.T*Hq*D), make([]float32, c.T*Hq)
						AttentionCompute(out, lse, q, k, v, c.T, c.S, Hq, Hkv, D, scale, c.spans, cm)
						ns := len(c.spans) / c.T
						for tt := 0; tt < c.T; tt++ {
							const off = 37
							k1, v1 := randVec(rng, off*kvw, 2), randVec(rng, off*kvw, 1)
							for _, sp := range c.spans[ns*tt : ns*tt+ns] {
								k1 = append(k1, k[int(sp.Lo)*kvw:int(sp.Hi)*kvw]...)
								v1 = append(v1, v[int(sp.Lo)*kvw:int(sp.Hi)*kvw]...)
							}
							S1 := len(k1) / kvw
							o1, l1 := make([]float32, Hq*D), make([]float32, Hq)
							AttentionCompute(o1, l1, q[tt*Hq*D:(tt+1)*Hq*D], k1, v1, 1, S1, Hq, Hkv, D, scale, []KeySpan{{off, int32(S1)}}, cm)
							if !slices.Equal(o1, out[tt*Hq*D:(tt+1)*Hq*D]) || !slices.Equal(l1, lse[tt*Hq:(tt+1)*Hq]) {
								t.Errorf("%v %s D=%d Hq=%d Hkv=%d: query %d alone differs from its batch", cm, c.name, D, Hq, Hkv, tt)
								break
							}
						}
					}
				}
			}
		}
	})
}
