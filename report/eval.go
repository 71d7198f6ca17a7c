package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/predict"
)

// EvalInput is what WriteEval reports.
type EvalInput struct {
	Report data.Report
	// Preds are the prediction rows: they give each cell its question,
	// scenario and option labels.
	Preds []data.Prediction
	// Unscored counts rows read without probabilities that Preds leaves
	// out; they are shown as such in the coverage, unless the report
	// counts every row by method itself (its "coverage").
	Unscored int
	// Sources names the prediction files on the page.
	Sources []string
}

// Limits that keep a page of thousands of cells usable and its size
// bounded: charts for the largest cells of each study (a few shown, the
// rest behind "show more"), up to a budget for the page shared alike by the
// studies; the other cells are rows of a table, up to a cap per study
// (metrics.json has them all).
const (
	cardsShown    = 4
	cardsPerStudy = 24
	chartBudget   = 400
	restRowsCap   = 500
	cellSVGs      = 4 // cell_1.svg ... of the largest cells
)

// unscoredMethod names prediction rows that had no probabilities (sampled
// answers or none), which Preds does not hold.
const unscoredMethod = "no probabilities (not scored)"

// countMethods counts prediction rows by their "method" field (rows
// without one count as "options"), the unscored ones apart.
func countMethods(preds []data.Prediction, unscored int) map[string]int {
	m := map[string]int{}
	for i := range preds {
		method := "options"
		if raw, ok := preds[i].Extra["method"]; ok {
			var s string
			if json.Unmarshal(raw, &s) == nil && s != "" {
				method = s
			}
		}
		m[method]++
	}
	if unscored > 0 {
		m[unscoredMethod] += unscored
	}
	return m
}

// reportExtras are fields of the report's JSON (metrics.json) that this
// package reads from the JSON rather than from data.Report, so the page
// shows them whenever the data package reports them: coverage of every row
// by method, why rows have no prediction, numeric cells, and the rows
// whose truth lies outside the parsed options.
type reportExtras struct {
	Coverage       map[string]int `json:"coverage"`
	NoneReasons    map[string]int `json:"none_reasons"`
	NumericRows    int            `json:"numeric_rows"`
	MacroW1Options *data.Compare  `json:"macro_w1_options"`
	MacroW1Numeric *data.Compare  `json:"macro_w1_numeric"`
	Cells          []struct {
		Kind    string    `json:"kind"`
		Support []float64 `json:"support"`
	} `json:"cells"`
	OutOfOptions []struct {
		Study    string    `json:"study_id"`
		Question string    `json:"question"`
		Form     string    `json:"form"`
		Format   string    `json:"format"`
		Options  string    `json:"options"`
		Rows     int       `json:"rows"`
		Outside  int       `json:"outside"`
		Truths   []float64 `json:"truths"`
	} `json:"out_of_options"`
}

// WriteEval writes into dir, each file atomically: metrics.json, table.txt,
// w1_by_study.svg, cell_*.svg (the largest cells' predicted-vs-human
// histograms) and index.html, one self-contained page with all of them.
func WriteEval(dir string, in EvalInput) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	rep := in.Report
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("report: metrics.json: %w", err)
	}
	write := func(name string, b []byte) error { return writeFile(dir, name, b) }
	if err := write("metrics.json", append(b, '\n')); err != nil {
		return err
	}
	err = atomicfile.Write(filepath.Join(dir, "table.txt"), func(w io.Writer) error {
		predict.WriteTable(w, rep)
		return nil
	})
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	view, err := buildEvalView(in, b)
	if err != nil {
		return err
	}
	if view.W1Chart != "" {
		if err := write("w1_by_study.svg", []byte(view.W1Chart)); err != nil {
			return err
		}
	}
	for i, svg := range view.largest {
		if err := write(fmt.Sprintf("cell_%d.svg", i+1), []byte(svg)); err != nil {
			return err
		}
	}
	page, err := renderPage(evalPage, view)
	if err != nil {
		return err
	}
	return write("index.html", page)
}

// writeFile writes dir/name atomically.
func writeFile(dir, name string, b []byte) error {
	if err := atomicfile.WriteFile(filepath.Join(dir, name), b); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

type metricRow struct {
	Name, Key, Better string
	Vals              [3]float64 // model, uniform, prior
	Best              [3]bool
}

type methodRow struct {
	Method string
	Rows   int
}

type cellCard struct {
	Key                data.CellKey
	N                  int
	W1                 data.Compare
	Question, Scenario string
	Chart              string
}

type studySection struct {
	Anchor string
	data.StudyReport
	Shown, Hidden []cellCard
	Rest          []cellCard // cells without a chart
	RestCut       int        // cells beyond restRowsCap
}

type evalView struct {
	Title       string
	Cols        [3]string // class of the model, uniform and prior columns
	Sources     []string
	Rep         data.Report
	Skipped     []methodRow
	Headline    []metricRow
	Summary     string
	Methods     []methodRow
	MethodRows  int
	W1Chart     string
	DPDChart    string
	Studies     []studySection
	Open        bool
	Charted     int
	NoneReasons []methodRow
	Extra       reportExtras
	largest     []string // charts of the largest cells overall, for cell_*.svg
}

var evalPage = parsePage(`{{define "body"}}{{template "head" .}}
<header>
<h1>{{.Title}}</h1>
<p class="meta">{{with .Sources}}Predictions: {{range $i, $s := .}}{{if $i}}, {{end}}<code>{{clean $s}}</code>{{end}}. {{end}}
{{.Rep.Rows}} rows scored in {{len .Rep.Cells}} cells of {{len .Rep.Studies}} studies{{range .Skipped}}; {{.Rows}} skipped ({{.Method}}){{end}}.</p>
</header>
<nav><a href="#headline">Headline</a><a href="#coverage">Coverage</a><a href="#studies">Studies</a><a href="#w1">W1 by study</a>{{if .Rep.Demographic}}<a href="#dpd">Parity</a>{{end}}<a href="#cells">Cells</a></nav>

<section id="headline">
<h2>Headline metrics against the baselines</h2>
{{with .Summary}}<p class="summary">{{.}}</p>{{end}}
<table id="headline-table">
<thead><tr><th>metric</th><th class="num">model</th><th class="num">uniform</th><th class="num">training prior</th><th>better</th></tr></thead>
<tbody>
{{range .Headline}}<tr data-metric="{{.Key}}"><th scope="row">{{.Name}}</th>{{$r := .}}{{range $i, $x := .Vals}}<td class="num {{index $.Cols $i}}{{if index $r.Best $i}} best{{end}}" data-v="{{v $x}}">{{f4 $x}}</td>{{end}}<td>{{.Better}}</td></tr>
{{end}}</tbody>
</table>
<p class="note">◆ marks the best of the three. W1: the Wasserstein-1 distance between the predicted and the human answer distribution of each cell (study × condition × question, answers mapped to [0, 1] by the scale), averaged per study, then over studies. Uniform: every option equally likely. Training prior: the answer frequencies of the same question in the training data, else of the study, else uniform.</p>
</section>

<section id="coverage">
<h2>Coverage by prediction method</h2>
<table id="coverage-table">
<thead><tr><th>method</th><th class="num">rows</th><th class="num">share</th></tr></thead>
<tbody>
{{range .Methods}}<tr data-method="{{.Method}}"><td>{{.Method}}</td><td class="num" data-v="{{.Rows}}">{{.Rows}}</td><td class="num">{{pct .Rows $.MethodRows}}</td></tr>
{{end}}</tbody>
</table>
{{with .NoneReasons}}<table id="none-table">
<thead><tr><th>no prediction, because</th><th class="num">rows</th></tr></thead>
<tbody>{{range .}}<tr><td>{{.Method}}</td><td class="num">{{.Rows}}</td></tr>{{end}}</tbody>
</table>{{end}}
<p class="note">Rows enter the metrics when they have a predicted distribution and a recorded answer{{if .Skipped}}; {{range $i, $s := .Skipped}}{{if $i}}, {{end}}{{$s.Rows}} were skipped ({{$s.Method}}){{end}}{{end}}.</p>
{{with .Extra.OutOfOptions}}<h3>Rows whose answer lies outside the parsed options</h3>
<p class="note">All of a question's rows outside: the answer format was probably misread; a few: answers off the scale in the data.</p>
<div class="scroll"><table class="sortable" id="outside-table">
<thead><tr><th>study</th><th class="num">outside</th><th class="num">rows</th><th>options</th><th>form</th><th>answers outside</th><th>question</th></tr></thead>
<tbody>{{range .}}<tr><td>{{clean .Study}}</td><td class="num" data-v="{{.Outside}}">{{.Outside}}</td><td class="num" data-v="{{.Rows}}">{{.Rows}}</td><td>{{clean .Options}}</td><td>{{clean .Form}}</td><td>{{range $i, $x := .Truths}}{{if $i}}, {{end}}{{v $x}}{{end}}</td><td title="{{clean .Format}}">{{short (clean .Question)}}</td></tr>
{{end}}</tbody></table></div>{{end}}
</section>

<section id="studies">
<h2>Per study</h2>
<div class="scroll">
<table class="sortable" id="study-table">
<thead><tr><th>study</th><th class="num">cells</th><th class="num">rows</th><th class="num">W1 model</th><th class="num">W1 uniform</th><th class="num">W1 prior</th><th class="num">model − prior</th></tr></thead>
<tbody>
{{range .Studies}}<tr data-study="{{.Study}}"><td><a href="#{{.Anchor}}">{{.Study}}</a></td><td class="num" data-v="{{.Cells}}">{{.Cells}}</td><td class="num" data-v="{{.Rows}}">{{.Rows}}</td><td class="num model" data-v="{{v .W1.Model}}">{{f4 .W1.Model}}</td><td class="num uniform" data-v="{{v .W1.Uniform}}">{{f4 .W1.Uniform}}</td><td class="num prior" data-v="{{v .W1.Prior}}">{{f4 .W1.Prior}}</td><td class="num" data-v="{{v (diff .W1.Model .W1.Prior)}}">{{signed (diff .W1.Model .W1.Prior)}}</td></tr>
{{end}}</tbody>
</table>
</div>
<p class="note">Click a column to sort. W1: lower is better; a negative "model − prior" means the model is closer to the human answers than the training prior.</p>
</section>

<section id="w1">
<h2>W1 by study</h2>
{{if .W1Chart}}<figure class="chart">{{svg .W1Chart}}</figure>{{else}}<p class="note">No study was scored.</p>{{end}}
</section>

{{if .Rep.Demographic}}<section id="dpd">
<h2>Demographic parity: {{.Rep.Demographic}}</h2>
<table id="dpd-table">
<thead><tr><th>{{.Rep.Demographic}}</th><th class="num">rows</th><th class="num">model</th><th class="num">uniform</th><th class="num">training prior</th></tr></thead>
<tbody>
{{range .Rep.Groups}}<tr><td>{{clean .Value}}</td><td class="num">{{.N}}</td><td class="num" data-v="{{v .Dist.Model}}">{{f4 .Dist.Model}}</td><td class="num" data-v="{{v .Dist.Uniform}}">{{f4 .Dist.Uniform}}</td><td class="num" data-v="{{v .Dist.Prior}}">{{f4 .Dist.Prior}}</td></tr>
{{end}}<tr class="total"><th scope="row">DPD (max − min)</th><td></td><td class="num" data-v="{{v .Rep.DPD.Model}}">{{f4 .Rep.DPD.Model}}</td><td class="num" data-v="{{v .Rep.DPD.Uniform}}">{{f4 .Rep.DPD.Uniform}}</td><td class="num" data-v="{{v .Rep.DPD.Prior}}">{{f4 .Rep.DPD.Prior}}</td></tr>
</tbody>
</table>
<p class="note">Per group: the mean over its rows of |E[ŷ] − y| / range. Lower DPD: the model errs alike across groups.{{if .Rep.Ungrouped}} {{.Rep.Ungrouped}} scored rows lack the field.{{end}}</p>
{{with .DPDChart}}<figure class="chart">{{svg .}}</figure>{{end}}
</section>{{end}}

<section id="cells">
<h2>Cells: predicted against human answers</h2>
<p class="note">One section per study; within it the largest cells first. {{.Charted}} cells have a histogram{{if lt .Charted (len .Rep.Cells)}}, the others are listed in a table (every cell is in metrics.json){{end}}. Open a section to print it.</p>
{{range .Studies}}<details class="study" id="{{.Anchor}}"{{if $.Open}} open{{end}}>
<summary>{{.Study}}<span class="meta">{{.Cells}} cells, {{.Rows}} rows · W1 model {{f4 .W1.Model}}, uniform {{f4 .W1.Uniform}}, prior {{f4 .W1.Prior}}</span></summary>
{{if .Shown}}<div class="cards">{{range .Shown}}{{template "card" .}}{{end}}</div>{{end}}
{{if .Hidden}}<button type="button" class="more" data-target="{{.Anchor}}-more">show {{len .Hidden}} more cells</button>
<div class="cards" id="{{.Anchor}}-more" hidden>{{range .Hidden}}{{template "card" .}}{{end}}</div>{{end}}
{{if .Rest}}<div class="scroll"><table class="sortable">
<thead><tr><th class="num">condition</th><th>question</th><th class="num">rows</th><th class="num">W1 model</th><th class="num">W1 uniform</th><th class="num">W1 prior</th></tr></thead>
<tbody>{{range .Rest}}<tr><td class="num" data-v="{{.Key.Condition}}">{{.Key.Condition}}</td><td title="{{.Question}}">{{short .Question}}</td><td class="num" data-v="{{.N}}">{{.N}}</td><td class="num" data-v="{{v .W1.Model}}">{{f4 .W1.Model}}</td><td class="num" data-v="{{v .W1.Uniform}}">{{f4 .W1.Uniform}}</td><td class="num" data-v="{{v .W1.Prior}}">{{f4 .W1.Prior}}</td></tr>
{{end}}</tbody></table></div>{{end}}
{{if .RestCut}}<p class="note">{{.RestCut}} smaller cells are not listed here (see metrics.json).</p>{{end}}
</details>
{{end}}
</section>
{{template "foot" .}}{{end}}
{{define "card"}}<figure class="card" data-cell="{{.Key.String}}">
<h4>condition {{.Key.Condition}}{{if ge .Key.Task 0}} · task {{.Key.Task}}{{end}} · {{.N}} rows · W1 model {{f4 .W1.Model}}, uniform {{f4 .W1.Uniform}}, prior {{f4 .W1.Prior}}</h4>
{{with .Question}}<blockquote>{{.}}</blockquote>{{end}}
{{with .Scenario}}<details><summary>scenario of this condition</summary>{{.}}</details>{{end}}
{{svg .Chart}}
</figure>{{end}}`)

// buildEvalView lays out the page of in; metrics is in.Report as JSON.
func buildEvalView(in EvalInput, metrics []byte) (*evalView, error) {
	rep := in.Report
	v := &evalView{Title: "Evaluation report", Sources: in.Sources, Rep: rep, Cols: [3]string{"model", "uniform", "prior"}}
	if err := json.Unmarshal(metrics, &v.Extra); err != nil {
		return nil, fmt.Errorf("report: metrics: %w", err)
	}
	for reason, n := range rep.Skipped {
		v.Skipped = append(v.Skipped, methodRow{reason, n})
	}
	sort.Slice(v.Skipped, func(a, b int) bool { return v.Skipped[a].Method < v.Skipped[b].Method })
	metric := func(name, key, better string, c data.Compare) {
		r := metricRow{Name: name, Key: key, Better: better, Vals: [3]float64{c.Model, c.Uniform, c.Prior}}
		best := r.Vals[0]
		for _, x := range r.Vals {
			if (better == "lower" && x < best) || (better == "higher" && x > best) {
				best = x
			}
		}
		for i, x := range r.Vals {
			r.Best[i] = x == best && rep.Rows > 0
		}
		v.Headline = append(v.Headline, r)
	}
	metric("W1, macro over studies", "macro_w1", "lower", rep.MacroW1)
	if x := v.Extra; x.NumericRows > 0 && x.MacroW1Options != nil && x.MacroW1Numeric != nil {
		metric("W1, option cells only", "macro_w1_options", "lower", *x.MacroW1Options)
		metric("W1, numeric cells only", "macro_w1_numeric", "lower", *x.MacroW1Numeric)
	}
	metric("accuracy", "individual.accuracy", "higher", rep.Individual.Accuracy)
	metric("log-likelihood", "individual.loglik", "higher", rep.Individual.LogLik)
	metric("ranked probability score", "individual.rps", "lower", rep.Individual.RPS)
	if rep.Demographic != "" {
		metric("DPD, "+clean(rep.Demographic), "dpd", "lower", rep.DPD)
	}
	v.Summary = summary(rep)
	methods := v.Extra.Coverage
	if methods == nil {
		methods = countMethods(in.Preds, in.Unscored)
	}
	for m, n := range methods {
		v.Methods = append(v.Methods, methodRow{clean(m), n})
		v.MethodRows += n
	}
	for r, n := range v.Extra.NoneReasons {
		v.NoneReasons = append(v.NoneReasons, methodRow{clean(r), n})
	}
	sort.Slice(v.NoneReasons, func(a, b int) bool { return v.NoneReasons[a].Rows > v.NoneReasons[b].Rows })
	sort.Slice(v.Methods, func(a, b int) bool {
		if v.Methods[a].Rows != v.Methods[b].Rows {
			return v.Methods[a].Rows > v.Methods[b].Rows
		}
		return v.Methods[a].Method < v.Methods[b].Method
	})

	if len(rep.Studies) > 0 {
		var names []string
		var w1 []data.Compare
		for _, s := range rep.Studies {
			names, w1 = append(names, s.Study), append(w1, s.W1)
		}
		svg, err := compareChart(barChart{ID: "w1", Title: "W1 per study (lower is better)",
			Subtitle: "Wasserstein-1 distance between predicted and human answers, mean over the study's cells",
			YLabel:   "mean cell W1", XLabel: "study"}, names, w1)
		if err != nil {
			return nil, err
		}
		v.W1Chart = svg
	}
	if len(rep.Groups) > 0 {
		var names []string
		var dist []data.Compare
		for _, g := range rep.Groups {
			names, dist = append(names, fmt.Sprintf("%s (%d)", g.Value, g.N)), append(dist, g.Dist)
		}
		svg, err := compareChart(barChart{ID: "dpd", Title: "Mean |E[ŷ] − y| / range by " + rep.Demographic + " (lower is better)",
			YLabel: "mean distance", XLabel: rep.Demographic}, names, dist)
		if err != nil {
			return nil, err
		}
		v.DPDChart = svg
	}

	// the first scored prediction of each cell gives its text and options
	first := map[data.CellKey]*data.Prediction{}
	for i := range in.Preds {
		p := &in.Preds[i]
		k := p.Cell()
		if q := first[k]; q == nil || (len(q.Options.Values) == 0 && len(p.Options.Values) > 0) {
			first[k] = p
		}
	}
	byStudy := map[string][]int{}
	for i, c := range rep.Cells {
		byStudy[c.Key.Study] = append(byStudy[c.Key.Study], i)
	}
	v.Open = len(rep.Cells) <= 40
	// the budget is shared alike, so every study shows its largest cells
	perStudy := min(cardsPerStudy, max(1, chartBudget/max(1, len(rep.Studies))))
	budget := chartBudget
	for si, s := range rep.Studies {
		sec := studySection{Anchor: fmt.Sprintf("study-%d", si+1), StudyReport: s}
		cells := byStudy[s.Study]
		sort.SliceStable(cells, func(a, b int) bool { return rep.Cells[cells[a]].N > rep.Cells[cells[b]].N })
		for j, ci := range cells {
			c := rep.Cells[ci]
			card := cellCard{Key: c.Key, N: c.N, W1: c.W1}
			p := first[c.Key]
			card.Question, card.Scenario = cellText(c.Key, p)
			if j >= perStudy || budget == 0 {
				if len(sec.Rest) < restRowsCap {
					sec.Rest = append(sec.Rest, card)
				} else {
					sec.RestCut++
				}
				continue
			}
			budget--
			svg, err := cellChart(fmt.Sprintf("c%d", ci), c, p, v.support(ci), card.Question, false)
			if err != nil {
				return nil, err
			}
			card.Chart = svg
			if j < cardsShown {
				sec.Shown = append(sec.Shown, card)
			} else {
				sec.Hidden = append(sec.Hidden, card)
			}
			v.Charted++
		}
		v.Studies = append(v.Studies, sec)
	}
	// cell_*.svg: the largest cells over all studies, titled with their
	// study, condition and question (which the page shows as text)
	order := make([]int, len(rep.Cells))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rep.Cells[order[a]].N > rep.Cells[order[b]].N })
	for _, ci := range order[:min(cellSVGs, len(order))] {
		c := rep.Cells[ci]
		q, _ := cellText(c.Key, first[c.Key])
		svg, err := cellChart(fmt.Sprintf("c%d", ci), c, first[c.Key], v.support(ci), q, true)
		if err != nil {
			return nil, err
		}
		v.largest = append(v.largest, svg)
	}
	return v, nil
}

// summary says in a sentence how the model's W1 compares with the
// baselines, overall and per study.
func summary(rep data.Report) string {
	if rep.Rows == 0 || len(rep.Studies) == 0 {
		return ""
	}
	w := rep.MacroW1
	best := min(w.Uniform, w.Prior)
	var s string
	switch {
	case w.Model < best:
		s = fmt.Sprintf("The model's answer distributions are closer to the human ones than both baselines: macro W1 %.4f against %.4f (uniform) and %.4f (training prior).", w.Model, w.Uniform, w.Prior)
	case w.Model == best:
		s = fmt.Sprintf("The model ties the better baseline: macro W1 %.4f against %.4f (uniform) and %.4f (training prior).", w.Model, w.Uniform, w.Prior)
	default:
		s = fmt.Sprintf("The model's answer distributions are further from the human ones than the better baseline: macro W1 %.4f against %.4f (uniform) and %.4f (training prior).", w.Model, w.Uniform, w.Prior)
	}
	beatsU, beatsP := 0, 0
	for _, st := range rep.Studies {
		if st.W1.Model < st.W1.Uniform {
			beatsU++
		}
		if st.W1.Model < st.W1.Prior {
			beatsP++
		}
	}
	return s + fmt.Sprintf(" Per study, it is closer than the uniform baseline in %d of %d and than the training prior in %d of %d.", beatsU, len(rep.Studies), beatsP, len(rep.Studies))
}

// compareChart draws c with the model and both baselines side by side for
// each category.
func compareChart(c barChart, categories []string, vals []data.Compare) (string, error) {
	c.Categories = categories
	c.Series = []string{"model", "uniform", "training prior"}
	c.Values = make([][]float64, 3)
	for _, v := range vals {
		c.Values[0] = append(c.Values[0], v.Model)
		c.Values[1] = append(c.Values[1], v.Uniform)
		c.Values[2] = append(c.Values[2], v.Prior)
	}
	return c.svg()
}

// support returns cell i's values when it is a numeric cell.
func (v *evalView) support(i int) []float64 {
	if i < len(v.Extra.Cells) && v.Extra.Cells[i].Kind == "numeric" {
		return v.Extra.Cells[i].Support
	}
	return nil
}

// cellText returns a cell's question and its condition's scenario (the
// stimulus before "and then were asked"), from one of its rows.
func cellText(k data.CellKey, p *data.Prediction) (question, scenario string) {
	question = k.Question
	if p == nil {
		return clean(question), ""
	}
	text := textOf(p)
	if question == "" && text != "" {
		question = data.Question(text)
	}
	_, scen, _ := data.SplitPrompt(text)
	if i := strings.LastIndex(scen, "and then were asked"); i > 0 {
		scenario = strings.TrimSpace(scen[:i])
	}
	return clean(question), clean(scenario)
}

// textOf is the row's prompt text (input, else stimuli).
func textOf(p *data.Prediction) string {
	if p.Input != "" {
		return p.Input
	}
	return p.Stimuli
}

// optionLabels names each option by its value and, where the question
// gives one, its text.
func optionLabels(o data.Options) []string {
	out := make([]string, len(o.Values))
	for i, x := range o.Values {
		out[i] = fmt.Sprint(x)
		if i < len(o.Labels) && strings.TrimSpace(o.Labels[i]) != "" {
			out[i] += " · " + strings.TrimSpace(o.Labels[i])
		}
	}
	return out
}

// cellChart draws a cell's predicted and human answer distributions; titled
// for a file of its own, untitled for a card on the page.
func cellChart(id string, c data.CellReport, p *data.Prediction, support []float64, question string, titled bool) (string, error) {
	var labels []string
	if len(support) == len(c.Human) && len(support) > 0 { // a numeric cell: its values
		for _, x := range support {
			labels = append(labels, strconv.FormatFloat(x, 'g', 6, 64))
		}
	} else if p != nil && len(p.Options.Values) == len(c.Human) {
		o := p.Options
		if len(o.Labels) == 0 { // predict writes only the values: the labels are in the question
			if q, ok := data.ParseOptions(textOf(p)); ok && slices.Equal(q.Values, o.Values) {
				o.Labels = q.Labels
			}
		}
		labels = optionLabels(o)
	} else {
		for i := range c.Human {
			labels = append(labels, fmt.Sprint(i+1))
		}
	}
	title := fmt.Sprintf("%s · condition %d", c.Key.Study, c.Key.Condition)
	if c.Key.Task >= 0 {
		title += fmt.Sprintf(" · task %d", c.Key.Task)
	}
	title += fmt.Sprintf(" · %d rows · W1 %.3f", c.N, c.W1.Model)
	ch := barChart{ID: id, Title: title, Subtitle: question, YLabel: "share of answers", XLabel: "answer",
		Categories: labels, Series: []string{"predicted (mean of the rows)", "human"},
		Values: [][]float64{c.Model, c.Human}, Format: "%.3f", PlotHeight: 170}
	if !titled {
		ch.Title, ch.Subtitle, ch.Alt = "", "", "predicted and human answers: "+question
	}
	return ch.svg()
}
