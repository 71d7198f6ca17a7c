// Package predict turns a (finetuned) model into answer distributions for
// survey rows: the exact probability of every answer option, and where a
// question has no enumerable options the distribution of numeric answers
// (a best-first tree of number tokens) or sampled answers. It sits above model/
// (the forward pass and its KV cache), tokenize/ and data/ (prompts, options).
package predict

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/model"
)

// Sampling configures rows without enumerable options: the distribution of
// numeric answers, or with Samples > 0 sampled answers.
type Sampling struct {
	Samples     int // answers sampled per open-ended row (0: the numeric distribution instead)
	Temperature float64
	TopP        float64
	TopK        int
	Seed        uint64
	MaxTokens   int // new tokens per sampled answer; tokens of a numeric answer, its end included
	// MaxOptions bounds exact scoring: a row with more options (an open
	// numeric range such as 0 to 2800) is treated as open (0: no bound).
	MaxOptions int
	// The numeric answer tree stops when the mass of unexpanded paths is
	// below NumericEps (0: DefaultNumericEps) or NumericNodes nodes went
	// through the model (0: DefaultNumericNodes).
	NumericEps   float64
	NumericNodes int
}

// Result is one row's prediction.
type Result struct {
	Options    data.Options `json:"options"`
	Probs      []float64    `json:"probs,omitempty"`      // per option, in Options.Values order
	Prediction *float64     `json:"prediction,omitempty"` // most likely option, or the median sampled answer
	Samples    []float64    `json:"samples,omitempty"`    // sampled answers (open-ended rows)
	Method     string       `json:"method"`               // "options", "numeric", "sampled" or "none" (data.Methods)
	Reason     string       `json:"reason,omitempty"`     // why a "none" row has no prediction
	// method numeric: the answers by value with probabilities renormalised
	// over Covered, the model's raw probability of those answers; the
	// prediction is the distribution's median.
	Numeric []data.ValueProb `json:"numeric,omitempty"`
	Covered float64          `json:"covered,omitempty"`
}

// Reasons a row gets no prediction (Result.Reason of method "none").
const (
	ReasonNoNumeric = "the model gives no numeric answer any probability"
	ReasonNoSamples = "no sampled answer parsed as a number"
)

// CountMethods counts results by method.
func CountMethods(res []Result) map[string]int {
	n := map[string]int{}
	for _, r := range res {
		n[r.Method]++
	}
	return n
}

// Predictor predicts rows with one model and adapter.
type Predictor struct {
	m   *model.Model
	ad  *model.Adapter
	enc *data.Encoder
	s   Sampling
	// the tokens numbers are made of, by the text before the number
	numTokens map[string]numTokens
	// Stats after Rows: prompt tokens reused from the KV cache and computed.
	Reused, Computed int
}

// New returns a predictor; ad may be nil.
func New(m *model.Model, ad *model.Adapter, enc *data.Encoder, s Sampling) *Predictor {
	if s.MaxTokens == 0 {
		s.MaxTokens = 16
	}
	if s.NumericEps == 0 {
		s.NumericEps = DefaultNumericEps
	}
	if s.NumericNodes == 0 {
		s.NumericNodes = DefaultNumericNodes
	}
	return &Predictor{m: m, ad: ad, enc: enc, s: s}
}

// Rows predicts every row. Rows with options or numeric answers are
// processed in the order of their prompt tokens so that shared prefixes (the
// same study and condition text) are computed once; results come back in
// input order. progress, if not nil, is called after each row.
func (p *Predictor) Rows(rows []data.Example, progress func(done int)) ([]Result, error) {
	return p.RowsContext(context.Background(), rows, progress)
}

// RowsContext is Rows that stops between rows when ctx is cancelled,
// returning ctx's error.
func (p *Predictor) RowsContext(ctx context.Context, rows []data.Example, progress func(done int)) ([]Result, error) {
	type job struct {
		i      int
		prompt []int
		conts  [][]int
		opts   data.Options
		num    *numericForm // a numeric answer instead of options
	}
	results := make([]Result, len(rows))
	var jobs []job
	var open []int
	limit := p.s.MaxOptions
	if limit <= 0 {
		limit = data.MaxOptionValues
	}
	for i := range rows {
		r := &rows[i]
		opts, ok := r.OptionsMax(limit)
		if !ok || len(opts.Values) == 0 || len(opts.Values) > limit {
			if p.s.Samples > 0 {
				open = append(open, i)
				results[i] = Result{Options: opts, Method: "sampled"}
				continue
			}
			f, err := newNumericForm(p.enc, r)
			if err != nil {
				return nil, err
			}
			jobs = append(jobs, job{i: i, prompt: f.prompt, opts: opts, num: f})
			continue
		}
		answers := make([]string, len(opts.Values))
		for k, v := range opts.Values {
			answers[k] = data.FormatResponse(float64(v))
		}
		prompt, conts, err := p.enc.Continuations(r, answers)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job{i: i, prompt: prompt, conts: conts, opts: opts})
	}
	sort.SliceStable(jobs, func(a, b int) bool { return lessInts(jobs[a].prompt, jobs[b].prompt) })
	mp := p.m.NewPredictor(p.ad)
	done := 0
	for _, j := range jobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if j.num != nil {
			res, err := p.numericRow(mp, j.num, j.opts)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", rows[j.i].Where(), err)
			}
			results[j.i] = res
			done++
			if progress != nil {
				progress(done)
			}
			continue
		}
		lp, err := mp.ContinuationLogProbs(j.prompt, j.conts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rows[j.i].Where(), err)
		}
		probs := model.Softmax(lp)
		best := 0
		for k := range probs {
			if probs[k] > probs[best] {
				best = k
			}
		}
		pred := float64(j.opts.Values[best])
		results[j.i] = Result{Options: j.opts, Probs: probs, Prediction: &pred, Method: "options"}
		done++
		if progress != nil {
			progress(done)
		}
	}
	p.Reused, p.Computed = mp.Reused, mp.Computed
	for _, i := range open {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if p.s.Samples > 0 {
			s, err := p.sampleRow(&rows[i], uint64(i))
			if err != nil {
				return nil, err
			}
			results[i].Samples = s
			results[i].Method, results[i].Reason = "sampled", ""
			if len(s) > 0 {
				med := median(s)
				results[i].Prediction = &med
			} else {
				results[i].Method, results[i].Reason = "none", fmt.Sprintf("%s (%d samples)", ReasonNoSamples, p.s.Samples)
			}
		}
		done++
		if progress != nil {
			progress(done)
		}
	}
	return results, nil
}

// numericRow is the distribution of a row's numeric answer.
func (p *Predictor) numericRow(mp *model.Predictor, f *numericForm, opts data.Options) (Result, error) {
	nt, ok := p.numTokens[f.lead]
	if !ok {
		nt.ids, nt.texts = numericTokens(p.enc.Tok, f.lead)
		if p.numTokens == nil {
			p.numTokens = map[string]numTokens{}
		}
		p.numTokens[f.lead] = nt
	}
	t, err := numericDistribution(mp, p.enc.Tok, f, nt.ids, nt.texts, p.s.NumericEps, p.s.NumericNodes, p.s.MaxTokens)
	if err != nil {
		return Result{}, err
	}
	vals, med := t.distribution()
	if med == nil {
		return Result{Options: opts, Method: "none", Reason: ReasonNoNumeric}, nil
	}
	return Result{Options: opts, Method: "numeric", Numeric: vals, Covered: t.covered, Prediction: med}, nil
}

type numTokens struct {
	ids   []int
	texts []string
}

// sampleRow samples answers for an open-ended row and keeps those that parse
// as a number.
func (p *Predictor) sampleRow(r *data.Example, salt uint64) ([]float64, error) {
	prompt, _, err := p.enc.Continuations(r, []string{""})
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(p.s.Seed, salt))
	tok := p.enc.Tok
	s := model.Sampling{Temperature: p.s.Temperature, TopP: p.s.TopP, TopK: p.s.TopK, MaxNewTokens: p.s.MaxTokens, Stop: tok.EOS()}
	var out []float64
	for k := 0; k < p.s.Samples; k++ {
		gen, err := p.m.Generate(prompt, p.ad, s, rng, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.Where(), err)
		}
		if v, ok := data.ParseResponse(tok.Decode(gen)); ok {
			out = append(out, v)
		}
	}
	return out, nil
}

func lessInts(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
