package predict

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/data"
)

// TestEvalNumeric reads a prediction file in predict's format (numeric,
// sampled, options and none rows) and checks the numeric cells' W1 against
// numbers worked out by hand.
//
// Study numst, question "How many dollars?" (open numeric), human answers
// 10, 30 (condition 0) and 20 (condition 1): range 20, distinct answers
// {10, 20, 30} (the uniform baseline; no training rows, so the prior is
// the same).
//   - Condition 0: model ½(½δ10 + ½δ30) + ½δ30 = ¼δ10 + ¾δ30, human ½δ10 +
//     ½δ30: ∫|F−G| = ¼·20 = 5, W1 0.25. Uniform: |⅓−½|·10 + |⅔−½|·10 = 10/3,
//     W1 1/6.
//   - Condition 1: model samples 20, 20, 40, 40 = ½δ20 + ½δ40, human δ20: ½·20
//     = 10, W1 0.5. Uniform: ⅓·10 + ⅓·10 = 20/3, W1 1/3.
//
// numst's W1 is 0.375 (uniform 0.25); optst's one option cell is 0 (uniform
// 1/3): macro 0.1875 over both kinds, 0 over option cells, 0.375 over
// numeric ones. The row answering 5000 to "from 0 to 2000" is outside its
// options; the none row counts in coverage only.
func TestEvalNumeric(t *testing.T) {
	preds, unscored, err := ReadPredictions([]string{"testdata/numeric_pred.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	if len(preds) != 6 || unscored != 1 {
		t.Fatalf("%d predictions, %d unscored", len(preds), unscored)
	}
	rep := data.Evaluate(preds, data.NewPrior(nil), "")
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	nearC := func(c data.Compare, m, u, p float64) bool {
		return near(c.Model, m) && near(c.Uniform, u) && near(c.Prior, p)
	}
	if rep.Rows != 4 || rep.NumericRows != 3 || rep.OptionRows != 1 || len(rep.Cells) != 3 {
		t.Fatalf("rows %d (%d numeric, %d option), %d cells, skipped %v", rep.Rows, rep.NumericRows, rep.OptionRows, len(rep.Cells), rep.Skipped)
	}
	want := []struct{ m, u float64 }{{0.25, 1.0 / 6}, {0.5, 1.0 / 3}}
	for i, w := range want {
		c := rep.Cells[i]
		if c.Kind != "numeric" || c.Range != 20 || !nearC(c.W1, w.m, w.u, w.u) {
			t.Errorf("cell %v: %s range %v W1 %+v, want %v %v", c.Key, c.Kind, c.Range, c.W1, w.m, w.u)
		}
	}
	if c := rep.Cells[0]; len(c.Support) != 2 || c.Support[0] != 10 || !near(c.Model[1], 0.75) || !near(c.Human[0], 0.5) {
		t.Errorf("cell support %v human %v model %v", c.Support, c.Human, c.Model)
	}
	if !nearC(rep.MacroW1, 0.1875, (0.25+1.0/3)/2, (0.25+1.0/3)/2) || !nearC(rep.MacroW1Options, 0, 1.0/3, 1.0/3) || !nearC(rep.MacroW1Numeric, 0.375, 0.25, 0.25) {
		t.Errorf("macro %+v options %+v numeric %+v", rep.MacroW1, rep.MacroW1Options, rep.MacroW1Numeric)
	}
	if rep.Coverage["numeric"] != 3 || rep.Coverage["sampled"] != 1 || rep.Coverage["options"] != 1 || rep.Coverage["none"] != 1 || len(rep.NoneReasons) != 1 {
		t.Errorf("coverage %v none %v", rep.Coverage, rep.NoneReasons)
	}
	if len(rep.OutOfOptions) != 1 || rep.OutOfOptions[0].Options != "open 0..2000" || rep.OutOfOptions[0].Form != "range" || rep.OutOfOptions[0].Truths[0] != 5000 ||
		!strings.HasSuffix(rep.OutOfOptions[0].Where[0], "numeric_pred.jsonl:4") {
		t.Errorf("out of options %+v", rep.OutOfOptions)
	}
	var b strings.Builder
	WriteTable(&b, rep)
	for _, s := range []string{"numeric cells only", "coverage of 6 rows by method: options 1 (16.7%) numeric 3 (50.0%) sampled 1", "1 of 1 rows outside open 0..2000 (form range)"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, b.String())
		}
	}
	// metrics.json (the report's JSON) carries the fields an HTML report reads.
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"coverage", "none_reasons", "out_of_options", "macro_w1_options", "macro_w1_numeric", "numeric_rows"} {
		if _, ok := m[k]; !ok {
			t.Errorf("metrics.json lacks %q", k)
		}
	}
}

// TestReadPredictionsErrors: a bad method or distribution names the line.
func TestReadPredictionsErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ line, want string }{
		{`"method":"magic"`, `:1: field "method": "magic" is not one of`},
		{`"method":"numeric","numeric":[{"value":"x"}]`, `:1: field "numeric"`},
		{`"method":"sampled","samples":"many"`, `:1: field "samples"`},
	} {
		path := filepath.Join(dir, "p.jsonl")
		os.WriteFile(path, []byte(`{"instruction":"i","input":"Only return an integer.","output":"Response: 1",`+tc.line+"}\n"), 0o644)
		if _, _, err := ReadPredictions([]string{path}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.line, err, tc.want)
		}
	}
}
