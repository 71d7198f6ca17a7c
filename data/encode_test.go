package data

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// mistralDir writes the Mistral 7B tokenizer fixture of tokenize/testdata with
// the [INST] template name (tokenize/templates) as its chat_template.
func mistralDir(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open("../tokenize/testdata/mistral-tokenizer.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tj, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../tokenize/templates/" + name + ".jinja")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true,
		"tokenizer_class": "LlamaTokenizer", "chat_template": string(src)})
	for file, data := range map[string][]byte{"tokenizer.json": tj, "tokenizer_config.json": cfg} {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestEncodeInst: under the [INST] templates sft learns the reply (the
// space after [/INST] included) and </s>, and prediction's prompt is the
// training context up to the reply, so options are scored on what was
// learned. Templates that raise on a system message, or drop it from
// training, fail with the record's place instead.
func TestEncodeInst(t *testing.T) {
	for _, c := range []struct {
		name, learned string
		sysErr        bool // a system message: error in training or prediction
	}{
		{"llama2", " Response: 3 </s>", false},
		{"mistral", " Response: 3</s>", false},
		{"mistral-v3", " Response: 3</s>", false},
		{"mistral-v3-last", " Response: 3</s>", true},
		{"mistral-v0.1", "Response: 3</s>", true},
		{"mixtral", "Response: 3</s>", true},
	} {
		tok, err := tokenize.Load(mistralDir(t, c.name))
		if err != nil {
			t.Fatal(err)
		}
		tp, err := tok.ChatTemplate("")
		if err != nil || tp.Name != c.name {
			t.Fatalf("%s: detected %v, %v", c.name, tp, err)
		}
		enc := &Encoder{Tok: tok, Template: tp}
		for _, sys := range []string{"", "You are a respondent."} {
			ex := Example{File: "x.jsonl", Line: 3, System: sys, Input: "Age: 40\n\nHow sure? Only return an integer from 1 to 5.", Output: "Response: 3"}
			e, err := enc.Encode(&ex)
			p, conts, perr := enc.Continuations(&ex, []string{"Response: 1", "Response: 2", "Response: 3", "Response: 10"})
			if sys != "" && c.sysErr {
				if (err == nil && perr == nil) || !strings.Contains(fmt.Sprint(err, perr), "x.jsonl:3") {
					t.Errorf("%s: system message: errors %v / %v, want one naming x.jsonl:3", c.name, err, perr)
				}
				continue
			}
			if err != nil || perr != nil {
				t.Fatalf("%s sys=%q: %v / %v", c.name, sys, err, perr)
			}
			var learned []int
			for i, m := range e.Mask {
				if m {
					learned = append(learned, e.Tokens[i])
				}
			}
			first := slices.Index(e.Mask, true)
			if got := tok.Decode(learned); got != strings.TrimPrefix(c.learned, " ") && got != c.learned {
				t.Errorf("%s sys=%q: learned %q (%v), want %q", c.name, sys, got, learned, c.learned)
			}
			// the third option is the training target: prompt + its tokens
			// start the training sequence (mistral-v0.1 writes a space after
			// </s>, a token nobody learns), and the learned ones are its tokens
			full := slices.Concat(p, conts[2])
			if len(e.Tokens) < len(full) || !slices.Equal(full, e.Tokens[:len(full)]) || !slices.Equal(learned, e.Tokens[first:first+len(learned)]) {
				t.Errorf("%s sys=%q: prompt+option %v, training %v", c.name, sys, full, e.Tokens)
			}
		}
	}
}
