package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Options are the allowed answers of a question.
type Options struct {
	Values []int    `json:"values,omitempty"` // allowed answers in order; nil for an open or too large range
	Labels []string `json:"labels,omitempty"` // label per value ("" when the text names none); nil if none named
	Min    float64  `json:"min"`              // scale ends used to map answers onto [0,1]
	Max    float64  `json:"max"`
}

// MaxOptionValues caps how many values a stated range is expanded into; a
// wider range keeps only Min and Max.
const MaxOptionValues = 10001

// Index returns the position of v in Values, or -1.
func (o *Options) Index(v float64) int {
	if v != math.Trunc(v) {
		return -1
	}
	if n := len(o.Values); n > 0 && o.Values[n-1]-o.Values[0] == n-1 {
		// A contiguous range: no search needed.
		i := int(v) - o.Values[0]
		if i >= 0 && i < n && float64(o.Values[i]) == v {
			return i
		}
		return -1
	}
	for i, x := range o.Values {
		if float64(x) == v {
			return i
		}
	}
	return -1
}

// Contains reports whether v is an allowed answer (within [Min, Max] for an
// open range).
func (o *Options) Contains(v float64) bool {
	if len(o.Values) == 0 {
		return v >= o.Min && v <= o.Max
	}
	return o.Index(v) >= 0
}

// Scale maps v onto [0,1] by the scale ends (0 when the scale is one point).
func (o *Options) Scale(v float64) float64 {
	if o.Max == o.Min {
		return 0
	}
	return (v - o.Min) / (o.Max - o.Min)
}

// NewOptions builds options given as data (a field of the record rather
// than text): values in order and optional labels, one per value.
func NewOptions(values []int, labels []string) (Options, error) {
	if len(values) == 0 {
		return Options{}, errors.New("data: options: no values")
	}
	if labels != nil && len(labels) != len(values) {
		return Options{}, fmt.Errorf("data: options: %d labels for %d values", len(labels), len(values))
	}
	seen := make(map[int]bool, len(values))
	o := Options{Values: append([]int(nil), values...), Min: float64(values[0]), Max: float64(values[0])}
	for _, v := range values {
		if seen[v] {
			return Options{}, fmt.Errorf("data: options: value %d repeated", v)
		}
		seen[v] = true
		o.Min = math.Min(o.Min, float64(v))
		o.Max = math.Max(o.Max, float64(v))
	}
	if labels != nil {
		o.Labels = append([]string(nil), labels...)
	}
	return o, nil
}

// rangeOptions expands lo..hi.
func rangeOptions(lo, hi int) Options {
	if lo > hi {
		lo, hi = hi, lo
	}
	o := Options{Min: float64(lo), Max: float64(hi)}
	if hi-lo+1 <= MaxOptionValues {
		o.Values = make([]int, 0, hi-lo+1)
		for v := lo; v <= hi; v++ {
			o.Values = append(o.Values, v)
		}
	}
	return o
}

// setLabel names value v if it is one of the options.
func (o *Options) setLabel(v int, label string) {
	i := o.Index(float64(v))
	if i < 0 || label == "" {
		return
	}
	if o.Labels == nil {
		o.Labels = make([]string, len(o.Values))
	}
	o.Labels[i] = label
}

const num = `-?\d+(?:,\d{3})*`

var (
	reReturn   = regexp.MustCompile(`(?i)\bonly\s+return\b`)
	reRange    = regexp.MustCompile(`(?i)\b(?:integer|number|whole number|value)\s+(?:from|between)\s+(` + num + `)\s+(?:to|and)\s+(` + num + `)`)
	reFor      = regexp.MustCompile(`(?:^|;\s*|,\s*|\s+or\s+|\s+and\s+)(` + num + `)\s+for\s+`)
	reIfUpTo   = regexp.MustCompile(`^(` + num + `)\s+if\s+(.+?),\s*(?:up\s+)?to\s+(` + num + `)\s+if\s+(.+)$`)
	reWhere    = regexp.MustCompile(`(?:^|,\s*|\s+and\s+|\s+)(` + num + `)\s*(?:means|=)\s*`)
	reNothing  = regexp.MustCompile(`(?i),?\s*(?:and\s+)?nothing else.*$`)
	reResponse = regexp.MustCompile(`(?i)^\s*(?:response\s*:\s*)?(-?(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?)(?:\.?$|\.\s|[^\w.])`)
)

// lastReturn locates the last "Only return" (any case and spacing) in s:
// the start and end of the phrase, or -1, -1. The common spellings are
// found with plain string search; the regexp only runs on the rest.
func lastReturn(s string) (start, end int) {
	i := max(strings.LastIndex(s, "Only return"), strings.LastIndex(s, "only return"))
	if i >= 0 && !strings.Contains(s[i+len("only return"):], "eturn") {
		if j := i + len("only return"); j == len(s) || !isWordByte(s[j]) {
			if i == 0 || !isWordByte(s[i-1]) {
				return i, j
			}
		}
	}
	locs := reReturn.FindAllStringIndex(s, -1)
	if len(locs) == 0 {
		return -1, -1
	}
	return locs[len(locs)-1][0], locs[len(locs)-1][1]
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func atoi(s string) (int, bool) {
	n, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
	return n, err == nil
}

// trimLabel strips the quotes and trailing punctuation around a label.
func trimLabel(s string) string {
	s = reNothing.ReplaceAllString(s, "")
	s = strings.TrimSpace(s)
	s = strings.TrimRight(s, ".,;:\"”'’ ")
	s = strings.TrimLeft(s, "\"“'‘ ")
	return strings.TrimSpace(s)
}

// ParseOptions finds the answer options a question states: "an integer
// from 1 to 7[, where 1 means X and 7 means Y]", "a number from 0 to 10",
// "1 for Yes or 2 for No", "1 for 'A'; 2 for 'B'; 3 for 'C'", "1 if X, up to
// 4 if Y". It reads the last "Only return ..." sentence of the text (the
// whole text when there is none). ok is false for open answers ("an
// integer representing dollars").
func ParseOptions(question string) (Options, bool) {
	tail := question
	if _, end := lastReturn(question); end >= 0 {
		tail = question[end:]
	}
	tail = strings.TrimSpace(tail)
	if o, ok := parseFor(tail); ok {
		return o, true
	}
	if m := reIfUpTo.FindStringSubmatch(tail); m != nil {
		lo, ok1 := atoi(m[1])
		hi, ok2 := atoi(m[3])
		if ok1 && ok2 && lo != hi {
			o := rangeOptions(lo, hi)
			o.setLabel(lo, trimLabel(m[2]))
			o.setLabel(hi, trimLabel(m[4]))
			return o, true
		}
	}
	m := reRange.FindStringSubmatchIndex(tail)
	if m == nil && tail != question {
		tail = question
		if all := reRange.FindAllStringSubmatchIndex(question, -1); len(all) > 0 {
			m = all[len(all)-1]
		}
	}
	if m == nil {
		return Options{}, false
	}
	lo, ok1 := atoi(tail[m[2]:m[3]])
	hi, ok2 := atoi(tail[m[4]:m[5]])
	if !ok1 || !ok2 || lo == hi {
		return Options{}, false
	}
	o := rangeOptions(lo, hi)
	if rest := tail[m[1]:]; o.Values != nil {
		if i := strings.Index(rest, "where"); i >= 0 && i < 40 {
			parseWhere(&o, rest[i+len("where"):])
		}
	}
	return o, true
}

// parseFor reads "1 for A; 2 for B" / "1 for A or 2 for B".
func parseFor(tail string) (Options, bool) {
	locs := reFor.FindAllStringSubmatchIndex(tail, -1)
	if len(locs) < 2 || locs[0][0] != 0 {
		return Options{}, false
	}
	values := make([]int, 0, len(locs))
	labels := make([]string, 0, len(locs))
	for i, l := range locs {
		v, ok := atoi(tail[l[2]:l[3]])
		if !ok {
			return Options{}, false
		}
		end := len(tail)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		values = append(values, v)
		labels = append(labels, trimLabel(tail[l[1]:end]))
	}
	o, err := NewOptions(values, labels)
	return o, err == nil
}

// parseWhere reads "1 means X and 7 means Y" / "1 = 'X', 2 = 'Y'" labels.
func parseWhere(o *Options, s string) {
	locs := reWhere.FindAllStringSubmatchIndex(s, -1)
	for i, l := range locs {
		v, ok := atoi(s[l[2]:l[3]])
		if !ok {
			continue
		}
		end := len(s)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		o.setLabel(v, trimLabel(s[l[1]:end]))
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

// Options returns the example's answer options: an "options" field if the
// record has one (a list of integers, of labels numbered from 1, or of
// {"value","label"} objects), else the ones its input text states.
func (e *Example) Options() (Options, bool) {
	if raw, ok := e.Extra["options"]; ok {
		if o, err := optionsField(raw); err == nil {
			return o, true
		}
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
	return ParseOptions(text)
}

// optionsField decodes the field-given form of options.
func optionsField(raw json.RawMessage) (Options, error) {
	if kind(raw) == "object" { // an Options value as this package writes it
		var o Options
		if err := json.Unmarshal(raw, &o); err != nil {
			return Options{}, fmt.Errorf("data: options field: %w", err)
		}
		if len(o.Values) == 0 {
			if !(o.Min < o.Max) {
				return Options{}, errors.New("data: options field: no values and no min < max")
			}
			return Options{Min: o.Min, Max: o.Max}, nil
		}
		n, err := NewOptions(o.Values, o.Labels)
		if err != nil {
			return Options{}, err
		}
		if o.Min <= n.Min && o.Max >= n.Max && o.Min < o.Max {
			n.Min, n.Max = o.Min, o.Max // a wider stated scale wins
		}
		return n, nil
	}
	var ints []int
	if err := json.Unmarshal(raw, &ints); err == nil {
		return NewOptions(ints, nil)
	}
	var labels []string
	if err := json.Unmarshal(raw, &labels); err == nil {
		values := make([]int, len(labels))
		for i := range values {
			values[i] = i + 1
		}
		return NewOptions(values, labels)
	}
	var objs []struct {
		Value *int   `json:"value"`
		Label string `json:"label"`
	}
	if err := json.Unmarshal(raw, &objs); err != nil {
		return Options{}, fmt.Errorf("data: options field: want a list of integers, labels or {value,label}: %w", err)
	}
	values := make([]int, len(objs))
	labels = make([]string, len(objs))
	for i, o := range objs {
		if o.Value == nil {
			return Options{}, fmt.Errorf("data: options field: item %d has no value", i)
		}
		values[i], labels[i] = *o.Value, o.Label
	}
	return NewOptions(values, labels)
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
