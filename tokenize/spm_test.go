package tokenize

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// mistral loads Mistral 7B v0.1's real tokenizer.json (a Llama 2-style SentencePiece BPE) (testdata, gzipped) with its
// tokenizer_config.json; metaspace rewrites it to the Metaspace layout of
// testdata/spm-metaspace.json, as scripts/tokenizer/golden_spm.mjs does.
func mistral(tb testing.TB, metaspace bool) *Tokenizer {
	tb.Helper()
	return mistralWith(tb, metaspace, nil)
}

// mistralWith is llama2 with the tokens of the JSON list added appended to
// tokenizer.json's added_tokens.
func mistralWith(tb testing.TB, metaspace bool, added json.RawMessage) *Tokenizer {
	tb.Helper()
	var j map[string]json.RawMessage
	if err := json.NewDecoder(openGz(tb, "mistral-tokenizer.json.gz")).Decode(&j); err != nil {
		tb.Fatal(err)
	}
	if metaspace {
		data, err := os.ReadFile(filepath.Join("testdata", "spm-metaspace.json"))
		if err != nil {
			tb.Fatal(err)
		}
		var ms map[string]json.RawMessage
		if err := json.Unmarshal(data, &ms); err != nil {
			tb.Fatal(err)
		}
		for k, v := range ms {
			j[k] = v
		}
	}
	if added != nil {
		var list, extra []json.RawMessage
		if err := json.Unmarshal(j["added_tokens"], &list); err != nil {
			tb.Fatal(err)
		}
		if err := json.Unmarshal(added, &extra); err != nil {
			tb.Fatal(err)
		}
		j["added_tokens"], _ = json.Marshal(append(list, extra...))
	}
	data, _ := json.Marshal(j)
	tok, err := parseJSON(data)
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join("testdata", "mistral-tokenizer_config.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := tok.applyConfig(cfg); err != nil {
		tb.Fatal(err)
	}
	return tok
}

// TestSpmGolden compares ids, BOS and decoded text with transformers.js on
// 1,240 texts for Mistral 7B's tokenizer.json and its Metaspace rewrite.
func TestSpmGolden(t *testing.T) {
	toks := map[string]*Tokenizer{"llama2": mistral(t, false), "metaspace": mistral(t, true)}
	sc := bufio.NewScanner(openGz(t, "spm.jsonl.gz"))
	sc.Buffer(nil, 1<<24)
	n, bad := 0, 0
	for sc.Scan() {
		var row map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		var text string
		var bos []int
		json.Unmarshal(row["text"], &text)
		json.Unmarshal(row["bos"], &bos)
		n++
		for name, tok := range toks {
			var want []int
			var dec string
			json.Unmarshal(row[name], &want)
			json.Unmarshal(row[name+"_dec"], &dec)
			got := tok.Encode(text)
			if !slices.Equal(got, want) {
				if bad++; bad <= 10 {
					t.Errorf("%s: Encode(%q) = %v, want %v", name, text, got, want)
				}
				continue
			}
			if d := tok.Decode(got); d != dec && utf8.ValidString(text) {
				if bad++; bad <= 10 {
					t.Errorf("%s: Decode(Encode(%q)) = %q, want %q", name, text, d, dec)
				}
			}
			if sp := tok.EncodeSpecial(text); !slices.Equal(sp[:1], bos) || !slices.Equal(sp[1:], want) {
				t.Errorf("%s: EncodeSpecial(%q) = %v, want %v + ids", name, text, sp, bos)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 1000 {
		t.Fatalf("only %d golden texts", n)
	}
}

// TestMetaspaceSplit: split true (Hugging Face's default) cuts before each
// "▁", so BPE never merges across words; prepend_scheme "never" and
// "always" as in tokenizers' Metaspace.
func TestMetaspaceSplit(t *testing.T) {
	var got []string
	m := &metaspace{repl: "▁", scheme: "first", split: true}
	m.pre("a  b c", true, func(s string) { got = append(got, s) })
	if want := []string{"▁a", "▁", "▁b", "▁c"}; !slices.Equal(got, want) {
		t.Errorf("split = %q, want %q", got, want)
	}
	got = nil
	m.pre("x y", false, func(s string) { got = append(got, s) })
	if want := []string{"x", "▁y"}; !slices.Equal(got, want) {
		t.Errorf("not first: %q, want %q", got, want)
	}
	got = nil
	(&metaspace{repl: "▁", scheme: "always"}).pre("x", false, func(s string) { got = append(got, s) })
	if want := []string{"▁x"}; !slices.Equal(got, want) {
		t.Errorf("always: %q, want %q", got, want)
	}
}

// TestSpmRefused: parts of a byte_fallback tokenizer.json that are not
// implemented are refused by name.
func TestSpmRefused(t *testing.T) {
	base := `"model": {"type": "BPE", "byte_fallback": true, "vocab": {"<unk>": 0, "a": 1}, "merges": []}`
	for _, c := range []struct{ json, want string }{
		{`{` + base + `, "normalizer": {"type": "Replace", "pattern": {"Regex": " "}, "content": "x"}}`, "String pattern"},
		{`{` + base + `, "normalizer": {"type": "Precompiled"}}`, `"Precompiled"`},
		{`{` + base + `, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes"}}`, "sometimes"},
		{`{` + base + `, "pre_tokenizer": {"type": "Metaspace", "replacement": "ab"}}`, "one character"},
		{`{` + base + `, "pre_tokenizer": {"type": "ByteLevel"}}`, "only Metaspace"},
		{`{` + base + `, "decoder": {"type": "WordPiece"}}`, `"WordPiece"`},
		{`{` + base + `, "decoder": {"type": "ByteLevel"}}`, `"ByteLevel"`},
		{`{"model": {"type": "BPE", "byte_fallback": true, "unk_token": "<x>", "vocab": {"a": 0}, "merges": []}}`, "unk_token"},
	} {
		_, err := parseJSON([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one naming %s", c.json, err, c.want)
		}
	}
}

// TestSpmUnk: without byte tokens an unknown character is unk_token, and
// fuse_unk joins a run of them into one.
func TestSpmUnk(t *testing.T) {
	for _, fuse := range []bool{false, true} {
		data, _ := json.Marshal(map[string]any{"model": map[string]any{"type": "BPE", "byte_fallback": true,
			"unk_token": "<unk>", "fuse_unk": fuse, "vocab": map[string]int{"<unk>": 0, "a": 1}, "merges": []string{}}})
		tok, err := parseJSON(data)
		if err != nil {
			t.Fatal(err)
		}
		want := []int{1, 0, 0, 1}
		if fuse {
			want = []int{1, 0, 1}
		}
		if got := tok.Encode("axya"); !slices.Equal(got, want) {
			t.Errorf("fuse_unk %v: %v, want %v", fuse, got, want)
		}
	}
}

// FuzzSpmEncode: the Prepend/Replace and Metaspace paths never panic, and
// The fixture's decoder gives back the text (byte fallback covers every
// character). The Metaspace rewrite's decoder has no ByteFallback step, so
// only its ids are checked: every id valid, none unk.
func FuzzSpmEncode(f *testing.F) {
	for _, s := range []string{"Hello world", "  a  ", "▁▁x", "日本語 😀", "\xff\xfe", "<s>x</s>", "\n\t", "𓀀"} {
		f.Add(s)
	}
	toks := []*Tokenizer{mistral(f, false), mistral(f, true)}
	f.Fuzz(func(t *testing.T, s string) {
		for _, id := range toks[1].Encode(s) {
			if id < 0 || id >= toks[1].VocabSize() || id == 0 && !strings.Contains(s, "<unk>") {
				t.Fatalf("metaspace: Encode(%q) has id %d", s, id)
			}
		}
		for i, tok := range toks[:1] {
			got := tok.Decode(tok.Encode(s))
			if !utf8.ValidString(s) || strings.Contains(s, "<") || strings.HasPrefix(s, " ") {
				continue // invalid bytes, added tokens, and the stripped leading space
			}
			want := strings.ReplaceAll(s, "▁", " ")
			if got != want {
				t.Errorf("tokenizer %d: Decode(Encode(%q)) = %q, want %q", i, s, got, want)
			}
		}
	})
}

// TestDecodeNext: a stream of DecodeNext pieces equals Decode of the ids
// (The fixture's Strip drops only the first token's space).
func TestDecodeNext(t *testing.T) {
	tok := mistral(t, false)
	for _, s := range []string{"Hello world, 日本語 😀 𓀀!", " two  spaces\n", "<s> a</s>"} {
		ids := tok.Encode(s)
		var b strings.Builder
		for i, id := range ids {
			b.WriteString(tok.DecodeNext(id, i == 0))
		}
		if got, want := b.String(), tok.Decode(ids); got != want {
			t.Errorf("%q: stream %q, Decode %q", s, got, want)
		}
	}
}

// TestAddBOSConfig: LlamaTokenizer's add_bos_token/add_eos_token in
// tokenizer_config.json decide the special tokens, as in transformers.
func TestAddBOSConfig(t *testing.T) {
	tok := mistral(t, false)
	for _, c := range []struct {
		cfg  string
		want []int
	}{
		{`{"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": false}`, []int{22557}}, // "▁Hello"
		{`{"tokenizer_class": "LlamaTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "add_eos_token": true}`, []int{1, 22557, 2}},
	} {
		if err := tok.applyConfig([]byte(c.cfg)); err != nil {
			t.Fatal(err)
		}
		if got := tok.EncodeSpecial("Hello"); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.cfg, got, c.want)
		}
	}
	if err := tok.applyConfig([]byte(`{"tokenizer_class": "LlamaTokenizer", "bos_token": "<nope>", "add_bos_token": true}`)); err == nil {
		t.Error("unknown bos_token: no error")
	}
}

// TestSpmChatUnknownInst: an [INST] template that is not a known one is
// refused with an error naming the file, not rendered by guess.
func TestSpmChatUnknownInst(t *testing.T) {
	dir := t.TempDir()
	data, err := io.ReadAll(openGz(t, "mistral-tokenizer.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `{"bos_token": "<s>", "eos_token": "</s>", "chat_template": "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"}`
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.ChatTemplate(""); err == nil || !strings.Contains(err.Error(), "[INST]") || !strings.Contains(err.Error(), "tokenizer_config.json") || !strings.Contains(err.Error(), "--template") {
		t.Errorf("ChatTemplate: err %v", err)
	}
	if tp, err := tok.ChatTemplate("mistral"); err != nil || tp.Name != "mistral" {
		t.Errorf("--template mistral: %v %v", tp, err)
	}
}
