package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Options are the allowed answers of a question: enumerated Values, or an
// open numeric answer (Values nil) bounded by Min and Max, either of which
// may be infinite.
type Options struct {
	Values []float64 `json:"values,omitempty"` // allowed answers in order; nil for an open numeric answer
	Labels []string  `json:"labels,omitempty"` // label per value ("" when the text names none); nil if none named
	Min    float64   `json:"min"`              // scale ends used to map answers onto [0,1]
	Max    float64   `json:"max"`
	Form   string    `json:"form,omitempty"` // the answer-format form that stated them (Forms), or "field"
}

// DefaultMaxOptions is how many values a stated range is expanded into by
// default (predict's --max-options): "an integer from 0 to 100" is
// enumerated, "from 0 to 2000" is an open numeric answer from 0 to 2000.
const DefaultMaxOptions = 101

// MaxOptionValues caps any options, stated or given as a field.
const MaxOptionValues = 10001

// maxFormatBytes bounds the answer-format text ParseOptionsMax reads.
const maxFormatBytes = 4096

// maxExact is the largest magnitude at which every integer is a float64.
const maxExact = 1 << 53

// Open reports whether the options are an open numeric answer.
func (o *Options) Open() bool { return len(o.Values) == 0 }

// Index returns the position of v in Values, or -1.
func (o *Options) Index(v float64) int {
	n := len(o.Values)
	if n > 1 {
		// Evenly spaced values (the usual range): compute the index.
		step := o.Values[1] - o.Values[0]
		if step > 0 && o.Values[n-1] == o.Values[0]+float64(n-1)*step {
			if f := math.Round((v - o.Values[0]) / step); f >= 0 && f < float64(n) && o.Values[int(f)] == v {
				return int(f)
			}
		}
	}
	return slices.Index(o.Values, v)
}

// Contains reports whether v is an allowed answer (within [Min, Max] for an
// open numeric answer).
func (o *Options) Contains(v float64) bool {
	if len(o.Values) == 0 {
		return v >= o.Min && v <= o.Max
	}
	return o.Index(v) >= 0
}

// Scale maps v onto [0,1] by the scale ends (0 when the scale is one point
// or unbounded).
func (o *Options) Scale(v float64) float64 {
	w := o.Max - o.Min
	if w == 0 || math.IsInf(w, 0) || math.IsNaN(w) {
		return 0
	}
	return (v - o.Min) / w
}

// Summary describes the options briefly for logs: "1..7", "1,2", "open
// 0..2000", "open".
func (o *Options) Summary() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	n := len(o.Values)
	switch {
	case n == 0 && math.IsInf(o.Min, -1) && math.IsInf(o.Max, 1):
		return "open"
	case n == 0:
		return "open " + f(o.Min) + ".." + f(o.Max)
	case n > 2 && o.Values[n-1]-o.Values[0] == float64(n-1) && o.Index(o.Values[n/2]) == n/2:
		return f(o.Values[0]) + ".." + f(o.Values[n-1])
	}
	parts := make([]string, 0, min(n, 8))
	for i, v := range o.Values {
		if i == 7 && n > 8 {
			parts = append(parts, "…", f(o.Values[n-1]))
			break
		}
		parts = append(parts, f(v))
	}
	return strings.Join(parts, ",")
}

// openOptions is an open numeric answer between lo and hi (±Inf for none).
func openOptions(lo, hi float64, form string) Options {
	return Options{Min: math.Min(lo, hi), Max: math.Max(lo, hi), Form: form}
}

// MarshalJSON writes Options with min or max left out when infinite (an
// unbounded open numeric answer), which JSON cannot represent.
func (o Options) MarshalJSON() ([]byte, error) {
	type plain Options
	v := struct {
		plain
		Min *float64 `json:"min,omitempty"`
		Max *float64 `json:"max,omitempty"`
	}{plain: plain(o)}
	if !math.IsInf(o.Min, 0) {
		v.Min = &o.Min
	}
	if !math.IsInf(o.Max, 0) {
		v.Max = &o.Max
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads what MarshalJSON writes: a missing min or max is
// unbounded.
func (o *Options) UnmarshalJSON(b []byte) error {
	type plain Options
	var v struct {
		plain
		Min *float64 `json:"min"`
		Max *float64 `json:"max"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*o = Options(v.plain)
	o.Min, o.Max = math.Inf(-1), math.Inf(1)
	if v.Min != nil {
		o.Min = *v.Min
	}
	if v.Max != nil {
		o.Max = *v.Max
	}
	return nil
}

// NewOptions builds options given as data (a field of the record rather
// than text): values in order and optional labels, one per value.
func NewOptions(values []float64, labels []string) (Options, error) {
	o, err := newOptions(values, labels)
	if err != nil {
		return Options{}, fmt.Errorf("data: options: %w", err)
	}
	return o, nil
}

func newOptions(values []float64, labels []string) (Options, error) {
	if len(values) == 0 {
		return Options{}, errors.New("no values")
	}
	if len(values) > MaxOptionValues {
		return Options{}, fmt.Errorf("%d values, more than %d", len(values), MaxOptionValues)
	}
	if labels != nil && len(labels) != len(values) {
		return Options{}, fmt.Errorf("%d labels for %d values", len(labels), len(values))
	}
	seen := make(map[float64]bool, len(values))
	o := Options{Values: append([]float64(nil), values...), Min: values[0], Max: values[0]}
	for _, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Options{}, fmt.Errorf("value %v is not a finite number", v)
		}
		if seen[v] {
			return Options{}, fmt.Errorf("value %v repeated", v)
		}
		seen[v] = true
		o.Min = math.Min(o.Min, v)
		o.Max = math.Max(o.Max, v)
	}
	if labels != nil {
		o.Labels = append([]string(nil), labels...)
	}
	return o, nil
}

// setLabel names value v if it is one of the options.
func (o *Options) setLabel(v float64, label string) {
	i := o.Index(v)
	if i < 0 || label == "" {
		return
	}
	if o.Labels == nil {
		o.Labels = make([]string, len(o.Values))
	}
	o.Labels[i] = label
}

// decimal is a number as written in a question: its value and, when it is
// small enough to be exact, mant/10^scale.
type decimal struct {
	val   float64
	mant  int64
	scale int
	exact bool // |mant| ≤ 2^53 and scale ≤ 15
	point bool // written with a decimal point ("1.0")
}

var numReplacer = strings.NewReplacer(",", "", "−", "-", "–", "-", "+", "")

// parseDecimal reads a number matched by num: "1,200", "-3", "−2.5", "+4".
func parseDecimal(s string) (decimal, bool) {
	s = numReplacer.Replace(s)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return decimal{}, false
	}
	d := decimal{val: v}
	neg := strings.HasPrefix(s, "-")
	ip, frac, point := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	d.point = point
	frac = strings.TrimRight(frac, "0")
	digits := strings.TrimLeft(ip+frac, "0")
	if len(frac) > 15 || len(digits) > 16 {
		return d, true // a value, but too long to enumerate from
	}
	m, err := strconv.ParseInt("0"+digits, 10, 64)
	if err != nil || m > maxExact {
		return d, true
	}
	if neg {
		m = -m
	}
	d.mant, d.scale, d.exact = m, len(frac), true
	return d, true
}

var pow10 = [...]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// rescale returns d's mantissa at a larger scale, if it stays exact.
func (d decimal) rescale(scale int) (int64, bool) {
	k := scale - d.scale
	if !d.exact || k < 0 || k >= len(pow10) {
		return 0, false
	}
	if d.mant != 0 && (d.mant > maxExact/pow10[k] || d.mant < -maxExact/pow10[k]) {
		return 0, false
	}
	return d.mant * pow10[k], true
}

// floorDiv is ⌊a/b⌋ for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// stepRange is the answers from lo to hi: every integer, or every step
// from lo (multiples of step when multiple is set). It is enumerated when
// the count is at most limit, counted without overflow before anything is
// allocated; else (or when the numbers are too long to be exact, or are
// decimals with no step) it is an open numeric answer from lo to hi. ok is
// false for a range of one point.
func stepRange(lo, hi decimal, step *decimal, multiple bool, limit int, form string) (Options, bool) {
	if lo.val > hi.val {
		lo, hi = hi, lo
	}
	if lo.val == hi.val {
		return Options{}, false
	}
	open := openOptions(lo.val, hi.val, form)
	unit := decimal{val: 1, mant: 1, exact: true}
	if step == nil {
		if lo.point || hi.point {
			return open, true // "a number from 0.0 to 1.0": no step stated
		}
		step = &unit
	}
	if step.val < 0 {
		s := *step
		s.val, s.mant = -s.val, -s.mant
		step = &s
	}
	scale := max(lo.scale, hi.scale, step.scale)
	l, ok1 := lo.rescale(scale)
	h, ok2 := hi.rescale(scale)
	s, ok3 := step.rescale(scale)
	if !ok1 || !ok2 || !ok3 || s <= 0 {
		return open, true
	}
	if multiple {
		l = -floorDiv(-l, s) * s // ⌈l/s⌉·s
		h = floorDiv(h, s) * s
	}
	if h < l {
		return Options{}, false
	}
	if h > maxExact || l < -maxExact {
		return open, true // rounded out to a multiple past the exact floats
	}
	// |l|, |h| ≤ 2^53, so h-l fits an int64.
	n := (h-l)/s + 1
	if n < 2 || n > int64(limit) {
		return open, n >= 2
	}
	o := Options{Values: make([]float64, n), Form: form}
	for k := range o.Values {
		o.Values[k] = float64(l+int64(k)*s) / float64(pow10[scale])
	}
	o.Min, o.Max = o.Values[0], o.Values[n-1]
	return o, true
}

// num is a number as questions write it: "7", "-5", "−3", "1,200", "2.5".
const num = `[-−–+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?`

// Pieces of the answer-format grammar.
const (
	// lead is what may precede a list of answers: "Only return [either] ...",
	// "Only return a number: ...", "Only return the number of your answer: ...".
	lead = `(?i)^\s*(?:(?:a|an|the|one|either|just|only|your|single|whole)\s+)*(?:of\s+)?` +
		`(?:(?:integer|number|numeral|value|digit|response|answer|code|option)s?\b(?:[^:\d"“'‘]*:)?)?\s*[:,(–—]?\s*`
	// noun is what the answer is called before its range.
	noun = `(?:integers?|numbers?|numerals?|values?|ratings?|scores?|percentages?|percent|amounts?|counts?|digits?|years?|responses?|answers?|estimates?|figures?|probability|likelihood)`
	// label is an endpoint's name: "(Definitely not eligible)", "'not at all'",
	// "= Strongly agree", "meaning never".
	label = `(?:\s*\([^()]+\)|\s*["“][^"”]+["”]|\s*['‘].+?['’]|\s*[=:,]?\s*(?:means?|meaning|being|for|as|is|indicating|representing|=|:)\s+.+?)`
	// label2 is the upper endpoint's name, delimited.
	label2 = `(?:\s*\([^()\d][^()]*\)|\s*["“][^"”]+["”]|\s*['‘][^'’]+['’]|\s*(?:=|:|means|meaning|being)\s+[^,;.()\d][^,;.()]*)`
	conn   = `(?:\s+(?:to|through|thru|and|up\s+to)\s+|\s*[-–—]\s*)`
	// endpoints is "A [label] to B[%] [label]".
	endpoints = `(` + num + `)\s*%?(` + label + `)??` + conn + `(` + num + `)\s*(?:%|percent\b)?(` + label2 + `)?`
	stepWords = `(?i)(?:(?:in\s+)?(?:increments|steps|intervals)\s+of|multiples?\s+of|rounded\s+to\s+the\s+nearest|step(?:\s+size)?\s+(?:of\s+)?)\s*(` + num + `)`
)

var (
	reAnchor = regexp.MustCompile(`(?i)\b(?:only\s+(?:return|respond\s+with|answer\s+with|reply\s+with|give|provide|output|enter|write)|(?:return|respond\s+with|answer\s+with|reply\s+with|provide|output|give)\s+only)\b`)
	reLead   = regexp.MustCompile(lead)
	// "an integer from 1 to 7", "a number between 0 "not at all" and 10 "completely"".
	reRange = regexp.MustCompile(`(?i)\b` + noun + `\s*,?\s*(?:(?:ranging|that\s+ranges?|which\s+ranges?|range|(?:in|within)\s+the\s+range(?:\s+of)?)\s+(?:from\s+|between\s+)?|(?:from|between|of)\s+)` + endpoints)
	// "on a scale of 1 to 10", "on a scale from 1 (X) to 5 (Y)".
	reScale = regexp.MustCompile(`(?i)\bscale\s+(?:of|from)\s+` + endpoints)
	// "an integer 1-5", "a number (0-100)".
	reDash = regexp.MustCompile(`(?i)\b` + noun + `\s*\(?\s*(` + num + `)()(?:\s*[-–—]\s*|\s+(?:to|through)\s+)(` + num + `)()\s*\)?`)
	// "from 0 to 100" with no noun, early in the answer format.
	reBare     = regexp.MustCompile(`(?i)\b(?:from|between)\s+` + endpoints)
	reMultiple = regexp.MustCompile(`(?i)\bmultiple\s+of\s+(` + num + `)\s*,?\s*(?:(?:that\s+is|which\s+is)\s+)?(?:from|between)\s+(` + num + `)` + conn + `(` + num + `)`)
	reStep     = regexp.MustCompile(stepWords)
	// The item of a list: "1 for X", "1 if X", "1 = X", "1 (X)". The
	// separator before it tells a gap ("up to", "…") from a next item.
	reListItem = regexp.MustCompile(`(?i)(^|\s*[;,]\s*(?:or\s+|and\s+)?|\s+or\s+|\s+and\s+|\s*(?:,\s*)?(?:\.\.\.|…)\s*,?\s*|\s*,?\s+(?:up\s+)?to\s+|\s*,?\s+through\s+|:\s*|\s+)(` + num + `)(\s+for\s+|\s+if\s+|\s*(?:=|:|-|–|—)\s*|\s+(?:means|indicates|represents|is)\s+|\s*\(([^()]+)\))`)
	// "Yes (1) or No (2)".
	reParenValue = regexp.MustCompile(`\(\s*(` + num + `)\s*\)`)
	// "0 or 1", "1, 2, 3, 4 or 5".
	reValues = regexp.MustCompile(`(?i)^(` + num + `)((?:\s*(?:,|/|,?\s*or|,?\s*and)\s*` + num + `)+)`)
	// What may follow a list of values: the end, punctuation, labels.
	reValuesEnd = regexp.MustCompile(`(?i)^\s*(?:$|[,.;!"”'’)]|nothing\b|where\b|with\b|\()`)
	// "(0-100)" after an open numeric answer's description.
	reParenRange = regexp.MustCompile(`\(\s*(` + num + `)()\s*%?\s*(?:[-–—]|to)\s*(` + num + `)()\s*%?\s*\)`)
	reNum        = regexp.MustCompile(num)
	// An open numeric answer: "an integer representing dollars", "a number".
	reOpen = regexp.MustCompile(`(?i)^\s*(?:(?:a|an|the|one|your|just|single)\s+)*(?:(?:whole|positive|non-?negative|nonnegative|round(?:ed)?|integer|numeric(?:al)?|decimal|dollar|estimated)\s+)*` +
		`(?:integers?|numbers?|numerals?|numeric(?:al)?\s+values?|values?|amounts?|figures?|estimates?|counts?|percentages?|percent|years?|ages?|ratings?|scores?|probability|likelihood)\b`)
	reAtLeast  = regexp.MustCompile(`(?i)(?:at\s+least|no\s+(?:less|fewer)\s+than|greater\s+than\s+or\s+equal\s+to|(?:greater|more|larger)\s+than|minimum\s+(?:of\s+)?|above)\s*(` + num + `)|(` + num + `)\s+or\s+(?:more|greater|higher|above)`)
	reAtMost   = regexp.MustCompile(`(?i)(?:at\s+most|no\s+(?:more|greater)\s+than|less\s+than\s+or\s+equal\s+to|(?:less|fewer|smaller)\s+than|up\s+to|maximum\s+(?:of\s+)?|below)\s*(` + num + `)|(` + num + `)\s+or\s+(?:less|fewer|lower|below)`)
	rePositive = regexp.MustCompile(`(?i)\b(?:positive|non-?negative|nonnegative)\b`)
	rePercent  = regexp.MustCompile(`(?i)\bpercent(?:age)?s?\b`)
	reWhere    = regexp.MustCompile(`(?:^|[,;(]\s*|\s+and\s+|\s+)(` + num + `)\s*(?:=|:|\s+(?:means|is|being|indicates|indicating|represents|representing|for)\s+)\s*`)
	reResponse = regexp.MustCompile(`(?i)^\s*(?:response\s*:\s*)?(-?(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?)(?:\.?$|\.\s|[^\w.])`)
)

// Form is one way questions state their answers, with a real example.
type Form struct {
	Name    string
	Example string // a real SocSci210 answer-format sentence (or the issue's)
	// parse reads the answer-format text s (after "Only return"); it
	// returns where in s the form starts, so that the form stated first
	// wins.
	parse func(s string, limit int) (o Options, at int, ok bool)
}

// Forms lists the answer-format forms ParseOptions knows, in order of
// precedence when two start at the same place.
var Forms = []Form{
	{"multiple", "Only return a multiple of 100 between 0 and 1000, nothing else.", parseMultiple},
	{"range", "Only return an integer from 1 to 7, where 1 means Strongly disagree and 7 means Strongly agree, nothing else.", parseRange},
	{"scale", "Only return an integer on a scale of 1 (Definitely not eligible) to 5 (Definitely eligible).", parseScale},
	{"list", "Only return 1 for 'Yes' or 2 for 'No', nothing else.", parseList},
	{"label-value", "Only return Yes (1) or No (2), nothing else.", parseLabelValue},
	{"values", "Only return 0 or 1, nothing else.", parseValues},
	{"numeric", "Only return an integer representing the estimated monthly cost in dollars, nothing else.", parseOpen},
}

// answerFormat locates the answer-format sentence: the text after the last
// "Only return" (or "Return only", "Only respond with", ...), and whether
// there was one.
func answerFormat(s string) (tail string, start int, ok bool) {
	if st, end := lastReturn(s); end >= 0 {
		return strings.TrimSpace(s[end:]), st, true
	}
	return s, -1, false
}

// lastReturn locates the last answer-format phrase ("Only return", any case
// and spacing, or a synonym) in s: its start and end, or -1, -1. The common
// spelling is found with plain string search; the regexp only runs on the
// rest.
func lastReturn(s string) (start, end int) {
	i := max(strings.LastIndex(s, "Only return"), strings.LastIndex(s, "only return"))
	if i >= 0 && !strings.Contains(s[i+len("only return"):], "eturn") && !strings.Contains(s[i+len("only return"):], "nly ") {
		if j := i + len("only return"); j == len(s) || !isWordByte(s[j]) {
			if i == 0 || !isWordByte(s[i-1]) {
				return i, j
			}
		}
	}
	locs := reAnchor.FindAllStringIndex(s, -1)
	if len(locs) == 0 {
		return -1, -1
	}
	return locs[len(locs)-1][0], locs[len(locs)-1][1]
}

// AnswerFormat returns a question's answer-format sentence ("Only return
// ..."), or "" when it states none.
func AnswerFormat(text string) string {
	if st, _ := lastReturn(text); st >= 0 {
		return strings.TrimSpace(text[st:])
	}
	return ""
}

func firstRune(s string) rune { r, _ := utf8.DecodeRuneInString(s); return r }

// containsFold reports whether s contains the lower-case word w in any case.
func containsFold(s, w string) bool {
	return strings.Contains(s, w) || strings.Contains(strings.ToLower(s), w)
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// cutNothing cuts ", [and] nothing else..." off s (a regexp took a third
// of the parse time).
func cutNothing(s string) string {
	i := strings.Index(s, "othing else")
	if i < 0 {
		i = strings.Index(strings.ToLower(s), "othing else")
	}
	if i < 1 || s[i-1] != 'n' && s[i-1] != 'N' {
		return s
	}
	t := strings.TrimRight(s[:i-1], " \t\n")
	if u := strings.TrimSuffix(t, "and"); u != t && (u == "" || u[len(u)-1] == ' ' || u[len(u)-1] == ',') {
		t = strings.TrimRight(u, " \t\n")
	}
	return strings.TrimSuffix(t, ",")
}

// trimLabel strips the quotes, parentheses, keywords and trailing
// punctuation around a label.
func trimLabel(s string) string {
	s = cutNothing(s)
	for {
		t := strings.TrimSpace(s)
		t = strings.TrimRight(t, ".,;:\"”'’ ")
		t = strings.TrimLeft(t, "\"“'‘=:, ")
		if strings.HasPrefix(t, "(") && strings.HasSuffix(t, ")") {
			t = t[1 : len(t)-1]
		}
		if o, c := strings.Count(t, "("), strings.Count(t, ")"); c > o && strings.HasSuffix(t, ")") {
			t = t[:len(t)-1]
		} else if o > c && strings.HasPrefix(t, "(") {
			t = t[1:]
		}
		for _, kw := range []string{"means ", "meaning ", "being ", "for ", "as ", "is ", "indicating ", "representing "} {
			if len(t) > len(kw) && strings.EqualFold(t[:len(kw)], kw) {
				t = t[len(kw):]
			}
		}
		if t == s {
			return t
		}
		s = t
	}
}

// ParseOptions finds the answer options a question states, expanding a
// range into at most DefaultMaxOptions values. See ParseOptionsMax.
func ParseOptions(question string) (Options, bool) {
	return ParseOptionsMax(question, DefaultMaxOptions)
}

// ParseOptionsMax finds the answer options a question states in its last
// "Only return ..." sentence (the whole text when there is none), by the
// forms in Forms: "an integer from 1 to 7[, where 1 means X and 7 means
// Y]", "from 1 (X) to 5 (Y)", "a multiple of 100 between 0 and 1000", "1
// for Yes or 2 for No", "1 = X, 2 = Y", "X (1) or Y (2)", "1 if X, up to 4
// if Y", "0 or 1", "an integer representing dollars". A range of more than
// limit values (or of decimals with no step) is an open numeric answer:
// Values nil, Min and Max its ends. ok is false when no form matches; an
// ambiguous text gets no options rather than wrong ones.
func ParseOptionsMax(question string, limit int) (Options, bool) {
	limit = min(max(limit, 2), MaxOptionValues)
	tail, start, anchored := answerFormat(question)
	// A real answer-format sentence is under 1 KB and a scenario a few KB:
	// longer text is not read further, which bounds the regexps' time.
	if len(tail) > maxFormatBytes {
		tail = tail[:maxFormatBytes]
	}
	var stated Options
	if anchored {
		o, ok := parseForms(tail, limit)
		if !ok || !o.Open() || !math.IsInf(o.Min, -1) || !math.IsInf(o.Max, 1) {
			// A sentence not understood gets no options, rather than a
			// range the scenario happens to mention.
			return o, ok
		}
		// Only "an integer": its range may be stated earlier ("On a scale
		// from 1 to 10, how ...?").
		stated = o
		question = question[:start]
	}
	// Otherwise only a range named as such counts, the last one stated.
	if len(question) > 4*maxFormatBytes {
		question = question[len(question)-4*maxFormatBytes:]
	}
	var best Options
	bestAt := -1
	for _, f := range []func(string, int) (Options, int, bool){parseMultiple, lastRange(reRange, "range"), lastRange(reScale, "scale")} {
		if o, at, ok := f(question, limit); ok && at > bestAt {
			best, bestAt = o, at
		}
	}
	if bestAt < 0 {
		return stated, anchored
	}
	return best, true
}

// parseForms tries every form on an answer-format sentence and keeps the one
// stated first.
func parseForms(tail string, limit int) (Options, bool) {
	var best Options
	bestAt := -1
	for _, f := range Forms {
		o, at, ok := f.parse(tail, limit)
		if ok && (bestAt < 0 || at < bestAt) {
			best, bestAt = o, at
			if o.Form == "" {
				best.Form = f.Name
			}
		}
	}
	return best, bestAt >= 0
}

// decimalAt reads the number of submatch i of m.
func decimalAt(s string, m []int, i int) (decimal, bool) {
	if m[2*i] < 0 {
		return decimal{}, false
	}
	return parseDecimal(s[m[2*i]:m[2*i+1]])
}

// rangeFrom builds the options of an endpoints match (groups lo, label,
// hi, label2 starting at group g) and reads a step and where-labels from
// the rest of the sentence.
func rangeFrom(s string, m []int, g int, limit int, form string) (Options, bool) {
	lo, ok1 := decimalAt(s, m, g)
	hi, ok2 := decimalAt(s, m, g+2)
	if !ok1 || !ok2 {
		return Options{}, false
	}
	rest := cutNothing(s[m[1]:])
	var step *decimal
	multiple := false
	if sm := reStep.FindStringSubmatchIndex(rest); sm != nil && sm[0] < 40 {
		if d, ok := parseDecimal(rest[sm[2]:sm[3]]); ok && d.val != 0 {
			step = &d
			multiple = strings.Contains(strings.ToLower(rest[sm[0]:sm[2]]), "multiple") || strings.Contains(strings.ToLower(rest[sm[0]:sm[2]]), "nearest")
		}
	}
	o, ok := stepRange(lo, hi, step, multiple, limit, form)
	if !ok {
		return o, false
	}
	if o.Values != nil {
		if m[2*g+2] >= 0 {
			o.setLabel(lo.val, trimLabel(s[m[2*g+2]:m[2*g+3]]))
		}
		if m[2*g+6] >= 0 {
			o.setLabel(hi.val, trimLabel(s[m[2*g+6]:m[2*g+7]]))
		}
		parseWhere(&o, rest)
	}
	return o, true
}

func parseRange(s string, limit int) (Options, int, bool) {
	m := reRange.FindStringSubmatchIndex(s)
	if m == nil {
		m = reDash.FindStringSubmatchIndex(s)
	}
	if m == nil {
		return Options{}, 0, false
	}
	o, ok := rangeFrom(s, m, 1, limit, "range")
	return o, m[0], ok
}

// lastRange returns a parser of the last range re finds in a text.
func lastRange(re *regexp.Regexp, form string) func(string, int) (Options, int, bool) {
	return func(s string, limit int) (Options, int, bool) {
		all := re.FindAllStringSubmatchIndex(s, -1)
		if len(all) == 0 {
			return Options{}, 0, false
		}
		m := all[len(all)-1]
		o, ok := rangeFrom(s, m, 1, limit, form)
		return o, m[0], ok
	}
}

func parseScale(s string, limit int) (Options, int, bool) {
	if !containsFold(s, "scale") {
		return Options{}, 0, false
	}
	m := reScale.FindStringSubmatchIndex(s)
	if m == nil {
		return Options{}, 0, false
	}
	o, ok := rangeFrom(s, m, 1, limit, "scale")
	return o, m[0], ok
}

func parseMultiple(s string, limit int) (Options, int, bool) {
	if !containsFold(s, "multiple") {
		return Options{}, 0, false
	}
	m := reMultiple.FindStringSubmatchIndex(s)
	if m == nil {
		return Options{}, 0, false
	}
	step, ok1 := decimalAt(s, m, 1)
	lo, ok2 := decimalAt(s, m, 2)
	hi, ok3 := decimalAt(s, m, 3)
	if !ok1 || !ok2 || !ok3 || step.val == 0 {
		return Options{}, 0, false
	}
	o, ok := stepRange(lo, hi, &step, true, limit, "multiple")
	return o, m[0], ok
}

// parseList reads answers listed with their labels: "1 for A; 2 for B",
// "1 = A, 2 = B", "1 (A) or 2 (B)", "1 if A, up to 4 if B", "1 = A, 2 = B,
// …, 7 = G". A gap ("up to", "through", "…") between two items stands for
// the integers between them.
func parseList(s string, limit int) (Options, int, bool) {
	// The list starts right after the lead words.
	l := reLead.FindStringIndex(s)
	if l == nil || l[1] == len(s) || !strings.ContainsRune("0123456789-−–+", firstRune(s[l[1]:])) {
		return Options{}, 0, false
	}
	locs := reListItem.FindAllStringSubmatchIndex(s, -1)
	if len(locs) < 2 {
		return Options{}, 0, false
	}
	if first := locs[0][4]; l[1] < first && strings.TrimSpace(s[l[1]:first]) != "" || first < l[1] {
		return Options{}, 0, false
	}
	// All items use the same kind of separator between value and label.
	kind := func(l []int) string {
		k := strings.ToLower(strings.TrimSpace(s[l[6]:l[7]]))
		if strings.HasPrefix(k, "(") {
			return "("
		}
		if k == "-" || k == "–" || k == "—" || k == ":" {
			return "="
		}
		return k
	}
	k0 := kind(locs[0])
	var values []float64
	var labels []string
	for i, l := range locs {
		if kind(l) != k0 {
			locs = locs[:i]
			break
		}
		v, ok := parseDecimal(s[l[4]:l[5]])
		if !ok {
			return Options{}, 0, false
		}
		var lab string
		if l[8] >= 0 {
			lab = s[l[8]:l[9]]
		} else {
			end := len(s)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			lab = s[l[1]:end]
		}
		if (k0 == "=" || k0 == "is") && lab != "" && lab[0] >= '0' && lab[0] <= '9' {
			return Options{}, 0, false // "1 - 5": a range, not a label
		}
		if sep := strings.ToLower(s[l[2]:l[3]]); i > 0 && isGap(sep) {
			prev := values[len(values)-1]
			// Integers only, and exact ones: above 2^53, x+1 == x.
			if prev != math.Trunc(prev) || v.val != math.Trunc(v.val) || v.val <= prev || v.val-prev > float64(limit) || math.Abs(prev) > maxExact || math.Abs(v.val) > maxExact {
				return Options{}, 0, false
			}
			for x := prev + 1; x < v.val; x++ {
				values = append(values, x)
				labels = append(labels, "")
			}
		}
		if len(values) >= limit {
			return Options{}, 0, false
		}
		values = append(values, v.val)
		labels = append(labels, trimLabel(lab))
	}
	if len(locs) < 2 {
		return Options{}, 0, false
	}
	o, err := NewOptions(values, labels)
	if err != nil {
		return Options{}, 0, false
	}
	if !slices.ContainsFunc(o.Labels, func(l string) bool { return l != "" }) {
		o.Labels = nil
	}
	return o, locs[0][0], true
}

func isGap(sep string) bool {
	return strings.Contains(sep, "to") || strings.Contains(sep, "through") || strings.Contains(sep, "…") || strings.Contains(sep, "...")
}

// parseLabelValue reads "Yes (1) or No (2)" and "X (1), Y (2), or Z (3)".
func parseLabelValue(s string, limit int) (Options, int, bool) {
	if !strings.Contains(s, "(") {
		return Options{}, 0, false
	}
	body := cutNothing(s)
	locs := reParenValue.FindAllStringSubmatchIndex(body, -1)
	if len(locs) < 2 || len(locs) > limit {
		return Options{}, 0, false
	}
	values := make([]float64, 0, len(locs))
	labels := make([]string, 0, len(locs))
	prev := 0
	if l := reLead.FindStringIndex(body); l != nil {
		prev = l[1]
	}
	for _, l := range locs {
		if l[0] < prev {
			return Options{}, 0, false
		}
		lab := body[prev:l[0]]
		// Strip the separator before the label.
		lab = strings.TrimSpace(lab)
		for _, p := range []string{",", ";", "or ", "and ", "/"} {
			lab = strings.TrimSpace(strings.TrimPrefix(lab, p))
		}
		lab = trimLabel(lab)
		if lab == "" || reNum.MatchString(lab) && len(lab) < 3 {
			return Options{}, 0, false
		}
		v, ok := parseDecimal(body[l[2]:l[3]])
		if !ok {
			return Options{}, 0, false
		}
		values = append(values, v.val)
		labels = append(labels, lab)
		prev = l[1]
	}
	if strings.TrimSpace(strings.Trim(body[prev:], ".,;\"”'’ ")) != "" {
		return Options{}, 0, false // more text after the list: not a list of answers
	}
	o, err := NewOptions(values, labels)
	if err != nil {
		return Options{}, 0, false
	}
	at := 0
	if l := reLead.FindStringIndex(body); l != nil {
		at = l[1]
	}
	return o, at, true
}

// parseValues reads bare lists of values: "0 or 1", "1, 2, 3, 4 or 5".
func parseValues(s string, limit int) (Options, int, bool) {
	l := reLead.FindStringIndex(s)
	if l == nil {
		return Options{}, 0, false
	}
	m := reValues.FindStringSubmatchIndex(s[l[1]:])
	if m == nil || !reValuesEnd.MatchString(s[l[1]+m[1]:]) {
		return Options{}, 0, false
	}
	nums := reNum.FindAllString(s[l[1]:l[1]+m[5]], limit+1)
	if len(nums) > limit {
		return Options{}, 0, false
	}
	values := make([]float64, 0, len(nums))
	for _, n := range nums {
		d, ok := parseDecimal(n)
		if !ok {
			return Options{}, 0, false
		}
		values = append(values, d.val)
	}
	o, err := NewOptions(values, nil)
	if err != nil {
		return Options{}, 0, false
	}
	parseWhere(&o, cutNothing(s[l[1]+m[1]:]))
	return o, l[1], true
}

// parseOpen reads an open numeric answer: "an integer representing
// dollars", "a positive number", "a percentage", with bounds where stated
// ("at least 0", "up to 100"). A range stated later in the sentence ("an
// integer representing dollars from 0 to 2000") makes it a range.
func parseOpen(s string, limit int) (Options, int, bool) {
	m := reOpen.FindStringIndex(s)
	if m == nil {
		return Options{}, 0, false
	}
	rest := cutNothing(s[m[1]:])
	r := reBare.FindStringSubmatchIndex(rest)
	if r == nil {
		r = reParenRange.FindStringSubmatchIndex(rest)
	}
	if r != nil && !strings.ContainsAny(rest[:r[0]], "\"“”'‘’") {
		o, ok := rangeFrom(rest, r, 1, limit, "range")
		return o, m[0], ok
	}
	lo, hi := math.Inf(-1), math.Inf(1)
	if rePercent.MatchString(s[:m[1]]) {
		lo, hi = 0, 100
	}
	if rePositive.MatchString(s[:m[1]]) {
		lo = 0
	}
	bound := func(re *regexp.Regexp, v *float64) {
		if b := re.FindStringSubmatch(rest); b != nil {
			for _, g := range b[1:] {
				if d, ok := parseDecimal(g); g != "" && ok {
					*v = d.val
				}
			}
		}
	}
	bound(reAtLeast, &lo)
	bound(reAtMost, &hi)
	if lo >= hi {
		return Options{}, 0, false
	}
	// Any other form stated in the sentence says more: this one comes last.
	return openOptions(lo, hi, "numeric"), len(s), true
}

// parseWhere reads the labels after a range: "where 1 means X and 7 means
// Y", "where 1 = 'X', 2 = 'Y'", "with 1 being X", "(1 = X, 5 = Y)".
func parseWhere(o *Options, s string) {
	i := strings.IndexAny(s, "(:")
	for _, w := range []string{"where", "with", "in which"} {
		if j := strings.Index(strings.ToLower(s), w); j >= 0 && (i < 0 || j < i) {
			i = j
		}
	}
	if i < 0 || i > 60 {
		return
	}
	s = s[i:]
	locs := reWhere.FindAllStringSubmatchIndex(s, -1)
	for k, l := range locs {
		v, ok := parseDecimal(s[l[2]:l[3]])
		if !ok {
			continue
		}
		end := len(s)
		if k+1 < len(locs) {
			end = locs[k+1][0]
		}
		o.setLabel(v.val, trimLabel(s[l[1]:end]))
	}
}

// ParseResponse reads the numeric answer of an output like "Response: 2"
// (the prefix is optional; "1,200", "-3" and "2.5" are accepted).
func ParseResponse(output string) (float64, bool) {
	m := reResponse.FindStringSubmatch(output)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(m[1], ",", ""), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	return v, true
}

// FormatResponse writes an answer the way SocSci210 outputs do: "Response: 2".
func FormatResponse(v float64) string {
	return "Response: " + strconv.FormatFloat(v, 'f', -1, 64)
}

// Options returns the example's answer options, ranges expanded into at
// most DefaultMaxOptions values. See OptionsMax.
func (e *Example) Options() (Options, bool) { return e.OptionsMax(DefaultMaxOptions) }

// OptionsMax returns the example's answer options: its "options" field if
// the record has one (the readers refuse a record whose field is invalid;
// an invalid field set in code gives no options), else the ones its input
// text states (ParseOptionsMax).
func (e *Example) OptionsMax(limit int) (Options, bool) {
	if raw, ok := e.Extra["options"]; ok && !isNull(raw) {
		o, err := ParseOptionsField(raw)
		return o, err == nil
	}
	text := e.Input
	if text == "" {
		text = e.Stimuli
	}
	if text == "" && len(e.Messages) > 0 {
		p := e.Prompt()
		if len(p) > 0 {
			text = p[len(p)-1].Content
		}
	}
	return ParseOptionsMax(text, limit)
}

// ParseOptionsField decodes options given as data: a list of numbers, of
// labels (numbered from 1), of {"value","label"} objects, or an Options
// object as this package writes it ({"values", "labels", "min", "max"};
// without values, an open numeric answer from min to max).
func ParseOptionsField(raw json.RawMessage) (Options, error) {
	o, err := optionsField(raw)
	if err == nil {
		o.Form = "field"
	}
	return o, err
}

func optionsField(raw json.RawMessage) (Options, error) {
	switch kind(raw) {
	case "object":
		var f struct {
			Values   []float64 `json:"values"`
			Labels   []string  `json:"labels"`
			Min, Max *float64
			Form     string `json:"form"`
		}
		if err := strictUnmarshal(raw, &f); err != nil {
			return Options{}, fmt.Errorf("want {values, labels, min, max}: %w", err)
		}
		o := Options{Values: f.Values, Labels: f.Labels, Min: math.Inf(-1), Max: math.Inf(1)}
		if f.Min != nil {
			o.Min = *f.Min
		}
		if f.Max != nil {
			o.Max = *f.Max
		}
		if len(o.Values) == 0 {
			if !(o.Min < o.Max) {
				return Options{}, fmt.Errorf("no values and no min < max (min %v, max %v)", o.Min, o.Max)
			}
			return Options{Min: o.Min, Max: o.Max}, nil
		}
		n, err := newOptions(o.Values, o.Labels)
		if err != nil {
			return Options{}, err
		}
		if o.Min <= n.Min && o.Max >= n.Max && o.Min < o.Max && !math.IsInf(o.Min, 0) && !math.IsInf(o.Max, 0) {
			n.Min, n.Max = o.Min, o.Max // a wider stated scale wins
		}
		return n, nil
	case "array":
	default:
		return Options{}, fmt.Errorf("want a list of numbers, labels or {value, label} objects, got %s", kind(raw))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return Options{}, err
	}
	if len(items) == 0 {
		return Options{}, errors.New("empty list")
	}
	if len(items) > MaxOptionValues {
		return Options{}, fmt.Errorf("%d options, more than %d", len(items), MaxOptionValues)
	}
	values := make([]float64, len(items))
	var labels []string
	switch kind(items[0]) {
	case "number":
		for i, it := range items {
			if err := json.Unmarshal(it, &values[i]); err != nil || kind(it) != "number" {
				return Options{}, fmt.Errorf("item %d: want a number, got %s", i, kind(it))
			}
		}
	case "string":
		labels = make([]string, len(items))
		for i, it := range items {
			if err := json.Unmarshal(it, &labels[i]); err != nil {
				return Options{}, fmt.Errorf("item %d: want a label, got %s", i, kind(it))
			}
			values[i] = float64(i + 1)
		}
	case "object":
		labels = make([]string, len(items))
		for i, it := range items {
			var obj struct {
				Value *float64 `json:"value"`
				Label string   `json:"label"`
			}
			if err := strictUnmarshal(it, &obj); err != nil {
				return Options{}, fmt.Errorf("item %d: want {value, label}: %w", i, err)
			}
			if obj.Value == nil {
				return Options{}, fmt.Errorf("item %d has no value", i)
			}
			values[i], labels[i] = *obj.Value, obj.Label
		}
	default:
		return Options{}, fmt.Errorf("item 0: want a number, label or {value, label}, got %s", kind(items[0]))
	}
	return newOptions(values, labels)
}

// strictUnmarshal decodes one JSON value refusing unknown fields.
func strictUnmarshal(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Question extracts the outcome question from a SocSci210 input: the text
// inside the quotes after the last "asked:", without the answer-format
// sentence; when the scenario has no "asked:", the whole scenario text
// before the answer-format sentence (it may describe the item the question
// refers to, as in "Some companies ... What is your opinion of this
// practice?").
func Question(input string) string {
	_, scen, _ := SplitPrompt(input)
	scen = strings.TrimPrefix(scen, "Scenario: ")
	cutFormat := func(s string) (string, bool) {
		if start, _ := lastReturn(s); start >= 0 {
			return s[:start], true
		}
		return s, false
	}
	if i := strings.LastIndex(scen, "asked:"); i >= 0 {
		q := strings.TrimSpace(scen[i+len("asked:"):])
		var closeQ string
		for _, p := range [][2]string{{"“", "”"}, {"\"", "\""}, {"'", "'"}, {"‘", "’"}} {
			if strings.HasPrefix(q, p[0]) {
				q, closeQ = q[len(p[0]):], p[1]
				break
			}
		}
		q, cut := cutFormat(q)
		if !cut && closeQ != "" {
			if j := strings.LastIndex(q, closeQ); j >= 0 {
				q = q[:j]
			}
		}
		if q = trimQuestion(q); q != "" {
			return q
		}
	}
	body, _ := cutFormat(scen)
	return trimQuestion(body)
}

func trimQuestion(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimRight(s, "\"”'’ ")
	return strings.TrimSpace(s)
}

// CellKey identifies a cell: one outcome question under one condition of
// one study. Task is the task_num when the record has one (then Question
// is empty), else -1 and Question holds the extracted question text.
type CellKey struct {
	Study     string `json:"study_id"`
	Condition int    `json:"condition_num"`
	Task      int    `json:"task_num"`
	Question  string `json:"question,omitempty"`
}

// String formats the key for logs.
func (k CellKey) String() string {
	if k.Task >= 0 {
		return fmt.Sprintf("%s/c%d/t%d", k.Study, k.Condition, k.Task)
	}
	return fmt.Sprintf("%s/c%d/%q", k.Study, k.Condition, k.Question)
}

// OutcomeKey returns the key without the condition: one question of a study.
func (k CellKey) OutcomeKey() CellKey { k.Condition = 0; return k }

// Cell returns the example's cell key.
func (e *Example) Cell() CellKey {
	if e.TaskNum >= 0 {
		return CellKey{Study: e.StudyID, Condition: e.ConditionNum, Task: e.TaskNum}
	}
	text := e.Input
	if text == "" {
		text = e.Stimuli
	}
	return CellKey{Study: e.StudyID, Condition: e.ConditionNum, Task: -1, Question: Question(text)}
}

// less orders cell keys deterministically.
func (k CellKey) less(o CellKey) bool {
	if k.Study != o.Study {
		return k.Study < o.Study
	}
	if k.Condition != o.Condition {
		return k.Condition < o.Condition
	}
	if k.Task != o.Task {
		return k.Task < o.Task
	}
	return k.Question < o.Question
}

func sortKeys(keys []CellKey) {
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
}
