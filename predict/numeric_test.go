package predict

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/tokenize"
)

func TestNumberPrefix(t *testing.T) {
	for _, c := range []struct {
		s                string
		prefix, complete bool
	}{
		{"", true, false}, {" ", true, false}, {" -", true, false}, {" 0", true, true}, {" 25", true, true},
		{" -7", true, true}, {" -0", true, false}, {" -0.5", true, true}, {" 0.", true, false}, {" 0.50", true, false},
		{" 0.05", true, true}, {" 05", false, false}, {" .5", false, false}, {"5", false, false}, {" 1.2.3", false, false},
		{" --1", false, false}, {" 1-", false, false}, {"  1", false, false}, {" 123456789012345", true, true},
		{" 1234567890123456", false, false}, {" 1.1234567", false, false},
	} {
		p, k := numberPrefix(" ", c.s)
		if p != c.prefix || k != c.complete {
			t.Errorf("%q: prefix %v complete %v, want %v %v", c.s, p, k, c.prefix, c.complete)
		}
	}
}

// numericRow is an open numeric question (no enumerable options).
func numericRow() data.Example {
	return data.Example{File: "test.jsonl", Line: 1, Instruction: data.DefaultInstruction,
		Input: data.BuildPrompt("Age: 40; Sex: Female", "You read about a charity and then were asked: “How much would you give?” Only return an integer representing dollars.")}
}

// fakeScorer gives every token after a path a fixed pseudo-random
// probability, so that a tree and a brute force over whole answers use the
// very same numbers; "other" is the weight of every token not asked for.
type fakeScorer struct {
	paths [][]int
	other float64
}

func (f *fakeScorer) next(path, want []int) []float64 {
	h := uint64(14695981039346656037)
	for _, x := range path {
		h = (h ^ uint64(x)) * 1099511628211
	}
	w := make([]float64, len(want))
	z := f.other
	for j, tok := range want {
		x := (h ^ uint64(tok)) * 0x9e3779b97f4a7c15
		w[j] = 1 + float64((x>>32)%1000)
		z += w[j]
	}
	for j := range w {
		w[j] = math.Log(w[j] / z)
	}
	return w
}

func (f *fakeScorer) BeginTree(prompt, want []int) ([]float64, error) {
	f.paths = [][]int{nil}
	return f.next(nil, want), nil
}

func (f *fakeScorer) GrowTree(parents, toks, want []int) ([]int, [][]float64, error) {
	var ids []int
	var lps [][]float64
	for i, q := range parents {
		path := append(slices.Clone(f.paths[q]), toks[i])
		ids = append(ids, len(f.paths))
		f.paths = append(f.paths, path)
		lps = append(lps, f.next(path, want))
	}
	return ids, lps, nil
}

// canonicalAnswers lists every number whose answer (the tokenizer's own
// tokens, end token included) has at most maxTokens tokens, by its text.
func canonicalAnswers(t *testing.T, tok *tokenize.Tokenizer, f *numericForm, maxTokens int) map[string][]int {
	t.Helper()
	out := map[string][]int{}
	add := func(v float64) int {
		s := strconv.FormatFloat(v, 'f', -1, 64)
		ids := tok.Encode(f.head + f.lead + s)
		if !slices.Equal(ids[:len(f.headToks)], f.headToks) {
			t.Fatalf("%s: answer tokens %v do not start with %v", s, ids, f.headToks)
		}
		seq := append(ids[len(f.headToks):], f.end)
		if len(seq) <= maxTokens {
			out[s] = seq
		}
		return len(seq)
	}
	for v := -9999; v <= 9999; v++ {
		add(float64(v))
		for frac := 1; frac < 100; frac++ {
			if frac%10 != 0 && (v > -100 && v < 100) {
				x := math.Abs(float64(v)) + float64(frac)/100
				add(math.Copysign(x, float64(v)))
				if v == 0 {
					add(-x)
				}
			}
		}
	}
	// every number left out is longer: the shortest ones are
	if n := min(add(10000), add(-10000), add(0.1), add(-0.1)); n <= maxTokens {
		t.Fatalf("answers of %d tokens are not enumerated", n)
	}
	return out
}

// numericTokenizers are the bundled tokenizers and, when ../shared is
// there, the real files of the other model families.
func numericTokenizers(t *testing.T) map[string]*data.Encoder {
	testEncodersOnce.Do(func() { testEncoders, testEncodersErr = loadNumericTokenizers() })
	if testEncodersErr != nil {
		t.Fatal(testEncodersErr)
	}
	return testEncoders
}

var (
	testEncodersOnce sync.Once
	testEncoders     map[string]*data.Encoder
	testEncodersErr  error
)

func loadNumericTokenizers() (map[string]*data.Encoder, error) {
	out := map[string]*data.Encoder{}
	for _, name := range []string{"qwen2.5", "llama3", "qwen3", "llama3.1"} {
		var tok *tokenize.Tokenizer
		var err error
		if name == "qwen2.5" || name == "llama3" {
			tok, err = tokenize.LoadBundled(name)
		} else {
			dir := filepath.Join("/work/shared/tokenizers", name)
			if _, err := os.Stat(dir); err != nil {
				continue
			}
			tok, err = tokenize.Load(dir)
		}
		if err != nil {
			return nil, err
		}
		tmpl, err := tok.ChatTemplate(name)
		if err != nil {
			return nil, err
		}
		out[name] = &data.Encoder{Tok: tok, Template: tmpl}
		// plain prompts: the answer ends with EOS
		out[name+"/plain"] = &data.Encoder{Tok: tok}
	}
	return out, nil
}

// TestNumericTreeExact: with a scorer whose conditional probabilities are
// exact, the tree expanded to the end gives every number of at most D
// tokens (the tokenizer's own tokens, and only those) the probability brute
// force over the whole answers gives, to 1e-9; the tree's masses add up to
// 1; and a tree cut short by its node budget keeps those properties for
// what it found.
func TestNumericTreeExact(t *testing.T) {
	for name, enc := range numericTokenizers(t) {
		r := numericRow()
		f, err := newNumericForm(enc, &r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.head != "Response:" || f.lead != " " {
			t.Errorf("%s: head %q lead %q", name, f.head, f.lead)
		}
		D := 4
		if len(enc.Tok.Encode("123")) == 1 {
			D = 3 // Llama 3: 4 tokens hold numbers of 6 digits
		}
		answers := canonicalAnswers(t, enc.Tok, f, D)
		ids, texts := numericTokens(enc.Tok, f.lead)
		sc := &fakeScorer{other: 3000}
		want := append(slices.Clone(ids), f.end)
		brute := func(seq []int) float64 {
			var lp float64
			for k := range seq {
				lp += sc.next(seq[:k], want)[slices.Index(want, seq[k])]
			}
			return math.Exp(lp)
		}
		for _, nodes := range []int{1 << 20, 30} {
			tree, err := numericDistribution(sc, enc.Tok, f, ids, texts, 1e-300, nodes, D)
			if err != nil {
				t.Fatal(err)
			}
			if sum := tree.covered + tree.unexpanded + tree.excluded; math.Abs(sum-1) > 1e-12 {
				t.Errorf("%s nodes %d: covered %v + unexpanded %v + excluded %v = %v", name, nodes, tree.covered, tree.unexpanded, tree.excluded, sum)
			}
			if nodes < 1000 && (tree.expanded != nodes || tree.unexpanded == 0) {
				t.Errorf("%s: budget %d: expanded %d, unexpanded %v", name, nodes, tree.expanded, tree.unexpanded)
			}
			found := map[string]bool{}
			for _, v := range tree.values {
				s := strconv.FormatFloat(v.Value, 'f', -1, 64)
				seq, ok := answers[s]
				if !ok {
					t.Errorf("%s: the tree found %s, not a number of ≤ %d canonical tokens", name, s, D)
					continue
				}
				found[s] = true
				if want := brute(seq); math.Abs(v.Prob-want) > 1e-9*want {
					t.Errorf("%s: P(%s) = %v, brute force %v", name, s, v.Prob, want)
				}
			}
			if nodes > 1000 && len(found) != len(answers) {
				t.Errorf("%s: the tree found %d of the %d numbers of ≤ %d tokens", name, len(found), len(answers), D)
			}
			t.Logf("%s: %d nodes: %d answers of %d, covered %.4g, excluded %.4g, unexpanded %.3g", name, tree.expanded, len(found), len(answers), tree.covered, tree.excluded, tree.unexpanded)
		}
	}
}

// TestNumericCanonical: a path is kept exactly when its tokens are the
// tokenizer's own for its text: Qwen writes numbers digit by digit, Llama 3
// in chunks of three from the left.
func TestNumericCanonical(t *testing.T) {
	for name, enc := range numericTokenizers(t) {
		r := numericRow()
		f, err := newNumericForm(enc, &r)
		if err != nil {
			t.Fatal(err)
		}
		tok := enc.Tok
		id := func(s string) int {
			ids := tok.Encode(s)
			if len(ids) != 1 {
				t.Fatalf("%s: %q is %d tokens", name, s, len(ids))
			}
			return ids[0]
		}
		check := func(path []string, want bool) {
			tr := &numericTree{f: f, tok: tok, nodes: []numNode{{parent: -1}}}
			text := ""
			for _, s := range path {
				text += s
				tr.nodes = append(tr.nodes, numNode{parent: len(tr.nodes) - 1, tok: id(s), text: text})
			}
			if got := tr.canonical(len(tr.nodes) - 1); got != want {
				t.Errorf("%s: %q canonical %v, want %v", name, path, got, want)
			}
		}
		check([]string{" ", "2"}, true)
		check([]string{" -", "5"}, true)
		check([]string{" ", "-"}, false)
		check([]string{" ", "0", ".", "5"}, true)
		if len(tok.Encode("123")) == 1 { // Llama 3: \p{N}{1,3}
			check([]string{" ", "123", "4"}, true)
			check([]string{" ", "123", "45"}, true)
			check([]string{" ", "12", "34"}, false)
			check([]string{" ", "1", "234"}, false)
			check([]string{" ", "1", "2"}, false)
			check([]string{" ", "12", ".", "345"}, true)
			check([]string{" ", "12", ".", "3", "45"}, false)
		} else { // Qwen: \p{N}
			check([]string{" ", "1", "2", "3", "4"}, true)
		}
	}
}

// TestNumericTreeModel: on a random model, the tree grown on the KV cache
// gives every number of at most D tokens the probability that scoring the
// whole answers with ContinuationLogProbs (all answers at once) gives: to
// float32 accuracy, since the two run the layers on different batches.
func TestNumericTreeModel(t *testing.T) {
	for _, c := range []struct {
		arch model.Arch
		tok  string
		D    int
	}{{model.Qwen2, "qwen2.5", 4}, {model.Llama, "llama3", 3}} {
		if testing.Short() && c.arch == model.Llama {
			continue // 2,000 nodes; slow under -race
		}
		m, enc := tinyModel(t, c.arch, c.tok)
		r := numericRow()
		f, err := newNumericForm(enc, &r)
		if err != nil {
			t.Fatal(err)
		}
		answers := canonicalAnswers(t, enc.Tok, f, c.D)
		ids, texts := numericTokens(enc.Tok, f.lead)
		tree, err := numericDistribution(m.NewPredictor(nil), enc.Tok, f, ids, texts, 1e-300, 1<<20, c.D)
		if err != nil {
			t.Fatal(err)
		}
		if sum := tree.covered + tree.unexpanded + tree.excluded; math.Abs(sum-1) > 1e-9 {
			t.Errorf("%s: masses add up to %v", c.tok, sum)
		}
		var strs []string
		var seqs [][]int
		for s, seq := range answers {
			strs, seqs = append(strs, s), append(seqs, seq)
		}
		lps, err := m.NewPredictor(nil).ContinuationLogProbs(f.prompt, seqs)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, v := range tree.values {
			got[strconv.FormatFloat(v.Value, 'f', -1, 64)] = v.Prob
		}
		if len(got) != len(answers) {
			t.Errorf("%s: the tree found %d numbers, brute force %d", c.tok, len(got), len(answers))
		}
		worst := 0.0
		for k, s := range strs {
			want := math.Exp(lps[k])
			rel := math.Abs(got[s]-want) / want
			worst = max(worst, rel)
			if rel > 1e-5 {
				t.Errorf("%s: P(%s) = %v, brute force %v", c.tok, s, got[s], want)
			}
		}
		t.Logf("%s: %d numbers, %d nodes, largest relative difference %.3g", c.tok, len(answers), tree.expanded, worst)
	}
}

// TestRowsNumeric: open rows get method numeric by default, with values by
// value, probabilities summing to 1, the covered mass and the median as the
// prediction; with samples they are sampled.
func TestRowsNumeric(t *testing.T) {
	m, enc := tinyQwen(t)
	rows := []data.Example{numericRow(), numericRow()}
	rows[1].Input += " "
	res, err := New(m, nil, enc, Sampling{NumericNodes: 40}).Rows(rows, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Method != "numeric" || len(r.Numeric) == 0 || r.Covered <= 0 || r.Covered > 1 || r.Prediction == nil {
			t.Fatalf("row %d: %+v", i, r)
		}
		sum, cum := 0.0, 0.0
		med := math.NaN()
		for k, v := range r.Numeric {
			if k > 0 && v.Value <= r.Numeric[k-1].Value {
				t.Errorf("row %d: values out of order at %d", i, k)
			}
			sum += v.Prob
			if cum += v.Prob; cum >= 0.5 && math.IsNaN(med) {
				med = v.Value
			}
		}
		if math.Abs(sum-1) > 1e-9 || *r.Prediction != med {
			t.Errorf("row %d: probabilities sum to %v; prediction %v, median %v", i, sum, *r.Prediction, med)
		}
	}
	res, err = New(m, nil, enc, Sampling{Samples: 1, Temperature: 1, Seed: 1, MaxTokens: 4}).Rows(rows[:1], nil)
	if err != nil {
		t.Fatal(err)
	}
	// a random model's samples may not parse: then no prediction, and why
	if r := res[0]; r.Method != "sampled" && !(r.Method == "none" && strings.HasPrefix(r.Reason, ReasonNoSamples)) {
		t.Errorf("with samples: method %s (%s)", r.Method, r.Reason)
	}
}

// FuzzNumberPrefix: a complete answer is a number written exactly as
// data.FormatResponse writes it, and every prefix of a possible answer is one.
func FuzzNumberPrefix(f *testing.F) {
	for _, s := range []string{" 25", " -0.5", " 0.", " 05", " 1e5", " 1234567890123456", " -", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		prefix, complete := numberPrefix(" ", s)
		if complete {
			v, err := strconv.ParseFloat(s[1:], 64)
			if !prefix || err != nil || data.FormatResponse(v) != "Response:"+s {
				t.Fatalf("%q complete but %v %v %q", s, prefix, err, data.FormatResponse(v))
			}
		}
		if prefix {
			for i := range s {
				if p, _ := numberPrefix(" ", s[:i]); !p {
					t.Fatalf("%q is a possible answer but its prefix %q is not", s, s[:i])
				}
			}
		}
	})
}

// TestNumericFormRealRows: every open question of the real dev rows (when
// /work/shared is there) and of the bundled sample has a numeric answer form
// with each tokenizer, and its recorded answer is a possible number.
func TestNumericFormRealRows(t *testing.T) {
	if testing.Short() {
		t.Skip("renders thousands of prompts")
	}
	rows, err := data.SampleRows()
	if err != nil {
		t.Fatal(err)
	}
	if dev, err := data.ReadSFT("/work/shared/data/socsci210/dev.jsonl", data.ReadOptions{}); err == nil {
		rows = append(rows, dev...)
	}
	encs := numericTokenizers(t)
	open, answers := 0, 0
	for i := range rows {
		r := &rows[i]
		if o, ok := r.Options(); ok && len(o.Values) > 0 && len(o.Values) <= 101 {
			continue
		}
		open++
		for name, enc := range encs {
			f, err := newNumericForm(enc, r)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if v, ok := data.ParseResponse(r.Output); ok && r.Output == data.FormatResponse(v) {
				answers++
				if _, complete := numberPrefix(f.lead, r.Output[len(f.head):]); !complete {
					t.Errorf("%s: %s: the answer %q is not a possible number", name, r.Where(), r.Output)
				}
			}
		}
	}
	if open == 0 || answers == 0 {
		t.Fatalf("%d open rows, %d answers checked", open, answers)
	}
	t.Logf("%d open rows of %d; %d answers checked", open, len(rows), answers)
}

// TestRowsThroughScorer: with a Scorer (as a server batches rows, here
// model.ContinuationBatch with a prefix cache) numeric rows walk their tree
// and sampled rows draw their answers through it, and get what the
// predictor's own cache gives: the same numeric distributions, the same
// samples for the seed.
func TestRowsThroughScorer(t *testing.T) {
	m, enc := tinyQwen(t)
	rows := []data.Example{numericRow(), numericRow()}
	rows[1].Input += " "
	pc := model.NewPrefixCache(64 << 20)
	c := m.NewCache()
	calls := 0
	scorer := func(ctx context.Context, jobs []model.ContinuationJob) ([][]float64, error) {
		calls++
		out, _, err := m.ContinuationBatch(c, pc, nil, jobs)
		return out, err
	}
	// short (the race detector): fewer nodes and tokens
	nodes, tokens, seqs := 40, 12, 4
	if testing.Short() {
		nodes, tokens, seqs = 8, 3, 2
		rows = rows[:1]
	}
	for _, sm := range []Sampling{{NumericNodes: nodes}, {Samples: seqs, Temperature: 1, Seed: 7, MaxTokens: tokens}} {
		want, err := New(m, nil, enc, sm).Rows(rows, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := New(m, nil, enc, sm)
		p.Score = scorer
		calls = 0
		got, err := p.Rows(rows, nil)
		if err != nil {
			t.Fatal(err)
		}
		if calls == 0 {
			t.Fatalf("%+v: the scorer was not called", sm)
		}
		for i := range rows {
			g, w := got[i], want[i]
			if g.Method != w.Method || len(g.Numeric) != len(w.Numeric) || !slices.Equal(g.Samples, w.Samples) || math.Abs(g.Covered-w.Covered) > 1e-6 {
				t.Fatalf("%+v row %d: %+v, want %+v", sm, i, g, w)
			}
			for k := range g.Numeric {
				if g.Numeric[k].Value != w.Numeric[k].Value || math.Abs(g.Numeric[k].Prob-w.Numeric[k].Prob) > 1e-6 {
					t.Errorf("%+v row %d: numeric %d %+v, want %+v", sm, i, k, g.Numeric[k], w.Numeric[k])
				}
			}
		}
		t.Logf("%+v: %d calls of the scorer; row 0 %s %d values %v", sm, calls, got[0].Method, len(got[0].Numeric), got[0].Samples)
	}
	// the samples' tokens (a random model's rarely parse as numbers)
	prompt, _, err := enc.Continuations(&rows[0], []string{""})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []model.Sampling{{Temperature: 1, MaxNewTokens: tokens}, {Temperature: 0.7, TopP: 0.9, MaxNewTokens: tokens}, {MaxNewTokens: tokens}} {
		streams := func() []*rand.Rand {
			r := make([]*rand.Rand, seqs)
			for k := range r {
				r[k] = rand.New(rand.NewPCG(3, uint64(k)))
			}
			return r
		}
		gens, err := GenerateScored(context.Background(), scorer, m.Config.VocabSize, prompt, s, streams())
		if err != nil {
			t.Fatal(err)
		}
		for k, rng := range streams() {
			want, err := m.Generate(prompt, nil, s, rng, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(gens[k], want) {
				t.Errorf("%+v sequence %d: %v, generated alone %v", s, k, gens[k], want)
			}
		}
	}
}
