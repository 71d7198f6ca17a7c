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
	// a tree of continuations of toks (tree.go): its nodes and the end of
	// their rows in c
	tree    []treeNode
	treeEnd int
	// Reused counts prompt tokens taken from the cache instead of computed.
	Reused, Computed int
}

// NewPredictor returns a predictor for the model with adapter ad (may be nil).
func (m *Model) NewPredictor(ad *Adapter) *Predictor {
	m = m.with(ad) // modules_to_save
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
	// every continuation token but the last goes through the layers, each
	// attending to the prompt and to its own continuation's earlier tokens;
	// the LM head then scores all the rows as ContinuationBatch's does, so
	// that both give the same bits
	cb := Batch{exact: true}
	var want []int
	var targets []headTarget
	for i, c := range conts {
		if len(c) == 0 {
			return nil, fmt.Errorf("model: continuation %d is empty", i)
		}
		start := P + cb.Len()
		for j, tok := range c {
			if tok < 0 || tok >= V {
				return nil, fmt.Errorf("model: token id %d outside the vocabulary [0,%d)", tok, V)
			}
			row := 0 // the prompt's last token's
			if j > 0 {
				row = len(want)
			}
			targets = append(targets, headTarget{row: int32(row), tok: int32(tok), cont: int32(i)})
			if j < len(c)-1 {
				cb.Add(tok, P+j, 0, P, start, start+j+1)
				want = append(want, cb.Len()-1)
			}
		}
	}
	h := hLast
	if cb.Len() > 0 {
		hc, err := p.m.Forward(p.c, &cb, p.ad, want)
		p.c.Truncate(P)
		if err != nil {
			return nil, err
		}
		h = append(hLast, hc...)
	}
	lp := p.m.headLogProbs(p.c, h, len(want)+1, targets, nil)
	out := make([]float64, len(conts))
	for k, t := range targets {
		out[t.cont] += lp[k]
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
	b := Batch{exact: true}
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

// LogSumExp is log Σ exp(v), in float64: the log normaliser of logits.
func LogSumExp(v []float32) float64 {
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
