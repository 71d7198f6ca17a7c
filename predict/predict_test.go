package predict

import (
	"math"
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

// TestMaxOptions: rows with more options than MaxOptions get the numeric
// distribution, or with samples are sampled.
func TestMaxOptions(t *testing.T) {
	m, enc := tinyQwen(t)
	rows, _ := data.SampleRows()
	rows = rows[:4]
	res, err := New(m, nil, enc, Sampling{MaxOptions: 3, NumericNodes: 8}).Rows(rows, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if len(r.Options.Values) > 3 && (r.Method != "numeric" || r.Prediction == nil) {
			t.Errorf("row %d with %d options: method %s", i, len(r.Options.Values), r.Method)
		}
	}
	res, err = New(m, nil, enc, Sampling{MaxOptions: 3, Samples: 2, Temperature: 1, Seed: 1, MaxTokens: 6}).Rows(rows[:1], nil)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Method == "sampled" && res[0].Samples == nil && res[0].Prediction != nil {
		t.Error("a sampled row without parsable samples got a prediction")
	}
}
