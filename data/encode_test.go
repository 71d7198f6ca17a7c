package data

import (
	"slices"
	"testing"

	"github.com/gotrain/gotrain/tokenize"
)

// TestEncodeQwen3Thinking: with Qwen3's template, training learns the answer
// after the empty think block (thinking off) or the block too (on), and
// prediction's prompt and options are the same either way (the block every
// option starts with moves into the prompt).
func TestEncodeQwen3Thinking(t *testing.T) {
	tok, err := tokenize.LoadBundled("qwen3")
	if err != nil {
		t.Fatal(err)
	}
	ex := Example{File: "x", Line: 1, Instruction: "You are a respondent.", Input: "Age: 40\n\nHow sure? Only return an integer from 1 to 3.", Output: "Response: 3"}
	var prompts, conts [2][]int
	for i, think := range []bool{false, true} {
		tp, err := tok.ChatTemplate("qwen3")
		if err != nil {
			t.Fatal(err)
		}
		tp.Thinking = think
		enc := &Encoder{Tok: tok, Template: tp}
		e, err := enc.Encode(&ex)
		if err != nil {
			t.Fatal(err)
		}
		var learned []int
		for p, m := range e.Mask {
			if m {
				learned = append(learned, e.Tokens[p])
			}
		}
		want := "Response: 3<|im_end|>"
		if think {
			want = "<think>\n\n</think>\n\n" + want
		}
		if got := tok.Decode(learned); got != want {
			t.Errorf("thinking=%v: learned %q, want %q", think, got, want)
		}
		p, c, err := enc.Continuations(&ex, []string{"Response: 1", "Response: 2", "Response: 3"})
		if err != nil {
			t.Fatal(err)
		}
		prompts[i], conts[i] = p, slices.Concat(c...)
	}
	if !slices.Equal(prompts[0], prompts[1]) || !slices.Equal(conts[0], conts[1]) {
		t.Errorf("prediction differs with thinking: prompt %q vs %q", tok.Decode(prompts[0]), tok.Decode(prompts[1]))
	}
}
