package data

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gotrain/gotrain/tokenize"
)

// Encoded is a tokenized record: the token ids and which of them are targets.
type Encoded struct {
	Tokens []int
	Mask   []bool // Mask[p]: Tokens[p] is a loss target (a completion token); Mask[0] is ignored
	Source string // where it came from ("file:line"), for messages
}

// Targets counts the loss tokens.
func (e *Encoded) Targets() int {
	n := 0
	for p := 1; p < len(e.Mask); p++ {
		if e.Mask[p] {
			n++
		}
	}
	return n
}

// Encoder turns records into token ids the same way for training, scoring
// and prediction.
type Encoder struct {
	Tok *tokenize.Tokenizer
	// Template renders records as chat conversations and learns every
	// assistant turn (with its end-of-turn token). Nil: the plain prompt
	// followed by the completion and the EOS token.
	Template *tokenize.Template
	MaxLen   int // longest example in tokens; 0: no limit
}

// Encode tokenizes one record. An example longer than MaxLen is an error:
// cutting it would silently train on something else than the data says.
func (enc *Encoder) Encode(r *Example) (Encoded, error) {
	var toks []int
	var mask []bool
	if enc.Template != nil {
		ids, spans, err := enc.Tok.EncodeChat(enc.Template, chatMessages(r.Conversation()), false)
		if err != nil {
			return Encoded{}, fmt.Errorf("%s: %w", r.Where(), err)
		}
		toks, mask = ids, make([]bool, len(ids))
		for _, s := range spans {
			for p := s.Start; p < s.End; p++ {
				mask[p] = true
			}
		}
	} else {
		prompt := enc.Tok.Encode(r.UserText())
		completion := enc.Tok.Encode(r.Output)
		if eos := enc.Tok.EOS(); len(eos) > 0 {
			completion = append(completion, eos[0])
		}
		toks = append(prompt, completion...)
		mask = make([]bool, len(toks))
		for p := len(prompt); p < len(toks); p++ {
			mask[p] = true
		}
		if err := enc.Tok.Err(); err != nil {
			return Encoded{}, fmt.Errorf("%s: %w", r.Where(), err)
		}
		if len(prompt) == 0 {
			return Encoded{}, fmt.Errorf("%s: the prompt is empty", r.Where())
		}
	}
	ex := Encoded{Tokens: toks, Mask: mask, Source: r.Where()}
	if ex.Targets() == 0 {
		return Encoded{}, fmt.Errorf("%s: no completion tokens to learn", r.Where())
	}
	if enc.MaxLen > 0 && len(toks) > enc.MaxLen {
		return Encoded{}, fmt.Errorf("%s: %d tokens, longer than --max-len %d", r.Where(), len(toks), enc.MaxLen)
	}
	return ex, nil
}

// EncodeAll encodes records; with skipBad, failing records are returned as
// errors and left out, otherwise the first failure is returned.
func (enc *Encoder) EncodeAll(rows []Example, skipBad bool) ([]Encoded, []error, error) {
	out := make([]Encoded, 0, len(rows))
	var skipped []error
	for i := range rows {
		ex, err := enc.Encode(&rows[i])
		if err != nil {
			if !skipBad {
				return nil, nil, err
			}
			skipped = append(skipped, err)
			continue
		}
		out = append(out, ex)
	}
	return out, skipped, nil
}

// Continuations encodes a record's prompt (everything before its answer,
// the assistant header included) and each answer as the tokens that follow
// it in training (the end-of-turn or EOS token included, so that an answer
// that is a prefix of another, like 1 and 10, is not counted twice). Tokens
// that every answer starts with are moved into the prompt.
func (enc *Encoder) Continuations(r *Example, answers []string) (prompt []int, conts [][]int, err error) {
	if prompt, conts, err = enc.continuations(r, answers); err != nil {
		return nil, nil, err
	}
	// move the answers' common leading tokens into the prompt
	common := len(conts[0]) - 1
	for _, c := range conts[1:] {
		n := 0
		for n < min(common, len(c)-1) && c[n] == conts[0][n] {
			n++
		}
		common = n
	}
	if len(conts) == 1 {
		common = 0
	}
	prompt = append(prompt, conts[0][:common]...)
	for i := range conts {
		conts[i] = conts[i][common:]
	}
	return prompt, conts, nil
}

// continuations encodes the prompt and the answers that follow it.
func (enc *Encoder) continuations(r *Example, answers []string) (prompt []int, conts [][]int, err error) {
	if len(answers) == 0 {
		return nil, nil, fmt.Errorf("%s: no answers to score", r.Where())
	}
	if enc.Template != nil {
		msgs := chatMessages(r.Prompt())
		if prompt, _, err = enc.Tok.EncodeChat(enc.Template, msgs, true); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", r.Where(), err)
		}
		for _, a := range answers {
			full, spans, err := enc.Tok.EncodeChat(enc.Template, append(msgs, tokenize.Message{Role: "assistant", Content: a}), false)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", r.Where(), err)
			}
			s := spans[len(spans)-1]
			if s.Start != len(prompt) || !slices.Equal(full[:s.Start], prompt) {
				return nil, nil, fmt.Errorf("%s: template %s renders the answer's context differently from the generation prompt", r.Where(), enc.Template.Name)
			}
			conts = append(conts, full[s.Start:s.End])
		}
	} else {
		prompt = enc.Tok.Encode(r.UserText())
		eos := enc.Tok.EOS()
		for _, a := range answers {
			c := enc.Tok.Encode(a)
			if len(eos) > 0 {
				c = append(c, eos[0])
			}
			conts = append(conts, c)
		}
		if err := enc.Tok.Err(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", r.Where(), err)
		}
	}
	if len(prompt) == 0 {
		return nil, nil, fmt.Errorf("%s: the prompt is empty", r.Where())
	}
	return prompt, conts, nil
}

func chatMessages(conv []Message) []tokenize.Message {
	msgs := make([]tokenize.Message, len(conv))
	for i, m := range conv {
		msgs[i] = tokenize.Message{Role: m.Role, Content: m.Content}
	}
	return msgs
}

// EncodedPair is a tokenized preference pair.
type EncodedPair struct {
	Prompt, Chosen, Rejected []int
	Source                   string
}

// EncodePair tokenizes a preference pair: the prompt as for prediction and
// each answer as the tokens that follow it (end-of-turn included). Unlike
// Continuations it keeps tokens the answers share in the answers, so that
// their log-probabilities are those of the full responses, as TRL computes.
func (enc *Encoder) EncodePair(p *Pair) (EncodedPair, error) {
	prompt, conts, err := enc.continuations(&p.Example, []string{p.Chosen, p.Rejected})
	if err != nil {
		return EncodedPair{}, err
	}
	if enc.MaxLen > 0 && len(prompt)+max(len(conts[0]), len(conts[1])) > enc.MaxLen {
		return EncodedPair{}, fmt.Errorf("%s: %d tokens, longer than --max-len %d", p.Where(), len(prompt)+max(len(conts[0]), len(conts[1])), enc.MaxLen)
	}
	return EncodedPair{Prompt: prompt, Chosen: conts[0], Rejected: conts[1], Source: p.Where()}, nil
}

// UseReasoningTargets makes each row's target its reasoning text followed by
// the response (the paper's reasoning-augmented SFT) instead of the response
// alone. A row without reasoning is an error naming it.
func UseReasoningTargets(rows []Example) error {
	for i := range rows {
		r := &rows[i]
		if strings.TrimSpace(r.Reasoning) == "" {
			return &LineError{File: r.File, Line: r.Line, Err: fmt.Errorf("--target reasoning: the row has no reasoning text")}
		}
		r.Output = strings.TrimSpace(r.Reasoning) + "\n\n" + r.Output
	}
	return nil
}
