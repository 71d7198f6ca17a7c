package predict

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gotrain/gotrain/data"
)

// Experiment is a survey experiment to screen before running it: conditions
// that differ only in their stimulus, one of them the control, and one
// outcome question. It is read from a JSON spec by LoadExperiment.
type Experiment struct {
	Name string `json:"name"`
	// Instruction is the alpaca instruction of every row (default
	// data.DefaultInstruction, as the SocSci210 rows have).
	Instruction string      `json:"instruction,omitempty"`
	Conditions  []Condition `json:"conditions"`
	Control     string      `json:"control"` // name of the control condition
	Outcome     Outcome     `json:"outcome"`

	// Set by Validate: the answer options, the question without its
	// answer-format sentence and that sentence (stated or written for the
	// options).
	Options  data.Options `json:"-"`
	Question string       `json:"-"`
	Format   string       `json:"-"`
	control  int
}

// Condition is one arm of an experiment.
type Condition struct {
	Name string `json:"name"`
	// Stimulus is what the participant saw, phrased as SocSci210 scenarios
	// are ("You read “...”"); the row continues " and then were asked: ...".
	Stimulus string `json:"stimulus"`
}

// Outcome is the question asked after the stimulus.
type Outcome struct {
	// Question, usually ending with its answer-format sentence ("Only return
	// an integer from 1 to 7, where 1 means ... and 7 means ..., nothing
	// else."), from which the options are parsed when Options is absent.
	Question string `json:"question"`
	// Options optionally lists the answers: integers, labels (numbered from
	// 1) or {"value", "label"} objects.
	Options json.RawMessage `json:"options,omitempty"`
}

// LoadExperiment reads and validates an experiment spec (JSON). Unknown
// fields are errors, so a misspelt key is not silently ignored.
func LoadExperiment(path string) (*Experiment, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var e Experiment
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("experiment: %s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("experiment: %s: more than one JSON value", path)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("experiment: %s: %w", path, err)
	}
	return &e, nil
}

// Validate checks the spec, naming the offending field, and resolves the
// options, question and answer format.
func (e *Experiment) Validate() error {
	if strings.TrimSpace(e.Name) == "" {
		return errors.New("name is empty")
	}
	if len(e.Conditions) < 2 {
		return fmt.Errorf("conditions: need at least 2 (a control and a treatment), have %d", len(e.Conditions))
	}
	seen := map[string]bool{}
	e.control = -1
	var names []string
	for i, c := range e.Conditions {
		if strings.TrimSpace(c.Name) == "" {
			return fmt.Errorf("conditions[%d].name is empty", i)
		}
		if seen[c.Name] {
			return fmt.Errorf("conditions[%d].name %q is repeated", i, c.Name)
		}
		seen[c.Name] = true
		names = append(names, strconv.Quote(c.Name))
		if strings.TrimSpace(c.Stimulus) == "" {
			return fmt.Errorf("conditions[%d].stimulus (%q) is empty", i, c.Name)
		}
		if c.Name == e.Control {
			e.control = i
		}
	}
	if e.control < 0 {
		return fmt.Errorf("control %q is not one of the conditions (%s)", e.Control, strings.Join(names, ", "))
	}
	q := strings.TrimSpace(e.Outcome.Question)
	if q == "" {
		return errors.New("outcome.question is empty")
	}
	// split off the answer-format sentence: it goes after the closing quote
	format := ""
	if i := strings.LastIndex(q, "Only return"); i >= 0 {
		q, format = strings.TrimSpace(q[:i]), strings.TrimSpace(q[i:])
		if q == "" {
			return errors.New("outcome.question is only an answer-format sentence")
		}
	}
	var stated data.Options
	var hasStated bool
	if format != "" {
		stated, hasStated = data.ParseOptionsMax(format, data.MaxOptionValues)
		hasStated = hasStated && len(stated.Values) > 0
	}
	switch {
	case len(e.Outcome.Options) > 0 && string(e.Outcome.Options) != "null":
		o, err := data.ParseOptionsField(e.Outcome.Options)
		if err != nil {
			return fmt.Errorf("outcome.options: %w", err)
		}
		if hasStated && !slices.Equal(o.Values, stated.Values) {
			return fmt.Errorf("outcome.options %v disagree with the question's answer format %q (%v)", o.Values, format, stated.Values)
		}
		if format == "" {
			format = formatSentence(o)
		}
		e.Options = o
	case format == "":
		return errors.New(`outcome.question has no answer-format sentence ("Only return an integer from 1 to 7, nothing else.") and outcome.options is absent`)
	case !hasStated:
		return fmt.Errorf("outcome.question: the answer format %q states no enumerable options; list them in outcome.options", format)
	default:
		e.Options = stated
	}
	if len(e.Options.Values) > data.MaxOptionValues {
		return fmt.Errorf("outcome: %d options, more than %d", len(e.Options.Values), data.MaxOptionValues)
	}
	e.Question, e.Format = q, format
	return nil
}

// formatSentence writes an answer-format sentence for options given as data,
// in the phrasings SocSci210 rows use.
func formatSentence(o data.Options) string {
	v := o.Values
	contiguous := true
	for i := 1; i < len(v); i++ {
		contiguous = contiguous && v[i] == v[i-1]+1
	}
	named := 0
	for _, l := range o.Labels {
		if l != "" {
			named++
		}
	}
	n := len(v)
	switch {
	case named == n:
		parts := make([]string, n)
		for i := range v {
			parts[i] = fmtValue(v[i]) + " for " + quoteLabel(o.Labels[i])
		}
		if n == 2 {
			return "Only return " + parts[0] + " or " + parts[1] + ", nothing else."
		}
		return "Only return " + strings.Join(parts, "; ") + ", nothing else."
	case contiguous && named == 2 && o.Labels[0] != "" && o.Labels[n-1] != "":
		return fmt.Sprintf("Only return an integer from %s to %s, where %s means %s and %s means %s, nothing else.",
			fmtValue(v[0]), fmtValue(v[n-1]), fmtValue(v[0]), o.Labels[0], fmtValue(v[n-1]), o.Labels[n-1])
	case contiguous:
		return fmt.Sprintf("Only return an integer from %s to %s, nothing else.", fmtValue(v[0]), fmtValue(v[n-1]))
	}
	parts := make([]string, n)
	for i := range v {
		parts[i] = fmtValue(v[i])
	}
	return "Only return one of " + strings.Join(parts[:n-1], ", ") + " or " + parts[n-1] + ", nothing else."
}

func fmtValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func quoteLabel(l string) string {
	if strings.Contains(l, "'") {
		return "“" + l + "”"
	}
	return "'" + l + "'"
}

// Scenario returns condition c's scenario text as SocSci210 rows write it:
// "<stimulus> and then were asked: “<question>” <answer format>". A final
// period of the stimulus is dropped since the sentence continues.
func (e *Experiment) Scenario(c int) string {
	s := strings.TrimSpace(e.Conditions[c].Stimulus)
	s = strings.TrimSuffix(s, ".")
	return s + " and then were asked: “" + e.Question + "” " + e.Format
}

// Row returns the alpaca row persona p would be shown in condition c, with
// the options and the condition's name as extra fields (so the options need
// not be re-parsed, and a written row says where it came from). The
// experiment must have been validated.
func (e *Experiment) Row(c int, p *data.Persona) data.Example {
	instr := e.Instruction
	if instr == "" {
		instr = data.DefaultInstruction
	}
	opts, _ := json.Marshal(e.Options)
	cond, _ := json.Marshal(e.Conditions[c].Name)
	return data.Example{
		File:         fmt.Sprintf("%s/%s", e.Name, e.Conditions[c].Name),
		Line:         p.ParticipantID,
		Format:       data.FormatAlpaca,
		Instruction:  instr,
		Input:        data.BuildPrompt(p.Render(), e.Scenario(c)),
		StudyID:      e.Name,
		ConditionNum: c,
		TaskNum:      0,
		Participant:  p.ParticipantID,
		Extra:        map[string]json.RawMessage{"options": opts, "condition": cond},
	}
}

// SimOptions configures Simulate.
type SimOptions struct {
	N         int    // personas drawn from the pool without replacement (0 or ≥ pool: all)
	Seed      uint64 // seeds the persona draw and the bootstrap
	Bootstrap int    // bootstrap resamples for the effect CIs (0: no CIs)
	// Progress, if not nil, is called as rows are predicted.
	Progress func(done, total int)
}

// SimResult is a simulated experiment.
type SimResult struct {
	Experiment   string       `json:"experiment"`
	Question     string       `json:"question"`
	Format       string       `json:"format"`
	Options      data.Options `json:"options"`
	Control      string       `json:"control"`
	Personas     int          `json:"personas"`
	Participants []int        `json:"participant_ids"` // the drawn personas, in prediction order
	Seed         uint64       `json:"seed"`
	Bootstrap    int          `json:"bootstrap"`
	Conditions   []CondResult `json:"conditions"`
	// Prompt tokens computed and reused from the KV cache.
	Computed int `json:"tokens_computed"`
	Reused   int `json:"tokens_reused"`
}

// CondResult is one condition's predicted outcome.
type CondResult struct {
	Name string `json:"name"`
	// Probs is the predicted answer distribution: the mean over personas of
	// their distributions, in Options.Values order.
	Probs []float64 `json:"probs"`
	Mean  float64   `json:"mean"` // expected answer under Probs
	// PersonaMeans holds each persona's expected answer (Participants order).
	PersonaMeans []float64 `json:"persona_means"`
	Effect       *Effect   `json:"effect,omitempty"` // against the control; nil for the control
}

// Effect compares a condition with the control over the same personas.
type Effect struct {
	Diff float64 `json:"diff"` // mean answer minus the control's
	// CI is the 95% percentile bootstrap interval of Diff, resampling
	// personas with replacement (paired: one resample serves every
	// condition); nil without bootstrap.
	CI *[2]float64 `json:"ci95,omitempty"`
	// W1 is the Wasserstein-1 distance between the condition's and the
	// control's distributions, answers mapped to [0,1] by the scale ends
	// (as eval computes it).
	W1 float64 `json:"w1"`
}

// simChunk is how many personas are predicted per call to Rows: all their
// conditions go together, so a persona's demographics prefix is computed once
// and cancellation is checked between chunks. Small, so that a cancelled run
// on a large model stops soon; each chunk recomputes only the shared
// instruction prefix.
const simChunk = 8

// Simulate predicts every drawn persona's answer distribution in every
// condition and compares each condition with the control. personas is the
// pool; opt.N of them are drawn with opt.Seed. The experiment must be
// validated (LoadExperiment does it).
func Simulate(ctx context.Context, p *Predictor, exp *Experiment, personas []data.Persona, opt SimOptions) (*SimResult, error) {
	if exp.Question == "" || len(exp.Options.Values) == 0 {
		if err := exp.Validate(); err != nil {
			return nil, fmt.Errorf("simulate: experiment: %w", err)
		}
	}
	if len(personas) == 0 {
		return nil, errors.New("simulate: no personas")
	}
	if opt.N < 0 || opt.Bootstrap < 0 {
		return nil, fmt.Errorf("simulate: need n ≥ 0 and bootstrap ≥ 0, have %d and %d", opt.N, opt.Bootstrap)
	}
	drawn := drawPersonas(len(personas), opt.N, opt.Seed)
	C, N, K := len(exp.Conditions), len(drawn), len(exp.Options.Values)
	res := &SimResult{
		Experiment: exp.Name, Question: exp.Question, Format: exp.Format, Options: exp.Options,
		Control: exp.Conditions[exp.control].Name, Personas: N, Seed: opt.Seed, Bootstrap: opt.Bootstrap,
		Conditions: make([]CondResult, C),
	}
	for c := range res.Conditions {
		res.Conditions[c] = CondResult{Name: exp.Conditions[c].Name, Probs: make([]float64, K), PersonaMeans: make([]float64, N)}
	}
	for _, i := range drawn {
		res.Participants = append(res.Participants, personas[i].ParticipantID)
	}
	for lo := 0; lo < N; lo += simChunk {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("simulate: stopped after %d of %d personas: %w", lo, N, err)
		}
		hi := min(lo+simChunk, N)
		rows := make([]data.Example, 0, (hi-lo)*C)
		for j := lo; j < hi; j++ {
			for c := 0; c < C; c++ {
				rows = append(rows, exp.Row(c, &personas[drawn[j]]))
			}
		}
		var progress func(int)
		if opt.Progress != nil {
			progress = func(done int) { opt.Progress(lo*C+done, N*C) }
		}
		out, err := p.Rows(rows, progress)
		if err != nil {
			return nil, fmt.Errorf("simulate: %w", err)
		}
		res.Computed += p.Computed
		res.Reused += p.Reused
		for r, o := range out {
			j, c := lo+r/C, r%C
			if o.Method != "options" || len(o.Probs) != K {
				return nil, fmt.Errorf("simulate: %s: the %d options were not scored exactly (the predictor's MaxOptions is lower?)", rows[r].Where(), K)
			}
			cr := &res.Conditions[c]
			for k, v := range o.Probs {
				cr.Probs[k] += v / float64(N)
			}
			cr.PersonaMeans[j] = data.Mean(exp.Options, o.Probs)
		}
	}
	for c := range res.Conditions {
		res.Conditions[c].Mean = data.Mean(exp.Options, res.Conditions[c].Probs)
	}
	// effects: paired differences of the persona means
	ctrl := res.Conditions[exp.control]
	diffs := make([][]float64, C)
	for c := range res.Conditions {
		if c == exp.control {
			continue
		}
		cr := &res.Conditions[c]
		d := make([]float64, N)
		for j := range d {
			d[j] = cr.PersonaMeans[j] - ctrl.PersonaMeans[j]
		}
		diffs[c] = d
		cr.Effect = &Effect{Diff: cr.Mean - ctrl.Mean, W1: data.CellW1(exp.Options, cr.Probs, ctrl.Probs)}
	}
	if opt.Bootstrap > 0 {
		cis := BootstrapCIs(diffs, opt.Bootstrap, 0.95, opt.Seed)
		for c := range res.Conditions {
			if diffs[c] != nil {
				ci := cis[c]
				res.Conditions[c].Effect.CI = &ci
			}
		}
	}
	return res, nil
}

// DrawPersonas returns the n personas of pool that Simulate draws with seed,
// in pool order (the whole pool when n is 0 or ≥ len(pool)).
func DrawPersonas(pool []data.Persona, n int, seed uint64) []data.Persona {
	idx := drawPersonas(len(pool), n, seed)
	out := make([]data.Persona, len(idx))
	for k, i := range idx {
		out[k] = pool[i]
	}
	return out
}

// drawPersonas returns n distinct indices of a pool of size pool, drawn with
// a seeded shuffle and sorted (all of them when n is 0 or ≥ pool).
func drawPersonas(pool, n int, seed uint64) []int {
	idx := make([]int, pool)
	for i := range idx {
		idx[i] = i
	}
	if n == 0 || n >= pool {
		return idx
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e75))
	for i := 0; i < n; i++ { // partial Fisher–Yates
		j := i + rng.IntN(pool-i)
		idx[i], idx[j] = idx[j], idx[i]
	}
	idx = idx[:n]
	sort.Ints(idx)
	return idx
}

// BootstrapCIs returns, for each series of paired per-unit differences
// d[s] (all of one length n; nil series are skipped), the percentile
// bootstrap interval at level (0.95: the 2.5% and 97.5% quantiles) of the
// mean difference over B resamples of the n units drawn with replacement.
// Every series is resampled with the same units, so the intervals are
// paired across series as well as within. Quantiles interpolate linearly
// (numpy's default).
func BootstrapCIs(d [][]float64, B int, level float64, seed uint64) [][2]float64 {
	out := make([][2]float64, len(d))
	n := 0
	for _, s := range d {
		if s != nil {
			n = len(s)
			break
		}
	}
	if n == 0 || B <= 0 {
		return out
	}
	rng := rand.New(rand.NewPCG(seed, 0xb0075))
	means := make([][]float64, len(d))
	for s := range d {
		if d[s] != nil {
			means[s] = make([]float64, B)
		}
	}
	pick := make([]int, n)
	for b := 0; b < B; b++ {
		for i := range pick {
			pick[i] = rng.IntN(n)
		}
		for s, series := range d {
			if series == nil {
				continue
			}
			var sum float64
			for _, i := range pick {
				sum += series[i]
			}
			means[s][b] = sum / float64(n)
		}
	}
	alpha := (1 - level) / 2
	for s, m := range means {
		if m == nil {
			continue
		}
		sort.Float64s(m)
		out[s] = [2]float64{quantile(m, alpha), quantile(m, 1-alpha)}
	}
	return out
}

// quantile returns the q-quantile of sorted values, interpolating linearly
// between order statistics (numpy.quantile's default).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	h := q * float64(len(sorted)-1)
	lo := int(math.Floor(h))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// WriteTable prints the result as a readable table: each condition's mean
// answer, its effect against the control with the bootstrap CI and W1, and
// its predicted distribution when the scale has at most 11 points.
func (r *SimResult) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "experiment %s: %d personas × %d conditions", r.Experiment, r.Personas, len(r.Conditions))
	if r.Bootstrap > 0 {
		fmt.Fprintf(&b, ", %d bootstrap resamples", r.Bootstrap)
	}
	fmt.Fprintf(&b, " (seed %d)\n", r.Seed)
	fmt.Fprintf(&b, "question: %s %s\n\n", r.Question, r.Format)
	width := len("condition")
	for _, c := range r.Conditions {
		width = max(width, utf8.RuneCountInString(c.Name)+len(" (control)"))
	}
	showDist := len(r.Options.Values) <= 11
	fmt.Fprintf(&b, "%s %7s %s %7s", padRight("condition", width), "mean", padLeft("Δ mean vs control [95% CI]", 26), "W1")
	if showDist {
		for _, v := range r.Options.Values {
			fmt.Fprintf(&b, " %6s", "P("+fmtValue(v)+")")
		}
	}
	b.WriteByte('\n')
	for _, c := range r.Conditions {
		name := c.Name
		if name == r.Control {
			name += " (control)"
		}
		eff, w1 := "—", "—"
		if c.Effect != nil {
			eff = fmt.Sprintf("%+.3f", c.Effect.Diff)
			if c.Effect.CI != nil {
				eff += fmt.Sprintf(" [%+.3f, %+.3f]", c.Effect.CI[0], c.Effect.CI[1])
			}
			w1 = fmt.Sprintf("%.4f", c.Effect.W1)
		}
		fmt.Fprintf(&b, "%s %7.3f %s %s", padRight(name, width), c.Mean, padLeft(eff, 26), padLeft(w1, 7))
		if showDist {
			for _, p := range c.Probs {
				fmt.Fprintf(&b, " %6.3f", p)
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// padLeft and padRight pad s with spaces to width runes (Printf's widths
// count bytes, which misaligns "—" and non-ASCII condition names).
func padLeft(s string, width int) string {
	return strings.Repeat(" ", max(0, width-utf8.RuneCountInString(s))) + s
}

func padRight(s string, width int) string {
	return s + strings.Repeat(" ", max(0, width-utf8.RuneCountInString(s)))
}
