package data

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

func vals(lo, hi float64) []float64 {
	var v []float64
	for x := lo; x <= hi; x++ {
		v = append(v, x)
	}
	return v
}

var inf = math.Inf(1)

// optionCases are answer-format sentences, most of them real (from the
// bundled SocSci210 rows or the held-out rows quoted in issue 15), with
// the options they state. values nil with ok: an open numeric answer from
// min to max.
var optionCases = []struct {
	text   string
	form   string
	ok     bool
	values []float64
	labels []string // nil: not checked
	min    float64
	max    float64
}{
	// range: "an integer from A to B", with or without "where" labels.
	{"Only return an integer from 1 to 7, nothing else.", "range", true, vals(1, 7), nil, 1, 7},
	{"Only return a number from 0 to 10, nothing else.", "range", true, vals(0, 10), nil, 0, 10},
	{"Only return an integer from 1 to 4, where 1 means Very Unlikely and 4 means Very Likely.", "range", true, vals(1, 4), []string{"Very Unlikely", "", "", "Very Likely"}, 1, 4},
	{"Only return an integer from 1 to 4 where 1 means Very fair and 4 means Very unfair, nothing else.\"", "range", true, vals(1, 4), []string{"Very fair", "", "", "Very unfair"}, 1, 4},
	{"Only return an integer from 1 to 7, where 1 = 'Strongly support' and 7 = 'Strongly oppose', nothing else.", "range", true, vals(1, 7), []string{"Strongly support", "", "", "", "", "", "Strongly oppose"}, 1, 7},
	{"Only return an integer from 1 to 5, where 1 = Not interested at all and 5 = Extremely interested.\"", "range", true, vals(1, 5), []string{"Not interested at all", "", "", "", "Extremely interested"}, 1, 5},
	{"Only return an integer from 1 to 3, where 1 means 'Favor', 2 means 'Neither', 3 means 'Oppose'.", "range", true, vals(1, 3), []string{"Favor", "Neither", "Oppose"}, 1, 3},
	{"Only return an integer from 0 to 6, where 0 means 'in all cases' and 6 means 'never – in no cases'.", "range", true, vals(0, 6), []string{"in all cases", "", "", "", "", "", "never – in no cases"}, 0, 6},
	{"Only return an integer from 0 to 100 representing percent likelihood, nothing else.\"", "range", true, vals(0, 100), nil, 0, 100},
	{"Only return an integer from 0 to 100, where 0 means 'Cold' and 100 means 'Warm'.", "range", true, vals(0, 100), nil, 0, 100},
	// endpoints with labels in parentheses or quotes (issue 15: 134 held-out rows)
	{"Only return an integer from 1 (Definitely not eligible) to 5 (Definitely eligible), nothing else.", "range", true, vals(1, 5), []string{"Definitely not eligible", "", "", "", "Definitely eligible"}, 1, 5},
	{`Only return an integer between 0 "not at all" and 10 "completely", nothing else.`, "range", true, vals(0, 10), []string{"not at all", "", "", "", "", "", "", "", "", "", "completely"}, 0, 10},
	{"Only return a number from 1 'don't know' to 3 'sure'.", "range", true, vals(1, 3), []string{"don't know", "", "sure"}, 1, 3},
	{"Only return an integer from 1 = strongly disagree to 7 = strongly agree, nothing else.", "range", true, vals(1, 7), []string{"strongly disagree", "", "", "", "", "", "strongly agree"}, 1, 7},
	{"Only return an integer between 1 and 5 (1 = never, 5 = always).", "range", true, vals(1, 5), []string{"never", "", "", "", "always"}, 1, 5},
	{"Only return an integer from 1 to 5, with 1 being Not at all and 5 being Extremely.", "range", true, vals(1, 5), []string{"Not at all", "", "", "", "Extremely"}, 1, 5},
	{"Only return an integer (1-5), nothing else.", "range", true, vals(1, 5), nil, 1, 5},
	{"Only return an integer ranging from 1 to 9.", "range", true, vals(1, 9), nil, 1, 9},
	// negative endpoints, percentages, decimals
	{"Only return an integer from -5 to 5, nothing else.", "range", true, vals(-5, 5), nil, -5, 5},
	{"Only return an integer from −3 (strongly oppose) to +3 (strongly support).", "range", true, vals(-3, 3), []string{"strongly oppose", "", "", "", "", "", "strongly support"}, -3, 3},
	{"Only return a percentage from 0 to 100, nothing else.", "range", true, vals(0, 100), nil, 0, 100},
	{"Only return a number between 0% and 100%.", "range", true, vals(0, 100), nil, 0, 100},
	{"Only return a number from 0.0 to 1.0, nothing else.", "range", true, nil, nil, 0, 1},
	{"Only return a number from 0 to 1 in increments of 0.1, nothing else.", "range", true, []float64{0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1}, nil, 0, 1},
	{"Only return a number from -2.5 to 2.5 in steps of 0.5.", "range", true, []float64{-2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5}, nil, -2.5, 2.5},
	// too wide to enumerate: an open numeric answer between the ends
	{"Only return an integer from 0 to 2000 representing dollars, nothing else.\"", "range", true, nil, nil, 0, 2000},
	{"Only return an integer from 0 to 1,200 representing dollars, nothing else.", "range", true, nil, nil, 0, 1200},
	{"Only return an integer from 0 to 1000000, nothing else.", "range", true, nil, nil, 0, 1000000},
	// multiples (issue 15: 12 held-out rows)
	{"Only return a multiple of 100 between 0 and 1000, nothing else.", "multiple", true, []float64{0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000}, nil, 0, 1000},
	{"Only return a multiple of 5 from 1 to 20.", "multiple", true, []float64{5, 10, 15, 20}, nil, 5, 20},
	{"Only return an integer between 0 and 50 that is a multiple of 10.", "range", true, []float64{0, 10, 20, 30, 40, 50}, nil, 0, 50},
	{"Only return a multiple of 1 between 0 and 100000.", "multiple", true, nil, nil, 0, 100000},
	// a scale stated in the question
	{"Only return an integer on a scale of 1 (Definitely not eligible) to 5 (Definitely eligible).", "scale", true, vals(1, 5), []string{"Definitely not eligible", "", "", "", "Definitely eligible"}, 1, 5},
	{"On a scale from 1 (Not at all) to 5 (Very), how X? Only return an integer from 1 to 5, nothing else.", "range", true, vals(1, 5), nil, 1, 5},
	{"On a scale from 1 to 10, how much do you trust them? Only return an integer, nothing else.", "scale", true, vals(1, 10), nil, 1, 10},
	// lists with labels
	{"Only return 1 for Yes or 2 for No, nothing else.”", "list", true, []float64{1, 2}, []string{"Yes", "No"}, 1, 2},
	{"Only return 1 for “Yes” or 2 for “No”, nothing else.", "list", true, []float64{1, 2}, []string{"Yes", "No"}, 1, 2},
	{"Q? Only return 1 for 'A'; 2 for 'B'; 3 for 'C', nothing else.", "list", true, []float64{1, 2, 3}, []string{"A", "B", "C"}, 1, 3},
	{"Only return 1 for 'Because the doctor felt it was the right thing to do.'; 2 for 'Because the doctor wanted to maintain a strong doctor-patient relationship with me.'; 3 for 'Because the doctor was hoping I would not file a malpractice lawsuit.', nothing else.", "list", true, []float64{1, 2, 3}, []string{"Because the doctor felt it was the right thing to do", "Because the doctor wanted to maintain a strong doctor-patient relationship with me", "Because the doctor was hoping I would not file a malpractice lawsuit"}, 1, 3},
	{"Only return 1 for 'A lot of money' or 2 for 'Very little money', nothing else.\"", "list", true, []float64{1, 2}, []string{"A lot of money", "Very little money"}, 1, 2},
	{"Only return 1 for 'Between 1 and 5 years'; 2 for 'More than 5 years'.", "list", true, []float64{1, 2}, []string{"Between 1 and 5 years", "More than 5 years"}, 1, 2},
	{"Only return 0 for No or 1 for Yes.", "list", true, []float64{0, 1}, []string{"No", "Yes"}, 0, 1},
	{"Only return 1 if you accept it as final, up to 4 if you strongly believe it should be challenged.", "list", true, vals(1, 4), []string{"you accept it as final", "", "", "you strongly believe it should be challenged"}, 1, 4},
	{"Only return 1 if Democrat, 2 if Republican, or 3 if Independent.", "list", true, vals(1, 3), []string{"Democrat", "Republican", "Independent"}, 1, 3},
	{"Only return 1 = Strongly agree, 2 = Agree, 3 = Disagree, 4 = Strongly disagree, nothing else.", "list", true, vals(1, 4), []string{"Strongly agree", "Agree", "Disagree", "Strongly disagree"}, 1, 4},
	{"Only return a number: 1 = Yes, 2 = No.", "list", true, vals(1, 2), []string{"Yes", "No"}, 1, 2},
	{"Only return 1 = Not at all, 2 = A little, …, 5 = Completely.", "list", true, vals(1, 5), []string{"Not at all", "A little", "", "", "Completely"}, 1, 5},
	{"Only return 1 (Yes) or 2 (No), nothing else.", "list", true, vals(1, 2), []string{"Yes", "No"}, 1, 2},
	{"Only return 1 means agree, 2 means disagree.", "list", true, vals(1, 2), []string{"agree", "disagree"}, 1, 2},
	{"Only return Yes (1) or No (2), nothing else.", "label-value", true, vals(1, 2), []string{"Yes", "No"}, 1, 2},
	{"Only return Democrat (1), Republican (2), or Independent (3).", "label-value", true, vals(1, 3), []string{"Democrat", "Republican", "Independent"}, 1, 3},
	{"Only return 0 or 1, nothing else.", "values", true, []float64{0, 1}, nil, 0, 1},
	{"Only return 1, 2, 3, 4, or 5.", "values", true, vals(1, 5), nil, 1, 5},
	// open numeric answers (issue 15: 70 held-out rows)
	{"Only return an integer representing dollars, nothing else.", "numeric", true, nil, nil, -inf, inf},
	{"Only return an integer representing the estimated monthly cost in dollars, nothing else.", "numeric", true, nil, nil, -inf, inf},
	{"Only return an integer representing the estimated monthly hours saved, nothing else.", "numeric", true, nil, nil, -inf, inf},
	{"Only return a positive integer, nothing else.", "numeric", true, nil, nil, 0, inf},
	{"Only return a number of at least 18.", "numeric", true, nil, nil, 18, inf},
	{"Only return a percentage, nothing else.", "numeric", true, nil, nil, 0, 100},
	{"Only return the number of hours, up to 24.", "numeric", true, nil, nil, -inf, 24},
	{"Only return an integer representing dollars, from 0 to 5000.", "range", true, nil, nil, 0, 5000},
	{"Please give an integer from 1 to 9.", "range", true, vals(1, 9), nil, 1, 9},
	// phrasings not in the bundled rows, for held-out studies
	{"Only return an integer in the range 0 to 10.", "range", true, vals(0, 10), nil, 0, 10},
	{"Only return an integer from 1 to 4: 1 = A, 2 = B, 3 = C, 4 = D.", "range", true, vals(1, 4), []string{"A", "B", "C", "D"}, 1, 4},
	{"Only return 1, 2, 3 or 4 where 1 means X and 4 means Y", "values", true, vals(1, 4), []string{"X", "", "", "Y"}, 1, 4},
	{"Only return an integer representing the percent chance (0-100), nothing else.", "range", true, vals(0, 100), nil, 0, 100},
	{"Only return a whole number of dollars between 0 and 500.", "range", true, nil, nil, 0, 500},
	{"Only return an integer: 1 (Strongly agree) to 5 (Strongly disagree).", "list", true, vals(1, 5), []string{"Strongly agree", "", "", "", "Strongly disagree"}, 1, 5},
	{"Only return 1 if yes and 0 if no.", "list", true, []float64{1, 0}, []string{"yes", "no"}, 0, 1},
	{"Only return a year between 1900 and 2023", "range", true, nil, nil, 1900, 2023},
	{"Respond only with an integer from 1 to 4.", "range", true, vals(1, 4), nil, 1, 4},
	// not a stated answer, or ambiguous: no options rather than wrong ones
	{"Only return Yes or No, nothing else.", "", false, nil, nil, 0, 0},
	{"Only return 1 or 2 sentences.", "", false, nil, nil, 0, 0},
	{"Only return an integer from 3 to 3.", "", false, nil, nil, 0, 0},
	{"Only return 1 for Yes or 1 for No", "", false, nil, nil, 0, 0},
	{"The rate went from 8.4% in 2020 to 9.3% in 2021. What do you think?", "", false, nil, nil, 0, 0},
	{"Rate it as a number from 1 to 10. Only return the letter of your choice.", "", false, nil, nil, 0, 0},
	{"", "", false, nil, nil, 0, 0},
}

func TestParseOptions(t *testing.T) {
	for _, tt := range optionCases {
		o, ok := ParseOptions(tt.text)
		if ok != tt.ok {
			t.Errorf("%q: ok=%v (%+v)", tt.text, ok, o)
			continue
		}
		if !ok {
			continue
		}
		if o.Form != tt.form {
			t.Errorf("%q: form %q, want %q", tt.text, o.Form, tt.form)
		}
		if o.Min != tt.min || o.Max != tt.max {
			t.Errorf("%q: scale %v..%v, want %v..%v", tt.text, o.Min, o.Max, tt.min, tt.max)
		}
		if !reflect.DeepEqual(o.Values, tt.values) {
			t.Errorf("%q: values %v, want %v", tt.text, o.Values, tt.values)
		}
		if tt.labels != nil && !reflect.DeepEqual(o.Labels, tt.labels) {
			t.Errorf("%q: labels %q, want %q", tt.text, o.Labels, tt.labels)
		}
		if o.Labels != nil && len(o.Labels) != len(o.Values) {
			t.Errorf("%q: %d labels for %d values", tt.text, len(o.Labels), len(o.Values))
		}
	}
	if o, _ := ParseOptions("Only return an integer from 0 to 1000000."); o.Values != nil || !o.Contains(5.5) || o.Contains(-1) {
		t.Errorf("open range: %d values", len(o.Values))
	}
}

// TestForms checks each form's own example parses as that form.
func TestForms(t *testing.T) {
	for _, f := range Forms {
		o, ok := ParseOptions(f.Example)
		if !ok || o.Form != f.Name {
			t.Errorf("form %s: example %q parsed as %q (ok %v)", f.Name, f.Example, o.Form, ok)
		}
	}
}

// TestOptionsLimit: a range over the limit is open, counted before it is
// allocated, whatever its width (issue 14: these panicked or looped).
func TestOptionsLimit(t *testing.T) {
	if o, _ := ParseOptionsMax("Only return an integer from 0 to 2000.", 3000); len(o.Values) != 2001 {
		t.Errorf("limit 3000: %d values", len(o.Values))
	}
	if o, _ := ParseOptionsMax("Only return an integer from 1 to 7.", 5); o.Values != nil || o.Min != 1 || o.Max != 7 {
		t.Errorf("limit 5: %+v", o)
	}
	for _, s := range []string{
		"Only return an integer from -4611686018427387904 to 4611686018427387904",
		"Only return an integer from -9223372036854775808 to 9223372036854775807",
		"Only return an integer from 9223372036854775806 to 9223372036854775807",
		"Only return an integer from 9007199254740993 to 9007199254740999",
		"Only return an integer from -99999999999999999999999 to 1",
		"Only return a multiple of 3 between -9223372036854775808 and 9223372036854775807",
		"Only return a multiple of 0.000000000000000001 between 0 and 1",
		"Only return a number from 0.5 to 1e308 in steps of 0.25",
		"Only return 1 for a, up to 9223372036854775807 for b",
		"Only return 1152921504606846976 = a, up to 1152921504606846977 = b", // x+1 == x: looped
	} {
		o, ok := ParseOptionsMax(s, MaxOptionValues)
		if len(o.Values) > 100 || ok && o.Min >= o.Max {
			t.Errorf("%q: %d values, %v..%v", s, len(o.Values), o.Min, o.Max)
		}
	}
	o, ok := ParseOptions("Only return an integer from 9007199254740990 to 9007199254740992.")
	if !ok || !reflect.DeepEqual(o.Values, []float64{9007199254740990, 9007199254740991, 9007199254740992}) {
		t.Errorf("2^53 edge: %v %v", o.Values, ok)
	}
}

func TestOptionsField(t *testing.T) {
	tests := []struct {
		raw    string
		values []float64
		labels []string
	}{
		{`[1,2,3]`, []float64{1, 2, 3}, nil},
		{`[0.5,1,1.5]`, []float64{0.5, 1, 1.5}, nil},
		{`["Yes","No"]`, []float64{1, 2}, []string{"Yes", "No"}},
		{`[{"value":0,"label":"no"},{"value":5,"label":"yes"}]`, []float64{0, 5}, []string{"no", "yes"}},
		{`{"values":[1,2],"labels":["Yes","No"],"min":1,"max":2}`, []float64{1, 2}, []string{"Yes", "No"}},
		{`{"min":0,"max":1000000}`, nil, nil},
	}
	for _, tt := range tests {
		e := Example{Input: "Only return an integer from 1 to 7.", Extra: map[string]json.RawMessage{"options": json.RawMessage(tt.raw)}}
		o, ok := e.Options()
		if !ok || !reflect.DeepEqual(o.Values, tt.values) || !reflect.DeepEqual(o.Labels, tt.labels) || o.Min == 1 && o.Max == 7 || o.Form != "field" {
			t.Errorf("%s: %+v", tt.raw, o)
		}
	}
	// Options written as JSON read back unchanged.
	for _, text := range []string{"Only return an integer from 1 to 4, where 1 means A and 4 means B.", "Only return 1 for 'X' or 2 for 'Y'.", "Only return an integer representing dollars.", "Only return a positive integer."} {
		o, _ := ParseOptions(text)
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseOptionsField(b)
		o.Form = "field"
		if err != nil || !reflect.DeepEqual(back, o) {
			t.Errorf("JSON round trip %s: %+v %v", b, back, err)
		}
	}
	for _, bad := range []string{`[]`, `[1,1]`, `[1,"a"]`, `"1-5"`, `{"values":[1,2],"labels":["a"]}`, `{"min":5,"max":1}`, `{"vals":[1]}`, `[{"label":"x"}]`, `[true]`, `7`} {
		if _, err := ParseOptionsField(json.RawMessage(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
		// An invalid field in code gives no options, never the text's.
		e := Example{Input: "Only return an integer from 1 to 7.", Extra: map[string]json.RawMessage{"options": json.RawMessage(bad)}}
		if _, ok := e.Options(); ok {
			t.Errorf("%s: options from the text", bad)
		}
	}
	if _, err := NewOptions([]float64{1, 2}, []string{"a"}); err == nil {
		t.Error("label count mismatch accepted")
	}
	if _, err := NewOptions([]float64{1, math.NaN()}, nil); err == nil {
		t.Error("NaN accepted")
	}
	o, _ := NewOptions([]float64{3, 1, 2}, nil)
	if o.Min != 1 || o.Max != 3 || o.Index(2) != 2 || o.Index(1.5) != -1 || o.Scale(2) != 0.5 {
		t.Errorf("%+v", o)
	}
	// Evenly spaced ends but not in order: Index still finds every value.
	o, _ = NewOptions([]float64{1, 2, 4, 3, 5}, nil)
	for i, v := range o.Values {
		if o.Index(v) != i {
			t.Errorf("Index(%v) = %d, want %d", v, o.Index(v), i)
		}
	}
}

// TestReadOptionsField: a record whose options field is invalid is an
// error naming the file, line and field.
func TestReadOptionsField(t *testing.T) {
	src := `{"instruction":"i","input":"Only return an integer from 1 to 7.","output":"Response: 2","options":[1,2,3]}
{"instruction":"i","input":"Only return an integer from 1 to 7.","output":"Response: 2","options":[1,1]}
`
	_, err := ReadSFTFrom(strings.NewReader(src), "rows.jsonl", ReadOptions{})
	if err == nil || !strings.Contains(err.Error(), "rows.jsonl:2") || !strings.Contains(err.Error(), `"options"`) {
		t.Errorf("err = %v", err)
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"Response: 2", 2, true},
		{"Response: 1,200", 1200, true},
		{"response:-3", -3, true},
		{"Response: 2.5", 2.5, true},
		{"7", 7, true},
		{" Response: 4\n", 4, true},
		{"Response: 4 (agree)", 4, true},
		{"Response: 4.", 4, true},
		{"Response: four", 0, false},
		{"Response: 4abc", 0, false},
		{"", 0, false},
		{"Response: 1e999", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseResponse(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseResponse(%q) = %v, %v", tt.in, got, ok)
		}
	}
	for _, v := range []float64{0, 3, -5, 60100000, 2.25} {
		if got, ok := ParseResponse(FormatResponse(v)); !ok || got != v {
			t.Errorf("round trip %v: %v", v, got)
		}
	}
}

func TestQuestion(t *testing.T) {
	tests := []struct{ input, want string }{
		{"Demographics: Age: 1\n\nScenario: You read “X.” and then were asked: “How fair is it?” Only return an integer from 1 to 4, nothing else.", "How fair is it?"},
		{"Demographics: Age: 1\n\nScenario: You read 'X' and then were asked: 'Do you agree?' Only return an integer from 1 to 4.", "Do you agree?"},
		{"Scenario: You read \"X\" and then were asked: \"How much money should Michelle put in? Only return an integer from 0 to 2000, nothing else.\"", "How much money should Michelle put in?"},
		{"Scenario: You read stimulus v8 and then were asked: 'Why did the doctor apologize?Only return 1 for 'A'; 2 for 'B', nothing else.", "Why did the doctor apologize?"},
		{"Scenario: You were asked: “A?” Then you were asked: “B?” Only return an integer representing dollars, nothing else.", "B?"},
		{"Scenario: Some companies offer training. What is your opinion of this practice? Only return an integer from 1 to 7.", "Some companies offer training. What is your opinion of this practice?"},
		{"Scenario: You were asked: “No format here”", "No format here"},
		{"Scenario: You were asked: “Q?” Return only a number from 1 to 5.", "Q?"},
	}
	for _, tt := range tests {
		if got := Question(tt.input); got != tt.want {
			t.Errorf("Question(%q)\n = %q\nwant %q", tt.input, got, tt.want)
		}
	}
}

// TestSampleCells summarises the cells of the bundled sample.
func TestSampleCells(t *testing.T) {
	rows := loadSample(t)
	cells := map[CellKey]int{}
	studies := map[string]bool{}
	for i := range rows {
		k := rows[i].Cell()
		if k.Question == "" || k.Task != -1 {
			t.Fatalf("%s: empty question", rows[i].Where())
		}
		cells[k]++
		studies[k.Study] = true
	}
	multi := 0
	for _, n := range cells {
		if n > 1 {
			multi++
		}
	}
	if len(studies) != 20 {
		t.Errorf("%d studies, want 20", len(studies))
	}
	t.Logf("%d rows, %d studies, %d cells (%.2f rows/cell), %d cells with 2+ rows", len(rows), len(studies), len(cells), float64(len(rows))/float64(len(cells)), multi)
}
