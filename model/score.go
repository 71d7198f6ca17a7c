package model

import (
	"fmt"

	"github.com/gotrain/gotrain/kernels"
)

// Sequence is a token sequence whose tokens from From on are scored, each
// given all tokens before it (teacher forcing). From must be ≥ 1. With a Mask,
// only the tokens p ≥ From with Mask[p] are scored (the LM head, the costly
// part for a large vocabulary, runs only for them).
type Sequence struct {
	Tokens []int
	From   int
	Mask   []bool
}

// scored reports whether token p of the sequence is scored.
func (s *Sequence) scored(p int) bool { return p >= s.From && (s.Mask == nil || s.Mask[p]) }

// scoreBatchTokens bounds the tokens packed into one forward call, and
// logitRows the rows of logits materialised at once ([rows × Vocab] floats).
const (
	scoreBatchTokens = 2048
	logitRows        = 64
)

// Score returns, for every sequence, the natural-log probabilities of its
// tokens Tokens[From:] (only the masked ones, in order, with a Mask). Sequences are packed into shared forward calls (each
// attends only to itself). ad may be nil.
func (m *Model) Score(seqs []Sequence, ad *Adapter) ([][]float32, error) {
	m = m.with(ad) // modules_to_save
	out := make([][]float32, len(seqs))
	c := m.NewCache()
	for i := 0; i < len(seqs); {
		// pack sequences [i, j) into one stream
		var b Batch
		var want []int
		var targets []int32
		j := i
		for ; j < len(seqs); j++ {
			s := seqs[j]
			if s.From < 1 || s.From > len(s.Tokens) {
				return nil, fmt.Errorf("model: sequence %d: From = %d outside [1,%d]", j, s.From, len(s.Tokens))
			}
			if s.Mask != nil && len(s.Mask) != len(s.Tokens) {
				return nil, fmt.Errorf("model: sequence %d: mask of %d for %d tokens", j, len(s.Mask), len(s.Tokens))
			}
			if j > i && b.Len()+len(s.Tokens) > scoreBatchTokens {
				break
			}
			start := b.Len()
			for p, tok := range s.Tokens {
				b.Add(tok, p, start, start+p+1, 0, 0)
			}
			for p := s.From; p < len(s.Tokens); p++ {
				if s.scored(p) {
					want = append(want, start+p-1)
					targets = append(targets, int32(s.Tokens[p]))
				}
			}
		}
		c.Truncate(0)
		hidden, err := m.Forward(c, &b, ad, want)
		if err != nil {
			return nil, err
		}
		lp := m.logProbs(hidden, targets)
		for k := i; k < j; k++ {
			n := 0
			for p := range seqs[k].Tokens {
				if seqs[k].scored(p) {
					n++
				}
			}
			out[k], lp = lp[:n:n], lp[n:]
		}
		i = j
	}
	return out, nil
}

// logProbs returns log softmax(hidden·LMHeadᵀ)[target] for each row, computing
// the logits a few rows at a time.
func (m *Model) logProbs(hidden []float32, targets []int32) []float32 {
	H, V := m.Config.Hidden, m.Config.VocabSize
	out := make([]float32, len(targets))
	logits := make([]float32, min(logitRows, len(targets))*V)
	for r := 0; r < len(targets); r += logitRows {
		n := min(logitRows, len(targets)-r)
		m.Logits(logits, hidden[r*H:(r+n)*H], n)
		kernels.LogProbs(out[r:r+n], logits, n, V, targets[r:r+n])
	}
	return out
}
