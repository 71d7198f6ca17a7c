package tokenize

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// bundledJSON returns the bundled tokenizer.json bytes of name.
func bundledJSON(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := bundledFile(name, "tokenizer.json")
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// patchJSON rewrites top-level or model fields of a tokenizer.json.
func patchJSON(tb testing.TB, data []byte, edit func(top, model map[string]json.RawMessage)) []byte {
	tb.Helper()
	var top, model map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(top["model"], &model); err != nil {
		tb.Fatal(err)
	}
	edit(top, model)
	mb, err := json.Marshal(model)
	if err != nil {
		tb.Fatal(err)
	}
	top["model"] = mb
	out, err := json.Marshal(top)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestPairsMergesLayout converts the bundled Qwen2.5 merges to the
// ["a","b"] layout and checks the ids do not change; with /work/shared it
// also loads the real tokenizer.pairs-merges.json.
func TestPairsMergesLayout(t *testing.T) {
	data := patchJSON(t, bundledJSON(t, "qwen2.5"), func(_, model map[string]json.RawMessage) {
		var strs []string
		if err := json.Unmarshal(model["merges"], &strs); err != nil {
			t.Fatal(err)
		}
		pairs := make([][2]string, len(strs))
		for i, s := range strs {
			a, b, _ := strings.Cut(s, " ")
			pairs[i] = [2]string{a, b}
		}
		model["merges"], _ = json.Marshal(pairs)
	})
	tok, err := parseJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, tok, readGolden(t, "qwen2.5"))
	path := filepath.Join(sharedDir, "qwen2.5", "tokenizer.pairs-merges.json")
	if _, err := os.Stat(path); err != nil {
		t.Skip("no", path)
	}
	tok, err = LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, tok, readGolden(t, "qwen2.5"))
}

// tiktokenFrom writes tok's BPE vocabulary in tokenizer.model format.
func tiktokenFrom(tok *Tokenizer) []byte {
	var b bytes.Buffer
	ids := make([]int, 0, len(tok.vocab))
	for _, id := range tok.vocab {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	for _, id := range ids {
		fmt.Fprintf(&b, "%s %d\n", base64.StdEncoding.EncodeToString([]byte(tok.pieces[id])), id)
	}
	return b.Bytes()
}

// TestTiktoken checks that Meta's tokenizer.model format (rank-implied
// merges) gives the same ids as Llama 3's tokenizer.json, on a
// tokenizer.model rebuilt from the bundled vocabulary and, with
// /work/shared, on the real file.
func TestTiktoken(t *testing.T) {
	ref := bundled(t, "llama3")
	model := tiktokenFrom(ref)
	path := filepath.Join(sharedDir, "llama3", "tokenizer.model")
	if real, err := os.ReadFile(path); err == nil {
		if !bytes.Equal(real, model) {
			t.Errorf("%s differs from the vocabulary of the bundled tokenizer.json", path)
		}
	}
	tok, err := parseTiktoken(model)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != ref.VocabSize() {
		t.Errorf("VocabSize %d, want %d", tok.VocabSize(), ref.VocabSize())
	}
	for id := 128000; id < ref.VocabSize(); id++ {
		if tok.pieces[id] != ref.pieces[id] {
			t.Errorf("special %d = %q, want %q", id, tok.pieces[id], ref.pieces[id])
		}
	}
	checkGolden(t, tok, readGolden(t, "llama3"))
	if got := tok.EncodeSpecial("Hello world"); !slices.Equal(got, []int{128000, 9906, 1917}) {
		t.Errorf("EncodeSpecial = %v", got)
	}
	if eos := tok.EOS(); !slices.Contains(eos, 128009) || !slices.Contains(eos, 128001) {
		t.Errorf("EOS = %v", eos)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.model"), model, 0o644); err != nil {
		t.Fatal(err)
	}
	tok2, err := Load(dir)
	if err != nil || !slices.Equal(tok2.Encode("Hello world"), []int{9906, 1917}) {
		t.Fatalf("Load(tokenizer.model dir): %v", err)
	}
	if tp, err := tok2.ChatTemplate(""); err != nil || tp.Name != "llama3" {
		t.Errorf("tokenizer.model chat template: %v, %v", tp, err)
	}
}

// llama31PostProcessor is Llama 3.1's tokenizer.json post_processor (BOS).
const llama31PostProcessor = `{"type":"Sequence","processors":[{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},
{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|begin_of_text|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
"pair":[{"SpecialToken":{"id":"<|begin_of_text|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"<|begin_of_text|>","type_id":1}},{"Sequence":{"id":"B","type_id":1}}],
"special_tokens":{"<|begin_of_text|>":{"id":"<|begin_of_text|>","ids":[128000],"tokens":["<|begin_of_text|>"]}}}]}`

// TestEncodeSpecial compares EncodeSpecial under Llama 3.1's TemplateProcessing
// with transformers.js encode(text) (testdata/llama3.1-special.json).
func TestEncodeSpecial(t *testing.T) {
	data := patchJSON(t, bundledJSON(t, "llama3"), func(top, _ map[string]json.RawMessage) {
		top["post_processor"] = json.RawMessage(llama31PostProcessor)
	})
	tok, err := parseJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/llama3.1-special.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if got := tok.EncodeSpecial(c.Text); !slices.Equal(got, c.IDs) {
			t.Errorf("EncodeSpecial(%q) = %v, want %v", c.Text, got, c.IDs)
		}
	}
	// Qwen2.5 and the Llama 3 file here have no TemplateProcessing.
	if got := bundled(t, "qwen2.5").EncodeSpecial("Hello world"); !slices.Equal(got, []int{9707, 1879}) {
		t.Errorf("qwen2.5 EncodeSpecial = %v", got)
	}
}

func TestLoadErrors(t *testing.T) {
	small := func(edit func(top, model map[string]any)) string {
		vocab := map[string]any{}
		for b := 0; b < 256; b++ {
			vocab[toByteLevel(string([]byte{byte(b)}))] = b
		}
		vocab["ab"] = 256
		model := map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{"a b"}}
		top := map[string]any{"model": model, "added_tokens": []any{}}
		edit(top, model)
		b, _ := json.Marshal(top)
		return string(b)
	}
	if _, err := parseJSON([]byte(small(func(_, _ map[string]any) {}))); err != nil {
		t.Fatalf("minimal tokenizer: %v", err)
	}
	cases := []struct{ name, json, want string }{
		{"malformed", `{"model": {`, "parse tokenizer.json"},
		{"no model", `{"added_tokens": []}`, "no model"},
		{"wordpiece", `{"model": {"type": "WordPiece", "vocab": {"a": 0}}}`, `"WordPiece" is not supported`},
		{"unigram", `{"model": {"type": "Unigram", "vocab": [["a", -1.0]]}}`, `"Unigram" is not supported`},
		{"vocab not a map", `{"model": {"type": "BPE", "vocab": [1]}}`, "model:"},
		{"no bytes", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}`, "lacks the byte-level token"},
		{"bad merge", small(func(_, m map[string]any) { m["merges"] = []string{"a c d"} }), "uses a token not in vocab"},
		{"merge no space", small(func(_, m map[string]any) { m["merges"] = []string{"ab"} }), `is not "a b"`},
		{"merges wrong type", small(func(_, m map[string]any) { m["merges"] = 7 }), "merges are neither"},
		{"negative id", small(func(_, m map[string]any) { m["vocab"].(map[string]any)["zz"] = -3 }), "out of range"},
		{"added no id", small(func(top, _ map[string]any) { top["added_tokens"] = []any{map[string]any{"content": "x"}} }), "without id"},
		{"added empty", small(func(top, _ map[string]any) { top["added_tokens"] = []any{map[string]any{"id": 300, "content": ""}} }), "empty content"},
		{"normalizer", small(func(top, _ map[string]any) { top["normalizer"] = map[string]any{"type": "BertNormalizer"} }), "BertNormalizer"},
		{"pretok", small(func(top, _ map[string]any) { top["pre_tokenizer"] = map[string]any{"type": "Metaspace"} }), "Metaspace"},
		{"split behavior", small(func(top, _ map[string]any) {
			top["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": "a"}, "behavior": "Removed"}
		}), "Removed"},
		{"bad regex", small(func(top, _ map[string]any) {
			top["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": "(("}, "behavior": "Isolated"}
		}), "compile split pattern"},
		{"decoder", small(func(top, _ map[string]any) { top["decoder"] = map[string]any{"type": "WordPiece"} }), "decoder type"},
		{"template undefined", small(func(top, _ map[string]any) {
			top["post_processor"] = map[string]any{"type": "TemplateProcessing", "single": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>"}}}}
		}), "not defined"},
	}
	for _, c := range cases {
		_, err := parseJSON([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
	}
	for _, c := range []struct{ name, model, want string }{
		{"empty", "", "empty tokenizer.model"},
		{"no rank", "YQ==\n", "want \"base64 rank\""},
		{"bad base64", "!!! 0\n", "bad base64"},
		{"bad rank", "YQ== x\n", "bad rank"},
		{"missing bytes", "YQ== 0\n", "no token for byte"},
	} {
		_, err := parseTiktoken([]byte(c.model))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("tiktoken %s: err = %v, want %q", c.name, err, c.want)
		}
	}
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "no tokenizer.json or tokenizer.model") {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model": {"type": "WordLevel"}}`), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("error should name the file: %v", err)
	}
	if err := WriteBundled(dir, "gpt2"); err == nil {
		t.Error("WriteBundled(gpt2): no error")
	}
}

func TestWriteBundled(t *testing.T) {
	for _, c := range []struct {
		name  string
		hello []int
		eos   int
	}{{"qwen2.5", []int{9707, 1879}, 151645}, {"llama3", []int{9906, 1917}, 128009}} {
		dir := filepath.Join(t.TempDir(), "ckpt")
		if err := WriteBundled(dir, c.name); err != nil {
			t.Fatal(err)
		}
		tok, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Encode("Hello world"); !slices.Equal(got, c.hello) {
			t.Errorf("%s: Encode = %v, want %v", c.name, got, c.hello)
		}
		if !slices.Contains(tok.EOS(), c.eos) {
			t.Errorf("%s: EOS %v lacks %d", c.name, tok.EOS(), c.eos)
		}
		if _, err := tok.ChatTemplate(""); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestVocabAndIDs(t *testing.T) {
	q, l := bundled(t, "qwen2.5"), bundled(t, "llama3")
	if q.VocabSize() != 151665 || l.VocabSize() != 128256 {
		t.Errorf("VocabSize = %d, %d", q.VocabSize(), l.VocabSize())
	}
	for _, c := range []struct {
		tok *Tokenizer
		s   string
		id  int
	}{{q, "<|im_end|>", 151645}, {q, "Ġworld", 1879}, {q, "Hello", 9707}, {l, "<|eot_id|>", 128009}, {l, "<|begin_of_text|>", 128000}} {
		if id, ok := c.tok.TokenID(c.s); !ok || id != c.id {
			t.Errorf("TokenID(%q) = %d, %v; want %d", c.s, id, ok, c.id)
		}
	}
	if _, ok := q.TokenID("<|nope|>"); ok {
		t.Error("TokenID of unknown token succeeded")
	}
	if got := q.EOS(); !slices.Equal(got, []int{151645, 151643}) {
		t.Errorf("qwen2.5 EOS = %v", got)
	}
	if got := q.Decode([]int{-1, 9707, 1 << 30}); got != "Hello" {
		t.Errorf("Decode skips bad ids: got %q", got)
	}
}

// TestInvalidUTF8 checks that bytes outside valid UTF-8 survive a round trip.
func TestInvalidUTF8(t *testing.T) {
	for _, name := range []string{"qwen2.5", "llama3"} {
		tok := bundled(t, name)
		for _, s := range []string{"\xff", "a\x80b", "\xe4\xb8", "日\xe6本", "\xc5 s", "'\xc5", "\xed\xa0\x80", "x\x00\xfe\xff y", "<|im_end|>\xf0\x9f"} {
			if got := tok.Decode(tok.Encode(s)); got != s {
				t.Errorf("%s: Decode(Encode(%q)) = %q", name, s, got)
			}
		}
	}
}

// TestSplitterMatchesRegexp2 checks the hand-written pre-tokenizer against
// regexp2 running the real patterns, on random mixes of character classes.
func TestSplitterMatchesRegexp2(t *testing.T) {
	alphabet := []string{"a", "Z", "é", "e\u0301", "日", "ß", "1", "٣", "½", " ", "  ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u3000", "\u2028",
		"'", "'s", "'S", "'ll", "'LL", "'Ve", "'re", "'d", "'m", "'t", ".", ",", "!", "😀", "\u200d", "-", "\"", "\x85", "\xff",
		"\u0085", "\v", "\f", "\u1680", "\u200a", "\u205f", "\u0301", "_", "²", "Ⅻ", "'L", "'R", "'V", "'x"}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for _, pat := range []string{qwen2Pattern, llama3Pattern} {
		fast, _ := splitterFor(pat)
		slow, err := newRegexSplitter(pat)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			var b strings.Builder
			for k := rng.IntN(16); k >= 0; k-- {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			s := b.String()
			var got, want []string
			fast.split(s, func(p string) { got = append(got, p) })
			slow.split(s, func(p string) { want = append(want, p) })
			if !slices.Equal(got, want) {
				t.Fatalf("split(%q):\n got %q\nwant %q", s, got, want)
			}
		}
	}
}

// TestLongWord encodes a 1 MB run of letters (one pre-token): BPE must be
// n log n, not quadratic.
func TestLongWord(t *testing.T) {
	tok := bundled(t, "qwen2.5")
	s := strings.Repeat("abcdefghij", 100_000)
	if got := tok.Decode(tok.Encode(s)); got != s {
		t.Error("long word does not round-trip")
	}
}

// FuzzEncode: arbitrary bytes never panic; valid UTF-8 decodes back to its
// NFC form (the normalizer's output), and so does invalid UTF-8 whose valid
// parts are already NFC.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"Hello world", "it's", "日本語 😀", "e\u0301", "\xff\xfe", "<|im_end|>x", " \n\r\t ", "123456"} {
		f.Add(s)
	}
	tok := bundled(f, "qwen2.5")
	f.Fuzz(func(t *testing.T, s string) {
		got := tok.Decode(tok.Encode(s))
		switch {
		case utf8.ValidString(s):
			if want := tok.norms0(s); got != want {
				t.Errorf("Decode(Encode(%q)) = %q, want %q", s, got, want)
			}
		case isNFC(s, tok):
			if got != s {
				t.Errorf("Decode(Encode(%q)) = %q", s, got)
			}
		}
	})
}

// FuzzLoad: arbitrary tokenizer.json bytes never panic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a a"]}}`))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {}, "merges": [["a","b"]]}, "added_tokens": [{"id": 5, "content": "<s>"}]}`))
	f.Add([]byte(`{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"String": "x"}, "behavior": "Isolated"}]}}`))
	f.Add([]byte(`{"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "a"}}], "special_tokens": {"a": {"ids": [99]}}}}`))
	// In-range extremes: the largest ids accepted, a backtracking pattern.
	f.Add([]byte(fmt.Sprintf(`{"model": {"type": "BPE", "vocab": {"a": %d}, "merges": []}, "added_tokens": [{"id": %d, "content": "x"}]}`, maxTokenID, maxTokenID)))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0, "a": 1}, "merges": [["a","a"],["a","a"]]}}`))
	f.Add([]byte(`{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated"}, "model": {"type": "BPE", "vocab": {}, "merges": []}}`))
	f.Add([]byte(`{"model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>", "fuse_unk": true, "vocab": {"<unk>": 0, "<0x61>": 1, "▁": 2, "H": 3}, "merges": []},` +
		` "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},` +
		` "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 1}]}}`))
	f.Add([]byte(`{"model": {"type": "BPE", "byte_fallback": true, "vocab": {"▁": 0, "▁a": 1, "a": 2}, "merges": ["▁ a"]},` +
		` "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true}, "decoder": {"type": "Metaspace", "replacement": "▁"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseJSON(data)
		if err == nil {
			tok.Decode(tok.EncodeSpecial("Hello, world! 123 <s>"))
		}
		parseTiktoken(data)
	})
}

// TestAddedTokenOptions checks lstrip, rstrip and single_word on a tiny
// tokenizer.
func TestAddedTokenOptions(t *testing.T) {
	vocab := map[string]any{}
	for b := 0; b < 256; b++ {
		vocab[toByteLevel(string([]byte{byte(b)}))] = b
	}
	added := []any{
		map[string]any{"id": 256, "content": "<m>", "lstrip": true, "rstrip": true},
		map[string]any{"id": 257, "content": "cat", "single_word": true},
	}
	data, _ := json.Marshal(map[string]any{"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{}}, "added_tokens": added})
	tok, err := parseJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   string
		want []int
	}{
		{"a  <m>  b", []int{'a', 256, 'b'}},
		{"<m>", []int{256}},
		{"cat", []int{257}},
		{"a cat.", []int{'a', ' ', 257, '.'}},
		{"cats", []int{'c', 'a', 't', 's'}},
		{"bobcat", []int{'b', 'o', 'b', 'c', 'a', 't'}},
	} {
		if got := tok.Encode(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestConcurrentEncode shares one Tokenizer (and its word cache) between
// goroutines; run with -race.
func TestConcurrentEncode(t *testing.T) {
	tok := bundled(t, "llama3")
	cases := readGolden(t, "llama3")[:400]
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range cases {
				if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
					t.Errorf("Encode(%q) = %v, want %v", c.Text, got, c.IDs)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestAddedNormalized: tokens with normalized: true match after NFC, the
// others only in the raw text.
func TestAddedNormalized(t *testing.T) {
	vocab := map[string]any{}
	for b := 0; b < 256; b++ {
		vocab[toByteLevel(string([]byte{byte(b)}))] = b
	}
	added := []any{
		map[string]any{"id": 256, "content": "\u00e9", "normalized": true},
		map[string]any{"id": 257, "content": "\u00f1", "normalized": false},
	}
	data, _ := json.Marshal(map[string]any{"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{}},
		"added_tokens": added, "normalizer": map[string]any{"type": "NFC"}})
	tok, err := parseJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   string
		want []int
	}{
		{"e\u0301x", []int{256, 'x'}},
		{"\u00e9", []int{256}},
		{"\u00f1", []int{257}},
		{"n\u0303", []int{0xC3, 0xB1}},
	} {
		if got := tok.Encode(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}
