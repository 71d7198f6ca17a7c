package tokenize

import (
	"fmt"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// Pre-tokenizer split patterns this package matches by hand. They are the
// GPT-4 style patterns of Qwen2 (one digit per piece) and Llama 3 (up to
// three digits per piece), exactly as they appear in tokenizer.json.
const (
	qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// gpt2Pattern is what a ByteLevel pre-tokenizer with use_regex splits on.
	gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
)

// Character classes of the split patterns.
const (
	clsOther = iota
	clsLetter
	clsNumber
	clsSpace
)

// asciiClass classifies bytes < 0x80 without a unicode table lookup.
var asciiClass = func() [128]uint8 {
	var t [128]uint8
	for b := 0; b < 128; b++ {
		t[b] = classOf(rune(b))
	}
	return t
}()

// classOf returns the class of r: \p{L}, \p{N}, \s (Unicode White_Space, as
// Oniguruma and .NET define \s), or anything else. Invalid UTF-8 decodes to
// U+FFFD, a symbol, so stray bytes group like punctuation.
func classOf(r rune) uint8 {
	switch {
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	case unicode.IsSpace(r):
		return clsSpace
	}
	return clsOther
}

// runeAt decodes the rune at s[i] and its class.
func runeAt(s string, i int) (r rune, w int, cls uint8) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1, asciiClass[c]
	}
	r, w = utf8.DecodeRuneInString(s[i:])
	return r, w, classOf(r)
}

// splitter cuts a string into pre-tokens, calling fn with each in order;
// the pieces concatenate to s.
type splitter interface {
	split(s string, fn func(piece string))
}

// gpt4Splitter matches qwen2Pattern (maxDigits 1) or llama3Pattern
// (maxDigits 3) by hand, about ten times faster than a backtracking regexp.
// Each step below is one alternative of the pattern, tried in order.
type gpt4Splitter struct{ maxDigits int }

func (p gpt4Splitter) split(s string, fn func(string)) {
	for i := 0; i < len(s); {
		j := p.next(s, i)
		fn(s[i:j])
		i = j
	}
}

// next returns the end of the piece starting at s[i], i < len(s).
func (p gpt4Splitter) next(s string, i int) int {
	r, w, c := runeAt(s, i)
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if r == '\'' {
		if n := contraction(s[i+1:]); n > 0 {
			return i + 1 + n
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c == clsLetter {
		return scanClass(s, i+w, clsLetter)
	}
	if c != clsNumber && r != '\r' && r != '\n' && i+w < len(s) {
		if _, w2, c2 := runeAt(s, i+w); c2 == clsLetter {
			return scanClass(s, i+w+w2, clsLetter)
		}
	}
	// \p{N} or \p{N}{1,3}
	if c == clsNumber {
		j := i + w
		for n := 1; n < p.maxDigits && j < len(s); n++ {
			_, w2, c2 := runeAt(s, j)
			if c2 != clsNumber {
				break
			}
			j += w2
		}
		return j
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j := i
	if r == ' ' {
		j = i + 1
	}
	if k := scanClass(s, j, clsOther); k > j {
		for k < len(s) && (s[k] == '\r' || s[k] == '\n') {
			k++
		}
		return k
	}
	// Only whitespace is left: \s*[\r\n]+ | \s+(?!\S) | \s+
	return spaceRun(s, i)
}

// spaceRun matches \s*[\r\n]+|\s+(?!\S)|\s+ at s[i], a whitespace rune.
func spaceRun(s string, i int) int {
	e, lastNL, lastStart := i, -1, i
	for e < len(s) {
		r, w, c := runeAt(s, e)
		if c != clsSpace {
			break
		}
		if r == '\r' || r == '\n' {
			lastNL = e
		}
		lastStart = e
		e += w
	}
	if lastNL >= 0 {
		return lastNL + 1
	}
	if e == len(s) || lastStart == i {
		return e
	}
	// Leave the last space to prefix the following word.
	return lastStart
}

// scanClass returns the end of the run of class cls starting at s[j].
func scanClass(s string, j int, cls uint8) int {
	for j < len(s) {
		_, w, c := runeAt(s, j)
		if c != cls {
			break
		}
		j += w
	}
	return j
}

// contraction returns the length of a case-insensitive s|t|re|ve|m|ll|d at
// the start of s, or 0. U+017F LATIN SMALL LETTER LONG S case-folds to s, as
// in the Unicode-aware engines Hugging Face uses.
func contraction(s string) int {
	if len(s) == 0 {
		return 0
	}
	switch s[0] | 0x20 {
	case 's', 't', 'm', 'd':
		return 1
	case 'r', 'v':
		if len(s) > 1 && s[1]|0x20 == 'e' {
			return 2
		}
	case 'l':
		if len(s) > 1 && s[1]|0x20 == 'l' {
			return 2
		}
	}
	if len(s) >= 2 && s[0] == 0xC5 && s[1] == 0xBF { // ſ
		return 2
	}
	return 0
}

// regexSplitter splits with an arbitrary pattern through regexp2 (slow path
// for tokenizers whose pattern is not one of the known ones). Text between
// matches becomes its own piece, as with behavior "Isolated".
//
// regexp2 backtracks: a pattern such as (a+)+$ takes exponential time on a
// run of a's. Each match is cut off after splitTimeout; the first timeout
// is kept for Tokenizer.Err and the rest of the text is dropped.
type regexSplitter struct {
	re  *regexp2.Regexp
	err atomic.Pointer[error]
}

// splitTimeout bounds one match of a Split pattern. The known patterns
// match a 1 MiB line in well under a second through regexp2.
const splitTimeout = 2 * time.Second

func newRegexSplitter(pattern string) (*regexSplitter, error) {
	re, err := regexp2.Compile(pattern, regexp2.None)
	if err != nil {
		return nil, fmt.Errorf("compile split pattern %q: %w", pattern, err)
	}
	re.MatchTimeout = splitTimeout
	return &regexSplitter{re: re}, nil
}

func (p *regexSplitter) split(s string, fn func(string)) {
	if p.err.Load() != nil {
		return
	}
	// regexp2 reports rune indices; map them to byte offsets.
	offs := make([]int, 0, len(s)+1)
	for i := range s {
		offs = append(offs, i)
	}
	offs = append(offs, len(s))
	prev := 0
	m, err := p.re.FindStringMatch(s)
	for err == nil && m != nil {
		start, end := offs[m.Index], offs[m.Index+m.Length]
		if start > prev {
			fn(s[prev:start])
		}
		if end > start {
			fn(s[start:end])
		}
		prev = end
		m, err = p.re.FindNextMatch(m)
	}
	if err != nil {
		// Not regexp2's error: it quotes the whole input.
		err = fmt.Errorf("split pattern %q: a match took longer than %v (catastrophic backtracking); fix the pattern in the tokenizer's pre_tokenizer",
			p.re.String(), splitTimeout)
		p.err.CompareAndSwap(nil, &err)
		return
	}
	if prev < len(s) {
		fn(s[prev:])
	}
}

// splitterFor returns the hand-written matcher for the known patterns and a
// regexp2 matcher otherwise.
func splitterFor(pattern string) (splitter, error) {
	switch pattern {
	case qwen2Pattern:
		return gpt4Splitter{maxDigits: 1}, nil
	case llama3Pattern:
		return gpt4Splitter{maxDigits: 3}, nil
	}
	return newRegexSplitter(pattern)
}
