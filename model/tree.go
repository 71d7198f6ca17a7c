package model

import (
	"fmt"
)

// A tree of continuations of one prompt grows on the Predictor's KV cache,
// any set of nodes (of any parents and depths) at a time: node 0 is the
// prompt's end, and every other node is its parent's path followed by one
// token. Growing a node runs only that
// token through the layers; it attends to the cached prompt and to its
// ancestors' cached keys and values, which are gathered next to the node's
// own row so that the two key spans of a Batch cover them. The nodes of one
// call go through the layers together.
//
// Cache layout while a tree grows: the prompt [0,P), then every node's own
// row (permanent, in the order nodes were made), then the gathered
// ancestors and reserved rows of the call in progress (dropped after it).
type treeNode struct {
	parent int32
	row    int32 // cache row of the node's own keys and values (node 0: none)
}

// BeginTree computes prompt (reusing the cached prefix, as
// ContinuationLogProbs does) and starts a tree at its end: node 0. It returns
// the natural-log probabilities of the tokens in want following the prompt.
func (p *Predictor) BeginTree(prompt []int, want []int) ([]float64, error) {
	p.tree = p.tree[:0]
	h, err := p.prefill(prompt)
	if err != nil {
		return nil, err
	}
	p.tree = append(p.tree, treeNode{parent: -1, row: -1})
	p.treeEnd = len(prompt)
	lp, err := p.wantLogProbs(h, 1, want)
	if err != nil {
		return nil, err
	}
	return lp[0], nil
}

// GrowTree adds node parents[i] followed by token toks[i] for every i and
// returns the new nodes' ids and, for each, the natural-log probabilities of
// the tokens in want following its path.
func (p *Predictor) GrowTree(parents, toks, want []int) (ids []int, logp [][]float64, err error) {
	if len(p.tree) == 0 {
		return nil, nil, fmt.Errorf("model: GrowTree before BeginTree")
	}
	if len(parents) != len(toks) {
		return nil, nil, fmt.Errorf("model: GrowTree: %d parents for %d tokens", len(parents), len(toks))
	}
	if len(toks) == 0 {
		return nil, nil, nil
	}
	P := len(p.toks)
	c := p.c
	c.Truncate(p.treeEnd)
	b := Batch{exact: true}
	b.rows = make([]int32, 0, len(toks))
	var path []int32
	for i, q := range parents {
		if q < 0 || q >= len(p.tree) {
			return nil, nil, fmt.Errorf("model: GrowTree: no node %d", q)
		}
		// the ancestors' rows, root side first, then a reserved row
		path = path[:0]
		for n := q; n > 0; n = int(p.tree[n].parent) {
			path = append(path, p.tree[n].row)
		}
		start := c.Len
		c.grow(start + len(path) + 1)
		for k := len(path) - 1; k >= 0; k-- {
			c.copyRow(c.Len, int(path[k]))
			c.Len++
		}
		slot := c.Len
		c.Len++
		b.Add(toks[i], P+len(path), 0, P, start, slot+1)
		b.rows = append(b.rows, int32(slot))
	}
	all := make([]int, len(toks))
	for i := range all {
		all[i] = i
	}
	h, err := p.m.Forward(c, &b, p.ad, all)
	if err != nil {
		c.Truncate(p.treeEnd)
		return nil, nil, err
	}
	// keep the new rows: each moves down to the permanent rows, never
	// over a reserved row it has not copied yet (slot i ≥ treeEnd+i)
	for i, slot := range b.rows {
		c.copyRow(p.treeEnd+i, int(slot))
		ids = append(ids, len(p.tree))
		p.tree = append(p.tree, treeNode{parent: int32(parents[i]), row: int32(p.treeEnd + i)})
	}
	p.treeEnd += len(toks)
	c.Truncate(p.treeEnd)
	logp, err = p.wantLogProbs(h, len(toks), want)
	return ids, logp, err
}

// wantLogProbs returns the log-probabilities of the want tokens after each of
// n final hidden states, from the LM head as ContinuationBatch applies it.
func (p *Predictor) wantLogProbs(h []float32, n int, want []int) ([][]float64, error) {
	V := p.m.Config.VocabSize
	for _, t := range want {
		if t < 0 || t >= V {
			return nil, fmt.Errorf("model: token id %d outside the vocabulary [0,%d)", t, V)
		}
	}
	targets := make([]headTarget, 0, n*len(want))
	for r := 0; r < n; r++ {
		for _, t := range want {
			targets = append(targets, headTarget{row: int32(r), tok: int32(t)})
		}
	}
	lp := p.m.headLogProbs(p.c, h, n, targets, nil)
	out := make([][]float64, n)
	for r := range out {
		out[r] = lp[r*len(want) : (r+1)*len(want)]
	}
	return out, nil
}
