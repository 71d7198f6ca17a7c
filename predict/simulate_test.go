package predict

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/data"
)

const validSpec = `{
  "name": "framing",
  "conditions": [
    {"name": "gain", "stimulus": "You read “The program will save 200 of 600 jobs.”"},
    {"name": "loss", "stimulus": "You read “Under the program 400 of 600 jobs will be lost.”"}
  ],
  "control": "gain",
  "outcome": {"question": "How much do you support the program? Only return an integer from 1 to 7, where 1 means Strongly oppose and 7 means Strongly support, nothing else."}
}`

func writeSpec(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// edit returns validSpec with one replacement.
func edit(old, new string) string { return strings.Replace(validSpec, old, new, 1) }

func TestLoadExperimentErrors(t *testing.T) {
	for _, tc := range []struct{ name, spec, want string }{
		{"not json", `{"name": `, "unexpected EOF"},
		{"unknown field", edit(`"control"`, `"controll"`), `unknown field "controll"`},
		{"no name", edit(`"name": "framing"`, `"name": ""`), "name is empty"},
		{"one condition", `{"name":"x","conditions":[{"name":"a","stimulus":"s"}],"control":"a","outcome":{"question":"q? Only return an integer from 1 to 5, nothing else."}}`, "at least 2"},
		{"empty condition name", edit(`{"name": "loss",`, `{"name": "",`), "conditions[1].name is empty"},
		{"repeated name", edit(`{"name": "loss",`, `{"name": "gain",`), `conditions[1].name "gain" is repeated`},
		{"no stimulus", strings.Replace(validSpec, `"stimulus": "You read “Under the program 400 of 600 jobs will be lost.”"`, `"stimulus": ""`, 1), "conditions[1].stimulus"},
		{"bad control", edit(`"control": "gain"`, `"control": "neutral"`), `control "neutral" is not one of the conditions ("gain", "loss")`},
		{"empty question", `{"name":"x","conditions":[{"name":"a","stimulus":"s"},{"name":"b","stimulus":"t"}],"control":"a","outcome":{"question":"  "}}`, "outcome.question is empty"},
		{"no format", edit(` Only return an integer from 1 to 7, where 1 means Strongly oppose and 7 means Strongly support, nothing else.`, ``), "no answer-format sentence"},
		{"open format", edit(`an integer from 1 to 7, where 1 means Strongly oppose and 7 means Strongly support`, `an integer representing dollars`), "states no enumerable options"},
		{"bad options", edit(`"question":`, `"options": {"a": 1}, "question":`), `outcome.options: want {values, labels, min, max}: json: unknown field "a"`},
		{"repeated option", edit(`"question":`, `"options": [1, 2, 2], "question":`), "outcome.options: value 2 repeated"},
		{"option without value", edit(`"question":`, `"options": [{"label": "x"}], "question":`), "item 0 has no value"},
		{"options disagree", edit(`"question":`, `"options": [1, 2, 3, 4, 5], "question":`), "disagree with the question's answer format"},
		{"two values", validSpec + `{}`, "more than one JSON value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadExperiment(writeSpec(t, tc.spec))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "spec.json") {
				t.Errorf("error %v does not name the file", err)
			}
		})
	}
	if _, err := LoadExperiment(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestExperimentOptions(t *testing.T) {
	for _, tc := range []struct {
		name, options, question string
		values                  []float64
		format                  string
	}{
		{"parsed", "", "Support? Only return an integer from 1 to 7, nothing else.", []float64{1, 2, 3, 4, 5, 6, 7}, "Only return an integer from 1 to 7, nothing else."},
		{"ints", "[1,2,3,4,5]", "Support?", []float64{1, 2, 3, 4, 5}, "Only return an integer from 1 to 5, nothing else."},
		{"ints agree", "[1,2,3,4,5]", "Support? Only return an integer from 1 to 5, nothing else.", []float64{1, 2, 3, 4, 5}, "Only return an integer from 1 to 5, nothing else."},
		{"labels", `["Yes","No"]`, "Would you vote for it?", []float64{1, 2}, "Only return 1 for 'Yes' or 2 for 'No', nothing else."},
		{"three labels", `["Raise","Keep","Cut"]`, "Taxes?", []float64{1, 2, 3}, "Only return 1 for 'Raise'; 2 for 'Keep'; 3 for 'Cut', nothing else."},
		{"objects", `[{"value":0,"label":"No"},{"value":1,"label":"Yes"}]`, "Sign?", []float64{0, 1}, "Only return 0 for 'No' or 1 for 'Yes', nothing else."},
		{"end labels", `[{"value":1,"label":"Oppose"},{"value":2},{"value":3,"label":"Support"}]`, "Support?", []float64{1, 2, 3}, "Only return an integer from 1 to 3, where 1 means Oppose and 3 means Support, nothing else."},
		{"gaps", "[0,5,10]", "Donate?", []float64{0, 5, 10}, "Only return one of 0, 5 or 10, nothing else."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := Experiment{Name: "x", Control: "a", Conditions: []Condition{{"a", "s"}, {"b", "t"}},
				Outcome: Outcome{Question: tc.question, Options: json.RawMessage(tc.options)}}
			if err := e.Validate(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(e.Options.Values, tc.values) || e.Format != tc.format {
				t.Errorf("options %v format %q, want %v %q", e.Options.Values, e.Format, tc.values, tc.format)
			}
			// a written sentence states the same options when it can
			if o, ok := data.ParseOptions(e.Format); !ok || !slices.Equal(o.Values, tc.values) {
				t.Errorf("ParseOptions(%q) = %v %v", e.Format, o.Values, ok)
			}
		})
	}
}

// TestRowMatchesDev rebuilds a bundled dev row from its parts: the persona
// (found in the bundled pool by its rendered demographics), the stimulus and
// the question; the input must come out byte-identical.
func TestRowMatchesDev(t *testing.T) {
	rows, err := data.SampleRows()
	if err != nil {
		t.Fatal(err)
	}
	pool, err := data.SamplePersonas()
	if err != nil {
		t.Fatal(err)
	}
	byDemo := map[string]*data.Persona{}
	for i := range pool {
		byDemo[pool[i].Render()] = &pool[i]
	}
	checked := 0
	for _, r := range rows {
		demo, scen, ok := data.SplitPrompt(r.Input)
		if !ok || byDemo[demo] == nil {
			continue
		}
		scen = strings.TrimPrefix(scen, "Scenario: ")
		stim, rest, ok := strings.Cut(scen, " and then were asked: “")
		if !ok || strings.Count(scen, " and then were asked: “") != 1 {
			continue
		}
		q, format, ok := strings.Cut(rest, "” Only return")
		if !ok || strings.HasSuffix(stim, ".") {
			continue
		}
		e := Experiment{Name: r.StudyID, Control: "a", Conditions: []Condition{{"a", stim}, {"b", "x"}},
			Outcome: Outcome{Question: q + " Only return" + format}}
		if err := e.Validate(); err != nil {
			continue // open answers
		}
		got := e.Row(0, byDemo[demo])
		if got.Input != r.Input || got.Instruction != r.Instruction {
			t.Fatalf("%s:\n got %q\nwant %q", r.Where(), got.Input, r.Input)
		}
		if o, _ := got.Options(); !slices.Equal(o.Values, e.Options.Values) {
			t.Fatalf("row options %v, want %v", o.Values, e.Options.Values)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d dev rows rebuilt", checked)
	}
	t.Logf("%d dev rows rebuilt byte for byte", checked)
}

func TestQuantile(t *testing.T) {
	// numpy.quantile([1, 2, 4, 8, 16], q)
	s := []float64{1, 2, 4, 8, 16}
	for _, tc := range []struct{ q, want float64 }{{0, 1}, {0.025, 1.1}, {0.25, 2}, {0.5, 4}, {0.6, 5.6}, {0.975, 15.2}, {1, 16}} {
		if got := quantile(s, tc.q); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

// TestBootstrapHand checks the bootstrap against cases worked by hand.
func TestBootstrapHand(t *testing.T) {
	// a constant difference has a zero-width interval; nil series are skipped
	ci := BootstrapCIs([][]float64{nil, {0.5, 0.5, 0.5}}, 200, 0.95, 1)
	if ci[0] != [2]float64{} || ci[1] != [2]float64{0.5, 0.5} {
		t.Errorf("constant: %v", ci)
	}
	// two units with differences 0 and 1: a resample's mean is 0, 1/2 or 1
	// with probabilities 1/4, 1/2, 1/4, so with many resamples the 2.5% and
	// 97.5% quantiles are exactly 0 and 1
	ci = BootstrapCIs([][]float64{{0, 1}}, 4000, 0.95, 7)
	if ci[0] != [2]float64{0, 1} {
		t.Errorf("two units: %v, want [0 1]", ci[0])
	}
	// at level 0.4 the interval is the 30% and 70% quantiles: both 1/2
	ci = BootstrapCIs([][]float64{{0, 1}}, 4000, 0.4, 7)
	if ci[0] != [2]float64{0.5, 0.5} {
		t.Errorf("two units, 40%%: %v, want [0.5 0.5]", ci[0])
	}
	// three units 0, 0, 3: the resample mean is the number k of draws of the
	// third unit, k ~ Binomial(3, 1/3): P(k=0) = 8/27 ≈ 0.296, so the 2.5%
	// quantile is 0; P(k=3) = 1/27 ≈ 0.037 > 2.5%, so the 97.5% one is 3
	ci = BootstrapCIs([][]float64{{0, 0, 3}}, 20000, 0.95, 3)
	if ci[0] != [2]float64{0, 3} {
		t.Errorf("three units: %v, want [0 3]", ci[0])
	}
	// paired: a series and its shift by c get the same resamples
	a := []float64{0.1, -0.4, 0.9, 0.3, 0.2}
	b := make([]float64, len(a))
	for i := range a {
		b[i] = a[i] + 2
	}
	ci = BootstrapCIs([][]float64{a, b}, 500, 0.95, 5)
	if math.Abs(ci[1][0]-ci[0][0]-2) > 1e-12 || math.Abs(ci[1][1]-ci[0][1]-2) > 1e-12 {
		t.Errorf("shifted series: %v vs %v", ci[1], ci[0])
	}
	if BootstrapCIs([][]float64{a}, 0, 0.95, 1)[0] != [2]float64{} {
		t.Error("B = 0 gave an interval")
	}
}

func TestDrawPersonas(t *testing.T) {
	a := drawPersonas(100, 10, 3)
	b := drawPersonas(100, 10, 3)
	c := drawPersonas(100, 10, 4)
	if len(a) != 10 || !slices.Equal(a, b) || slices.Equal(a, c) || !sort.IntsAreSorted(a) {
		t.Errorf("draws %v %v %v", a, b, c)
	}
	seen := map[int]bool{}
	for _, i := range a {
		if seen[i] || i < 0 || i >= 100 {
			t.Fatalf("bad draw %v", a)
		}
		seen[i] = true
	}
	if len(drawPersonas(5, 0, 1)) != 5 || len(drawPersonas(5, 9, 1)) != 5 {
		t.Error("n = 0 or n ≥ pool should take the whole pool")
	}
}

// tinyPredictor returns a predictor with the chat template over tinyQwen's
// random model.
func tinyPredictor(t *testing.T) *Predictor {
	t.Helper()
	m, enc := tinyQwen(t)
	return New(m, nil, enc, Sampling{MaxOptions: 101})
}

// TestSimulateTiny runs a three-condition experiment end to end on a random
// tiny model: one treatment repeats the control's stimulus, so its effect
// must be zero with an interval around zero.
func TestSimulateTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a tiny model with the full Qwen2.5 vocabulary")
	}
	p := tinyPredictor(t)
	exp, err := LoadExperiment(writeSpec(t, edit(`{"name": "loss",`,
		`{"name": "gain again", "stimulus": "You read “The program will save 200 of 600 jobs.”."}, {"name": "loss",`)))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := data.SamplePersonas()
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	opt := SimOptions{N: 12, Seed: 3, Bootstrap: 300, Progress: func(done, total int) {
		calls++
		if done > total || total != 36 {
			t.Errorf("progress %d/%d", done, total)
		}
	}}
	res, err := Simulate(context.Background(), p, exp, pool, opt)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 36 || res.Personas != 12 || len(res.Participants) != 12 || len(res.Conditions) != 3 {
		t.Fatalf("calls %d, personas %d, participants %d, conditions %d", calls, res.Personas, len(res.Participants), len(res.Conditions))
	}
	if res.Reused == 0 {
		t.Error("no prompt tokens reused from the KV cache")
	}
	for _, c := range res.Conditions {
		var sum, mean float64
		for k, v := range c.Probs {
			sum += v
			mean += v * float64(res.Options.Values[k])
		}
		if math.Abs(sum-1) > 1e-9 || math.Abs(mean-c.Mean) > 1e-9 || c.Mean < 1 || c.Mean > 7 {
			t.Errorf("%s: probs sum to %v, mean %v (Mean %v)", c.Name, sum, mean, c.Mean)
		}
		var pm float64
		for _, v := range c.PersonaMeans {
			pm += v / 12
		}
		if math.Abs(pm-c.Mean) > 1e-9 {
			t.Errorf("%s: mean of persona means %v, Mean %v", c.Name, pm, c.Mean)
		}
		if (c.Effect == nil) != (c.Name == "gain") {
			t.Errorf("%s: effect %v", c.Name, c.Effect)
		}
	}
	same := res.Conditions[1].Effect
	if same.CI == nil || math.Abs(same.Diff) > 1e-4 || same.W1 > 1e-4 || same.CI[0] > 1e-4 || same.CI[1] < -1e-4 {
		t.Errorf("control against itself: %+v %v", same, same.CI)
	}
	diff := res.Conditions[2].Effect
	if diff.CI == nil || !(diff.CI[0] <= diff.Diff+1e-12 && diff.Diff <= diff.CI[1]+1e-12) || diff.CI[0] == diff.CI[1] {
		t.Errorf("loss vs gain: %+v %v", diff, diff.CI)
	}
	// the same seed gives the same result; the JSON round-trips
	again, err := Simulate(context.Background(), p, exp, pool, SimOptions{N: 12, Seed: 3, Bootstrap: 300})
	if err != nil {
		t.Fatal(err)
	}
	j1, _ := json.Marshal(res)
	j2, _ := json.Marshal(again)
	if !bytes.Equal(j1, j2) {
		t.Errorf("two runs with one seed differ:\n%s\n%s", j1, j2)
	}
	var back SimResult
	if err := json.Unmarshal(j1, &back); err != nil || back.Conditions[2].Effect.CI == nil {
		t.Errorf("JSON round trip: %v", err)
	}
	var tab bytes.Buffer
	if err := res.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"gain (control)", "gain again", "loss", "P(7)", "300 bootstrap"} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tab.String())
		}
	}
	t.Logf("\n%s", tab.String())
	// cancellation stops between chunks
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Simulate(ctx, p, exp, pool, SimOptions{N: 20}); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("cancelled: %v", err)
	}
	// bad arguments
	if _, err := Simulate(context.Background(), p, exp, nil, SimOptions{}); err == nil {
		t.Error("no personas: no error")
	}
	if _, err := Simulate(context.Background(), p, exp, pool, SimOptions{N: -1}); err == nil {
		t.Error("n < 0: no error")
	}
}
