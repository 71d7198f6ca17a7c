package data

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestRecordRoundTrip re-reads what Record writes and gets the same example.
func TestRecordRoundTrip(t *testing.T) {
	srcs := []string{
		`{"instruction":"I","input":"X","output":"Response: 3","history":[["u","a"]],"study_id":"ab12c","condition_num":2,"weird":{"k":1},"n":[1,2]}`,
		`{"prompt":"P","completion":"C","system":"S","task_num":4}`,
		`{"messages":[{"role":"user","content":"U"},{"role":"assistant","content":"A"}],"study_id":"s","condition_num":0}`,
		`{"prompt":"P","chosen":"a","rejected":"b","extra":"x"}`,
		`{"messages":[{"role":"user","content":"U"}],"chosen":"a","rejected":"b"}`,
		`{"sample_id":"s1","participant":7,"demographic":{"age":40,"sex":"Female"},"stimuli":"S","prompt":"P","reasoning":"R","response":4,"condition_num":1,"task_num":2,"study_id":"zz9zz"}`,
	}
	for _, src := range srcs {
		ex, err := ReadSFTFrom(strings.NewReader(src), "a", ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(ex[0].Record())
		if err != nil {
			t.Fatal(err)
		}
		back, err := ReadSFTFrom(strings.NewReader(string(b)), "a", ReadOptions{})
		if err != nil {
			t.Fatalf("%s: re-reading %s: %v", src, b, err)
		}
		if !reflect.DeepEqual(normExtra(ex[0]), normExtra(back[0])) {
			t.Errorf("round trip of %s\n got %+v\nwant %+v", src, back[0], ex[0])
		}
	}
	f := FormatChat
	b, _ := json.Marshal(f)
	var g Format
	if string(b) != `"chat"` || json.Unmarshal(b, &g) != nil || g != f {
		t.Errorf("format JSON %s", b)
	}
}

// normExtra compacts Extra values so formatting differences do not matter.
func normExtra(e Example) Example {
	m := map[string]string{}
	for k, v := range e.Extra {
		var x any
		json.Unmarshal(v, &x)
		b, _ := json.Marshal(x)
		m[k] = string(b)
	}
	e.Extra = nil
	if len(m) > 0 {
		e.Extra = map[string]json.RawMessage{}
		for k, v := range m {
			e.Extra[k] = json.RawMessage(v)
		}
	}
	return e
}
