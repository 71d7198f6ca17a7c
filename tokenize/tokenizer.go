// Package tokenize implements Hugging Face byte-level BPE tokenizers
// (tokenizer.json of Qwen2/Qwen2.5/Qwen3 and Llama 3, or Meta's tiktoken
// tokenizer.model) and the chat templates of those model families.
package tokenize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
	"golang.org/x/text/unicode/norm"

	"github.com/gotrain/gotrain/internal/inputfile"
)

// Tokenizer encodes text to token ids and back. It is safe for concurrent use.
type Tokenizer struct {
	pieces       []string         // id -> raw bytes (added tokens: their content); len = VocabSize
	vocab        map[string]int32 // raw bytes -> id, the BPE model's vocabulary
	byteIDs      [256]int32       // id of each single-byte token
	merges       map[uint64]merge // (left id, right id) -> rank, merged id
	ignoreMerges bool             // a pre-token found whole in vocab is one token
	norms        []norm.Form      // Unicode normalizers, applied in order
	textNorms    []textNorm       // then Prepend/Replace (SentencePiece style)
	spm          *spmModel        // byte_fallback BPE: character symbols, <0xXX> fallback
	decoders     []decodeStep     // decoder chain of a byte_fallback model
	stages       []stage          // pre-tokenizer chain
	added        addedSet         // added tokens matched in the raw text
	addedNorm    addedSet         // added tokens with normalized: true, matched after normalization
	addedIDs     map[string]int   // added token content -> id
	prefix       []int            // post-processor ids before the sequence (BOS)
	suffix       []int            // post-processor ids after it

	// From tokenizer_config.json / chat_template.jinja when loaded by Load.
	chatTemplate string
	templateFile string // where chatTemplate came from, for errors
	defaultChat  string // template name used when chatTemplate is empty (tiktoken: "llama3")
	eosToken     string
	bosToken     string

	path string // tokenizer.json, for errors

	cache  sync.Map // pre-token -> []int32
	cached atomic.Int64
	pool   sync.Pool // *workspace
}

// maxCache bounds the word cache; beyond it words are encoded uncached.
const maxCache = 1 << 18

// stage is one step of the pre-tokenizer: an optional prefix space, then an
// optional split.
type stage struct {
	prefixSpace bool
	split       splitter
	meta        *metaspace // Metaspace instead of the above
}

// addedToken is a token matched in the text before pre-tokenization.
type addedToken struct {
	content                   string
	id                        int
	lstrip, rstrip, singleWrd bool
	normalized                bool
}

// addedSet is a list of added tokens, longest first (leftmost-longest
// matching), with an index of their first bytes.
type addedSet struct {
	toks  []addedToken
	first [256]bool
}

// ErrNoTokenizer marks a directory with neither tokenizer.json nor
// tokenizer.model (a checkpoint saved without its tokenizer).
var ErrNoTokenizer = errors.New("no tokenizer.json or tokenizer.model")

// Load reads the tokenizer in dir: tokenizer.json, or else Meta's tiktoken
// tokenizer.model, plus tokenizer_config.json and chat_template.jinja when
// present (for the chat template and the EOS token).
func Load(dir string) (*Tokenizer, error) {
	var t *Tokenizer
	jsonPath := filepath.Join(dir, "tokenizer.json")
	modelPath := filepath.Join(dir, "tokenizer.model")
	if _, err := os.Stat(jsonPath); err == nil {
		t, err = LoadFile(jsonPath)
		if err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(modelPath); err == nil {
		data, err := inputfile.ReadFile(modelPath, inputfile.MaxLargeFile)
		if err != nil {
			return nil, fmt.Errorf("tokenize: %w", err)
		}
		t, err = parseTiktoken(data)
		if err != nil {
			return nil, fmt.Errorf("tokenize: %s: %w", modelPath, err)
		}
	} else {
		return nil, fmt.Errorf("tokenize: %s: %w", dir, ErrNoTokenizer)
	}
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	if data, err := inputfile.ReadFile(cfgPath, inputfile.MaxLargeFile); err == nil {
		if err := t.applyConfig(data); err != nil {
			return nil, fmt.Errorf("tokenize: %s: %w", cfgPath, err)
		}
		t.templateFile = cfgPath
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	if data, err := inputfile.ReadFile(filepath.Join(dir, "chat_template.jinja"), inputfile.MaxSmallFile); err == nil {
		t.chatTemplate = string(data)
		t.templateFile = filepath.Join(dir, "chat_template.jinja")
	}
	return t, nil
}

// LoadFile reads one tokenizer.json.
func LoadFile(path string) (*Tokenizer, error) {
	data, err := inputfile.ReadFile(path, inputfile.MaxLargeFile)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	t, err := parseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %s: %w", path, err)
	}
	t.path = path
	return t, nil
}

// Err reports an input the tokenizer could not encode: a Split pattern of
// tokenizer.json whose match ran out of time. Encode's result is incomplete
// from then on, so callers check Err after encoding untrusted text.
func (t *Tokenizer) Err() error {
	for _, st := range t.stages {
		if rs, ok := st.split.(*regexSplitter); ok {
			if err := rs.err.Load(); err != nil {
				if t.path != "" {
					return fmt.Errorf("tokenize: %s: %w", t.path, *err)
				}
				return fmt.Errorf("tokenize: %w", *err)
			}
		}
	}
	return nil
}

// component is the union of the tokenizer.json pipeline objects we read.
type component struct {
	Type           string            `json:"type"`
	Normalizers    []json.RawMessage `json:"normalizers"`
	Pretokenizers  []json.RawMessage `json:"pretokenizers"`
	Processors     []json.RawMessage `json:"processors"`
	Decoders       []json.RawMessage `json:"decoders"`
	Pattern        struct{ Regex, String *string }
	Behavior       string `json:"behavior"`
	Invert         bool   `json:"invert"`
	AddPrefixSpace bool   `json:"add_prefix_space"`
	// AddPrefixSpaceOpt is the same field, to tell absent from false.
	AddPrefixSpaceOpt *bool  `json:"-"`
	Replacement       string `json:"replacement"`
	PrependScheme     string `json:"prepend_scheme"`
	Split             *bool  `json:"split"`
	Prepend           string `json:"prepend"`
	Content           string `json:"content"`
	Start             int    `json:"start"`
	Stop              int    `json:"stop"`
	UseRegex          bool   `json:"use_regex"`
	Single            []struct {
		SpecialToken *struct{ ID string } `json:"SpecialToken"`
		Sequence     *struct{ ID string } `json:"Sequence"`
	} `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int `json:"ids"`
	} `json:"special_tokens"`
}

type fileJSON struct {
	AddedTokens []struct {
		ID         *int    `json:"id"`
		Content    *string `json:"content"`
		SingleWord bool    `json:"single_word"`
		Lstrip     bool    `json:"lstrip"`
		Rstrip     bool    `json:"rstrip"`
		Normalized bool    `json:"normalized"`
		Special    bool    `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         json.RawMessage `json:"model"`
}

type modelJSON struct {
	Type                    string           `json:"type"`
	Vocab                   map[string]int   `json:"vocab"`
	Merges                  json.RawMessage  `json:"merges"`
	IgnoreMerges            bool             `json:"ignore_merges"`
	ByteFallback            bool             `json:"byte_fallback"`
	UnkToken                *string          `json:"unk_token"`
	FuseUnk                 bool             `json:"fuse_unk"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
	Dropout                 *float64         `json:"dropout"`
	Extra                   *json.RawMessage `json:"-"`
}

// parseJSON builds a Tokenizer from tokenizer.json bytes.
func parseJSON(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	if len(f.Model) == 0 || string(f.Model) == "null" {
		return nil, errors.New("tokenizer.json has no model")
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(f.Model, &head); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if head.Type != "BPE" && head.Type != "" {
		return nil, fmt.Errorf("model type %q is not supported (only byte-level BPE)", head.Type)
	}
	var m modelJSON
	if err := json.Unmarshal(f.Model, &m); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" ||
		m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return nil, errors.New("model: continuing_subword_prefix/end_of_word_suffix are not supported")
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, errors.New("model: BPE dropout is not supported")
	}
	if len(m.Vocab) == 0 {
		return nil, errors.New("model: empty vocab")
	}
	t := &Tokenizer{vocab: make(map[string]int32, len(m.Vocab)), ignoreMerges: m.IgnoreMerges}
	maxID := -1
	for _, id := range m.Vocab {
		if id < 0 || id > maxTokenID {
			return nil, fmt.Errorf("model: token id %d out of range", id)
		}
		maxID = max(maxID, id)
	}
	for _, a := range f.AddedTokens {
		if a.ID == nil || a.Content == nil {
			return nil, errors.New("added_tokens: entry without id or content")
		}
		if *a.ID < 0 || *a.ID > maxTokenID {
			return nil, fmt.Errorf("added_tokens: id %d out of range", *a.ID)
		}
		maxID = max(maxID, *a.ID)
	}
	t.pieces = make([]string, maxID+1)
	for tok, id := range m.Vocab {
		raw := tok
		if !m.ByteFallback {
			raw, _ = fromByteLevel(tok)
		}
		t.pieces[id] = raw
		t.vocab[raw] = int32(id)
	}
	if m.ByteFallback {
		if err := t.initSpm(&m); err != nil {
			return nil, err
		}
	} else {
		for b := 0; b < 256; b++ {
			id, ok := t.vocab[string([]byte{byte(b)})]
			if !ok {
				return nil, fmt.Errorf("model: vocab lacks the byte-level token for byte 0x%02x (not a byte-level BPE)", b)
			}
			t.byteIDs[b] = id
		}
	}
	if err := t.parseMerges(m.Merges); err != nil {
		return nil, err
	}
	t.addedIDs = make(map[string]int)
	var addedList []addedToken
	for _, a := range f.AddedTokens {
		if *a.Content == "" {
			return nil, fmt.Errorf("added_tokens: id %d has empty content", *a.ID)
		}
		t.pieces[*a.ID] = *a.Content
		t.addedIDs[*a.Content] = *a.ID
		addedList = append(addedList, addedToken{content: *a.Content, id: *a.ID, lstrip: a.Lstrip, rstrip: a.Rstrip,
			singleWrd: a.SingleWord, normalized: a.Normalized})
	}
	var err error
	if err := t.parseNormalizer(f.Normalizer); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	t.finishAdded(addedList)
	if t.stages, err = parsePreTokenizer(f.PreTokenizer); err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	if err := t.parsePostProcessor(f.PostProcessor); err != nil {
		return nil, fmt.Errorf("post_processor: %w", err)
	}
	if t.spm != nil {
		if t.decoders, err = parseSpmDecoder(f.Decoder); err != nil {
			return nil, fmt.Errorf("decoder: %w", err)
		}
		// A stage without meta, or a ByteLevel that parsed to no stage
		// (which would map bytes to its alphabet), is not Metaspace.
		noop := len(t.stages) == 0 && len(f.PreTokenizer) > 0 && string(f.PreTokenizer) != "null"
		for _, st := range t.stages {
			noop = noop || st.meta == nil
		}
		if noop {
			return nil, errors.New("pre_tokenizer: only Metaspace is supported with byte_fallback")
		}
	} else {
		if err := checkDecoder(f.Decoder); err != nil {
			return nil, fmt.Errorf("decoder: %w", err)
		}
		for _, st := range t.stages {
			if st.meta != nil {
				return nil, errors.New("pre_tokenizer: Metaspace is supported only with a byte_fallback model")
			}
		}
		if len(t.textNorms) > 0 {
			return nil, errors.New("normalizer: Prepend/Replace are supported only with a byte_fallback model")
		}
	}
	return t, nil
}

// parseMerges accepts both layouts: ["a b", ...] and [["a","b"], ...].
func (t *Tokenizer) parseMerges(raw json.RawMessage) error {
	var pairs [][2]string
	var strs []string
	if len(raw) == 0 || string(raw) == "null" {
		// No merges: every multi-byte token is reachable only whole.
	} else if err := json.Unmarshal(raw, &strs); err == nil {
		pairs = make([][2]string, len(strs))
		for i, s := range strs {
			a, b, ok := strings.Cut(s, " ")
			if !ok {
				return fmt.Errorf("model: merge %d %q is not \"a b\"", i, s)
			}
			pairs[i] = [2]string{a, b}
		}
	} else if err := json.Unmarshal(raw, &pairs); err != nil {
		return fmt.Errorf("model: merges are neither \"a b\" strings nor [a, b] pairs: %w", err)
	}
	t.merges = make(map[uint64]merge, len(pairs))
	for i, p := range pairs {
		a, okA := t.vocab[t.mustRaw(p[0])]
		b, okB := t.vocab[t.mustRaw(p[1])]
		c, okC := t.vocab[t.mustRaw(p[0]+p[1])]
		if !okA || !okB || !okC {
			return fmt.Errorf("model: merge %d (%q, %q) uses a token not in vocab", i, p[0], p[1])
		}
		k := pairKey(a, b)
		if _, dup := t.merges[k]; !dup { // the first (lowest) rank wins
			t.merges[k] = merge{rank: int32(i), id: c}
		}
	}
	return nil
}

// mustRaw maps a token's file spelling to the vocab key: raw bytes for
// byte-level BPE, the spelling itself for byte_fallback BPE.
func (t *Tokenizer) mustRaw(s string) string {
	if t.spm != nil {
		return s
	}
	r, _ := fromByteLevel(s)
	return r
}

// finishAdded files the added tokens into the raw and normalized sets,
// longest first, and indexes their first bytes. Without a normalizer both
// match the same text, so all go to the raw set.
func (t *Tokenizer) finishAdded(list []addedToken) {
	sort.SliceStable(list, func(i, j int) bool { return len(list[i].content) > len(list[j].content) })
	for _, a := range list {
		set := &t.added
		if a.normalized && len(t.norms)+len(t.textNorms) > 0 {
			set = &t.addedNorm
		}
		set.toks = append(set.toks, a)
		set.first[a.content[0]] = true
	}
}

func (t *Tokenizer) parseNormalizer(raw json.RawMessage) error {
	c, ok, err := readComponent(raw)
	if !ok {
		return err
	}
	forms := map[string]norm.Form{"NFC": norm.NFC, "NFD": norm.NFD, "NFKC": norm.NFKC, "NFKD": norm.NFKD}
	switch c.Type {
	case "NFC", "NFD", "NFKC", "NFKD":
		if len(t.textNorms) > 0 {
			return fmt.Errorf("normalizer %s after Prepend/Replace is not supported", c.Type)
		}
		t.norms = append(t.norms, forms[c.Type])
		return nil
	case "Prepend":
		if c.Prepend == "" {
			return errors.New("Prepend without prepend")
		}
		t.textNorms = append(t.textNorms, textNorm{prepend: c.Prepend})
		return nil
	case "Replace":
		if c.Pattern.String == nil || *c.Pattern.String == "" {
			return errors.New("Replace normalizer: only a non-empty String pattern is supported")
		}
		t.textNorms = append(t.textNorms, textNorm{from: *c.Pattern.String, to: c.Content})
		return nil
	case "Sequence":
		for _, n := range c.Normalizers {
			if err := t.parseNormalizer(n); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("normalizer type %q is not supported", c.Type)
}

// readComponent parses one pipeline object; ok is false with err nil
// when raw is absent or null.
func readComponent(raw json.RawMessage) (c component, ok bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return c, false, nil
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, false, err
	}
	return c, true, nil
}

// parseSeq parses each of a Sequence's parts with parse and concatenates
// the results.
func parseSeq[T any](parts []json.RawMessage, parse func(json.RawMessage) ([]T, error)) ([]T, error) {
	var out []T
	for _, p := range parts {
		s, err := parse(p)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

func parsePreTokenizer(raw json.RawMessage) ([]stage, error) {
	c, ok, err := readComponent(raw)
	if !ok {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		return parseSeq(c.Pretokenizers, parsePreTokenizer)
	case "Split":
		if c.Behavior != "Isolated" || c.Invert {
			return nil, fmt.Errorf("Split behavior %q invert %v is not supported (only Isolated)", c.Behavior, c.Invert)
		}
		var pattern string
		switch {
		case c.Pattern.Regex != nil:
			pattern = *c.Pattern.Regex
		case c.Pattern.String != nil:
			pattern = regexp2.Escape(*c.Pattern.String)
		default:
			return nil, errors.New("Split without a pattern")
		}
		sp, err := splitterFor(pattern)
		if err != nil {
			return nil, err
		}
		return []stage{{split: sp}}, nil
	case "Metaspace":
		var opt struct {
			AddPrefixSpace *bool `json:"add_prefix_space"`
		}
		_ = json.Unmarshal(raw, &opt)
		c.AddPrefixSpaceOpt = opt.AddPrefixSpace
		m, err := parseMetaspace(c)
		if err != nil {
			return nil, err
		}
		return []stage{{meta: m}}, nil
	case "ByteLevel":
		var st stage
		st.prefixSpace = c.AddPrefixSpace
		if c.UseRegex {
			sp, err := splitterFor(gpt2Pattern)
			if err != nil {
				return nil, err
			}
			st.split = sp
		}
		if !st.prefixSpace && st.split == nil {
			return nil, nil // bytes are mapped by the model itself
		}
		return []stage{st}, nil
	}
	return nil, fmt.Errorf("pre-tokenizer type %q is not supported", c.Type)
}

func (t *Tokenizer) parsePostProcessor(raw json.RawMessage) error {
	c, ok, err := readComponent(raw)
	if !ok {
		return err
	}
	switch c.Type {
	case "ByteLevel":
		return nil // only adjusts offsets
	case "Sequence":
		for _, p := range c.Processors {
			if err := t.parsePostProcessor(p); err != nil {
				return err
			}
		}
		return nil
	case "TemplateProcessing":
		t.prefix, t.suffix = nil, nil
		seen := false
		for _, it := range c.Single {
			switch {
			case it.Sequence != nil:
				seen = true
			case it.SpecialToken != nil:
				st, ok := c.SpecialTokens[it.SpecialToken.ID]
				if !ok {
					return fmt.Errorf("TemplateProcessing: special token %q not defined", it.SpecialToken.ID)
				}
				for _, id := range st.IDs {
					if id < 0 || id >= len(t.pieces) {
						return fmt.Errorf("TemplateProcessing: id %d out of range", id)
					}
				}
				if seen {
					t.suffix = append(t.suffix, st.IDs...)
				} else {
					t.prefix = append(t.prefix, st.IDs...)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("post-processor type %q is not supported", c.Type)
}

func checkDecoder(raw json.RawMessage) error {
	c, ok, err := readComponent(raw)
	if !ok {
		return err
	}
	switch c.Type {
	case "ByteLevel":
		return nil
	case "Sequence":
		for _, d := range c.Decoders {
			if err := checkDecoder(d); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("decoder type %q is not supported (only ByteLevel)", c.Type)
}

// applyConfig reads tokenizer_config.json: chat_template, eos_token, bos_token.
func (t *Tokenizer) applyConfig(data []byte) error {
	var cfg struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
		EOS          json.RawMessage `json:"eos_token"`
		BOS          json.RawMessage `json:"bos_token"`
		AddBOS       *bool           `json:"add_bos_token"`
		AddEOS       *bool           `json:"add_eos_token"`
		Class        string          `json:"tokenizer_class"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	t.eosToken = tokenString(cfg.EOS)
	t.bosToken = tokenString(cfg.BOS)
	// transformers' LlamaTokenizerFast rebuilds the post-processor from
	// add_bos_token (default true) and add_eos_token (default false).
	if t.spm != nil && strings.HasPrefix(cfg.Class, "LlamaTokenizer") && (cfg.AddBOS != nil || cfg.AddEOS != nil) {
		addBOS, addEOS := cfg.AddBOS == nil || *cfg.AddBOS, cfg.AddEOS != nil && *cfg.AddEOS
		t.prefix, t.suffix = nil, nil
		for _, c := range []struct {
			on   bool
			name string
			dst  *[]int
		}{{addBOS, t.bosToken, &t.prefix}, {addEOS, t.eosToken, &t.suffix}} {
			if !c.on {
				continue
			}
			id, ok := t.TokenID(c.name)
			if !ok {
				return fmt.Errorf("token %q of add_bos_token/add_eos_token is not in the vocabulary", c.name)
			}
			*c.dst = []int{id}
		}
	}
	var s string
	if json.Unmarshal(cfg.ChatTemplate, &s) == nil {
		t.chatTemplate = s
	} else {
		// A list of named templates: use "default".
		var named []struct{ Name, Template string }
		if json.Unmarshal(cfg.ChatTemplate, &named) == nil {
			for _, n := range named {
				if n.Name == "default" {
					t.chatTemplate = n.Template
				}
			}
		}
	}
	return nil
}

// tokenString reads a config token given as "text" or {"content": "text"}.
func tokenString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.Content
	}
	return ""
}

// VocabSize is the largest token id plus one, counting added tokens.
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// TokenID returns the id of an added token (by its content) or of a vocab
// token given in tokenizer.json's byte-level spelling (e.g. "Ġworld").
func (t *Tokenizer) TokenID(token string) (int, bool) {
	if id, ok := t.addedIDs[token]; ok {
		return id, true
	}
	if t.spm != nil {
		if id, ok := t.vocab[token]; ok {
			return int(id), true
		}
	} else if raw, ok := fromByteLevel(token); ok {
		if id, ok := t.vocab[raw]; ok {
			return int(id), true
		}
	}
	return 0, false
}

// EOS returns the ids that end generation: tokenizer_config.json's
// eos_token plus the end-of-turn and end-of-text tokens of the chat formats
// this package knows, those present in the vocabulary.
func (t *Tokenizer) EOS() []int {
	var ids []int
	for _, s := range []string{t.eosToken, "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"} {
		if id, ok := t.addedIDs[s]; ok && s != "" {
			dup := false
			for _, x := range ids {
				dup = dup || x == id
			}
			if !dup {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// Decode concatenates the tokens' bytes. The result may be invalid UTF-8 if
// ids end inside a character; ids out of range are skipped.
func (t *Tokenizer) Decode(ids []int) string {
	if t.spm != nil {
		return t.spmDecode(ids, true)
	}
	n := 0
	for _, id := range ids {
		if id >= 0 && id < len(t.pieces) {
			n += len(t.pieces[id])
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, id := range ids {
		if id >= 0 && id < len(t.pieces) {
			b.WriteString(t.pieces[id])
		}
	}
	return b.String()
}

// DecodeNext is the text id adds to a stream of decoded tokens; first
// marks the stream's first token. Streams must use it rather than Decode
// of each id: a byte_fallback decoder (Llama 2, Mistral) strips the space
// that starts the whole text, not every token's. Concatenated, the pieces
// equal Decode of the ids except for a trailing Strip (none in those files).
func (t *Tokenizer) DecodeNext(id int, first bool) string {
	if t.spm != nil {
		return t.spmDecode([]int{id}, first)
	}
	return t.Decode([]int{id})
}

// Encode tokenizes text like Hugging Face's encode(text,
// add_special_tokens=False): added tokens in the text are recognised, no BOS
// is added.
func (t *Tokenizer) Encode(text string) []int {
	return t.appendEncode(make([]int, 0, len(text)/4+4), text)
}

// EncodeSpecial tokenizes text and adds the post-processor's special tokens
// (Llama 3's BOS), like encode(text, add_special_tokens=True).
func (t *Tokenizer) EncodeSpecial(text string) []int {
	ids := make([]int, 0, len(text)/4+4+len(t.prefix)+len(t.suffix))
	ids = append(ids, t.prefix...)
	ids = t.appendEncode(ids, text)
	return append(ids, t.suffix...)
}

// appendEncode appends text's ids to ids.
func (t *Tokenizer) appendEncode(ids []int, text string) []int {
	w, _ := t.pool.Get().(*workspace)
	if w == nil {
		w = new(workspace)
	}
	ids = t.appendSplit(ids, text, &t.added, true, true, w)
	t.pool.Put(w)
	return ids
}

// appendSplit cuts text at the tokens of set and encodes the text between
// them: normalized first if raw, else (already normalized) pre-tokenized.
func (t *Tokenizer) appendSplit(ids []int, text string, set *addedSet, first, raw bool, w *workspace) []int {
	start := 0
	for i := 0; i < len(text); {
		if !set.first[text[i]] {
			i++
			continue
		}
		a, s, e, ok := set.match(text, i, start)
		if !ok {
			i++
			continue
		}
		ids = t.appendSegment(ids, text[start:s], first && start == 0, raw, w)
		ids = append(ids, a.id)
		start, i = e, e
	}
	return t.appendSegment(ids, text[start:], first && start == 0, raw, w)
}

// match tries the set's tokens at text[i]; on a match it returns the token
// and the span [s, e) it consumes including stripped whitespace (never
// before lo, the end of the previous match).
func (set *addedSet) match(text string, i, lo int) (a addedToken, s, e int, ok bool) {
	for _, a := range set.toks {
		if !strings.HasPrefix(text[i:], a.content) {
			continue
		}
		s, e = i, i+len(a.content)
		if a.singleWrd && (isWordBefore(text[:s]) || isWordAfter(text[e:])) {
			continue
		}
		if a.lstrip {
			for s > lo {
				r, w := utf8.DecodeLastRuneInString(text[lo:s])
				if !unicode.IsSpace(r) {
					break
				}
				s -= w
			}
		}
		if a.rstrip {
			for e < len(text) {
				r, w := utf8.DecodeRuneInString(text[e:])
				if !unicode.IsSpace(r) {
					break
				}
				e += w
			}
		}
		return a, s, e, true
	}
	return addedToken{}, 0, 0, false
}

func isWordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

func isWordBefore(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return len(s) > 0 && isWordRune(r)
}

func isWordAfter(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return len(s) > 0 && isWordRune(r)
}

// appendSegment normalizes (if raw), pre-tokenizes and BPE-encodes text
// that holds no raw added token.
// first marks the segment at the start of the text (Metaspace's "first").
func (t *Tokenizer) appendSegment(ids []int, seg string, first, raw bool, w *workspace) []int {
	if seg == "" {
		return ids
	}
	if raw {
		for _, f := range t.norms {
			if !isASCII(seg) && !f.IsNormalString(seg) {
				seg = f.String(seg)
			}
		}
		for _, n := range t.textNorms {
			seg = n.apply(seg)
		}
		if len(t.addedNorm.toks) > 0 {
			return t.appendSplit(ids, seg, &t.addedNorm, first, false, w)
		}
	}
	emit := func(piece string) { ids = t.appendWord(ids, piece, w) }
	t.pretokenize(seg, 0, first, emit)
	return ids
}

func (t *Tokenizer) pretokenize(s string, k int, first bool, fn func(string)) {
	if k == len(t.stages) {
		fn(s)
		return
	}
	st := t.stages[k]
	if st.meta != nil {
		st.meta.pre(s, first, func(p string) { t.pretokenize(p, k+1, first, fn) })
		return
	}
	if st.prefixSpace && !strings.HasPrefix(s, " ") {
		s = " " + s
	}
	if st.split == nil {
		t.pretokenize(s, k+1, first, fn)
		return
	}
	if k+1 == len(t.stages) {
		st.split.split(s, fn)
		return
	}
	st.split.split(s, func(p string) { t.pretokenize(p, k+1, first, fn) })
}

// appendWord appends the ids of one pre-token, through the word cache.
func (t *Tokenizer) appendWord(ids []int, word string, w *workspace) []int {
	if v, ok := t.cache.Load(word); ok {
		for _, id := range v.([]int32) {
			ids = append(ids, int(id))
		}
		return ids
	}
	out := t.bpe(nil, word, w)
	if len(word) <= 64 && t.cached.Load() < maxCache {
		// Clone the key: word may point into a large caller string.
		t.cache.Store(strings.Clone(word), out)
		t.cached.Add(1)
	}
	for _, id := range out {
		ids = append(ids, int(id))
	}
	return ids
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

var _ = bytes.Equal

// maxTokenID bounds ids read from files so a corrupt file cannot make Load
// allocate gigabytes.
const maxTokenID = 1 << 21
