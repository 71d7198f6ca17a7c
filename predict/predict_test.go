package predict

import (
	"math"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/tokenize"
)

// tinyQwen is a random Qwen2 model small enough for tests with the real
// Qwen2.5 vocabulary, and the bundled tokenizer's chat encoder.
func tinyQwen(t *testing.T) (*model.Model, *data.Encoder) {
	return tinyModel(t, model.Qwen2, "qwen2.5")
}

// tinyModel is a random model of arch with the bundled tokenizer tok.
func tinyModel(t *testing.T, arch model.Arch, tok string) (*model.Model, *data.Encoder) {
	t.Helper()
	c, err := model.ConfigFor(arch, "tiny")
	if err != nil {
		t.Fatal(err)
	}
	c.Hidden, c.Heads, c.KVHeads, c.HeadDim, c.Intermediate = 16, 2, 1, 8, 32
	dir := t.TempDir()
	if err := model.WriteRandom(dir, c, "f32", 5); err != nil {
		t.Fatal(err)
	}
	if err := tokenize.WriteBundled(dir, tok); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tk, err := tokenize.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := tk.ChatTemplate("")
	if err != nil {
		t.Fatal(err)
	}
	return m, &data.Encoder{Tok: tk, Template: tmpl}
}

// TestRowsMatchScore: each row's option probabilities equal the softmax of
// the teacher-forced scores of the full option sequences, computed without
// any cache reuse, to 1e-5; rows come back in input order.
func TestRowsMatchScore(t *testing.T) {
	m, enc := tinyQwen(t)
	rows, err := data.SampleRows()
	if err != nil {
		t.Fatal(err)
	}
	rows = rows[:12]
	res, err := New(m, nil, enc, Sampling{MaxOptions: 101}).Rows(rows, nil)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i := range rows {
		r := res[i]
		if r.Method != "options" {
			continue
		}
		answers := make([]string, len(r.Options.Values))
		for k, v := range r.Options.Values {
			answers[k] = data.FormatResponse(float64(v))
		}
		prompt, conts, err := enc.Continuations(&rows[i], answers)
		if err != nil {
			t.Fatal(err)
		}
		lps := make([]float64, len(conts))
		for k, c := range conts {
			s, err := m.Score([]model.Sequence{{Tokens: append(append([]int{}, prompt...), c...), From: len(prompt)}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range s[0] {
				lps[k] += float64(v)
			}
		}
		want := model.Softmax(lps)
		sum := 0.0
		for k := range want {
			sum += r.Probs[k]
			if d := math.Abs(r.Probs[k] - want[k]); d > 1e-5 {
				t.Errorf("row %d option %d: %v, from score %v", i, k, r.Probs[k], want[k])
			}
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("row %d: probabilities sum to %v", i, sum)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d rows had options", checked)
	}
}

// TestMethods: every row comes back with a method; rows with more options
// than MaxOptions, and rows whose question states no answer format, get
// their numeric distribution ("none" with a reason if the model gives no
// number any mass); with sampling, "sampled", or "none" when no sample
// parses.
func TestMethods(t *testing.T) {
	m, enc := tinyQwen(t)
	rows, _ := data.SampleRows()
	rows = append(rows[:4:4], rows[0])
	rows[4].Input = "Demographics: Age: 30\n\nScenario: You were asked: “What do you think?”"
	res, err := New(m, nil, enc, Sampling{MaxOptions: 3, NumericNodes: 8}).Rows(rows, nil)
	if err != nil {
		t.Fatal(err)
	}
	numericOrNone := func(r Result) bool {
		return r.Method == "numeric" && len(r.Numeric) > 0 && r.Prediction != nil && r.Reason == "" ||
			r.Method == "none" && r.Reason == ReasonNoNumeric && r.Prediction == nil
	}
	for i, r := range res {
		o, _ := rows[i].OptionsMax(data.MaxOptionValues)
		switch {
		case i == 4:
			if !numericOrNone(r) {
				t.Errorf("row without a format: %+v", r)
			}
		case len(o.Values) > 3:
			if !numericOrNone(r) || r.Options.Values != nil || r.Options.Max != o.Max {
				t.Errorf("row %d with %d options: %+v", i, len(o.Values), r)
			}
		case r.Method != "options" || r.Reason != "" || r.Prediction == nil:
			t.Errorf("row %d: %+v", i, r)
		}
	}
	if n := CountMethods(res); n["none"]+n["options"]+n["numeric"] != len(rows) || n["options"] == 0 {
		t.Errorf("methods %v", n)
	}
	res, err = New(m, nil, enc, Sampling{MaxOptions: 3, Samples: 2, Temperature: 1, Seed: 1, MaxTokens: 6}).Rows(rows[4:], nil)
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if !(r.Method == "sampled" && len(r.Samples) > 0 && r.Prediction != nil && r.Reason == "" ||
		r.Method == "none" && r.Samples == nil && r.Prediction == nil && strings.HasPrefix(r.Reason, ReasonNoSamples)) {
		t.Errorf("sampled row: %+v", r)
	}
}
