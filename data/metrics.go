package data

import (
	"fmt"
	"math"
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

// Prediction is a model's predicted answer distribution for one row.
type Prediction struct {
	Example
	Options Options   // the row's answer options
	Probs   []float64 // probability per option, in Options.Values order
	Truth   float64   // the human answer
}

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

// CellReport is the distributional comparison of one cell.
type CellReport struct {
	Key   CellKey   `json:"key"`
	N     int       `json:"n"`
	Human []float64 `json:"human"` // empirical distribution of the true answers
	Model []float64 `json:"model"` // mean predicted distribution
	W1    Compare   `json:"w1"`    // lower is better
}

// StudyReport averages one study's cells (W1) and rows (individual).
type StudyReport struct {
	Study      string     `json:"study_id"`
	Cells      int        `json:"cells"`
	Rows       int        `json:"rows"`
	W1         Compare    `json:"w1"`
	Individual Individual `json:"individual"`
}

// GroupReport is one value of the demographic field.
type GroupReport struct {
	Value string  `json:"value"`
	N     int     `json:"n"`
	Dist  Compare `json:"dist"` // mean |E[ŷ] − y|/range
}

// Report is the result of Evaluate; every field is JSON-serialisable
// (NaN never appears: empty averages are reported as 0 with a zero count).
type Report struct {
	Rows       int            `json:"rows"`    // predictions scored
	Skipped    map[string]int `json:"skipped"` // predictions not scored, by reason
	Cells      []CellReport   `json:"cells"`
	Studies    []StudyReport  `json:"studies"`
	MacroW1    Compare        `json:"macro_w1"` // mean over studies of the mean cell W1
	Individual Individual     `json:"individual"`

	Demographic string        `json:"demographic,omitempty"`
	Groups      []GroupReport `json:"groups,omitempty"`
	Ungrouped   int           `json:"ungrouped,omitempty"` // scored rows lacking the field
	DPD         Compare       `json:"dpd"`                 // max − min over groups of the group distance
}

// Evaluate scores predictions against the truth, side by side with the
// uniform and training-prior baselines: W1 per cell (mean predicted
// distribution vs the empirical human one), per study (mean over cells) and
// macro (mean over studies); accuracy, log-likelihood and RPS per row; and,
// when demographic names a field ("Gender", "party_id", ...), the
// demographic parity difference over its values. Predictions without
// enumerated options, with a probability vector of the wrong length or
// not summing to a positive number, or whose truth is not an option, are
// skipped and counted by reason.
func Evaluate(preds []Prediction, prior Prior, demographic string) Report {
	rep := Report{Skipped: map[string]int{}, Demographic: demographic}
	type cellAcc struct {
		key   CellKey
		opt   Options
		n     int
		human []float64
		model []float64
		prior []float64
	}
	cells := map[CellKey]*cellAcc{}
	type studyAcc struct {
		rows int
		ind  Individual
	}
	studies := map[string]*studyAcc{}
	type groupAcc struct {
		n int
		d Compare
	}
	groups := map[string]*groupAcc{}

	for i := range preds {
		pr := &preds[i]
		o := pr.Options
		n := len(o.Values)
		reason := ""
		var sum float64
		for _, p := range pr.Probs {
			if p < 0 || math.IsNaN(p) || math.IsInf(p, 0) {
				sum = math.NaN()
				break
			}
			sum += p
		}
		switch {
		case n == 0:
			reason = "no enumerated options"
		case len(pr.Probs) != n:
			reason = "probabilities do not match options"
		case !(sum > 0) || math.IsInf(sum, 0):
			reason = "probabilities not a distribution"
		case o.Index(pr.Truth) < 0:
			reason = "truth not an option"
		}
		key := pr.Cell()
		c := cells[key]
		if reason == "" && c != nil && !sameValues(c.opt, o) {
			reason = "options differ within cell"
		}
		if reason != "" {
			rep.Skipped[reason]++
			continue
		}
		probs := make([]float64, n)
		for j, p := range pr.Probs {
			probs[j] = p / sum
		}
		uni := Uniform(n)
		pri := prior.dist(key, o)
		if c == nil {
			c = &cellAcc{key: key, opt: o, human: make([]float64, n), model: make([]float64, n), prior: make([]float64, n)}
			cells[key] = c
		}
		c.n++
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
		rep.Rows++
		rep.Individual.add(ind)
		s := studies[key.Study]
		if s == nil {
			s = &studyAcc{}
			studies[key.Study] = s
		}
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
	rep.Individual.div(rep.Rows)

	keys := make([]CellKey, 0, len(cells))
	for k := range cells {
		keys = append(keys, k)
	}
	sortKeys(keys)
	studyW1 := map[string]*Compare{}
	studyCells := map[string]int{}
	for _, k := range keys {
		c := cells[k]
		f := 1 / float64(c.n)
		for j := range c.human {
			c.human[j] *= f
			c.model[j] *= f
			c.prior[j] *= f
		}
		w := Compare{CellW1(c.opt, c.model, c.human), CellW1(c.opt, Uniform(len(c.human)), c.human), CellW1(c.opt, c.prior, c.human)}
		rep.Cells = append(rep.Cells, CellReport{Key: k, N: c.n, Human: c.human, Model: c.model, W1: w})
		if studyW1[k.Study] == nil {
			studyW1[k.Study] = &Compare{}
		}
		studyW1[k.Study].add(w)
		studyCells[k.Study]++
	}
	names := make([]string, 0, len(studies))
	for s := range studies {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		w := *studyW1[s]
		w.div(studyCells[s])
		st := studies[s]
		st.ind.div(st.rows)
		rep.Studies = append(rep.Studies, StudyReport{Study: s, Cells: studyCells[s], Rows: st.rows, W1: w, Individual: st.ind})
		rep.MacroW1.add(w)
	}
	rep.MacroW1.div(len(names))

	vals := make([]string, 0, len(groups))
	for v := range groups {
		vals = append(vals, v)
	}
	sort.Strings(vals)
	lo := Compare{math.Inf(1), math.Inf(1), math.Inf(1)}
	hi := Compare{math.Inf(-1), math.Inf(-1), math.Inf(-1)}
	for _, v := range vals {
		g := groups[v]
		g.d.div(g.n)
		rep.Groups = append(rep.Groups, GroupReport{Value: v, N: g.n, Dist: g.d})
		lo = Compare{math.Min(lo.Model, g.d.Model), math.Min(lo.Uniform, g.d.Uniform), math.Min(lo.Prior, g.d.Prior)}
		hi = Compare{math.Max(hi.Model, g.d.Model), math.Max(hi.Uniform, g.d.Uniform), math.Max(hi.Prior, g.d.Prior)}
	}
	if len(vals) > 0 {
		rep.DPD = Compare{hi.Model - lo.Model, hi.Uniform - lo.Uniform, hi.Prior - lo.Prior}
	}
	if rep.Rows == 0 {
		rep.Individual = Individual{}
		rep.MacroW1 = Compare{}
	}
	return rep
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
