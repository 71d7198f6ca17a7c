package tokenize

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestChatGolden compares Render with transformers.js apply_chat_template
// output for the real templates (testdata/templates/*.jinja, copied from the
// tokenizer_config.json files in /work/shared) written by
// scripts/tokenizer/golden.mjs.
func TestChatGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/chat.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Template string    `json:"template"`
		Messages []Message `json:"messages"`
		Gen      bool      `json:"add_generation_prompt"`
		Think    *bool     `json:"enable_thinking"` // Qwen3; absent: the template's undefined, which thinks
		Text     string    `json:"text"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		// "llama3.1-meta" is Meta's Llama 3.1 Instruct template, rendered
		// by golden.mjs from a local copy that is not committed.
		tp := &Template{Name: "llama3.1"}
		if c.Template != "llama3.1-meta" {
			src, err := os.ReadFile(filepath.Join("testdata/templates", c.Template+".jinja"))
			if err != nil {
				t.Fatal(err)
			}
			if tp, err = detectTemplate(string(src)); err != nil {
				t.Fatalf("%s: %v", c.Template, err)
			}
		}
		tp.Thinking = c.Think == nil || *c.Think
		if got, _ := tp.Render(c.Messages, c.Gen); got != c.Text {
			t.Errorf("case %d %s (detected %s) gen=%v thinking=%v:\n got %q\nwant %q", i, c.Template, tp.Name, c.Gen, tp.Thinking, got, c.Text)
		}
	}
}

func TestDetectTemplate(t *testing.T) {
	want := map[string]string{"qwen2.5": "qwen2.5", "qwen3": "qwen3", "llama3": "llama3", "llama3.1": "llama3"}
	for file, name := range want {
		src, err := os.ReadFile(filepath.Join("testdata/templates", file+".jinja"))
		if err != nil {
			t.Fatal(err)
		}
		tp, err := detectTemplate(string(src))
		if err != nil || tp.Name != name {
			t.Errorf("%s: got %v, %v; want %s", file, tp, err, name)
		}
	}
	if _, err := detectTemplate("{{ messages }}"); err == nil || !strings.Contains(err.Error(), "--template") {
		t.Errorf("unknown template: err = %v, want a hint to pass --template", err)
	}
	if _, err := detectTemplate("<|im_start|>{{ content.split('</think>') }}"); err == nil || !strings.Contains(err.Error(), "enable_thinking") {
		t.Errorf("Qwen3-style template without enable_thinking: err = %v", err)
	}
	if _, err := detectTemplate(""); err == nil {
		t.Error("empty template: no error")
	}
	tok := bundled(t, "qwen2.5")
	if tp, err := tok.ChatTemplate(""); err != nil || tp.Name != "qwen2.5" {
		t.Errorf("bundled qwen2.5: %v %v", tp, err)
	}
	if _, err := tok.ChatTemplate("chatml"); err == nil {
		t.Error("unknown name: no error")
	}
}

// TestLlama31Meta checks Meta's Llama 3.1 system preamble for plain messages.
func TestLlama31Meta(t *testing.T) {
	tp := &Template{Name: "llama3.1"}
	got, _ := tp.Render([]Message{{"system", " S "}, {"user", "U"}}, true)
	want := "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nS<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestEncodeChatSpans(t *testing.T) {
	msgs := []Message{
		{"system", "You are a survey respondent."},
		{"user", "Age: 40\n\nQuestion?"},
		{"assistant", "Response: 3"},
		{"user", "Again?"},
		{"assistant", "\n\ncafe\u0301 "},
	}
	for _, c := range []struct{ tok, tmpl, eot string }{
		{"qwen2.5", "qwen2.5", "<|im_end|>"},
		{"qwen3", "qwen3", "<|im_end|>"},
		{"llama3", "llama3", "<|eot_id|>"},
		{"llama3", "llama3.1", "<|eot_id|>"},
	} {
		tok := bundled(t, c.tok)
		tp, err := tok.ChatTemplate(c.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		ids, spans, err := tok.EncodeChat(tp, msgs, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(spans) != 2 {
			t.Fatalf("%s: %d spans, want 2", c.tmpl, len(spans))
		}
		text, _, _ := tp.render(msgs, false)
		if got := tok.Decode(ids); got != tok.norms0(text) {
			t.Errorf("%s: ids decode to %q, want %q", c.tmpl, got, text)
		}
		for i, s := range spans {
			got := tok.Decode(ids[s.Start:s.End])
			if !strings.HasSuffix(got, c.eot) || ids[s.End-1] != mustID(t, tok, c.eot) {
				t.Errorf("%s span %d = %q: does not end with %s", c.tmpl, i, got, c.eot)
			}
			if i == 0 && got != "Response: 3"+c.eot {
				t.Errorf("%s span 0 = %q", c.tmpl, got)
			}
		}
	}
	if _, _, err := bundled(t, "qwen2.5").EncodeChat(&Template{Name: "qwen2.5"}, []Message{{"tool", "x"}}, false); err == nil {
		t.Error("tool role: no error")
	}
}

// norms0 applies tok's normalizers to s.
func (t *Tokenizer) norms0(s string) string {
	for _, f := range t.norms {
		s = f.String(s)
	}
	return s
}

func mustID(t *testing.T, tok *Tokenizer, s string) int {
	t.Helper()
	id, ok := tok.TokenID(s)
	if !ok {
		t.Fatalf("no token %q", s)
	}
	return id
}

// TestQwen3Thinking: with thinking off (the default) the generation prompt
// ends in the empty think block and training learns only what follows it,
// so the prompt prediction scores from is exactly the learned turn's
// context; with --thinking the think block is learned and the prompt stops
// at the assistant header.
func TestQwen3Thinking(t *testing.T) {
	tok := bundled(t, "qwen3")
	tp, err := tok.ChatTemplate("")
	if err != nil || tp.Name != "qwen3" || tp.Thinking {
		t.Fatalf("bundled qwen3: template %+v, %v; want qwen3 with thinking off", tp, err)
	}
	msgs := []Message{{"system", "S"}, {"user", "Age: 40\n\nQuestion?"}}
	turn := append(msgs[:2:2], Message{"assistant", "Response: 3"})
	for _, think := range []bool{false, true} {
		tp.Thinking = think
		prompt, _, err := tok.EncodeChat(tp, msgs, true)
		if err != nil {
			t.Fatal(err)
		}
		full, spans, err := tok.EncodeChat(tp, turn, false)
		if err != nil {
			t.Fatal(err)
		}
		s := spans[0]
		learned := tok.Decode(full[s.Start:s.End])
		want := "Response: 3<|im_end|>"
		if think {
			want = "<think>\n\n</think>\n\n" + want
		}
		if learned != want || s.Start != len(prompt) || !slices.Equal(full[:s.Start], prompt) {
			t.Errorf("thinking=%v: learned %q (want %q), span start %d, prompt %d tokens %q", think, learned, want, s.Start, len(prompt), tok.Decode(prompt))
		}
	}
}
