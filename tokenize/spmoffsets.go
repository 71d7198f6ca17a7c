package tokenize

import (
	"errors"
	"strings"
)

// Turn spans of a SentencePiece-style (byte_fallback) tokenizer cannot be
// found by adding up token bytes: the tokens spell the normalized text
// ("▁" for a space, a "▁" prepended to each piece of text between special
// tokens). encodeEnds encodes as Encode does, segment by segment, carrying
// the offset in the raw text of every normalized byte, and returns where in
// the raw text each token ends.

// mapped is a transformed string with, for each byte boundary 0..len(s),
// the offset in the raw text it came from.
type mapped struct {
	s   string
	src []int
}

func newMapped(s string, base int) mapped {
	src := make([]int, len(s)+1)
	for i := range src {
		src[i] = base + i
	}
	return mapped{s, src}
}

// prepend puts p in front; its bytes come from nowhere (width 0).
func (m mapped) prepend(p string) mapped {
	src := make([]int, len(p), len(p)+len(m.src))
	for i := range src {
		src[i] = m.src[0]
	}
	src = append(src, m.src...)
	return mapped{p + m.s, src}
}

// replaceAll replaces every from by to; to's inner boundaries map to the
// start of from, its end to the end of from.
func (m mapped) replaceAll(from, to string) mapped {
	if from == "" || !strings.Contains(m.s, from) {
		return m
	}
	var b strings.Builder
	src := make([]int, 0, len(m.src))
	i := 0
	for {
		j := strings.Index(m.s[i:], from)
		if j < 0 {
			break
		}
		b.WriteString(m.s[i : i+j])
		src = append(src, m.src[i:i+j]...)
		for k := 0; k < len(to); k++ {
			src = append(src, m.src[i+j])
		}
		b.WriteString(to)
		i += j + len(from)
	}
	b.WriteString(m.s[i:])
	src = append(src, m.src[i:]...)
	return mapped{b.String(), src}
}

func (m mapped) slice(a, b int) mapped { return mapped{m.s[a:b], m.src[a : b+1]} }

// encodeEnds returns Encode(text) and, for each token, the offset in text
// where it ends. It fails on what it cannot map (a Unicode normalizer that
// changes the text, an unk token).
func (t *Tokenizer) encodeEnds(text string) (ids, ends []int, err error) {
	w := new(workspace)
	// tokens appends the ids of a normalized, added-token-free piece m and
	// their ends, as appendSegment/pretokenize do.
	tokens := func(m mapped, first bool) error {
		if m.s == "" {
			return nil
		}
		for _, st := range t.stages {
			if st.meta == nil || len(t.stages) != 1 {
				return errors.New("tokenize: chat spans: only a Metaspace pre-tokenizer is supported with byte_fallback")
			}
			mp := st.meta
			m = m.replaceAll(" ", mp.repl)
			if !strings.HasPrefix(m.s, mp.repl) && (mp.scheme == "always" || mp.scheme == "first" && first) {
				m = m.prepend(mp.repl)
			}
		}
		off := 0
		var fail error
		n0 := len(ids)
		// the Metaspace stage is already applied above: split only
		t.pretokenizeNoMeta(m.s, func(word string) { ids = t.appendWord(ids, word, w) })
		for _, id := range ids[n0:] {
			switch {
			case t.spm.unk >= 0 && id == int(t.spm.unk):
				fail = errors.New("tokenize: chat spans: text the vocabulary cannot spell (unk token)")
			case len(t.pieces[id]) == 6 && strings.HasPrefix(t.pieces[id], "<0x") && t.isByteToken(id):
				off++
			default:
				off += len(t.pieces[id])
			}
			if fail != nil || off > len(m.s) {
				return errors.Join(fail, errors.New("tokenize: chat spans: tokens do not spell the normalized text"))
			}
			ends = append(ends, m.src[off])
		}
		if off != len(m.s) {
			return errors.New("tokenize: chat spans: tokens do not spell the normalized text")
		}
		return nil
	}
	// segment normalizes raw text[a:b] and splits it at normalized added tokens.
	segment := func(a, b int, first bool) error {
		seg := text[a:b]
		for _, f := range t.norms {
			if !f.IsNormalString(seg) {
				return errors.New("tokenize: chat spans: the tokenizer's Unicode normalizer changes the rendered text")
			}
		}
		m := newMapped(seg, a)
		for _, n := range t.textNorms {
			if n.prepend != "" {
				if m.s != "" {
					m = m.prepend(n.prepend)
				}
			} else {
				m = m.replaceAll(n.from, n.to)
			}
		}
		if len(t.addedNorm.toks) == 0 {
			return tokens(m, first)
		}
		start := 0
		for i := 0; i < len(m.s); {
			if !t.addedNorm.first[m.s[i]] {
				i++
				continue
			}
			tok, s, e, ok := t.addedNorm.match(m.s, i, start)
			if !ok {
				i++
				continue
			}
			if err := tokens(m.slice(start, s), first && start == 0); err != nil {
				return err
			}
			ids, ends = append(ids, tok.id), append(ends, m.src[e])
			start, i = e, e
		}
		return tokens(m.slice(start, len(m.s)), first && start == 0)
	}
	start := 0
	for i := 0; i < len(text); {
		if !t.added.first[text[i]] {
			i++
			continue
		}
		tok, s, e, ok := t.added.match(text, i, start)
		if !ok {
			i++
			continue
		}
		if err := segment(start, s, start == 0); err != nil {
			return nil, nil, err
		}
		ids, ends = append(ids, tok.id), append(ends, e)
		start, i = e, e
	}
	if err := segment(start, len(text), start == 0); err != nil {
		return nil, nil, err
	}
	return ids, ends, nil
}

// isByteToken reports whether id is one of the <0xXX> byte-fallback tokens.
func (t *Tokenizer) isByteToken(id int) bool {
	p := t.pieces[id]
	var b byte
	for _, c := range p[3:5] {
		b <<= 4
		switch {
		case c >= '0' && c <= '9':
			b |= byte(c - '0')
		case c >= 'A' && c <= 'F':
			b |= byte(c - 'A' + 10)
		default:
			return false
		}
	}
	return p[5] == '>' && int(t.spm.byteTok[b]) == id
}

// pretokenizeNoMeta runs the Metaspace stage's split (not its replacement
// and prefix, which the caller applied with offsets) on s.
func (t *Tokenizer) pretokenizeNoMeta(s string, fn func(string)) {
	if len(t.stages) == 0 {
		fn(s)
		return
	}
	mp := *t.stages[0].meta
	mp.scheme = "never"
	mp.pre(s, false, fn)
}
