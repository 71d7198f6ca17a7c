package model

import (
	"fmt"

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
	Spans  []kernels.KeySpan // [n·T] cache rows each token attends to (its own row included), n spans a token
	// rows, when set, are the reserved cache rows (below the cache's Len)
	// that receive the tokens' keys and values instead of appended rows: a
	// tree of continuations gathers each node's ancestors next to the node's
	// own row, so that two spans cover what it attends to.
	rows []int32
	// exact: each token's hidden states must be bit-identical whatever
	// else is in the batch (scoring: ContinuationBatch, the Predictor), so
	// a chunk of fewer than kernels.MinGEMMRows tokens is padded for the
	// GEMM rather than run as GEMVs (decoding's choice).
	exact bool
}

// Add appends one token at rotary position pos that sees cache rows
// [lo1,hi1) ∪ [lo2,hi2).
func (b *Batch) Add(tok, pos, lo1, hi1, lo2, hi2 int) {
	b.Tokens = append(b.Tokens, int32(tok))
	b.Pos = append(b.Pos, int32(pos))
	b.Spans = append(b.Spans, kernels.KeySpan{Lo: int32(lo1), Hi: int32(hi1)}, kernels.KeySpan{Lo: int32(lo2), Hi: int32(hi2)})
}

// AddSpans appends one token at rotary position pos that sees the cache rows
// of spans; every token of a batch has the same number of spans.
func (b *Batch) AddSpans(tok, pos int, spans ...kernels.KeySpan) {
	b.Tokens = append(b.Tokens, int32(tok))
	b.Pos = append(b.Pos, int32(pos))
	b.Spans = append(b.Spans, spans...)
}

// spansPer is the number of spans of each token.
func (b *Batch) spansPer() int {
	if len(b.Tokens) == 0 {
		return 0
	}
	return len(b.Spans) / len(b.Tokens)
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
	x    []float32   // residual stream of the current chunk
	hpad []float32   // a few hidden states padded for the LM head's GEMM
	st   layerState  // activations of the current chunk, reused across calls
	// logits is ContinuationBatch's LM-head output, reused across calls: a
	// fresh [64 × Vocab] slice each batch was 5–8% of a server's CPU time
	// in zeroing it
	logits []float32
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

// copyRow copies cache row src to row dst in every layer.
func (c *KVCache) copyRow(dst, src int) {
	w := c.kvw
	for l := range c.K {
		copy(c.K[l][dst*w:(dst+1)*w], c.K[l][src*w:(src+1)*w])
		copy(c.V[l][dst*w:(dst+1)*w], c.V[l][src*w:(src+1)*w])
	}
}

// Reserve makes room for rows cache rows at once, so that the decoding
// steps up to them append without growing the cache: each growth copies
// every layer's keys and values into fresh memory, whose first touch costs
// page faults (Qwen3-30B-A3B from 64 to 128 rows: 25 MB, 20–130 ms on the
// development VM, one to two of its decoding steps).
func (c *KVCache) Reserve(rows int) { c.grow(rows) }

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
	m = m.with(ad) // modules_to_save
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
	n := b.spansPer()
	if len(b.Pos) != T || len(b.Spans) != n*T || T > 0 && n < 1 || b.rows != nil && len(b.rows) != T {
		return fmt.Errorf("model: batch of %d tokens has %d positions and %d spans", T, len(b.Pos), len(b.Spans))
	}
	maxPos := int32(m.ropeLen)
	for t, tok := range b.Tokens {
		if tok < 0 || int(tok) >= m.Config.VocabSize {
			return fmt.Errorf("model: token id %d outside the vocabulary [0,%d)", tok, m.Config.VocabSize)
		}
		if p := b.Pos[t]; p < 0 || p >= maxPos {
			return fmt.Errorf("model: position %d is beyond the %d positions the model supports: the sequence is too long%s", p, maxPos, m.Config.windowNote())
		}
		row := int32(c.Len + t)
		if b.rows != nil {
			if row = b.rows[t]; row < 0 || int(row) >= c.Len {
				return fmt.Errorf("model: token %d: cache row %d outside the reserved rows [0,%d)", t, row, c.Len)
			}
		}
		for _, s := range b.Spans[n*t : n*t+n] {
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
	T, H, n := hi-lo, m.Config.Hidden, b.spansPer()
	c.x = grow(c.x, T*H)
	x := c.x
	for t := 0; t < T; t++ {
		m.Embed.Row(x[t*H:(t+1)*H], int(b.Tokens[lo+t]))
	}
	row0 := c.Len
	c.st.size(&m.Config, T, 0)
	c.st.exact = b.exact
	kvw, S := c.kvw, row0+T
	var rows []int32
	if b.rows != nil {
		// keys and values go to scratch, then to their reserved rows
		rows, S = b.rows[lo:hi], row0
		c.st.k, c.st.v = grow(c.st.k, T*kvw), grow(c.st.v, T*kvw)
	} else {
		c.grow(S)
	}
	for l := range m.Layers {
		K, V := c.K[l][row0*kvw:S*kvw], c.V[l][row0*kvw:S*kvw]
		if rows != nil {
			K, V = c.st.k, c.st.v
		}
		m.layerForward(l, x, b.Pos[lo:hi], b.Spans[n*lo:n*hi], K, V, c.K[l][:S*kvw], c.V[l][:S*kvw], S, rows, ad, &c.st, false)
	}
	c.Len = S
	return x
}

// Logits computes logits [n × Vocab] = hidden [n × Hidden] · LMHeadᵀ, in
// the head's compute mode (headCompute).
func (m *Model) Logits(logits, hidden []float32, n int) {
	m.headRows(logits, hidden, n, 0, m.Config.VocabSize)
}

// headRows computes logits [n × (hi−lo)] for the vocabulary entries [lo,hi)
// (lo a multiple of 64; a quantized head: all of them), from the head's
// prepacked copy if PackWeights made one. Every path to the LM head's
// logits (scoring, prediction one row or a batch at a time, sampling)
// comes through here, so that they agree to float32 rounding.
func (m *Model) headRows(logits, hidden []float32, n, lo, hi int) {
	if m.LMHead.IsQuantized() {
		kernels.MatMulT(logits, hidden, n, m.LMHead, false)
		return
	}
	kernels.MatMulTRows(logits, hidden, n, m.LMHead, lo, hi, false, m.headCompute())
}

// headCompute is the LM head's compute mode: the model's, for a BF16 head
// (as autocast runs lm_head; a batch's head is most of a server's work
// with many answer options, 57% of its CPU with the 0–100 scales of the
// SocSci210 sample, and ComputeBF16 halves it); float32 for a float32 head,
// whose bf16 rounding would have to be redone on every call.
func (m *Model) headCompute() kernels.Compute {
	if m.LMHead.DType == kernels.BF16 {
		return m.compute
	}
	return kernels.ComputeF32
}
