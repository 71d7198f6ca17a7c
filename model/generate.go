package model

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Sampling controls decoding. Temperature 0 is greedy.
type Sampling struct {
	Temperature  float64
	TopP         float64 // nucleus mass kept (0 or 1: all)
	TopK         int     // most likely tokens kept (0: all)
	MaxNewTokens int
	Stop         []int // token ids that end generation (not emitted)
}

// Generate decodes up to MaxNewTokens tokens after prompt with the KV cache,
// calling emit for each new token; emit returning false stops early. It
// returns the generated tokens (stop token excluded).
func (m *Model) Generate(prompt []int, ad *Adapter, s Sampling, rng *rand.Rand, emit func(tok int) bool) ([]int, error) {
	var step func(int, []float32) bool
	if emit != nil {
		step = func(tok int, _ []float32) bool { return emit(tok) }
	}
	return m.GenerateSteps(prompt, ad, s, rng, step)
}

// maxReserve bounds the new tokens GenerateSteps reserves cache rows for
// up front (Qwen3-30B-A3B: 196 KB a row, 50 MB).
const maxReserve = 256

// GenerateSteps is Generate whose emit also gets the logits [Vocab] the token
// was drawn from (before temperature), valid only during the call, for
// log-probabilities.
func (m *Model) GenerateSteps(prompt []int, ad *Adapter, s Sampling, rng *rand.Rand, emit func(tok int, logits []float32) bool) ([]int, error) {
	m = m.with(ad) // modules_to_save
	if len(prompt) == 0 {
		return nil, fmt.Errorf("model: empty prompt")
	}
	// Negated comparisons, so that NaN fails them too.
	if !(s.Temperature >= 0 && s.Temperature <= math.MaxFloat32) || !(s.TopP >= 0 && s.TopP <= 1) || s.TopK < 0 || s.MaxNewTokens < 0 {
		return nil, fmt.Errorf("model: need a finite temperature ≥ 0, 0 ≤ top-p ≤ 1, top-k ≥ 0 and max new tokens ≥ 0")
	}
	if s.MaxNewTokens > m.ropeLen-len(prompt) { // not len+max: that wraps for huge max
		return nil, fmt.Errorf("model: prompt of %d tokens plus %d new ones exceeds the %d positions supported%s", len(prompt), s.MaxNewTokens, m.ropeLen, m.Config.windowNote())
	}
	c := m.NewCache()
	// room for the prompt and the first maxReserve new tokens: a few
	// hundred rows past the prompt whatever MaxNewTokens asks for (a
	// generation may stop long before it), then the cache doubles
	c.Reserve(len(prompt) + min(s.MaxNewTokens, maxReserve))
	var b Batch
	for i, t := range prompt {
		b.Add(t, i, 0, i+1, 0, 0)
	}
	h, err := m.Forward(c, &b, ad, []int{len(prompt) - 1})
	if err != nil {
		return nil, err
	}
	logits := make([]float32, m.Config.VocabSize)
	var out []int
	for n := 0; n < s.MaxNewTokens; n++ {
		m.Logits(logits, h, 1)
		tok := Sample(logits, s, rng)
		for _, st := range s.Stop {
			if tok == st {
				return out, nil
			}
		}
		out = append(out, tok)
		if emit != nil && !emit(tok, logits) {
			return out, nil
		}
		pos := len(prompt) + n
		var step Batch
		step.Add(tok, pos, 0, pos+1, 0, 0)
		if h, err = m.Forward(c, &step, ad, []int{0}); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Sample draws a token from logits with temperature, top-k and top-p (the
// draw of Generate, for a caller that computes the logits itself). The
// candidates are taken most likely first from a heap, as many as top-k,
// top-p or the draw itself need, instead of sorting the vocabulary per
// token: the draw walks them in that order, so a seed gives the token a
// full sort gives (tested against one). For a nucleus of a few dozen
// tokens out of 151,936 that is one heapify (linear) and a few dozen pops.
func Sample(logits []float32, s Sampling, rng *rand.Rand) int {
	best := argmax(logits)
	if s.Temperature == 0 {
		return best
	}
	h := candHeap{p: make([]float64, len(logits)), idx: make([]int32, len(logits))}
	mx := float64(logits[best])
	var sum float64
	for i, v := range logits {
		p := math.Exp((float64(v) - mx) / s.Temperature)
		h.p[i], h.idx[i] = p, int32(i)
		sum += p
	}
	h.init()
	limit := len(logits)
	if s.TopK > 0 && s.TopK < limit {
		limit = s.TopK
	}
	truncated := limit < len(logits)
	var kept []int32
	if s.TopP > 0 && s.TopP < 1 {
		// the smallest run of the most likely whose mass reaches top-p
		truncated = true
		var acc float64
		for len(kept) < limit {
			i := h.pop()
			kept = append(kept, i)
			if acc += h.p[i] / sum; acc >= s.TopP {
				break
			}
		}
	} else if truncated {
		for len(kept) < limit {
			kept = append(kept, h.pop())
		}
	}
	if !truncated {
		// every token: the draw takes candidates from the heap as it goes
		u := rng.Float64() * sum
		last := int32(best)
		for h.len() > 0 {
			last = h.pop()
			if u -= h.p[last]; u <= 0 {
				break
			}
		}
		return int(last)
	}
	var total float64
	for _, i := range kept {
		total += h.p[i]
	}
	u := rng.Float64() * total
	for _, i := range kept {
		if u -= h.p[i]; u <= 0 {
			return int(i)
		}
	}
	return int(kept[len(kept)-1])
}

// argmax is the index of the largest value (the first of equal ones).
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// candHeap is a max-heap of token ids by probability p (equal ones by id).
type candHeap struct {
	p   []float64 // by token id
	idx []int32   // the heap
}

func (h *candHeap) len() int { return len(h.idx) }

func (h *candHeap) less(a, b int32) bool { // a before b
	return h.p[a] > h.p[b] || h.p[a] == h.p[b] && a < b
}

func (h *candHeap) init() {
	for i := len(h.idx)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *candHeap) pop() int32 {
	top := h.idx[0]
	n := len(h.idx) - 1
	h.idx[0] = h.idx[n]
	h.idx = h.idx[:n]
	h.down(0)
	return top
}

func (h *candHeap) down(i int) {
	n := len(h.idx)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && h.less(h.idx[c+1], h.idx[c]) {
			c++
		}
		if !h.less(h.idx[c], h.idx[i]) {
			return
		}
		h.idx[i], h.idx[c] = h.idx[c], h.idx[i]
		i = c
	}
}
