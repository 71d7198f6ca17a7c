package report

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/gotrain/gotrain/predict"
)

// WriteSimulation writes into dir, each file atomically: result.json (res
// as simulate --out writes it), distributions.svg (every condition's
// predicted answer distribution, side by side), effects.svg (each
// condition's effect on the mean answer against the control, with its 95%
// CI: a forest plot) and index.html, one self-contained page with them and
// the experiment's spec. exp is the validated experiment res was run from.
func WriteSimulation(dir string, exp *predict.Experiment, res *predict.SimResult) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	write := func(name string, b []byte) error { return writeFile(dir, name, b) }
	b, err := json.MarshalIndent(res, "", " ")
	if err != nil {
		return fmt.Errorf("report: result.json: %w", err)
	}
	if err := write("result.json", append(b, '\n')); err != nil {
		return err
	}
	v, err := buildSimView(exp, res)
	if err != nil {
		return err
	}
	if err := write("distributions.svg", []byte(v.DistChart)); err != nil {
		return err
	}
	if v.EffectChart != "" {
		if err := write("effects.svg", []byte(v.EffectChart)); err != nil {
			return err
		}
	}
	page, err := renderPage(simPage, v)
	if err != nil {
		return err
	}
	return write("index.html", page)
}

type simOption struct {
	Value string
	Label string
}

type simCondition struct {
	predict.CondResult
	Stimulus  string
	IsControl bool
}

type simView struct {
	Title       string
	Res         *predict.SimResult
	Question    string
	Format      string
	Options     []simOption
	Conditions  []simCondition
	ShowProbs   bool
	DistChart   string
	EffectChart string
}

func buildSimView(exp *predict.Experiment, res *predict.SimResult) (*simView, error) {
	v := &simView{Title: "Simulated experiment: " + clean(res.Experiment), Res: res,
		Question: clean(res.Question), Format: clean(res.Format), ShowProbs: len(res.Options.Values) <= 11}
	for i, x := range res.Options.Values {
		o := simOption{Value: fmt.Sprint(x)}
		if i < len(res.Options.Labels) {
			o.Label = clean(res.Options.Labels[i])
		}
		v.Options = append(v.Options, o)
	}
	stimuli := map[string]string{}
	if exp != nil {
		for _, c := range exp.Conditions {
			stimuli[c.Name] = c.Stimulus
		}
	}
	dist := barChart{ID: "dist", Title: "Predicted answers by condition", Subtitle: res.Question,
		YLabel: "share of answers", XLabel: "answer", Categories: optionLabels(res.Options), Format: "%.3f"}
	forest := forestPlot{ID: "eff", Title: "Effect on the mean answer against the control (" + res.Control + ")",
		Subtitle: fmt.Sprintf("paired over %d personas; 95%% percentile bootstrap intervals (%d resamples)", res.Personas, res.Bootstrap),
		XLabel:   "difference in mean answer (condition − control)"}
	if res.Bootstrap == 0 {
		forest.Subtitle = fmt.Sprintf("paired over %d personas; no confidence intervals (--bootstrap 0)", res.Personas)
	}
	for _, c := range res.Conditions {
		sc := simCondition{CondResult: c, Stimulus: clean(stimuli[c.Name]), IsControl: c.Name == res.Control}
		sc.Name = clean(c.Name)
		v.Conditions = append(v.Conditions, sc)
		name := c.Name
		if sc.IsControl {
			name += " (control)"
		}
		dist.Series = append(dist.Series, name)
		dist.Values = append(dist.Values, c.Probs)
		if c.Effect != nil {
			r := forestRow{Label: c.Name, Est: c.Effect.Diff}
			if c.Effect.CI != nil {
				r.Lo, r.Hi, r.HasCI = c.Effect.CI[0], c.Effect.CI[1], true
			}
			forest.Rows = append(forest.Rows, r)
		}
	}
	var err error
	if v.DistChart, err = dist.svg(); err != nil {
		return nil, err
	}
	if len(forest.Rows) > 0 {
		if v.EffectChart, err = forest.svg(); err != nil {
			return nil, err
		}
	}
	return v, nil
}

var simPage = parsePage(`{{define "body"}}{{template "head" .}}
<header>
<h1>{{.Title}}</h1>
<p class="meta">{{.Res.Personas}} personas × {{len .Res.Conditions}} conditions, seed {{.Res.Seed}}{{if .Res.Bootstrap}}, {{.Res.Bootstrap}} bootstrap resamples{{end}}. Predicted answer distributions from the model, not data from people.</p>
</header>
<nav><a href="#results">Results</a><a href="#distributions">Distributions</a>{{if .EffectChart}}<a href="#effects">Effects</a>{{end}}<a href="#spec">Experiment</a></nav>

<section id="results">
<h2>Results</h2>
<div class="scroll">
<table class="sortable" id="sim-table">
<thead><tr><th>condition</th><th class="num">mean</th><th class="num">Δ vs control</th><th class="num">95% CI</th><th class="num">W1 vs control</th>{{if .ShowProbs}}{{range .Options}}<th class="num" title="{{.Label}}">P({{.Value}})</th>{{end}}{{end}}</tr></thead>
<tbody>
{{range .Conditions}}<tr data-condition="{{.Name}}"><td>{{.Name}}{{if .IsControl}}<span class="tag">control</span>{{end}}</td><td class="num mean" data-v="{{v .Mean}}">{{f3 .Mean}}</td>
{{- with .Effect}}<td class="num diff" data-v="{{v .Diff}}">{{signed .Diff}}</td><td class="num ci"{{with .CI}} data-lo="{{v (index . 0)}}" data-hi="{{v (index . 1)}}">[{{signed (index . 0)}}, {{signed (index . 1)}}]{{else}}>—{{end}}</td><td class="num w1" data-v="{{v .W1}}">{{f4 .W1}}</td>
{{- else}}<td class="num">—</td><td class="num">—</td><td class="num">—</td>{{end}}
{{- if $.ShowProbs}}{{range .Probs}}<td class="num p" data-v="{{v .}}">{{f3 .}}</td>{{end}}{{end}}</tr>
{{end}}</tbody>
</table>
</div>
<p class="note">Mean: the expected answer under the condition's predicted distribution (the mean over personas of their distributions). Δ: the paired difference from the control over the same personas; the interval resamples personas. W1: Wasserstein-1 distance between the condition's and the control's distributions, answers mapped to [0, 1] by the scale's ends.</p>
</section>

<section id="distributions">
<h2>Distributions</h2>
<figure class="chart">{{svg .DistChart}}</figure>
</section>

{{with .EffectChart}}<section id="effects">
<h2>Effects against the control</h2>
<figure class="chart">{{svg .}}</figure>
</section>{{end}}

<section id="spec">
<h2>Experiment</h2>
<dl class="spec">
<dt>Outcome question</dt><dd>{{.Question}}</dd>
<dt>Answer format</dt><dd>{{.Format}}</dd>
<dt>Options</dt><dd><table><thead><tr><th class="num">value</th><th>label</th></tr></thead><tbody>{{range .Options}}<tr><td class="num">{{.Value}}</td><td>{{.Label}}</td></tr>{{end}}</tbody></table></dd>
<dt>Conditions</dt><dd><table><thead><tr><th>name</th><th>stimulus</th></tr></thead><tbody>{{range .Conditions}}<tr><td>{{.Name}}{{if .IsControl}}<span class="tag">control</span>{{end}}</td><td>{{.Stimulus}}</td></tr>{{end}}</tbody></table></dd>
</dl>
</section>
{{template "foot" .}}{{end}}`)
