package model

import (
	"fmt"
	"math"

	"github.com/gotrain/gotrain/kernels"
)

// maxChunk bounds how many tokens one pass through the layers handles; longer
// batches are run chunk after chunk through the KV cache, which keeps the
// activation buffers bounded for long prompts.
const maxChunk = 512

// Batch is T tokens to append to a KV cache, possibly from several sequences
// packed into one stream.
type Batch struct {
	Tokens []int32           // [T]
	Pos    []int32           // [T] rotary positions
	Spans  []kernels.KeySpan // [2T] cache rows each token attends to (its own row included)
}

// Add appends one token at rotary position pos that sees cache rows
// [lo1,hi1) ∪ [lo2,hi2).
func (b *Batch) Add(tok, pos, lo1, hi1, lo2, hi2 int) {
	b.Tokens = append(b.Tokens, int32(tok))
	b.Pos = append(b.Pos, int32(pos))
	b.Spans = append(b.Spans, kernels.KeySpan{Lo: int32(lo1), Hi: int32(hi1)}, kernels.KeySpan{Lo: int32(lo2), Hi: int32(hi2)})
}

// Len is the number of tokens in the batch.
func (b *Batch) Len() int { return len(b.Tokens) }

// KVCache keeps every layer's keys and values for the rows written so far,
// plus the scratch buffers of one caller. Each goroutine needs its own.
type KVCache struct {
	K, V [][]float32 // [layer][rows × KVHeads·HeadDim]
	Len  int         // rows in use
	rows int         // capacity in rows
	kvw  int         // KVHeads·HeadDim
	s    scratch
}

// NewCache returns an empty KV cache for the model.
func (m *Model) NewCache() *KVCache {
	c := &KVCache{kvw: m.Config.KVHeads * m.Config.HeadDim}
	c.K = make([][]float32, m.Config.Layers)
	c.V = make([][]float32, m.Config.Layers)
	return c
}

// Truncate drops the rows from n on, so a shared prefix can be continued
// another way.
func (c *KVCache) Truncate(n int) {
	if n < c.Len {
		c.Len = n
	}
}

func (c *KVCache) grow(rows int) {
	if rows <= c.rows {
		return
	}
	n := max(rows, 2*c.rows, 64)
	for l := range c.K {
		k, v := make([]float32, n*c.kvw), make([]float32, n*c.kvw)
		copy(k, c.K[l][:c.Len*c.kvw])
		copy(v, c.V[l][:c.Len*c.kvw])
		c.K[l], c.V[l] = k, v
	}
	c.rows = n
}

// scratch holds per-chunk activations, reused across calls.
type scratch struct {
	x, xn, q, att, gate, up, lora []float32
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// Forward appends the batch's tokens to the cache and returns the final-norm
// hidden states [len(want) × Hidden] of the batch positions listed in want
// (ascending). ad may be nil.
func (m *Model) Forward(c *KVCache, b *Batch, ad *Adapter, want []int) ([]float32, error) {
	if err := m.checkBatch(c, b); err != nil {
		return nil, err
	}
	H := m.Config.Hidden
	out := make([]float32, len(want)*H)
	w := 0
	for lo := 0; lo < b.Len(); lo += maxChunk {
		hi := min(lo+maxChunk, b.Len())
		x := m.forwardChunk(c, b, lo, hi, ad)
		for ; w < len(want) && want[w] < hi; w++ {
			t := want[w] - lo
			kernels.RMSNorm(out[w*H:(w+1)*H], x[t*H:(t+1)*H], m.Norm, 1, H, float32(m.Config.RMSNormEps), nil)
		}
	}
	return out, nil
}

func (m *Model) checkBatch(c *KVCache, b *Batch) error {
	T := b.Len()
	if len(b.Pos) != T || len(b.Spans) != 2*T {
		return fmt.Errorf("model: batch of %d tokens has %d positions and %d spans", T, len(b.Pos), len(b.Spans))
	}
	maxPos := int32(m.ropeLen)
	for t, tok := range b.Tokens {
		if tok < 0 || int(tok) >= m.Config.VocabSize {
			return fmt.Errorf("model: token id %d outside the vocabulary [0,%d)", tok, m.Config.VocabSize)
		}
		if p := b.Pos[t]; p < 0 || p >= maxPos {
			return fmt.Errorf("model: position %d outside [0,%d)", p, maxPos)
		}
		row := int32(c.Len + t)
		for _, s := range b.Spans[2*t : 2*t+2] {
			if s.Lo < 0 || s.Hi < s.Lo || s.Hi > row+1 {
				return fmt.Errorf("model: token %d (cache row %d) attends to rows [%d,%d): not causal", t, row, s.Lo, s.Hi)
			}
		}
	}
	return nil
}

// forwardChunk runs tokens [lo,hi) of the batch through every layer, writing
// their keys and values into the cache, and returns the residual stream
// [T × Hidden] before the final norm.
func (m *Model) forwardChunk(c *KVCache, b *Batch, lo, hi int, ad *Adapter) []float32 {
	cfg := &m.Config
	T, H, D, I := hi-lo, cfg.Hidden, cfg.HeadDim, cfg.Intermediate
	qw, kvw := cfg.Heads*D, cfg.KVHeads*D
	s := &c.s
	s.x, s.xn = grow(s.x, T*H), grow(s.xn, T*H)
	s.q, s.att = grow(s.q, T*qw), grow(s.att, T*qw)
	s.gate, s.up = grow(s.gate, T*I), grow(s.up, T*I)
	s.lora = grow(s.lora, T*64)
	x := s.x
	for t := 0; t < T; t++ {
		m.Embed.Row(x[t*H:(t+1)*H], int(b.Tokens[lo+t]))
	}
	row0 := c.Len
	c.grow(row0 + T)
	pos, spans := b.Pos[lo:hi], b.Spans[2*lo:2*hi]
	eps := float32(cfg.RMSNormEps)
	scale := float32(1 / math.Sqrt(float64(D)))
	for l := range m.Layers {
		L := &m.Layers[l]
		var la *[NumModules]*LoRA
		if ad != nil {
			la = &ad.Layers[l]
		}
		K := c.K[l][row0*kvw : (row0+T)*kvw]
		V := c.V[l][row0*kvw : (row0+T)*kvw]
		// attention: x += O(attn(rope(Q xn), rope(K xn), V xn))
		kernels.RMSNorm(s.xn, x, L.AttnNorm, T, H, eps, nil)
		m.linear(s.q, s.xn, T, &L.Q, la, ModQ, s)
		m.linear(K, s.xn, T, &L.K, la, ModK, s)
		m.linear(V, s.xn, T, &L.V, la, ModV, s)
		m.rope.Apply(s.q, T, cfg.Heads, D, pos)
		m.rope.Apply(K, T, cfg.KVHeads, D, pos)
		S := row0 + T
		kernels.Attention(s.att, nil, s.q, c.K[l][:S*kvw], c.V[l][:S*kvw], T, S, cfg.Heads, cfg.KVHeads, D, scale, spans)
		m.linearAdd(x, s.att, T, &L.O, la, ModO, s)
		// MLP: x += Down(silu(Gate xn) · Up xn)
		kernels.RMSNorm(s.xn, x, L.MLPNorm, T, H, eps, nil)
		m.linear(s.gate, s.xn, T, &L.Gate, la, ModGate, s)
		m.linear(s.up, s.xn, T, &L.Up, la, ModUp, s)
		kernels.SwiGLU(s.gate, s.gate, s.up)
		m.linearAdd(x, s.gate, T, &L.Down, la, ModDown, s)
	}
	c.Len = row0 + T
	return x
}

// linear computes y = x·Wᵀ + b (+ LoRA) for T rows.
func (m *Model) linear(y, x []float32, T int, lin *Linear, la *[NumModules]*LoRA, mod Module, s *scratch) {
	kernels.MatMulT(y, x, T, lin.W, false)
	m.finishLinear(y, x, T, lin, la, mod, s)
}

// linearAdd computes y += x·Wᵀ + b (+ LoRA) for T rows.
func (m *Model) linearAdd(y, x []float32, T int, lin *Linear, la *[NumModules]*LoRA, mod Module, s *scratch) {
	kernels.MatMulT(y, x, T, lin.W, true)
	m.finishLinear(y, x, T, lin, la, mod, s)
}

func (m *Model) finishLinear(y, x []float32, T int, lin *Linear, la *[NumModules]*LoRA, mod Module, s *scratch) {
	if lin.B != nil {
		n := len(lin.B)
		for t := 0; t < T; t++ {
			kernels.Add(y[t*n:(t+1)*n], lin.B)
		}
	}
	if la != nil && la[mod] != nil {
		l := la[mod]
		s.lora = grow(s.lora, T*l.R)
		l.apply(y, x, s.lora, T)
	}
}

// Logits computes logits [n × Vocab] = hidden [n × Hidden] · LMHeadᵀ.
func (m *Model) Logits(logits, hidden []float32, n int) {
	kernels.MatMulT(logits, hidden, n, m.LMHead, false)
}
