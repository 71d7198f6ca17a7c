package predict

import (
	"errors"
	"fmt"

	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/tokenize"
)

// ScoreItem is one item of `gotrain score` (a JSONL line) or of the server's
// /v1/score: a prompt and a completion, as text or as token ids.
type ScoreItem struct {
	Prompt        *string `json:"prompt"`
	Completion    *string `json:"completion"`
	PromptIDs     []int   `json:"prompt_ids"`
	CompletionIDs []int   `json:"completion_ids"`
}

// ScoredItem is a scored item: the tokens and the log-probability of each
// completion token given everything before it, and their sum.
type ScoredItem struct {
	PromptIDs     []int     `json:"prompt_ids"`
	CompletionIDs []int     `json:"completion_ids"`
	Logprobs      []float32 `json:"logprobs"`
	Sum           float64   `json:"sum"`
}

// IsText reports whether the item is given as text (and needs a tokenizer).
func (it *ScoreItem) IsText() bool { return it.Prompt != nil || it.Completion != nil }

// Encode turns the item into the sequence to score: text is tokenized with
// tok, the prompt wrapped in tmpl as a user turn when tmpl is not nil; every
// token id must be below vocab.
// maxPos bounds the joined sequence (the model's positions).
func (it *ScoreItem) Encode(tok *tokenize.Tokenizer, tmpl *tokenize.Template, vocab, maxPos int) (ScoredItem, model.Sequence, error) {
	o := ScoredItem{PromptIDs: it.PromptIDs, CompletionIDs: it.CompletionIDs}
	if it.IsText() {
		if it.Prompt == nil || it.Completion == nil {
			return o, model.Sequence{}, errors.New(`need both "prompt" and "completion"`)
		}
		if tmpl != nil {
			ids, _, err := tok.EncodeChat(tmpl, []tokenize.Message{{Role: "user", Content: *it.Prompt}}, true)
			if err != nil {
				return o, model.Sequence{}, err
			}
			o.PromptIDs = ids
		} else {
			o.PromptIDs = tok.Encode(*it.Prompt)
		}
		o.CompletionIDs = tok.Encode(*it.Completion)
		if err := tok.Err(); err != nil {
			return o, model.Sequence{}, err
		}
	}
	if len(o.PromptIDs) == 0 {
		return o, model.Sequence{}, errors.New("the prompt is empty: the first completion token needs context")
	}
	if len(o.CompletionIDs) == 0 {
		return o, model.Sequence{}, errors.New("the completion is empty")
	}
	toks := append(append([]int{}, o.PromptIDs...), o.CompletionIDs...)
	if len(toks) > maxPos {
		return o, model.Sequence{}, fmt.Errorf("%d tokens, more than the %d positions the model supports", len(toks), maxPos)
	}
	for _, t := range toks {
		if t < 0 || t >= vocab {
			return o, model.Sequence{}, fmt.Errorf("token id %d outside the model's vocabulary [0,%d)", t, vocab)
		}
	}
	return o, model.Sequence{Tokens: toks, From: len(o.PromptIDs)}, nil
}

// SetLogprobs stores an item's scores (from model.Score) and their sum.
func (o *ScoredItem) SetLogprobs(lp []float32) {
	o.Logprobs, o.Sum = lp, 0
	for _, v := range lp {
		o.Sum += float64(v)
	}
}
