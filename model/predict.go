package model

import (
	"fmt"
	"math"
)

// Predictor scores alternative continuations of prompts, reusing the KV cache
// of the previous prompt's longest common prefix: rows sorted so that rows
// with the same study and condition text follow each other compute that
// text once. It is not safe for concurrent use; make one per goroutine.
type Predictor struct {
	m    *Model
	ad   *Adapter
	c    *KVCache
	toks []int // the tokens whose keys and values are in c, in order
	// a tree of continuations of toks (tree.go): its nodes, the end of
	// their rows in c, and a logits buffer
	tree    []treeNode
	treeEnd int
	logits  []float32
	// Reused counts prompt tokens taken from the cache instead of computed.
	Reused, Computed int
}

// NewPredictor returns a predictor for the model with adapter ad (may be nil).
func (m *Model) NewPredictor(ad *Adapter) *Predictor {
	return &Predictor{m: m, ad: ad, c: m.NewCache()}
}

// ContinuationLogProbs returns, for each continuation, the summed natural-log
// probability of its tokens following prompt. The prompt is computed once
// (past the part it shares with the previous call's prompt) and all
// continuations go through the layers together, each seeing the prompt and
// its own earlier tokens.
func (p *Predictor) ContinuationLogProbs(prompt []int, conts [][]int) ([]float64, error) {
	hLast, err := p.prefill(prompt)
	if err != nil {
		return nil, err
	}
	P := len(prompt)
	V := p.m.Config.VocabSize
	out := make([]float64, len(conts))
	first := make([]float32, V)
	p.m.Logits(first, hLast, 1)
	logNorm := logSumExp(first)
	// every continuation token but the last goes through the layers, each
	// attending to the prompt and to its own continuation's earlier tokens
	var cb Batch
	var want []int
	var targets []int32
	var owner []int
	for i, c := range conts {
		if len(c) == 0 {
			return nil, fmt.Errorf("model: continuation %d is empty", i)
		}
		if c[0] < 0 || c[0] >= V {
			return nil, fmt.Errorf("model: token id %d outside the vocabulary [0,%d)", c[0], V)
		}
		out[i] = float64(first[c[0]]) - logNorm
		start := P + cb.Len()
		for j := 0; j < len(c)-1; j++ {
			cb.Add(c[j], P+j, 0, P, start, start+j+1)
			want = append(want, cb.Len()-1)
			targets = append(targets, int32(c[j+1]))
			owner = append(owner, i)
		}
	}
	if cb.Len() > 0 {
		h, err := p.m.Forward(p.c, &cb, p.ad, want)
		p.c.Truncate(P)
		if err != nil {
			return nil, err
		}
		for _, t := range targets {
			if t < 0 || int(t) >= V {
				return nil, fmt.Errorf("model: token id %d outside the vocabulary [0,%d)", t, V)
			}
		}
		lp := p.m.logProbs(h, targets)
		for r, i := range owner {
			out[i] += float64(lp[r])
		}
	}
	return out, nil
}

// prefill puts prompt in the cache, computing only what follows the part it
// shares with the cached tokens, and returns the final hidden state of its
// last token.
func (p *Predictor) prefill(prompt []int) ([]float32, error) {
	if len(prompt) == 0 {
		return nil, fmt.Errorf("model: empty prompt")
	}
	p.tree = p.tree[:0]
	// reuse the cached common prefix; recompute at least the last prompt token,
	// whose hidden state predicts every continuation's first token
	k := 0
	for k < len(p.toks) && k < len(prompt)-1 && p.toks[k] == prompt[k] {
		k++
	}
	p.c.Truncate(k)
	p.toks = p.toks[:k]
	var b Batch
	for i := k; i < len(prompt); i++ {
		b.Add(prompt[i], i, 0, i+1, 0, 0)
	}
	hLast, err := p.m.Forward(p.c, &b, p.ad, []int{b.Len() - 1})
	if err != nil {
		p.toks = nil
		p.c.Truncate(0)
		return nil, err
	}
	p.toks = append(p.toks, prompt[k:]...)
	p.Reused += k
	p.Computed += len(prompt) - k
	return hLast, nil
}

func logSumExp(v []float32) float64 {
	mx := math.Inf(-1)
	for _, x := range v {
		mx = max(mx, float64(x))
	}
	var s float64
	for _, x := range v {
		s += math.Exp(float64(x) - mx)
	}
	return mx + math.Log(s)
}

// Softmax turns log-probabilities into probabilities that sum to 1.
func Softmax(logp []float64) []float64 {
	mx := math.Inf(-1)
	for _, x := range logp {
		mx = max(mx, x)
	}
	out := make([]float64, len(logp))
	var s float64
	for i, x := range logp {
		out[i] = math.Exp(x - mx)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}
