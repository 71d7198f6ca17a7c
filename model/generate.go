package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
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
		tok := sample(logits, s, rng)
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

// sample draws a token from logits with temperature, top-k and top-p.
func sample(logits []float32, s Sampling, rng *rand.Rand) int {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	if s.Temperature == 0 {
		return best
	}
	type cand struct {
		id int
		p  float64
	}
	cands := make([]cand, len(logits))
	mx := float64(logits[best])
	var sum float64
	for i, v := range logits {
		p := math.Exp((float64(v) - mx) / s.Temperature)
		cands[i] = cand{i, p}
		sum += p
	}
	sort.Slice(cands, func(a, b int) bool { return cands[a].p > cands[b].p })
	if s.TopK > 0 && s.TopK < len(cands) {
		cands = cands[:s.TopK]
	}
	keep := len(cands)
	if s.TopP > 0 && s.TopP < 1 {
		var acc float64
		for i, c := range cands {
			acc += c.p / sum
			if acc >= s.TopP {
				keep = i + 1
				break
			}
		}
	}
	cands = cands[:keep]
	var total float64
	for _, c := range cands {
		total += c.p
	}
	u := rng.Float64() * total
	for _, c := range cands {
		u -= c.p
		if u <= 0 {
			return c.id
		}
	}
	return cands[len(cands)-1].id
}
