package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/predict"
)

// hostile is question text and a study id a malicious or careless data
// file could hold: markup that must stay text, XML-invalid control
// characters and invalid UTF-8.
const (
	hostileQuestion = `Do you agree? <script>document.documentElement.setAttribute("data-pwned","1")</script><img src=x onerror="document.documentElement.setAttribute('data-pwned','2')"> & "quotes" 'too' ` + "\x01\x1b[31m \xff end"
	hostileStudy    = `"><svg onload=alert(1)>`
)

// heldOutInput builds an eval input from real SocSci210 rows (the bundled
// sample): the rows of the first nStudies studies are "held out" and get
// deterministic pseudo-random predictions, the others are the training
// prior. With hostile, one more cell carries hostileQuestion.
func heldOutInput(t testing.TB, nStudies int, hostile bool) EvalInput {
	t.Helper()
	rows, err := data.SampleRows()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.StudyID] {
			seen[r.StudyID] = true
			ids = append(ids, r.StudyID)
		}
	}
	sort.Strings(ids)
	held := map[string]bool{}
	for _, id := range ids[:nStudies] {
		held[id] = true
	}
	var train, eval []data.Example
	for _, r := range rows {
		if held[r.StudyID] {
			eval = append(eval, r)
		} else {
			train = append(train, r)
		}
	}
	if hostile {
		for i := 0; i < 3; i++ {
			r := eval[0]
			r.StudyID = hostileStudy
			r.Input = "Demographics: Age: 40; Ideology: Liberal\n\nScenario: You read “a <b>bold</b> claim” and then were asked: “" + hostileQuestion + "” Only return 1 for <Yes> or 2 for No & such, nothing else."
			r.Response = float64(1 + i%2)
			r.HasResponse = true
			eval = append(eval, r)
		}
	}
	rng := rand.New(rand.NewPCG(7, 21))
	probs := make([][]float64, len(eval))
	for i := range eval {
		o, _ := eval[i].Options()
		p := make([]float64, len(o.Values))
		var sum float64
		for j := range p {
			p[j] = rng.ExpFloat64()
			sum += p[j]
		}
		for j := range p {
			p[j] /= sum
		}
		probs[i] = p
	}
	preds := data.Predictions(eval, probs)
	for i := range preds {
		m := json.RawMessage(`"options"`)
		preds[i].Extra = map[string]json.RawMessage{"method": m}
	}
	rep := data.Evaluate(preds, data.NewPrior(train), "Ideology")
	return EvalInput{Report: rep, Preds: preds, Unscored: 5, Sources: []string{"held-out <predictions>.jsonl"}}
}

// wellFormed checks that b parses as XML to the end.
func wellFormed(t *testing.T, name string, b []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", name, err)
		}
	}
}

func TestWriteEvalFiles(t *testing.T) {
	dir := t.TempDir()
	in := heldOutInput(t, 3, true)
	if err := WriteEval(dir, in); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"metrics.json", "table.txt", "w1_by_study.svg", "cell_1.svg", "cell_4.svg", "index.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	svgs, _ := filepath.Glob(filepath.Join(dir, "*.svg"))
	for _, f := range svgs {
		b, _ := os.ReadFile(f)
		wellFormed(t, f, b)
	}
	page, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	for _, bad := range []string{"<script>document", "<img src=x", "<svg onload", "<b>bold", "\x01", "\x1b", "\xff"} {
		if strings.Contains(s, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;document", "&lt;img src=x", "&lt;svg onload=alert(1)&gt;"} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks the escaped text %q", want)
		}
	}
	// self-contained: nothing is fetched (the SVG namespace is a name, not a fetch)
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:|//)|@import|url\((["']?)https?:`).FindString(s); m != "" {
		t.Errorf("page refers to the network: %q", m)
	}
	// the inline SVGs are valid XML too, each one
	for _, m := range regexp.MustCompile(`(?s)<svg .*?</svg>`).FindAllString(s, -1) {
		wellFormed(t, "inline svg", []byte(m))
	}
	// the cell cards name their question (as text) and the largest come first
	if !strings.Contains(s, "Do you agree? &lt;script&gt;") {
		t.Error("the hostile cell's question is not on the page")
	}
	var rep data.Report
	b, _ := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Rows != in.Report.Rows || len(rep.Cells) != len(in.Report.Cells) {
		t.Errorf("metrics.json: %d rows %d cells, want %d %d", rep.Rows, len(rep.Cells), in.Report.Rows, len(in.Report.Cells))
	}
	var table bytes.Buffer
	predict.WriteTable(&table, in.Report)
	if got, _ := os.ReadFile(filepath.Join(dir, "table.txt")); !bytes.Equal(got, table.Bytes()) {
		t.Error("table.txt differs from WriteTable")
	}
	// every column of table.txt is a column of the study table
	for _, col := range []string{">study<", ">cells<", ">rows<", ">W1 model<", ">W1 uniform<", ">W1 prior<"} {
		if !strings.Contains(s, col) {
			t.Errorf("study table lacks column %s", col)
		}
	}
}

// TestEvalPageManyCells: a few thousand cells keep the page bounded: at
// most chartBudget histograms, the rest as table rows.
func TestEvalPageManyCells(t *testing.T) {
	var preds []data.Prediction
	o, _ := data.ParseOptions("Only return an integer from 1 to 5, where 1 means Strongly disagree and 5 means Strongly agree, nothing else.")
	for s := 0; s < 20; s++ {
		for c := 0; c < 240; c++ {
			for r := 0; r < 1+c%3; r++ {
				e := data.Example{StudyID: fmt.Sprintf("study%02d", s), ConditionNum: c, TaskNum: 0, HasResponse: true, Response: float64(1 + (c+r)%5)}
				preds = append(preds, data.Prediction{Example: e, Options: o, Probs: []float64{.1, .2, .4, .2, .1}, Truth: e.Response})
			}
		}
	}
	rep := data.Evaluate(preds, data.NewPrior(nil), "")
	if len(rep.Cells) != 4800 {
		t.Fatalf("%d cells", len(rep.Cells))
	}
	v, err := buildEvalView(EvalInput{Report: rep, Preds: preds}, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Charted != chartBudget {
		t.Errorf("%d charts, want the budget %d", v.Charted, chartBudget)
	}
	for _, sec := range v.Studies {
		for i := 1; i < len(sec.Shown); i++ {
			if sec.Shown[i].N > sec.Shown[i-1].N {
				t.Fatalf("study %s: cells not largest first", sec.Study)
			}
		}
		if len(sec.Shown) == 0 {
			t.Errorf("study %s has no chart", sec.Study)
		}
		if n := len(sec.Shown) + len(sec.Hidden) + len(sec.Rest) + sec.RestCut; n != sec.Cells {
			t.Errorf("study %s: %d cells accounted, want %d", sec.Study, n, sec.Cells)
		}
	}
	page, err := renderPage(evalPage, v)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) > 8<<20 {
		t.Errorf("page of %d bytes for 4,800 cells", len(page))
	}
	t.Logf("4,800 cells: %d charts, page %.1f MB", v.Charted, float64(len(page))/(1<<20))
}

func TestNiceAxis(t *testing.T) {
	for _, tc := range []struct{ lo, hi float64 }{{0, 0.4306}, {0, 1}, {0, 0.5}, {0, 0}, {0, 3e-7}, {-0.0031, 0.0004}, {0, 97}, {-2, -1}} {
		a := niceAxis(tc.lo, tc.hi, 5)
		if a.hi <= tc.hi || a.lo > tc.lo {
			t.Errorf("%v: axis [%v, %v] does not pad the data", tc, a.lo, a.hi)
		}
		if len(a.ticks) < 2 || len(a.ticks) > 13 || a.ticks[0] != a.lo {
			t.Errorf("%v: ticks %v", tc, a.ticks)
		}
		// tick labels are distinct
		seen := map[string]bool{}
		for _, x := range a.ticks {
			l := fmt.Sprintf(a.format, x)
			if seen[l] {
				t.Errorf("%v: repeated tick label %s (%v)", tc, l, a.ticks)
			}
			seen[l] = true
		}
	}
}

func TestWrapShorten(t *testing.T) {
	if got := shorten("abcdefghij", 5); got != "abcd…" {
		t.Errorf("shorten: %q", got)
	}
	lines := wrap("one two three four five six seven eight nine ten", 10, 2)
	if len(lines) != 2 || !strings.HasSuffix(lines[1], "…") || lines[0] != "one two" {
		t.Errorf("wrap: %q", lines)
	}
	for _, l := range wrap(strings.Repeat("x", 50), 10, 3) {
		if n := len([]rune(l)); n > 10 {
			t.Errorf("wrap: line of %d runes", n)
		}
	}
	if c := clean("a\x00b\x07c\xffd\ue000"); c != "a\uFFFDb\uFFFDc\uFFFDd\ue000" {
		t.Errorf("clean: %q", c)
	}
}

// simFixture is a simulated experiment's result without a model: three
// conditions with long, hostile names and labelled options.
func simFixture(t testing.TB) (*predict.Experiment, *predict.SimResult) {
	t.Helper()
	exp := &predict.Experiment{Name: "framing <test>", Control: "neutral",
		Conditions: []predict.Condition{
			{Name: "neutral", Stimulus: "You read “a neutral text”"},
			{Name: "gain framing with a rather long condition name", Stimulus: "You read “you <gain> 6 minutes”"},
			{Name: `loss "framing" <i>`, Stimulus: "You read “you lose 6 minutes”"},
		},
		Outcome: predict.Outcome{Question: "How much do you support the program? Only return an integer from 1 to 7, where 1 means Strongly oppose and 7 means Strongly support, nothing else."}}
	if err := exp.Validate(); err != nil {
		t.Fatal(err)
	}
	res := &predict.SimResult{Experiment: exp.Name, Question: exp.Question, Format: exp.Format, Options: exp.Options,
		Control: "neutral", Personas: 40, Seed: 1, Bootstrap: 500}
	dists := [][]float64{{.30, .20, .15, .10, .10, .10, .05}, {.10, .10, .15, .20, .20, .15, .10}, {.35, .25, .15, .10, .05, .05, .05}}
	for c, cond := range exp.Conditions {
		cr := predict.CondResult{Name: cond.Name, Probs: dists[c], Mean: data.Mean(exp.Options, dists[c])}
		if c > 0 {
			d := cr.Mean - res.Conditions[0].Mean
			cr.Effect = &predict.Effect{Diff: d, CI: &[2]float64{d - 0.21, d + 0.17}, W1: data.CellW1(exp.Options, dists[c], dists[0])}
		}
		res.Conditions = append(res.Conditions, cr)
	}
	return exp, res
}

func TestWriteSimulation(t *testing.T) {
	dir := t.TempDir()
	exp, res := simFixture(t)
	if err := WriteSimulation(dir, exp, res); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"distributions.svg", "effects.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		wellFormed(t, f, b)
		if f == "distributions.svg" && !strings.Contains(string(b), "1 · Strongly oppose") {
			t.Error("distributions.svg does not name the options by their labels")
		}
	}
	page, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	for _, bad := range []string{"<gain>", "<i>", "<test>"} {
		if strings.Contains(string(page), bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	var back predict.SimResult
	b, _ := os.ReadFile(filepath.Join(dir, "result.json"))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Conditions) != 3 {
		t.Errorf("result.json: %v", err)
	}
	// a result without bootstrap has no intervals but still a forest plot
	res.Bootstrap = 0
	for i := range res.Conditions {
		if res.Conditions[i].Effect != nil {
			res.Conditions[i].Effect.CI = nil
		}
	}
	if err := WriteSimulation(dir, exp, res); err != nil {
		t.Fatal(err)
	}
	if math.IsNaN(res.Conditions[1].Mean) {
		t.Fatal("fixture")
	}
}

// TestChartShapes draws the awkward shapes (101 options, long study ids
// and labels, one category, all zeros, negative effects only) and checks
// each is well-formed and keeps its labels inside the picture; with
// $GOTRAIN_TEST_ARTIFACTS set the SVGs are kept there to be looked at.
func TestChartShapes(t *testing.T) {
	many := make([]string, 101)
	vals := [][]float64{make([]float64, 101), make([]float64, 101)}
	for i := range many {
		many[i] = fmt.Sprint(i)
		vals[0][i] = math.Exp(-float64((i-30)*(i-30)) / 200)
		vals[1][i] = math.Exp(-float64((i-60)*(i-60)) / 300)
	}
	long := []string{"a-very-long-study-identifier-2024-replication-wave-2", "x", "TESS-0042 (pilot)", "q9w6s"}
	charts := map[string]interface{ svg() (string, error) }{
		"options101": &barChart{ID: "a", Title: "101 options", Categories: many, Series: []string{"predicted", "human"}, Values: vals},
		"longids": &barChart{ID: "b", Title: "long ids", Categories: long, Series: []string{"model", "uniform", "training prior"},
			Values: [][]float64{{.1, .2, .3, .4}, {.4, .3, .2, .1}, {.2, .2, .2, .2}}},
		"labels": &barChart{ID: "c", Title: "labels", Categories: []string{"1 · Strongly disagree with the statement as it was put to me", "2", "3 · Neither agree nor disagree", "4", "5 · Strongly agree"},
			Series: []string{"predicted", "human"}, Values: [][]float64{{.2, .2, .2, .2, .2}, {1, 0, 0, 0, 0}}},
		"one": &barChart{ID: "d", Title: "one category", Categories: []string{"only"}, Series: []string{"a"}, Values: [][]float64{{0.5}}},
		"legend": &barChart{ID: "g", Title: "long legend", Categories: []string{"1", "2"}, Series: []string{strings.Repeat("condition name ", 6), "b"},
			Values: [][]float64{{0.5, 0.5}, {0.2, 0.8}}},
		"zeros": &barChart{ID: "e", Title: "all zero", Categories: []string{"1", "2"}, Series: []string{"a", "b"}, Values: [][]float64{{0, 0}, {0, 0}}},
		"forest": &forestPlot{ID: "f", Title: "negative effects", Rows: []forestRow{
			{Label: "a condition with a name far longer than any axis could hold", Est: -0.3, Lo: -0.5, Hi: -0.1, HasCI: true},
			{Label: "tiny", Est: -2e-5}}},
		"forestNoCI": &forestPlot{ID: "h", Title: "no intervals", Rows: []forestRow{{Label: "b", Est: 0.5}}},
	}
	keep := os.Getenv("GOTRAIN_TEST_ARTIFACTS")
	reWidth := regexp.MustCompile(`<svg [^>]*width="([0-9.]+)"`)
	reStart := regexp.MustCompile(`<text x="([0-9.]+)" y="[0-9.]+" font-size="([0-9.]+)"(?: text-anchor="start")?(?: font-weight="bold")? fill="[^"]*">(?:<title>[^<]*</title>)?([^<]*)</text>`)
	reX := regexp.MustCompile(`<text x="(-?[0-9.]+)"[^>]*text-anchor="(start|middle|end)"[^>]*(?:transform="rotate\(-40)?`)
	for name, c := range charts {
		s, err := c.svg()
		if err != nil {
			t.Fatal(err)
		}
		wellFormed(t, name, []byte(s))
		for _, m := range reX.FindAllStringSubmatch(s, -1) {
			if x, _ := strconv.ParseFloat(m[1], 64); x < 0 {
				t.Errorf("%s: text at x=%v", name, x)
			}
		}
		// text set from the left ends inside the picture
		w, _ := strconv.ParseFloat(reWidth.FindStringSubmatch(s)[1], 64)
		starts := reStart.FindAllStringSubmatch(s, -1)
		if len(starts) == 0 {
			t.Errorf("%s: no left-set text found", name)
		}
		for _, m := range starts {
			x, _ := strconv.ParseFloat(m[1], 64)
			size, _ := strconv.ParseFloat(m[2], 64)
			if end := x + textWidth(html.UnescapeString(m[3]), size); end > w+1 {
				t.Errorf("%s: %q ends at %.0f, past the width %.0f", name, m[3], end, w)
			}
		}
		if keep != "" {
			os.MkdirAll(keep, 0o755)
			os.WriteFile(filepath.Join(keep, name+".svg"), []byte(s), 0o644)
		}
	}
}

// TestOptionLabels: the histograms name options by the text the question
// gives them, also when the prediction rows carry only the values.
func TestOptionLabels(t *testing.T) {
	in := heldOutInput(t, 3, true)
	for i := range in.Preds {
		in.Preds[i].Extra["options"] = json.RawMessage(`[1,2]`) // as predict writes them
	}
	v, err := buildEvalView(in, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, s := range v.Studies {
		for _, c := range append(s.Shown, s.Hidden...) {
			all.WriteString(c.Chart)
		}
	}
	for _, want := range []string{"1 · &lt;Yes&gt;", "2 · No &amp; such"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no option label %q in the charts", want)
		}
	}
}

func TestSummary(t *testing.T) {
	rep := data.Report{Rows: 10, MacroW1: data.Compare{Model: 0.1, Uniform: 0.3, Prior: 0.2},
		Studies: []data.StudyReport{{W1: data.Compare{Model: 0.1, Uniform: 0.3, Prior: 0.05}}, {W1: data.Compare{Model: 0.1, Uniform: 0.3, Prior: 0.35}}}}
	s := summary(rep)
	for _, want := range []string{"closer to the human ones than both baselines", "0.1000 against 0.3000 (uniform) and 0.2000", "uniform baseline in 2 of 2", "training prior in 1 of 2"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary %q lacks %q", s, want)
		}
	}
	rep.MacroW1.Model = 0.25
	if s := summary(rep); !strings.Contains(s, "further from the human ones than the better baseline") {
		t.Errorf("summary %q", s)
	}
	if summary(data.Report{}) != "" {
		t.Error("summary of nothing")
	}
}

// TestEvalExtras: what a report's JSON holds beyond data.Report's fields
// read here (coverage of every row by method, none reasons, numeric cells,
// rows outside the options) reaches the page.
func TestEvalExtras(t *testing.T) {
	in := heldOutInput(t, 1, false)
	n := len(in.Report.Cells[0].Human)
	support := make([]float64, n)
	for i := range support {
		support[i] = 1000 * float64(i+1)
	}
	sup, _ := json.Marshal(support)
	metrics := `{"coverage": {"options": 50, "numeric": 7, "none": 3}, "none_reasons": {"<no answer format>": 3},
		"numeric_rows": 7, "macro_w1_options": {"model": 0.25, "uniform": 0.3, "prior": 0.2}, "macro_w1_numeric": {"model": 0.125, "uniform": 0.5, "prior": 0.4},
		"cells": [{"kind": "numeric", "support": ` + string(sup) + `}],
		"out_of_options": [{"study_id": "s1", "question": "How many <b>?", "form": "range", "format": "Only return 1 to 5", "options": "1..5", "rows": 4, "outside": 4, "truths": [7, 9]}]}`
	t.Logf("cell 0 has %d values", n)
	v, err := buildEvalView(in, []byte(metrics))
	if err != nil {
		t.Fatal(err)
	}
	page, err := renderPage(evalPage, v)
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	for _, want := range []string{`data-method="numeric"`, `>3</td>`, "&lt;no answer format&gt;", `data-metric="macro_w1_numeric"`,
		`data-v="0.125"`, "How many &lt;b&gt;?", ">7, 9<", ">1000<", "<title>2000 — "} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(s, unscoredMethod) {
		t.Error("the report's coverage should replace the count of Preds")
	}
}
