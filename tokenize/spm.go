package tokenize

// SentencePiece-style BPE (Llama 2, Mistral 7B v0.1–v0.3): tokenizer.json
// with model.byte_fallback true. Symbols are characters, not bytes; a
// character outside the vocabulary becomes its UTF-8 bytes as <0xXX>
// tokens (or unk_token when those are missing); spaces are "▁", put there
// by a Prepend+Replace normalizer or a Metaspace pre-tokenizer; decoding
// runs tokenizer.json's decoder chain on the token strings.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// spmModel is the state of a byte_fallback BPE model.
type spmModel struct {
	byteTok [256]int32 // id of <0xXX>, -1 if absent
	unk     int32      // unk_token's id, -1 if none
	fuseUnk bool
}

// textNorm is a Prepend or Replace normalizer (plain-string pattern).
type textNorm struct{ prepend, from, to string }

func (n textNorm) apply(s string) string {
	if n.prepend != "" {
		if s == "" {
			return s
		}
		return n.prepend + s
	}
	return strings.ReplaceAll(s, n.from, n.to)
}

// metaspace is the Metaspace pre-tokenizer.
type metaspace struct {
	repl   string
	scheme string // always, first, never
	split  bool
}

// pre replaces spaces, prepends the replacement where the scheme says, and
// splits before each replacement when split is set (MergedWithNext).
func (m *metaspace) pre(s string, first bool, fn func(string)) {
	s = strings.ReplaceAll(s, " ", m.repl)
	if !strings.HasPrefix(s, m.repl) && (m.scheme == "always" || m.scheme == "first" && first) {
		s = m.repl + s
	}
	if !m.split {
		fn(s)
		return
	}
	for len(s) > 0 {
		_, n := utf8.DecodeRuneInString(s)
		i := strings.Index(s[n:], m.repl)
		if i < 0 {
			fn(s)
			return
		}
		i += n
		fn(s[:i])
		s = s[i:]
	}
}

// decodeStep is one decoder of tokenizer.json's chain, applied to the list
// of token strings as Hugging Face does.
type decodeStep struct {
	kind        string // Replace, ByteFallback, Fuse, Strip, Metaspace
	from, to    string
	strip       rune
	start, stop int
}

func parseMetaspace(c component) (*metaspace, error) {
	if r, n := utf8.DecodeRuneInString(c.Replacement); n == 0 || n != len(c.Replacement) || r == utf8.RuneError {
		return nil, fmt.Errorf("Metaspace replacement %q is not one character", c.Replacement)
	}
	m := &metaspace{repl: c.Replacement, scheme: c.PrependScheme, split: c.Split == nil || *c.Split}
	if m.scheme == "" {
		m.scheme = "always"
		if c.AddPrefixSpaceOpt != nil && !*c.AddPrefixSpaceOpt {
			m.scheme = "never"
		}
	}
	switch m.scheme {
	case "always", "first", "never":
	default:
		return nil, fmt.Errorf("Metaspace prepend_scheme %q is not supported", m.scheme)
	}
	return m, nil
}

// parseSpmDecoder reads the decoder chain of a byte_fallback model.
func parseSpmDecoder(raw json.RawMessage) ([]decodeStep, error) {
	c, ok, err := readComponent(raw)
	if !ok {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		return parseSeq(c.Decoders, parseSpmDecoder)
	case "Replace":
		if c.Pattern.String == nil {
			return nil, errors.New("Replace decoder: only a String pattern is supported")
		}
		return []decodeStep{{kind: c.Type, from: *c.Pattern.String, to: c.Content}}, nil
	case "ByteFallback", "Fuse":
		return []decodeStep{{kind: c.Type}}, nil
	case "Strip":
		r, n := utf8.DecodeRuneInString(c.Content)
		if n == 0 || n != len(c.Content) || c.Start < 0 || c.Stop < 0 {
			return nil, fmt.Errorf("Strip decoder: content %q start %d stop %d", c.Content, c.Start, c.Stop)
		}
		return []decodeStep{{kind: c.Type, strip: r, start: c.Start, stop: c.Stop}}, nil
	case "Metaspace":
		m, err := parseMetaspace(c)
		if err != nil {
			return nil, err
		}
		st := decodeStep{kind: c.Type, from: m.repl, to: " "}
		if m.scheme != "never" {
			st.start = 1
		}
		return []decodeStep{st}, nil
	}
	return nil, fmt.Errorf("decoder type %q is not supported with byte_fallback", c.Type)
}

// initSpm fills the byte_fallback model's vocabulary (token strings as in
// the file) and byte tokens.
func (t *Tokenizer) initSpm(m *modelJSON) error {
	s := &spmModel{unk: -1, fuseUnk: m.FuseUnk}
	for i := range s.byteTok {
		s.byteTok[i] = -1
		if id, ok := t.vocab[fmt.Sprintf("<0x%02X>", i)]; ok {
			s.byteTok[i] = id
		}
	}
	if m.UnkToken != nil {
		id, ok := t.vocab[*m.UnkToken]
		if !ok {
			return fmt.Errorf("model: unk_token %q is not in vocab", *m.UnkToken)
		}
		s.unk = id
	}
	t.spm = s
	return nil
}

// spmInit writes word's initial symbols to w.ids: a character's id, or
// -(offset+1) for a character outside the vocabulary, which no merge joins.
func (t *Tokenizer) spmInit(word string, w *workspace) []int32 {
	ids := w.ids[:0]
	for i, r := range word {
		n := utf8.RuneLen(r)
		if r == utf8.RuneError {
			_, n = utf8.DecodeRuneInString(word[i:])
		}
		if id, ok := t.vocab[word[i:i+n]]; ok {
			ids = append(ids, id)
		} else {
			ids = append(ids, int32(-(i + 1)))
		}
	}
	w.ids = ids
	return ids
}

// spmFallback appends merged symbols to out, replacing unknown characters by
// their byte tokens, or unk_token (consecutive ones fused if fuse_unk).
func (t *Tokenizer) spmFallback(out, syms []int32, word string) []int32 {
	for _, id := range syms {
		if id >= 0 {
			out = append(out, id)
			continue
		}
		off := int(-id - 1)
		_, n := utf8.DecodeRuneInString(word[off:])
		ok := true
		for j := off; j < off+n; j++ {
			ok = ok && t.spm.byteTok[word[j]] >= 0
		}
		if ok {
			for j := off; j < off+n; j++ {
				out = append(out, t.spm.byteTok[word[j]])
			}
			continue
		}
		if t.spm.unk < 0 {
			continue // Hugging Face fails here; dropping is the bounded choice
		}
		if t.spm.fuseUnk && len(out) > 0 && out[len(out)-1] == t.spm.unk {
			continue
		}
		out = append(out, t.spm.unk)
	}
	return out
}

// spmDecode runs the decoder chain over the tokens' strings. Byte tokens
// become raw bytes, so a sequence cut inside a character may be invalid
// UTF-8 (Hugging Face prints U+FFFD there). Without whole, ids continue
// earlier text: no leading or trailing strip.
func (t *Tokenizer) spmDecode(ids []int, whole bool) string {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if id >= 0 && id < len(t.pieces) {
			toks = append(toks, t.pieces[id])
		}
	}
	for _, st := range t.decoders {
		switch st.kind {
		case "Replace":
			for i := range toks {
				toks[i] = strings.ReplaceAll(toks[i], st.from, st.to)
			}
		case "ByteFallback":
			for i, s := range toks {
				if len(s) == 6 && strings.HasPrefix(s, "<0x") && s[5] == '>' {
					if b, err := strconv.ParseUint(s[3:5], 16, 8); err == nil {
						toks[i] = string([]byte{byte(b)})
					}
				}
			}
		case "Fuse":
			toks = []string{strings.Join(toks, "")}
		case "Strip":
			if !whole {
				continue
			}
			for i, s := range toks {
				for k := 0; k < st.start; k++ {
					r, n := utf8.DecodeRuneInString(s)
					if n == 0 || r != st.strip {
						break
					}
					s = s[n:]
				}
				for k := 0; k < st.stop; k++ {
					r, n := utf8.DecodeLastRuneInString(s)
					if n == 0 || r != st.strip {
						break
					}
					s = s[:len(s)-n]
				}
				toks[i] = s
			}
		case "Metaspace":
			for i := range toks {
				toks[i] = strings.ReplaceAll(toks[i], st.from, " ")
				if i == 0 && st.start == 1 && whole {
					toks[i] = strings.TrimPrefix(toks[i], " ")
				}
			}
		}
	}
	return strings.Join(toks, "")
}
