package predict

import (
	"container/heap"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/tokenize"
)

// Defaults of the numeric answer tree.
const (
	DefaultNumericEps   = 1e-3
	DefaultNumericNodes = 256
	// numericWidth nodes at most go through the layers together: one
	// forward pass of a few dozen tokens costs about what one token does
	// (the weights are read once), so a round expands many nodes.
	numericWidth = 32
	// digits of the integer and fractional parts of an answer: 15 keep
	// every value exact in a float64.
	maxIntDigits, maxFracDigits = 15, 6
)

// treeScorer grows a tree of continuations of a prompt (model.Predictor).
type treeScorer interface {
	BeginTree(prompt, want []int) ([]float64, error)
	GrowTree(parents, toks, want []int) ([]int, [][]float64, error)
}

// numericForm is how a row's numeric answer continues its prompt: the
// answer's text is head+lead+number, head ("Response:") is already in the
// prompt as headToks, and the answer ends with the token end (end-of-turn or
// EOS, as the encoder appends it).
type numericForm struct {
	prompt   []int
	head     string
	headToks []int
	lead     string
	end      int
}

// numericProbes are answers whose tokens show where the number starts and
// what ends it: a sign, a decimal point, and last digits that all differ.
var numericProbes = []float64{0, -1, 0.5, 23}

// newNumericForm finds how r's answers are tokenized by encoding a few and
// checking that the chat template tokenizes them as the text alone does, so
// that a number's canonical tokens can be found by encoding its text.
func newNumericForm(enc *data.Encoder, r *data.Example) (*numericForm, error) {
	answers := make([]string, len(numericProbes))
	for i, v := range numericProbes {
		answers[i] = data.FormatResponse(v)
	}
	prompt, conts, err := enc.Continuations(r, answers)
	if err != nil {
		return nil, err
	}
	f := &numericForm{prompt: prompt, end: -1}
	for i, c := range conts {
		if len(c) < 2 || f.end >= 0 && c[len(c)-1] != f.end {
			return nil, fmt.Errorf("%s: answers end without an end-of-turn or EOS token, so a number cannot be told from its prefixes", r.Where())
		}
		f.end = c[len(c)-1]
		body := c[:len(c)-1]
		full := enc.Tok.Encode(answers[i])
		if len(full) < len(body) || !slices.Equal(full[len(full)-len(body):], body) {
			return nil, fmt.Errorf("%s: the chat template tokenizes the answer %q differently from the text alone", r.Where(), answers[i])
		}
		head := full[:len(full)-len(body)]
		num := strconv.FormatFloat(numericProbes[i], 'f', -1, 64)
		if i == 0 {
			f.headToks, f.head = head, enc.Tok.Decode(head)
			rest, ok := strings.CutPrefix(answers[i], f.head)
			if !ok || !strings.HasSuffix(rest, num) {
				return nil, fmt.Errorf("%s: cannot find the number in the answer %q", r.Where(), answers[i])
			}
			f.lead = strings.TrimSuffix(rest, num)
		}
		if !slices.Equal(head, f.headToks) || answers[i] != f.head+f.lead+num || enc.Tok.Decode(body) != f.lead+num {
			return nil, fmt.Errorf("%s: the answers %q and %q tokenize inconsistently", r.Where(), answers[0], answers[i])
		}
	}
	if len(prompt) < len(f.headToks) || !slices.Equal(prompt[len(prompt)-len(f.headToks):], f.headToks) {
		return nil, fmt.Errorf("%s: the prompt does not end with the answer's first tokens", r.Where())
	}
	return f, nil
}

// numberPrefix reports whether s (the answer text after head) can begin
// lead followed by a number written as data.FormatResponse writes it (no
// leading zeros, no trailing fractional zeros, no -0), and whether it is a
// complete one.
func numberPrefix(lead, s string) (prefix, complete bool) {
	if len(s) < len(lead) {
		return strings.HasPrefix(lead, s), false
	}
	r, ok := strings.CutPrefix(s, lead)
	if !ok {
		return false, false
	}
	neg := strings.HasPrefix(r, "-")
	r = strings.TrimPrefix(r, "-")
	intPart, frac, dot := strings.Cut(r, ".")
	if !digitsOnly(intPart) || !digitsOnly(frac) || len(intPart) > maxIntDigits || len(frac) > maxFracDigits {
		return false, false
	}
	if len(intPart) > 1 && intPart[0] == '0' || dot && intPart == "" {
		return false, false
	}
	complete = intPart != "" && (!dot || frac != "" && frac[len(frac)-1] != '0') && !(neg && intPart == "0" && !dot)
	return true, complete
}

func digitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// numericTokens lists the vocabulary's tokens made only of digits, signs,
// decimal points and the characters of lead: the only ones a number's
// tokens can be.
func numericTokens(tok *tokenize.Tokenizer, lead string) (ids []int, texts []string) {
	for id := 0; id < tok.VocabSize(); id++ {
		s := tok.Decode([]int{id})
		ok := s != ""
		for _, c := range s {
			ok = ok && (c >= '0' && c <= '9' || c == '-' || c == '.' || strings.ContainsRune(lead, c))
		}
		if ok {
			ids, texts = append(ids, id), append(texts, s)
		}
	}
	return ids, texts
}

// numericTree is the state of one row's best-first expansion.
type numericTree struct {
	f         *numericForm
	tok       *tokenize.Tokenizer
	ids       []int    // candidate tokens, then f.end
	texts     []string // their text (candidates only)
	maxTokens int      // tokens an answer may have, end included
	nodes     []numNode
	open      frontier // indices of nodes not expanded, most probable first
	// masses: unexpanded (sum over open), covered (complete answers),
	// excluded (tokens outside the grammar or the tokenizer's canonical
	// form, answers too long); they add up to 1
	unexpanded, covered, excluded float64
	expanded                      int
	values                        []data.ValueProb // complete answers, raw probabilities
}

type numNode struct {
	parent, tok int
	depth       int // tokens after the prompt
	text        string
	logp        float64
	model       int // the node's id in the scorer's tree once expanded
}

type frontier struct {
	idx   []int
	nodes *[]numNode
}

func (f frontier) Len() int           { return len(f.idx) }
func (f frontier) Less(a, b int) bool { return (*f.nodes)[f.idx[a]].logp > (*f.nodes)[f.idx[b]].logp }
func (f frontier) Swap(a, b int)      { f.idx[a], f.idx[b] = f.idx[b], f.idx[a] }
func (f *frontier) Push(x any)        { f.idx = append(f.idx, x.(int)) }
func (f *frontier) Pop() any {
	x := f.idx[len(f.idx)-1]
	f.idx = f.idx[:len(f.idx)-1]
	return x
}

// numericDistribution expands the tree of number tokens after f's prompt
// best-first, a round of up to numericWidth nodes through the layers at a
// time, until the unexpanded mass is below eps of the numeric mass (covered
// plus unexpanded) or maxNodes nodes are expanded. The bound is relative so
// that it bounds the error of the renormalised distribution whatever mass
// the model gives to answers that are not numbers; for a finetuned model,
// whose answers are numbers, it is the raw mass. Paths whose tokens are not the tokenizer's own tokenization of
// their text are dropped: the model was trained on canonical tokens only,
// and keeping them would count some numbers twice.
func numericDistribution(sc treeScorer, tok *tokenize.Tokenizer, f *numericForm, cands []int, texts []string, eps float64, maxNodes, maxTokens int) (*numericTree, error) {
	t := &numericTree{f: f, tok: tok, ids: append(slices.Clip(cands), f.end), texts: texts, maxTokens: maxTokens}
	t.open.nodes = &t.nodes
	lp, err := sc.BeginTree(f.prompt, t.ids)
	if err != nil {
		return nil, err
	}
	t.nodes = append(t.nodes, numNode{parent: -1, model: 0})
	t.children(0, lp)
	var parents, toks, batch []int
	for t.open.Len() > 0 && t.unexpanded > eps*(t.covered+t.unexpanded) && t.expanded < maxNodes {
		parents, toks, batch = parents[:0], toks[:0], batch[:0]
		left := t.unexpanded
		for t.open.Len() > 0 && len(batch) < numericWidth && t.expanded+len(batch) < maxNodes && (len(batch) == 0 || left > eps*(t.covered+left)) {
			n := heap.Pop(&t.open).(int)
			p := math.Exp(t.nodes[n].logp)
			left -= p
			if !t.canonical(n) {
				t.unexpanded -= p
				t.excluded += p
				continue
			}
			batch = append(batch, n)
			parents = append(parents, t.nodes[t.nodes[n].parent].model)
			toks = append(toks, t.nodes[n].tok)
		}
		if len(batch) == 0 {
			continue
		}
		ids, lps, err := sc.GrowTree(parents, toks, t.ids)
		if err != nil {
			return nil, err
		}
		for i, n := range batch {
			t.nodes[n].model = ids[i]
			t.unexpanded -= math.Exp(t.nodes[n].logp)
			t.expanded++
			t.children(n, lps[i])
		}
	}
	// the running sum drifts by rounding; the frontier has the exact one
	t.unexpanded = 0
	for _, n := range t.open.idx {
		t.unexpanded += math.Exp(t.nodes[n].logp)
	}
	return t, nil
}

// children sorts the mass of expanded node n among its children (lp: the
// log-probabilities of t.ids after it): numbers continued go to the
// frontier, a complete number followed by the end token is an answer, and
// the rest is excluded.
func (t *numericTree) children(n int, lp []float64) {
	nd := t.nodes[n]
	mass := math.Exp(nd.logp)
	var kept float64
	for j, text := range t.texts {
		p := math.Exp(nd.logp + lp[j])
		if p == 0 {
			continue
		}
		s := nd.text + text
		// a child needs room for the end token after it
		if ok, _ := numberPrefix(t.f.lead, s); !ok || nd.depth+2 > t.maxTokens {
			continue
		}
		kept += p
		t.nodes = append(t.nodes, numNode{parent: n, tok: t.ids[j], depth: nd.depth + 1, text: s, logp: nd.logp + lp[j], model: -1})
		heap.Push(&t.open, len(t.nodes)-1)
		t.unexpanded += p
	}
	if _, complete := numberPrefix(t.f.lead, nd.text); complete {
		p := math.Exp(nd.logp + lp[len(lp)-1])
		v, err := strconv.ParseFloat(strings.TrimPrefix(nd.text, t.f.lead), 64)
		if err == nil {
			kept += p
			t.covered += p
			t.values = append(t.values, data.ValueProb{Value: v, Prob: p})
		}
	}
	t.excluded += max(0, mass-kept)
}

// canonical reports whether node n's tokens are the tokenizer's own
// tokenization of its text (Llama 3 writes 1234 as 123|4, never 12|34).
func (t *numericTree) canonical(n int) bool {
	var path []int
	for k := n; k > 0; k = t.nodes[k].parent {
		path = append(path, t.nodes[k].tok)
	}
	slices.Reverse(path)
	got := t.tok.Encode(t.f.head + t.nodes[n].text)
	return len(got) == len(t.f.headToks)+len(path) && slices.Equal(got[:len(t.f.headToks)], t.f.headToks) && slices.Equal(got[len(t.f.headToks):], path)
}

// distribution returns the answers by value with their probabilities
// renormalised over the covered mass, and its median.
func (t *numericTree) distribution() ([]data.ValueProb, *float64) {
	out := slices.Clone(t.values)
	sort.Slice(out, func(a, b int) bool { return out[a].Value < out[b].Value })
	if t.covered <= 0 {
		return out, nil
	}
	for i := range out {
		out[i].Prob /= t.covered
	}
	var cum float64
	for _, v := range out {
		if cum += v.Prob; cum >= 0.5 {
			med := v.Value
			return out, &med
		}
	}
	med := out[len(out)-1].Value
	return out, &med
}
