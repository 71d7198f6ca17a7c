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
	"slices"
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

// Scorer scores the continuations of many prompts at once: out[i][k] is the
// log-probability of jobs[i].Conts[k] after jobs[i].Prompt. A server passes
// one that batches the rows of concurrent requests (model.ContinuationBatch).
type Scorer func(ctx context.Context, jobs []model.ContinuationJob) ([][]float64, error)

// Predictor predicts rows with one model and adapter.
type Predictor struct {
	m   *model.Model
	ad  *model.Adapter
	enc *data.Encoder
	s   Sampling
	// Score, if not nil, scores the rows with options instead of the
	// predictor's own KV cache (Reused and Computed then stay 0).
	Score Scorer
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
	var scored [][]float64
	if p.Score != nil && len(jobs) > 0 {
		// numeric rows walk a tree of answers, each round of it a call of
		// the scorer (scoredTree)
		var mj []model.ContinuationJob
		var at []int
		for k, j := range jobs {
			if j.num == nil {
				mj = append(mj, model.ContinuationJob{Prompt: j.prompt, Conts: j.conts})
				at = append(at, k)
			}
		}
		out, err := p.Score(ctx, mj)
		if err != nil {
			return nil, err
		}
		scored = make([][]float64, len(jobs))
		for x, k := range at {
			scored[k] = out[x]
		}
	}
	mp := p.m.NewPredictor(p.ad)
	var tree treeScorer = mp
	if p.Score != nil {
		tree = &scoredTree{ctx: ctx, score: p.Score}
	}
	done := 0
	for k, j := range jobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if j.num != nil {
			res, err := p.numericRow(tree, j.num, j.opts)
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
		var lp []float64
		if scored != nil {
			lp = scored[k]
		} else {
			var err error
			if lp, err = mp.ContinuationLogProbs(j.prompt, j.conts); err != nil {
				return nil, fmt.Errorf("%s: %w", rows[j.i].Where(), err)
			}
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
		s, err := p.sampleRow(ctx, &rows[i], uint64(i))
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
		done++
		if progress != nil {
			progress(done)
		}
	}
	return results, nil
}

// Record is a predicted row as `gotrain predict` writes it: every input
// field plus method, options, probs, prediction, samples (sampled rows), numeric
// and covered (numeric rows), reason (rows without a prediction).
func Record(row *data.Example, r *Result) map[string]any {
	rec := row.Record()
	rec["method"] = r.Method
	if r.Options.Values != nil {
		rec["options"] = r.Options.Values
	}
	if r.Probs != nil {
		rec["probs"] = r.Probs
	}
	if r.Prediction != nil {
		rec["prediction"] = *r.Prediction
	}
	switch r.Method {
	case "sampled":
		rec["samples"] = r.Samples
	case "numeric":
		rec["numeric"], rec["covered"] = r.Numeric, r.Covered
	}
	if r.Reason != "" {
		rec["reason"] = r.Reason
	}
	return rec
}

// numericRow is the distribution of a row's numeric answer.
func (p *Predictor) numericRow(tree treeScorer, f *numericForm, opts data.Options) (Result, error) {
	nt, ok := p.numTokens[f.lead]
	if !ok {
		nt.ids, nt.texts = numericTokens(p.enc.Tok, f.lead)
		if p.numTokens == nil {
			p.numTokens = map[string]numTokens{}
		}
		p.numTokens[f.lead] = nt
	}
	t, err := numericDistribution(tree, p.enc.Tok, f, nt.ids, nt.texts, p.s.NumericEps, p.s.NumericNodes, p.s.MaxTokens)
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
// as a number. Sample k draws from its own random stream (seed, row salt,
// k), so that with a Scorer all samples step together, one job each, and
// draw what they draw one after another with the predictor's own cache.
func (p *Predictor) sampleRow(ctx context.Context, r *data.Example, salt uint64) ([]float64, error) {
	prompt, _, err := p.enc.Continuations(r, []string{""})
	if err != nil {
		return nil, err
	}
	tok := p.enc.Tok
	s := model.Sampling{Temperature: p.s.Temperature, TopP: p.s.TopP, TopK: p.s.TopK, MaxNewTokens: p.s.MaxTokens, Stop: tok.EOS()}
	rngs := make([]*rand.Rand, p.s.Samples)
	for k := range rngs {
		rngs[k] = rand.New(rand.NewPCG(p.s.Seed, salt<<32|uint64(k)))
	}
	var gens [][]int
	if p.Score != nil {
		if gens, err = GenerateScored(ctx, p.Score, p.m.Config.VocabSize, prompt, s, rngs); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Where(), err)
		}
	} else {
		for _, rng := range rngs {
			gen, err := p.m.Generate(prompt, p.ad, s, rng, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.Where(), err)
			}
			gens = append(gens, gen)
		}
	}
	var out []float64
	for _, gen := range gens {
		if v, ok := data.ParseResponse(tok.Decode(gen)); ok {
			out = append(out, v)
		}
	}
	return out, nil
}

// GenerateScored is model.Generate through a Scorer (a server's batcher):
// one sequence per random stream, all continuing prompt, step by step; each
// step is one job per unfinished sequence asking for its next token's
// logits, so the sequences (and other callers' work) go through the layers
// together while the scorer's prefix cache keeps what each has computed.
// It returns each sequence's tokens (stop token excluded).
func GenerateScored(ctx context.Context, score Scorer, vocab int, prompt []int, s model.Sampling, rngs []*rand.Rand) ([][]int, error) {
	gens := make([][]int, len(rngs))
	live := make([]int, len(rngs))
	for k := range live {
		live[k] = k
	}
	logits := make([][]float32, len(rngs))
	for n := 0; n < s.MaxNewTokens && len(live) > 0; n++ {
		jobs := make([]model.ContinuationJob, len(live))
		for x, k := range live {
			if logits[k] == nil {
				logits[k] = make([]float32, vocab)
			}
			jobs[x] = model.ContinuationJob{Prompt: append(slices.Clip(prompt), gens[k]...), Logits: logits[k]}
		}
		if _, err := score(ctx, jobs); err != nil {
			return nil, err
		}
		next := live[:0]
		for _, k := range live {
			tok := model.Sample(logits[k], s, rngs[k])
			if slices.Contains(s.Stop, tok) {
				continue
			}
			gens[k] = append(gens[k], tok)
			next = append(next, k)
		}
		live = next
	}
	return gens, nil
}

// scoredTree grows a numeric answer tree through a Scorer (a server's
// batcher) instead of a predictor's cache: each node is a job of the prompt
// followed by the node's path, whose continuations are the wanted tokens
// one by one. The scorer's prefix cache keeps the prompt, so a node
// computes only its path.
type scoredTree struct {
	ctx    context.Context
	score  Scorer
	prompt []int
	paths  [][]int // by node; node 0 (the prompt's end) has none
}

func singles(want []int) [][]int {
	conts := make([][]int, len(want))
	for i := range want {
		conts[i] = want[i : i+1 : i+1]
	}
	return conts
}

func (t *scoredTree) BeginTree(prompt, want []int) ([]float64, error) {
	t.prompt, t.paths = prompt, [][]int{nil}
	out, err := t.score(t.ctx, []model.ContinuationJob{{Prompt: prompt, Conts: singles(want)}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (t *scoredTree) GrowTree(parents, toks, want []int) ([]int, [][]float64, error) {
	if len(parents) != len(toks) {
		return nil, nil, fmt.Errorf("predict: GrowTree: %d parents for %d tokens", len(parents), len(toks))
	}
	conts := singles(want)
	jobs := make([]model.ContinuationJob, len(toks))
	ids := make([]int, len(toks))
	for i, q := range parents {
		if q < 0 || q >= len(t.paths) {
			return nil, nil, fmt.Errorf("predict: GrowTree: no node %d", q)
		}
		path := append(slices.Clip(t.paths[q]), toks[i])
		ids[i] = len(t.paths)
		t.paths = append(t.paths, path)
		jobs[i] = model.ContinuationJob{Prompt: append(slices.Clip(t.prompt), path...), Conts: conts}
	}
	out, err := t.score(t.ctx, jobs)
	if err != nil {
		return nil, nil, err
	}
	return ids, out, nil
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
