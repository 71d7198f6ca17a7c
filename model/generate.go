package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/gotrain/gotrain/kernels"
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
// candidates are taken most likely first, as many as top-k, top-p or the
// draw itself need, instead of sorting the vocabulary per token: the draw
// walks them in that order, so a seed gives the token a full sort gives
// (tested against one). They are grouped by the binary exponent of their
// probability in one linear pass, and only the groups the walk reaches
// are sorted: for 151,936 tokens 1.4–1.8 ms a draw (1.9 on one core),
// against 4.1–5.7 ms from a heap of fresh memory each draw (its
// sift-downs missed the cache), beside 65–75 ms of Qwen3-30B-A3B NF4
// decoding step.
func Sample(logits []float32, s Sampling, rng *rand.Rand) int {
	best := argmax(logits)
	if s.Temperature == 0 {
		return best
	}
	h := candPool.Get().(*candOrder)
	defer candPool.Put(h)
	h.p = slices.Grow(h.p[:0], len(logits))[:len(logits)]
	mx := float64(logits[best])
	// the exponentials on every core (half of a draw's time on one), then
	// their sum in index order
	kernels.Parallel((len(logits)+4095)/4096, func(lo, hi int) {
		for i := lo * 4096; i < min(hi*4096, len(logits)); i++ {
			h.p[i] = math.Exp((float64(logits[i]) - mx) / s.Temperature)
		}
	})
	var sum float64
	for _, p := range h.p {
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
		// every token: the draw takes candidates in order as it goes
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

// candOrder yields token ids by probability p, most likely first (equal
// ones by id): ids grouped by the binary exponent of p (p ≤ 1, the most
// likely token's being 1), each group sorted when the walk reaches it.
type candOrder struct {
	p    []float64   // by token id
	ids  []int32     // ids, grouped by exponent, the largest p first
	off  [2049]int32 // group g is ids[off[g]:off[g+1]]
	g    int         // the group being walked
	next int32       // the next index of ids
}

// candPool recycles Sample's buffers: 1.8 MB of fresh memory a draw for a
// 151,936-token vocabulary (page faults) otherwise.
var candPool = sync.Pool{New: func() any { return new(candOrder) }}

// group is p's group, by its biased exponent e (the larger the earlier):
// 2047 − e, 1024 for p = 1, 2047 for p = 0 and the subnormals.
func group(p float64) int { return 2047 - int(math.Float64bits(p)>>52&0x7ff) }

func (h *candOrder) init() {
	clear(h.off[:])
	for _, p := range h.p {
		h.off[group(p)+1]++
	}
	for g := 1; g < len(h.off); g++ {
		h.off[g] += h.off[g-1]
	}
	h.ids = slices.Grow(h.ids[:0], len(h.p))[:len(h.p)]
	var at [2048]int32
	copy(at[:], h.off[:2048])
	for i, p := range h.p {
		g := group(p)
		h.ids[at[g]] = int32(i)
		at[g]++
	}
	h.g, h.next = -1, 0
}

// len is the number of ids not yet popped.
func (h *candOrder) len() int { return len(h.ids) - int(h.next) }

// pop returns the next id; len() must be > 0.
func (h *candOrder) pop() int32 {
	for h.g < 0 || h.next == h.off[h.g+1] {
		h.g++
		grp := h.ids[h.off[h.g]:h.off[h.g+1]]
		slices.SortFunc(grp, func(a, b int32) int {
			switch pa, pb := h.p[a], h.p[b]; {
			case pa > pb:
				return -1
			case pa < pb:
				return 1
			}
			return int(a - b)
		})
	}
	id := h.ids[h.next]
	h.next++
	return id
}
