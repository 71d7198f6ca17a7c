package data

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
)

// LogFloor is the smallest probability LogLik takes the log of, so a
// zero-probability true answer costs log(1e-12) rather than -Inf.
const LogFloor = 1e-12

// W1 is the Wasserstein-1 distance between two distributions p and q over
// the same ordered support x (ascending, already mapped to [0,1]):
// ∫|F−G| = Σ_{i<n-1} |P_i − Q_i|·(x_{i+1} − x_i), P and Q cumulative.
func W1(p, q, x []float64) float64 {
	var fp, fq, d float64
	for i := 0; i+1 < len(x) && i < len(p) && i < len(q); i++ {
		fp += p[i]
		fq += q[i]
		d += math.Abs(fp-fq) * (x[i+1] - x[i])
	}
	return d
}

// argmax returns the index of the largest value (the first on ties).
func argmax(p []float64) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

// Accuracy is the individual accuracy 1 − |ŷ − y|/(max − min), ŷ the most
// likely option.
func Accuracy(o Options, probs []float64, truth float64) float64 {
	if len(o.Values) == 0 || len(probs) != len(o.Values) {
		return math.NaN()
	}
	yhat := float64(o.Values[argmax(probs)])
	return 1 - math.Abs(o.Scale(yhat)-o.Scale(truth))
}

// LogLik is the log probability of the true answer (floored at LogFloor);
// NaN if the truth is not an option.
func LogLik(o Options, probs []float64, truth float64) float64 {
	i := o.Index(truth)
	if i < 0 || i >= len(probs) {
		return math.NaN()
	}
	return math.Log(math.Max(probs[i], LogFloor))
}

// RPS is the ranked probability score of one answer, normalised by the
// number of options − 1: Σ_{i<n-1} (F_i − O_i)² / (n − 1), F the predicted
// and O the observed (step) cumulative distribution, options in value order.
// 0 is perfect, 1 the worst.
func RPS(o Options, probs []float64, truth float64) float64 {
	n := len(o.Values)
	ti := o.Index(truth)
	if ti < 0 || len(probs) != n {
		return math.NaN()
	}
	if n == 1 {
		return 0
	}
	ord := valueOrder(o)
	var f, s float64
	seen := false
	for k := 0; k+1 < n; k++ {
		f += probs[ord[k]]
		if ord[k] == ti {
			seen = true
		}
		obs := 0.0
		if seen {
			obs = 1
		}
		s += (f - obs) * (f - obs)
	}
	return s / float64(n-1)
}

// valueOrder returns option indices sorted by value.
func valueOrder(o Options) []int {
	ord := make([]int, len(o.Values))
	for i := range ord {
		ord[i] = i
	}
	sort.SliceStable(ord, func(a, b int) bool { return o.Values[ord[a]] < o.Values[ord[b]] })
	return ord
}

// Mean is the expected answer Σ p_i v_i.
func Mean(o Options, probs []float64) float64 {
	var m float64
	for i, p := range probs {
		if i < len(o.Values) {
			m += p * float64(o.Values[i])
		}
	}
	return m
}

// CellW1 is W1 between two distributions over o's values (in o's order),
// after mapping the values to [0,1] by o's scale.
func CellW1(o Options, p, q []float64) float64 {
	ord := valueOrder(o)
	ps := make([]float64, len(ord))
	qs := make([]float64, len(ord))
	xs := make([]float64, len(ord))
	for k, i := range ord {
		ps[k], qs[k], xs[k] = p[i], q[i], o.Scale(float64(o.Values[i]))
	}
	return W1(ps, qs, xs)
}

// Uniform returns the uniform distribution over n options.
func Uniform(n int) []float64 {
	u := make([]float64, n)
	for i := range u {
		u[i] = 1 / float64(n)
	}
	return u
}

// Prior is the training-prior baseline: the empirical distribution of the
// training answers to the same question, else to the same study, else
// uniform. Alpha is an optional pseudo-count added to every option.
type Prior struct {
	Alpha      float64
	byQuestion map[string]map[float64]float64
	byStudy    map[string]map[float64]float64
}

func questionKey(e *Example) string { return questionKeyOf(e.Cell()) }

func questionKeyOf(k CellKey) string {
	if k.Task >= 0 {
		return "task\x00" + k.Study + "\x00" + strconv.Itoa(k.Task)
	}
	return "q\x00" + k.Question
}

// NewPrior counts the answers of the training rows (rows without a numeric
// answer are ignored).
func NewPrior(train []Example) Prior {
	p := Prior{byQuestion: map[string]map[float64]float64{}, byStudy: map[string]map[float64]float64{}}
	add := func(m map[string]map[float64]float64, k string, v float64) {
		if m[k] == nil {
			m[k] = map[float64]float64{}
		}
		m[k][v]++
	}
	for i := range train {
		e := &train[i]
		if !e.HasResponse {
			continue
		}
		add(p.byQuestion, questionKey(e), e.Response)
		add(p.byStudy, e.StudyID, e.Response)
	}
	return p
}

// Dist returns the prior distribution over o's values for example e.
func (p Prior) Dist(e *Example, o Options) []float64 { return p.dist(e.Cell(), o) }

func (p Prior) dist(k CellKey, o Options) []float64 {
	n := len(o.Values)
	for _, counts := range []map[float64]float64{p.byQuestion[questionKeyOf(k)], p.byStudy[k.Study]} {
		if counts == nil {
			continue
		}
		d := make([]float64, n)
		var sum float64
		for i, v := range o.Values {
			d[i] = counts[float64(v)]
			sum += d[i]
		}
		if sum == 0 {
			continue
		}
		sum += p.Alpha * float64(n)
		for i := range d {
			d[i] = (d[i] + p.Alpha) / sum
		}
		return d
	}
	return Uniform(n)
}

// numeric returns the training answers to k's question as a distribution,
// or nil when there are none.
func (p Prior) numeric(k CellKey) []ValueProb {
	counts := p.byQuestion[questionKeyOf(k)]
	var n float64
	for _, c := range counts {
		n += c
	}
	if n == 0 {
		return nil
	}
	out := make([]ValueProb, 0, len(counts))
	for v, c := range counts {
		out = append(out, ValueProb{v, c / n})
	}
	slices.SortFunc(out, func(a, b ValueProb) int { return cmp.Compare(a.Value, b.Value) })
	return out
}

// Prediction is a model's predicted answer distribution for one row.
type Prediction struct {
	Example
	// Method says how the row was predicted: "options" (Probs over
	// Options.Values; also when empty), "numeric" (Numeric, an exact
	// distribution over values), "sampled" (Numeric holds the samples, each
	// of weight 1/n) or "none" (no prediction; Reason says why).
	Method  string
	Reason  string
	Options Options     // the row's answer options
	Probs   []float64   // probability per option, in Options.Values order
	Numeric []ValueProb // numeric and sampled rows: the predicted distribution
	Truth   float64     // the human answer
}

// ValueProb is one value of a numeric distribution with its probability.
type ValueProb struct {
	Value float64 `json:"value"`
	Prob  float64 `json:"prob"`
}

// Methods are the prediction methods, in the order reports list them.
var Methods = []string{"options", "numeric", "sampled", "none"}

// Compare holds one metric for the model and the two baselines side by side.
type Compare struct {
	Model   float64 `json:"model"`
	Uniform float64 `json:"uniform"`
	Prior   float64 `json:"prior"`
}

func (c *Compare) add(o Compare) { c.Model += o.Model; c.Uniform += o.Uniform; c.Prior += o.Prior }
func (c *Compare) div(n int) {
	if n == 0 {
		*c = Compare{math.NaN(), math.NaN(), math.NaN()}
		return
	}
	f := float64(n)
	c.Model, c.Uniform, c.Prior = c.Model/f, c.Uniform/f, c.Prior/f
}

// Individual are the per-row metrics averaged over rows.
type Individual struct {
	Accuracy Compare `json:"accuracy"` // 1 − |ŷ − y|/range, higher is better
	LogLik   Compare `json:"loglik"`   // mean log p(y), higher is better
	RPS      Compare `json:"rps"`      // ranked probability score, lower is better
}

func (s *Individual) add(o Individual) {
	s.Accuracy.add(o.Accuracy)
	s.LogLik.add(o.LogLik)
	s.RPS.add(o.RPS)
}
func (s *Individual) div(n int) { s.Accuracy.div(n); s.LogLik.div(n); s.RPS.div(n) }

// CellReport is the distributional comparison of one cell. An option cell
// has Human and Model over the options; a numeric cell over Support, and
// Range, the spread of the human answers to the question in the study,
// by which its W1 is divided.
type CellReport struct {
	Key     CellKey   `json:"key"`
	Kind    string    `json:"kind"` // "options" or "numeric"
	N       int       `json:"n"`
	Support []float64 `json:"support,omitempty"` // numeric cells: the values, ascending
	Human   []float64 `json:"human"`             // empirical distribution of the true answers
	Model   []float64 `json:"model"`             // mean predicted distribution
	Range   float64   `json:"range,omitempty"`   // numeric cells: the W1 normaliser
	W1      Compare   `json:"w1"`                // lower is better
}

// StudyReport averages one study's cells (W1) and rows (individual).
type StudyReport struct {
	Study        string     `json:"study_id"`
	Cells        int        `json:"cells"`
	NumericCells int        `json:"numeric_cells"`
	Rows         int        `json:"rows"`
	OutOfOptions int        `json:"out_of_options"` // rows whose truth lies outside the parsed options
	W1           Compare    `json:"w1"`
	Individual   Individual `json:"individual"`
}

// GroupReport is one value of the demographic field.
type GroupReport struct {
	Value string  `json:"value"`
	N     int     `json:"n"`
	Dist  Compare `json:"dist"` // mean |E[ŷ] − y|/range
}

// OutOfOptions groups the rows of one question of a study whose true
// answer lies outside the options parsed from it: when most of the
// question's rows are outside (Outside near Rows), the parser misread the
// answer format; when a few are, the data holds answers off the scale.
type OutOfOptions struct {
	Study    string    `json:"study_id"`
	Question string    `json:"question"`
	Form     string    `json:"form"`    // the answer-format form parsed from the text ("none" when no form matched)
	Format   string    `json:"format"`  // the answer-format sentence
	Options  string    `json:"options"` // the options used, briefly ("1..7", "open 0..2000")
	Rows     int       `json:"rows"`    // rows of the question with a recorded answer
	Outside  int       `json:"outside"` // of which outside the options
	Truths   []float64 `json:"truths"`  // distinct answers outside (at most 10)
	Where    []string  `json:"where"`   // file:line of the first ones (at most 5)
}

// Report is the result of Evaluate; every field is JSON-serialisable
// (NaN never appears: empty averages are reported as 0 with a zero count).
type Report struct {
	Rows        int            `json:"rows"`         // predictions scored (option and numeric rows)
	OptionRows  int            `json:"option_rows"`  // of which option rows (the individual metrics' rows)
	NumericRows int            `json:"numeric_rows"` // of which numeric or sampled rows
	Coverage    map[string]int `json:"coverage"`     // every prediction read, by method (Methods)
	NoneReasons map[string]int `json:"none_reasons"` // predictions of method "none", by reason
	Skipped     map[string]int `json:"skipped"`      // predictions not scored, by reason
	Cells       []CellReport   `json:"cells"`
	Studies     []StudyReport  `json:"studies"`
	// MacroW1 is the mean over studies of the mean cell W1 over option and
	// numeric cells; MacroW1Options and MacroW1Numeric are the same over one
	// kind of cell (studies without such cells left out).
	MacroW1        Compare        `json:"macro_w1"`
	MacroW1Options Compare        `json:"macro_w1_options"`
	MacroW1Numeric Compare        `json:"macro_w1_numeric"`
	OutOfOptions   []OutOfOptions `json:"out_of_options"` // by study and question
	Individual     Individual     `json:"individual"`

	Demographic string        `json:"demographic,omitempty"`
	Groups      []GroupReport `json:"groups,omitempty"`
	Ungrouped   int           `json:"ungrouped,omitempty"` // scored rows lacking the field
	DPD         Compare       `json:"dpd"`                 // max − min over groups of the group distance
}

// Reasons Evaluate skips a prediction (Report.Skipped).
const (
	SkipNoTruth      = "no recorded answer"
	SkipNoPrediction = "no prediction (method none)"
	SkipNoOptions    = "no enumerated options"
	SkipProbsLength  = "probabilities do not match options"
	SkipNotDist      = "probabilities not a distribution"
	SkipOutside      = "truth outside the options"
	SkipCellOptions  = "options differ within cell"
	SkipCellKinds    = "option and numeric predictions in one cell"
)

// normalise checks probs are a distribution (finite, ≥ 0, positive sum)
// and returns them scaled to sum to 1.
func normalise(probs []float64) ([]float64, bool) {
	var sum float64
	for _, p := range probs {
		if p < 0 || math.IsNaN(p) || math.IsInf(p, 0) {
			return nil, false
		}
		sum += p
	}
	if !(sum > 0) || math.IsInf(sum, 0) {
		return nil, false
	}
	out := make([]float64, len(probs))
	for i, p := range probs {
		out[i] = p / sum
	}
	return out, true
}

// numericDist returns a numeric or sampled prediction as a distribution.
func numericDist(pr *Prediction) ([]ValueProb, bool) {
	if len(pr.Numeric) == 0 {
		return nil, false
	}
	probs := make([]float64, len(pr.Numeric))
	for i, vp := range pr.Numeric {
		if math.IsNaN(vp.Value) || math.IsInf(vp.Value, 0) {
			return nil, false
		}
		probs[i] = vp.Prob
	}
	probs, ok := normalise(probs)
	if !ok {
		return nil, false
	}
	out := make([]ValueProb, len(probs))
	for i, p := range probs {
		out[i] = ValueProb{pr.Numeric[i].Value, p}
	}
	return out, true
}

// W1Values is the Wasserstein-1 distance between two distributions over
// values on the real line, in the values' units: ∫|F−G|.
func W1Values(a, b []ValueProb) float64 {
	pts := make([]ValueProb, 0, len(a)+len(b))
	pts = append(pts, a...)
	for _, vp := range b {
		pts = append(pts, ValueProb{vp.Value, -vp.Prob})
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].Value < pts[j].Value })
	var cum, d float64
	for i := 0; i+1 < len(pts); i++ {
		cum += pts[i].Prob
		d += math.Abs(cum) * (pts[i+1].Value - pts[i].Value)
	}
	return d
}

// textOf is the text an example's answer format is read from.
func (e *Example) textOf() string {
	text := e.Input
	if text == "" {
		text = e.Stimuli
	}
	if text == "" && len(e.Messages) > 0 {
		if p := e.Prompt(); len(p) > 0 {
			text = p[len(p)-1].Content
		}
	}
	return text
}

// Evaluate scores predictions against the truth, side by side with the
// uniform and training-prior baselines: W1 per cell (mean predicted
// distribution vs the empirical human one), per study (mean over cells) and
// macro (mean over studies); accuracy, log-likelihood and RPS per option
// row; and, when demographic names a field ("Gender", "party_id", ...), the
// demographic parity difference over its values.
//
// Option cells map the options onto [0,1] by the scale's ends. Numeric
// cells (rows predicted by method "numeric" or "sampled") compare the
// distributions over values and divide W1 by the range of the human answers
// to that question across the whole study (the rows evaluated and the
// prior's training answers to it); their uniform baseline is
// uniform over the distinct human answers to the question in the study,
// their prior the training answers to the question.
//
// Rows without a prediction, with probabilities that do not fit their
// options or are not a distribution, or whose truth lies outside their
// options (listed in OutOfOptions), are skipped and counted by reason.
func Evaluate(preds []Prediction, prior Prior, demographic string) Report {
	rep := Report{Coverage: map[string]int{}, NoneReasons: map[string]int{}, Skipped: map[string]int{}, OutOfOptions: []OutOfOptions{}, Demographic: demographic}
	for _, m := range Methods {
		rep.Coverage[m] = 0
	}
	type cellAcc struct {
		key     CellKey
		numeric bool
		opt     Options
		n       int
		human   []float64
		model   []float64
		prior   []float64
		values  []float64           // numeric: the human answers
		mix     map[float64]float64 // numeric: summed predicted probability per value
	}
	cells := map[CellKey]*cellAcc{}
	type studyAcc struct {
		rows, outside int
		ind           Individual
	}
	studies := map[string]*studyAcc{}
	study := func(s string) *studyAcc {
		if studies[s] == nil {
			studies[s] = &studyAcc{}
		}
		return studies[s]
	}
	type groupAcc struct {
		n int
		d Compare
	}
	groups := map[string]*groupAcc{}
	outcomes := map[CellKey]*OutOfOptions{} // per question of a study
	var outcomeOrder []CellKey
	// The range of the human answers to each question across the study.
	lo, hi := map[CellKey]float64{}, map[CellKey]float64{}

	for i := range preds {
		pr := &preds[i]
		method := pr.Method
		if method == "" {
			method = "options"
		}
		rep.Coverage[method]++
		if method == "none" {
			rep.NoneReasons[pr.Reason]++
			rep.Skipped[SkipNoPrediction]++
			continue
		}
		if !pr.HasResponse {
			rep.Skipped[SkipNoTruth]++
			continue
		}
		key := pr.Cell()
		numeric := method == "numeric" || method == "sampled"
		o := pr.Options
		n := len(o.Values)
		reason := ""
		var probs []float64
		var dist []ValueProb
		if numeric {
			var ok bool
			if dist, ok = numericDist(pr); !ok {
				reason = SkipNotDist
			}
		} else {
			var ok bool
			switch probs, ok = normalise(pr.Probs); {
			case n == 0:
				reason = SkipNoOptions
			case len(pr.Probs) != n:
				reason = SkipProbsLength
			case !ok:
				reason = SkipNotDist
			}
		}
		if reason != "" {
			rep.Skipped[reason]++
			continue
		}
		// Truth against the options: listed per question either way.
		qk := key.OutcomeKey()
		oo := outcomes[qk]
		if oo == nil {
			text := pr.textOf()
			form := "none"
			if so, found := ParseOptionsMax(text, MaxOptionValues); found {
				form = so.Form
			}
			oo = &OutOfOptions{Study: key.Study, Question: key.Question, Form: form, Format: AnswerFormat(text), Options: o.Summary()}
			outcomes[qk] = oo
			outcomeOrder = append(outcomeOrder, qk)
		}
		oo.Rows++
		if !o.Contains(pr.Truth) {
			oo.Outside++
			if len(oo.Truths) < 10 && !slices.Contains(oo.Truths, pr.Truth) {
				oo.Truths = append(oo.Truths, pr.Truth)
			}
			if len(oo.Where) < 5 {
				oo.Where = append(oo.Where, pr.Where())
			}
			study(key.Study).outside++
			rep.Skipped[SkipOutside]++
			continue
		}
		c := cells[key]
		switch {
		case c != nil && c.numeric != numeric:
			reason = SkipCellKinds
		case c != nil && !numeric && !sameValues(c.opt, o):
			reason = SkipCellOptions
		}
		if reason != "" {
			rep.Skipped[reason]++
			continue
		}
		if c == nil {
			c = &cellAcc{key: key, numeric: numeric, opt: o}
			if numeric {
				c.mix = map[float64]float64{}
			} else {
				c.human, c.model, c.prior = make([]float64, n), make([]float64, n), make([]float64, n)
			}
			cells[key] = c
		}
		c.n++
		rep.Rows++
		if numeric {
			rep.NumericRows++
			c.values = append(c.values, pr.Truth)
			for _, vp := range dist {
				c.mix[vp.Value] += vp.Prob
			}
			if l, seen := lo[qk]; !seen || pr.Truth < l {
				lo[qk] = pr.Truth
			}
			if h, seen := hi[qk]; !seen || pr.Truth > h {
				hi[qk] = pr.Truth
			}
			continue
		}
		rep.OptionRows++
		uni := Uniform(n)
		pri := prior.dist(key, o)
		c.human[o.Index(pr.Truth)]++
		for j := range probs {
			c.model[j] += probs[j]
			c.prior[j] += pri[j]
		}
		ind := Individual{
			Accuracy: Compare{Accuracy(o, probs, pr.Truth), Accuracy(o, uni, pr.Truth), Accuracy(o, pri, pr.Truth)},
			LogLik:   Compare{LogLik(o, probs, pr.Truth), LogLik(o, uni, pr.Truth), LogLik(o, pri, pr.Truth)},
			RPS:      Compare{RPS(o, probs, pr.Truth), RPS(o, uni, pr.Truth), RPS(o, pri, pr.Truth)},
		}
		rep.Individual.add(ind)
		s := study(key.Study)
		s.rows++
		s.ind.add(ind)
		if demographic != "" {
			if v, ok := pr.Demographic(demographic); ok {
				g := groups[v]
				if g == nil {
					g = &groupAcc{}
					groups[v] = g
				}
				y := o.Scale(pr.Truth)
				g.n++
				g.d.add(Compare{
					math.Abs(o.Scale(Mean(o, probs)) - y),
					math.Abs(o.Scale(Mean(o, uni)) - y),
					math.Abs(o.Scale(Mean(o, pri)) - y),
				})
			} else {
				rep.Ungrouped++
			}
		}
	}
	rep.Individual.div(rep.OptionRows)
	for _, k := range outcomeOrder {
		if oo := outcomes[k]; oo.Outside > 0 {
			rep.OutOfOptions = append(rep.OutOfOptions, *oo)
		}
	}
	sort.SliceStable(rep.OutOfOptions, func(a, b int) bool {
		x, y := rep.OutOfOptions[a], rep.OutOfOptions[b]
		if x.Study != y.Study {
			return x.Study < y.Study
		}
		return x.Question < y.Question
	})
	// The distinct human answers to each numeric question in the study: the
	// numeric cells' uniform baseline.
	answers := map[CellKey][]float64{}
	for _, c := range cells {
		if c.numeric {
			answers[c.key.OutcomeKey()] = append(answers[c.key.OutcomeKey()], c.values...)
		}
	}
	for k, v := range answers {
		sort.Float64s(v)
		answers[k] = slices.Compact(v)
	}

	keys := make([]CellKey, 0, len(cells))
	for k := range cells {
		keys = append(keys, k)
	}
	sortKeys(keys)
	type studyW struct {
		all, opt, num    Compare
		nAll, nOpt, nNum int
	}
	studyW1 := map[string]*studyW{}
	for _, k := range keys {
		c := cells[k]
		f := 1 / float64(c.n)
		var cr CellReport
		if c.numeric {
			qk := k.OutcomeKey()
			// The study's answers are the rows evaluated and, with a
			// training set, its answers to the question too: a held-out
			// split alone may hold one or two of them.
			l, h := lo[qk], hi[qk]
			for v := range prior.byQuestion[questionKeyOf(qk)] {
				l, h = math.Min(l, v), math.Max(h, v)
			}
			r := h - l
			// One answer in the study: the stated scale's width, else the
			// answer's magnitude (W1 then a relative error).
			if w := c.opt.Max - c.opt.Min; !(r > 0) && w > 0 && !math.IsInf(w, 0) {
				r = w
			}
			if !(r > 0) {
				r = math.Max(math.Abs(h), 1)
			}
			human := empirical(c.values)
			model := make([]ValueProb, 0, len(c.mix))
			for v, p := range c.mix {
				model = append(model, ValueProb{v, p * f})
			}
			byValue := func(a, b ValueProb) int { return cmp.Compare(a.Value, b.Value) }
			slices.SortFunc(model, byValue) // map order: sorted for reproducible sums
			uni := empirical(answers[qk])
			pri := prior.numeric(k)
			if pri == nil {
				pri = uni
			}
			cr = CellReport{Key: k, Kind: "numeric", N: c.n, Range: r,
				W1: Compare{W1Values(model, human) / r, W1Values(uni, human) / r, W1Values(pri, human) / r}}
			cr.Support, cr.Human, cr.Model = onSupport(human, model)
		} else {
			for j := range c.human {
				c.human[j] *= f
				c.model[j] *= f
				c.prior[j] *= f
			}
			w := Compare{CellW1(c.opt, c.model, c.human), CellW1(c.opt, Uniform(len(c.human)), c.human), CellW1(c.opt, c.prior, c.human)}
			cr = CellReport{Key: k, Kind: "options", N: c.n, Human: c.human, Model: c.model, W1: w}
		}
		rep.Cells = append(rep.Cells, cr)
		sw := studyW1[k.Study]
		if sw == nil {
			sw = &studyW{}
			studyW1[k.Study] = sw
		}
		sw.all.add(cr.W1)
		sw.nAll++
		if c.numeric {
			sw.num.add(cr.W1)
			sw.nNum++
		} else {
			sw.opt.add(cr.W1)
			sw.nOpt++
		}
	}
	names := make([]string, 0, len(studies))
	for s := range studies {
		names = append(names, s)
	}
	for s := range studyW1 {
		if studies[s] == nil {
			names = append(names, s)
			studies[s] = &studyAcc{}
		}
	}
	sort.Strings(names)
	nOpt, nNum, nAll := 0, 0, 0
	for _, s := range names {
		sw := studyW1[s]
		if sw == nil {
			sw = &studyW{}
		}
		st := studies[s]
		st.ind.div(st.rows)
		w := sw.all
		w.div(sw.nAll)
		if sw.nAll > 0 {
			rep.MacroW1.add(w)
			nAll++
		} else {
			w = Compare{}
		}
		if sw.nOpt > 0 {
			wo := sw.opt
			wo.div(sw.nOpt)
			rep.MacroW1Options.add(wo)
			nOpt++
		}
		if sw.nNum > 0 {
			wn := sw.num
			wn.div(sw.nNum)
			rep.MacroW1Numeric.add(wn)
			nNum++
		}
		if st.rows == 0 {
			st.ind = Individual{}
		}
		rep.Studies = append(rep.Studies, StudyReport{Study: s, Cells: sw.nAll, NumericCells: sw.nNum, Rows: st.rows + numericRows(rep.Cells, s),
			OutOfOptions: st.outside, W1: w, Individual: st.ind})
	}
	rep.MacroW1.div(nAll)
	rep.MacroW1Options.div(nOpt)
	rep.MacroW1Numeric.div(nNum)
	for _, c := range []*Compare{&rep.MacroW1, &rep.MacroW1Options, &rep.MacroW1Numeric} {
		if math.IsNaN(c.Model) {
			*c = Compare{}
		}
	}

	vals := make([]string, 0, len(groups))
	for v := range groups {
		vals = append(vals, v)
	}
	sort.Strings(vals)
	low := Compare{math.Inf(1), math.Inf(1), math.Inf(1)}
	high := Compare{math.Inf(-1), math.Inf(-1), math.Inf(-1)}
	for _, v := range vals {
		g := groups[v]
		g.d.div(g.n)
		rep.Groups = append(rep.Groups, GroupReport{Value: v, N: g.n, Dist: g.d})
		low = Compare{math.Min(low.Model, g.d.Model), math.Min(low.Uniform, g.d.Uniform), math.Min(low.Prior, g.d.Prior)}
		high = Compare{math.Max(high.Model, g.d.Model), math.Max(high.Uniform, g.d.Uniform), math.Max(high.Prior, g.d.Prior)}
	}
	if len(vals) > 0 {
		rep.DPD = Compare{high.Model - low.Model, high.Uniform - low.Uniform, high.Prior - low.Prior}
	}
	if rep.OptionRows == 0 {
		rep.Individual = Individual{}
	}
	return rep
}

// numericRows counts the rows of a study's numeric cells.
func numericRows(cells []CellReport, study string) int {
	n := 0
	for _, c := range cells {
		if c.Kind == "numeric" && c.Key.Study == study {
			n += c.N
		}
	}
	return n
}

// empirical is the distribution of values, each of weight 1/len.
func empirical(values []float64) []ValueProb {
	out := make([]ValueProb, len(values))
	for i, v := range values {
		out[i] = ValueProb{v, 1 / float64(len(values))}
	}
	return out
}

// onSupport writes two distributions over their common ascending support.
func onSupport(a, b []ValueProb) (support, pa, pb []float64) {
	for _, vp := range a {
		support = append(support, vp.Value)
	}
	for _, vp := range b {
		support = append(support, vp.Value)
	}
	sort.Float64s(support)
	support = slices.Compact(support)
	pa, pb = make([]float64, len(support)), make([]float64, len(support))
	for _, vp := range a {
		i, _ := slices.BinarySearch(support, vp.Value)
		pa[i] += vp.Prob
	}
	for _, vp := range b {
		i, _ := slices.BinarySearch(support, vp.Value)
		pb[i] += vp.Prob
	}
	return support, pa, pb
}

func sameValues(a, b Options) bool {
	if len(a.Values) != len(b.Values) {
		return false
	}
	for i := range a.Values {
		if a.Values[i] != b.Values[i] {
			return false
		}
	}
	return true
}

// Predictions pairs examples with probability vectors (one per example,
// in the order of each example's parsed options), filling Options and
// Truth. Examples without options or a numeric answer get empty Options, so
// Evaluate counts them as skipped.
func Predictions(rows []Example, probs [][]float64) []Prediction {
	out := make([]Prediction, len(rows))
	for i := range rows {
		o, _ := rows[i].Options()
		out[i] = Prediction{Example: rows[i], Options: o, Truth: rows[i].Response}
		if !rows[i].HasResponse {
			out[i].Options = Options{}
		}
		if i < len(probs) {
			out[i].Probs = probs[i]
		}
	}
	return out
}

// CheckProbs returns an error unless probs can be normalized into a
// distribution: every value finite and not negative, and a finite positive
// sum (two values of 1e308 sum to +Inf, and p/+Inf is 0 for every option).
func CheckProbs(probs []float64) error {
	var sum float64
	for i, p := range probs {
		if p < 0 || math.IsNaN(p) || math.IsInf(p, 0) {
			return fmt.Errorf("probability %d is %v: want a finite number ≥ 0", i, p)
		}
		sum += p
	}
	if !(sum > 0) || math.IsInf(sum, 0) {
		return fmt.Errorf("the %d probabilities sum to %v: want a finite sum > 0", len(probs), sum)
	}
	return nil
}
