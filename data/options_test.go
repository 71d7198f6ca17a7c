package data

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		text   string
		ok     bool
		values []int // nil: only check min/max
		labels []string
		min    float64
		max    float64
	}{
		{"Only return an integer from 1 to 7, nothing else.", true, []int{1, 2, 3, 4, 5, 6, 7}, nil, 1, 7},
		{"Only return a number from 0 to 10, nothing else.", true, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, nil, 0, 10},
		{"Only return 1 for Yes or 2 for No, nothing else.”", true, []int{1, 2}, []string{"Yes", "No"}, 1, 2},
		{"Only return 1 for “Yes” or 2 for “No”, nothing else.", true, []int{1, 2}, []string{"Yes", "No"}, 1, 2},
		{"Q? Only return 1 for 'A'; 2 for 'B'; 3 for 'C', nothing else.", true, []int{1, 2, 3}, []string{"A", "B", "C"}, 1, 3},
		{"Only return 1 for 'A lot of money' or 2 for 'Very little money', nothing else.\"", true, []int{1, 2}, []string{"A lot of money", "Very little money"}, 1, 2},
		{"Only return an integer from 1 to 4, where 1 means Very Unlikely and 4 means Very Likely.", true, []int{1, 2, 3, 4}, []string{"Very Unlikely", "", "", "Very Likely"}, 1, 4},
		{"Only return an integer from 1 to 7, where 1 = 'Strongly support' and 7 = 'Strongly oppose', nothing else.", true, nil, []string{"Strongly support", "", "", "", "", "", "Strongly oppose"}, 1, 7},
		{"Only return an integer from 1 to 3, where 1 means 'Favor', 2 means 'Neither', 3 means 'Oppose'.", true, []int{1, 2, 3}, []string{"Favor", "Neither", "Oppose"}, 1, 3},
		{"Only return 1 if you accept it as final, up to 4 if you strongly believe it should be challenged.", true, []int{1, 2, 3, 4}, []string{"you accept it as final", "", "", "you strongly believe it should be challenged"}, 1, 4},
		{"Only return an integer from 0 to 1,200 representing dollars, nothing else.", true, nil, nil, 0, 1200},
		{"Only return an integer from -5 to 5, nothing else.", true, nil, nil, -5, 5},
		{"On a scale from 1 (Not at all) to 5 (Very), how X? Only return an integer from 1 to 5, nothing else.", true, []int{1, 2, 3, 4, 5}, nil, 1, 5},
		{"Please give an integer from 1 to 9.", true, nil, nil, 1, 9},
		{"Only return an integer from 0 to 1000000, nothing else.", true, nil, nil, 0, 1000000},
		{"Only return an integer representing the estimated monthly cost in dollars, nothing else.", false, nil, nil, 0, 0},
		{"Only return an integer from 3 to 3.", false, nil, nil, 0, 0},
		{"", false, nil, nil, 0, 0},
	}
	for _, tt := range tests {
		o, ok := ParseOptions(tt.text)
		if ok != tt.ok {
			t.Errorf("%q: ok=%v", tt.text, ok)
			continue
		}
		if !ok {
			continue
		}
		if o.Min != tt.min || o.Max != tt.max {
			t.Errorf("%q: scale %v..%v, want %v..%v", tt.text, o.Min, o.Max, tt.min, tt.max)
		}
		if tt.values != nil && !reflect.DeepEqual(o.Values, tt.values) {
			t.Errorf("%q: values %v", tt.text, o.Values)
		}
		if !reflect.DeepEqual(o.Labels, tt.labels) {
			t.Errorf("%q: labels %q, want %q", tt.text, o.Labels, tt.labels)
		}
	}
	if o, _ := ParseOptions("Only return an integer from 0 to 1000000."); o.Values != nil || !o.Contains(5.5) || o.Contains(-1) {
		t.Errorf("open range: %d values", len(o.Values))
	}
}

func TestOptionsField(t *testing.T) {
	tests := []struct {
		raw    string
		values []int
		labels []string
	}{
		{`[1,2,3]`, []int{1, 2, 3}, nil},
		{`["Yes","No"]`, []int{1, 2}, []string{"Yes", "No"}},
		{`[{"value":0,"label":"no"},{"value":5,"label":"yes"}]`, []int{0, 5}, []string{"no", "yes"}},
		{`{"values":[1,2],"labels":["Yes","No"],"min":1,"max":2}`, []int{1, 2}, []string{"Yes", "No"}},
		{`{"min":0,"max":1000000}`, nil, nil},
	}
	for _, tt := range tests {
		e := Example{Input: "Only return an integer from 1 to 7.", Extra: map[string]json.RawMessage{"options": json.RawMessage(tt.raw)}}
		o, ok := e.Options()
		if !ok || !reflect.DeepEqual(o.Values, tt.values) || !reflect.DeepEqual(o.Labels, tt.labels) || o.Min == 1 && o.Max == 7 {
			t.Errorf("%s: %+v", tt.raw, o)
		}
	}
	// Options written as JSON read back unchanged.
	for _, text := range []string{"Only return an integer from 1 to 4, where 1 means A and 4 means B.", "Only return 1 for 'X' or 2 for 'Y'."} {
		o, _ := ParseOptions(text)
		b, _ := json.Marshal(o)
		e := Example{Extra: map[string]json.RawMessage{"options": b}}
		if back, ok := e.Options(); !ok || !reflect.DeepEqual(back, o) {
			t.Errorf("JSON round trip %s: %+v", b, back)
		}
	}
	if _, err := NewOptions([]int{1, 1}, nil); err == nil {
		t.Error("repeated value accepted")
	}
	if _, err := NewOptions([]int{1, 2}, []string{"a"}); err == nil {
		t.Error("label count mismatch accepted")
	}
	if _, err := NewOptions(nil, nil); err == nil {
		t.Error("empty options accepted")
	}
	o, _ := NewOptions([]int{3, 1, 2}, nil)
	if o.Min != 1 || o.Max != 3 || o.Index(2) != 2 || o.Index(1.5) != -1 || o.Scale(2) != 0.5 {
		t.Errorf("%+v", o)
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
