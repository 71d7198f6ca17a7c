package model

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/gotrain/gotrain/kernels"
)

// ContinuationJob is a prompt and the alternative continuations scored after
// it.
type ContinuationJob struct {
	Prompt []int
	Conts  [][]int
	// Logits, if not nil (len Vocab), receives the logits after Prompt: the
	// next token's distribution, for sampling. A job with Logits may have
	// no Conts.
	Logits []float32
}

// BatchStats counts the prompt tokens of a batch: taken from a PrefixCache
// (Reused) or computed.
type BatchStats struct {
	Reused, Computed int
}

// ContinuationBatch is ContinuationLogProbs for many prompts at once, as a
// server batches the rows of concurrent requests: every prompt and every
// continuation goes through the layers in one forward pass (the weights are
// read once for all of them, and the LM head, which dominates short rows with
// a large vocabulary, runs as one matrix product). Prompts are sorted and
// grouped by shared prefix; a group's prefix is computed once, or copied
// from pc (which may be nil) when an earlier batch computed it. c is the
// caller's scratch cache; it is emptied first. out[i][k] is the log
// probability of jobs[i].Conts[k] after jobs[i].Prompt.
func (m *Model) ContinuationBatch(c *KVCache, pc *PrefixCache, ad *Adapter, jobs []ContinuationJob) ([][]float64, BatchStats, error) {
	var st BatchStats
	m = m.with(ad) // modules_to_save: the adapter's own LM head
	V := m.Config.VocabSize
	for i, j := range jobs {
		if len(j.Prompt) == 0 {
			return nil, st, fmt.Errorf("model: job %d: empty prompt", i)
		}
		if len(j.Conts) == 0 && j.Logits == nil {
			return nil, st, fmt.Errorf("model: job %d: no continuations", i)
		}
		if j.Logits != nil && len(j.Logits) != V {
			return nil, st, fmt.Errorf("model: job %d: logits of length %d for a vocabulary of %d", i, len(j.Logits), V)
		}
		for k, cont := range j.Conts {
			if len(cont) == 0 {
				return nil, st, fmt.Errorf("model: job %d: continuation %d is empty", i, k)
			}
			for _, t := range cont {
				if t < 0 || t >= V {
					return nil, st, fmt.Errorf("model: job %d: token id %d outside the vocabulary [0,%d)", i, t, V)
				}
			}
		}
	}
	order := make([]int, len(jobs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return slices.Compare(jobs[a].Prompt, jobs[b].Prompt) })
	groups := groupByPrefix(jobs, order)

	// rows copied from the prefix cache come first, then the batch: the rest
	// of each group's prefix, then each job's prompt tail and continuations
	c.Truncate(0)
	for g := range groups {
		gr := &groups[g]
		gr.copyLo = c.Len
		if pc != nil {
			gr.copied = pc.load(c, gr.prefix)
		}
		st.Reused += gr.copied
	}
	// continuations follow their prompt as a trie: a node is a
	// continuation prefix t[0..j] (j ≥ 0) of one job, one token row of the
	// batch that attends to the prompt, its ancestors and itself, and whose
	// logits score the next token of every continuation through it.
	// Options that share leading tokens share nodes: the 101 answers of a
	// 0–100 scale (digits are tokens) take 101 rows instead of 193.
	depth := 0 // nodes on the longest path: the spans of a node's ancestors and itself
	for _, j := range jobs {
		for _, cont := range j.Conts {
			depth = max(depth, len(cont)-1)
		}
	}
	b := Batch{exact: true}
	spans := make([]kernels.KeySpan, 3+depth)
	add := func(tok, pos int, fixed ...kernels.KeySpan) {
		n := copy(spans, fixed)
		clear(spans[n:])
		b.AddSpans(tok, pos, spans...)
	}
	type trieKey struct{ parent, tok int32 }
	type trieNode struct{ parent, row, want int32 }
	var trie []trieNode
	index := map[trieKey]int32{}
	var want []int
	var targets []headTarget
	row0 := c.Len
	for g := range groups {
		gr := &groups[g]
		gr.restLo = row0 + b.Len()
		copied := kernels.KeySpan{Lo: int32(gr.copyLo), Hi: int32(gr.copyLo + gr.copied)}
		for p := gr.copied; p < len(gr.prefix); p++ {
			add(gr.prefix[p], p, copied, kernels.KeySpan{Lo: int32(gr.restLo), Hi: int32(row0 + b.Len() + 1)})
		}
		st.Computed += len(gr.prefix) - gr.copied
	}
	for g := range groups {
		gr := &groups[g]
		copied := kernels.KeySpan{Lo: int32(gr.copyLo), Hi: int32(gr.copyLo + gr.copied)}
		rest := kernels.KeySpan{Lo: int32(gr.restLo), Hi: int32(gr.restLo + len(gr.prefix) - gr.copied)}
		C := len(gr.prefix)
		for _, i := range gr.jobs {
			prompt := jobs[i].Prompt
			tailLo := row0 + b.Len()
			for p := C; p < len(prompt); p++ {
				add(prompt[p], p, copied, rest, kernels.KeySpan{Lo: int32(tailLo), Hi: int32(row0 + b.Len() + 1)})
			}
			st.Computed += len(prompt) - C
			want = append(want, b.Len()-1)
			last := int32(len(want) - 1)
			if jobs[i].Logits != nil {
				targets = append(targets, headTarget{row: last, tok: -1, job: int32(i)})
			}
			tail := kernels.KeySpan{Lo: int32(tailLo), Hi: int32(row0 + b.Len())}
			P := len(prompt)
			trie = trie[:0]
			clear(index)
			for k, cont := range jobs[i].Conts {
				targets = append(targets, headTarget{row: last, tok: int32(cont[0]), job: int32(i), cont: int32(k)})
				parent := int32(-1)
				for t := 0; t < len(cont)-1; t++ {
					key := trieKey{parent, int32(cont[t])}
					n, ok := index[key]
					if !ok {
						n = int32(len(trie))
						row := int32(row0 + b.Len())
						clear(spans)
						spans[0], spans[1], spans[2] = copied, rest, tail
						// the ancestors root first, in the order of the
						// continuation's tokens: attention sums a token's keys
						// in the order of its spans (as the Predictor's)
						s := 3 + t
						for a := parent; a >= 0; a = trie[a].parent {
							s--
							spans[s] = kernels.KeySpan{Lo: trie[a].row, Hi: trie[a].row + 1}
						}
						spans[3+t] = kernels.KeySpan{Lo: row, Hi: row + 1}
						b.AddSpans(cont[t], P+t, spans...)
						want = append(want, b.Len()-1)
						trie = append(trie, trieNode{parent, row, int32(len(want) - 1)})
						index[key] = n
					}
					targets = append(targets, headTarget{row: trie[n].want, tok: int32(cont[t+1]), job: int32(i), cont: int32(k)})
					parent = n
				}
			}
		}
	}
	h, err := m.Forward(c, &b, ad, want)
	if err != nil {
		c.Truncate(0)
		return nil, st, err
	}
	if pc != nil {
		for _, gr := range groups {
			if len(gr.prefix) > gr.copied {
				pc.store(c, gr.prefix, gr.copyLo, gr.copied, gr.restLo)
			}
		}
	}
	c.Truncate(0)
	lp := m.headLogProbs(c, h, len(want), targets, jobs)
	out := make([][]float64, len(jobs))
	for i := range jobs {
		out[i] = make([]float64, len(jobs[i].Conts))
	}
	for k, t := range targets {
		if t.tok >= 0 {
			out[t.job][t.cont] += lp[k]
		}
	}
	return out, st, nil
}

// headTarget asks for the log-probability of token tok after row (an index
// into the rows of hidden states) for continuation cont of job, or, with tok
// −1, for the row's logits in job's Logits.
type headTarget struct {
	row, tok, job, cont int32
}

// headBlock is headLogProbs's vocabulary block, in tokens (a multiple of 64).
const headBlock = 4096

// headLogProbs returns, for every target, log p(tok | row) under the LM
// head, from hidden states h [rows × Hidden]. The logits [rows × Vocab] are
// computed a block of the vocabulary at a time for all rows, within the
// memory of logitRows full rows, merging each row's log-sum-exp across the
// blocks and picking the targets' logits as their block passes: so the LM
// head is read (and, for a matrix product, packed) once per batch, not once
// per logitRows rows — a batch of eight rows with 0–100 scales has ~600
// rows of logits, and the head's packing was 10–13% of a server's CPU
// time (none with a head prepacked by PackWeights). Heads that cannot be
// sliced by rows (quantized) go by row blocks.
func (m *Model) headLogProbs(c *KVCache, h []float32, rows int, targets []headTarget, jobs []ContinuationJob) []float64 {
	V, H := m.Config.VocabSize, m.Config.Hidden
	// Vocabulary blocks of a fixed size, so that each row's log-sum-exp
	// merges the same blocks whatever the batch; row blocks within the
	// memory of logitRows full rows.
	rb, cb := max(logitRows, logitRows*V/headBlock), min(V, headBlock)
	if m.LMHead.IsQuantized() {
		rb, cb = logitRows, V
	}
	c.logits = grow(c.logits, max(min(rb, rows), kernels.MinGEMMRows)*cb)
	lse := make([]float64, rows)
	norm := make([]float64, min(rb, rows))
	tl := make([]float64, len(targets))
	byRow := slices.Clone(targets) // targets sorted by row, with their index in tok's place
	idx := make([]int, len(targets))
	for k := range idx {
		idx[k] = k
	}
	slices.SortStableFunc(idx, func(a, b int) int { return int(targets[a].row - targets[b].row) })
	for k, i := range idx {
		byRow[k] = targets[i]
	}
	for r0 := 0; r0 < rows; r0 += rb {
		nr := min(rb, rows-r0)
		lo, _ := slices.BinarySearchFunc(byRow, int32(r0), func(t headTarget, r int32) int { return int(t.row - r) })
		hi, _ := slices.BinarySearchFunc(byRow, int32(r0+nr), func(t headTarget, r int32) int { return int(t.row - r) })
		// fewer rows than the GEMM's go padded (see Batch.exact), once for
		// every vocabulary block
		hr, mr := h[r0*H:(r0+nr)*H], max(nr, kernels.MinGEMMRows)
		if nr < mr {
			c.hpad = padRows(c.hpad, hr, mr*H)
			hr = c.hpad
		}
		for v0 := 0; v0 < V; v0 += cb {
			nv := min(cb, V-v0)
			logits := c.logits[:mr*nv]
			m.headRows(logits, hr, mr, v0, v0+nv)
			kernels.LogSumExp(norm[:nr], logits, nr, nv)
			for r := range nr {
				if v0 == 0 {
					lse[r0+r] = norm[r]
				} else {
					lse[r0+r] = logAddExp(lse[r0+r], norm[r])
				}
			}
			for k := lo; k < hi; k++ {
				t := byRow[k]
				row := logits[(int(t.row)-r0)*nv : (int(t.row)-r0+1)*nv]
				if t.tok < 0 {
					copy(jobs[t.job].Logits[v0:v0+nv], row)
				} else if int(t.tok) >= v0 && int(t.tok) < v0+nv {
					tl[idx[k]] = float64(row[int(t.tok)-v0])
				}
			}
		}
	}
	for k, t := range targets {
		tl[k] -= lse[t.row]
	}
	return tl
}

func logAddExp(a, b float64) float64 {
	if a < b {
		a, b = b, a
	}
	if math.IsInf(b, -1) {
		return a
	}
	return a + math.Log1p(math.Exp(b-a))
}

// prefixGroup is jobs whose prompts share prefix.
type prefixGroup struct {
	prefix []int
	jobs   []int
	copyLo int // cache row of the first token copied from the prefix cache
	copied int // tokens of prefix copied from the prefix cache
	restLo int // cache row of the first prefix token computed
}

// groupByPrefix splits jobs (in sorted order) into groups with a shared
// prefix, which always leaves each prompt at least its last token to compute
// (its hidden state predicts the continuations). Greedily, a job joins the
// current group when the tokens the group's members would then recompute,
// g·(C−l) for g members whose prefix shrinks from C to l, cost less than
// computing the l shared tokens again in a new group.
func groupByPrefix(jobs []ContinuationJob, order []int) []prefixGroup {
	var groups []prefixGroup
	for _, i := range order {
		p := jobs[i].Prompt
		if n := len(groups); n > 0 {
			gr := &groups[n-1]
			l := CommonPrefix(gr.prefix, p[:len(p)-1])
			if len(gr.jobs)*(len(gr.prefix)-l) <= l {
				gr.prefix = gr.prefix[:l]
				gr.jobs = append(gr.jobs, i)
				continue
			}
		}
		groups = append(groups, prefixGroup{prefix: p[:len(p)-1], jobs: []int{i}})
	}
	return groups
}

// CommonPrefix is the length of the longest common prefix of the token
// sequences a and b.
func CommonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// PrefixCache keeps the keys and values of recently computed prompt prefixes
// for ContinuationBatch, bounded in bytes, the least recently used evicted
// first. Keys and values depend on the adapter: use one cache per adapter.
// It is safe for concurrent use.
type PrefixCache struct {
	mu      sync.Mutex
	max     int64
	used    int64
	entries []*prefixEntry // least recently used first
	// Hits and Misses count lookups that found a shared prefix or none;
	// Tokens counts the prefix tokens copied instead of computed.
	Hits, Misses, Tokens int64
}

type prefixEntry struct {
	toks  []int
	k, v  [][]float32 // [layer][len(toks) × KVHeads·HeadDim]
	bytes int64       // held (the slices' capacity)
}

// NewPrefixCache returns a prefix cache holding at most maxBytes of keys and values.
func NewPrefixCache(maxBytes int64) *PrefixCache {
	return &PrefixCache{max: maxBytes}
}

// MaxBytes is the cache's bound.
func (pc *PrefixCache) MaxBytes() int64 { return pc.max }

// Stats returns the counters and the bytes held.
func (pc *PrefixCache) Stats() (hits, misses, tokens, bytes int64) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.Hits, pc.Misses, pc.Tokens, pc.used
}

// Shared returns how many leading tokens of toks the cache holds (the most
// any entry shares with them), without counting a lookup; 0 for a nil cache.
func (pc *PrefixCache) Shared(toks []int) int {
	if pc == nil {
		return 0
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	n := 0
	for _, e := range pc.entries {
		n = max(n, CommonPrefix(e.toks, toks))
	}
	return n
}

// load appends to c the rows of the cached entry sharing the longest prefix
// with toks and returns how many it appended.
func (pc *PrefixCache) load(c *KVCache, toks []int) int {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	best, n := -1, 0
	for i, e := range pc.entries {
		if l := CommonPrefix(e.toks, toks); l > n {
			best, n = i, l
		}
	}
	if best < 0 {
		pc.Misses++
		return 0
	}
	e := pc.entries[best]
	pc.entries = append(slices.Delete(pc.entries, best, best+1), e)
	pc.Hits++
	pc.Tokens += int64(n)
	c.grow(c.Len + n)
	w := c.kvw
	for l := range c.K {
		copy(c.K[l][c.Len*w:(c.Len+n)*w], e.k[l][:n*w])
		copy(c.V[l][c.Len*w:(c.Len+n)*w], e.v[l][:n*w])
	}
	c.Len += n
	return n
}

// store keeps toks, whose keys and values are in c's rows [copyLo,
// copyLo+copied) followed by [restLo, restLo+len(toks)-copied). An entry
// that toks extends grows in place (a generation's steps each extend the
// sequence by a token: appending keeps a step's cost to its new rows, not
// a copy of the whole sequence); other entries it extends are dropped.
func (pc *PrefixCache) store(c *KVCache, toks []int, copyLo, copied, restLo int) {
	w := c.kvw
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if int64(2*len(c.K)*len(toks)*w)*4 > pc.max {
		return
	}
	var e *prefixEntry
	pc.entries = slices.DeleteFunc(pc.entries, func(o *prefixEntry) bool {
		if CommonPrefix(o.toks, toks) < len(o.toks) {
			return false
		}
		pc.used -= o.bytes
		if e == nil || len(o.toks) > len(e.toks) {
			e = o
		}
		return true
	})
	if e == nil {
		e = &prefixEntry{k: make([][]float32, len(c.K)), v: make([][]float32, len(c.V))}
	}
	from := len(e.toks)
	e.toks = append(e.toks, toks[from:]...)
	e.bytes = int64(cap(e.toks)) * 8
	for l := range c.K {
		for _, kv := range [2]struct {
			dst *[]float32
			src []float32
		}{{&e.k[l], c.K[l]}, {&e.v[l], c.V[l]}} {
			d := *kv.dst
			if from < copied {
				d = append(d, kv.src[(copyLo+from)*w:(copyLo+copied)*w]...)
			}
			d = append(d, kv.src[(restLo+max(from, copied)-copied)*w:(restLo+len(toks)-copied)*w]...)
			*kv.dst = d
			e.bytes += int64(cap(d)) * 4
		}
	}
	pc.entries = append(pc.entries, e)
	pc.used += e.bytes
	for pc.used > pc.max && len(pc.entries) > 0 {
		pc.used -= pc.entries[0].bytes
		pc.entries = slices.Delete(pc.entries, 0, 1)
	}
}
