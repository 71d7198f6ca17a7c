package model

import (
	"fmt"
	"slices"
	"sync"

	"github.com/gotrain/gotrain/kernels"
)

// ContinuationJob is a prompt and the alternative continuations scored after it.
type ContinuationJob struct {
	Prompt []int
	Conts  [][]int
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
		if len(j.Conts) == 0 {
			return nil, st, fmt.Errorf("model: job %d: no continuations", i)
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
	type wanted struct {
		job, cont int // cont < 0: the prompt's last token
		target    int32
	}
	var b Batch
	var want []int
	var kinds []wanted
	row0 := c.Len
	empty := kernels.KeySpan{}
	for g := range groups {
		gr := &groups[g]
		gr.restLo = row0 + b.Len()
		copied := kernels.KeySpan{Lo: int32(gr.copyLo), Hi: int32(gr.copyLo + gr.copied)}
		for p := gr.copied; p < len(gr.prefix); p++ {
			b.AddSpans(gr.prefix[p], p, copied, kernels.KeySpan{Lo: int32(gr.restLo), Hi: int32(row0 + b.Len() + 1)}, empty, empty)
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
				b.AddSpans(prompt[p], p, copied, rest, kernels.KeySpan{Lo: int32(tailLo), Hi: int32(row0 + b.Len() + 1)}, empty)
			}
			st.Computed += len(prompt) - C
			want = append(want, b.Len()-1)
			kinds = append(kinds, wanted{i, -1, 0})
			tail := kernels.KeySpan{Lo: int32(tailLo), Hi: int32(row0 + b.Len())}
			P := len(prompt)
			for k, cont := range jobs[i].Conts {
				contLo := row0 + b.Len()
				for t := 0; t < len(cont)-1; t++ {
					b.AddSpans(cont[t], P+t, copied, rest, tail, kernels.KeySpan{Lo: int32(contLo), Hi: int32(row0 + b.Len() + 1)})
					want = append(want, b.Len()-1)
					kinds = append(kinds, wanted{i, k, int32(cont[t+1])})
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

	// one pass of the LM head over every wanted row (the weights are read
	// once for all, not once for the prompts and again for the
	// continuations): a prompt's last token gives each continuation's first
	// token (full logits: the normaliser), a continuation token the
	// log-probability of the next one (target −1 marks the prompt rows)
	out := make([][]float64, len(jobs))
	for i := range jobs {
		out[i] = make([]float64, len(jobs[i].Conts))
	}
	H := m.Config.Hidden
	n := min(logitRows, len(kinds))
	logits := make([]float32, n*V)
	lp := make([]float32, n)
	tg := make([]int32, n)
	for lo := 0; lo < len(kinds); lo += logitRows {
		n := min(logitRows, len(kinds)-lo)
		m.Logits(logits, h[lo*H:(lo+n)*H], n)
		for k, w := range kinds[lo : lo+n] {
			tg[k] = w.target
			if w.cont < 0 {
				tg[k] = -1
			}
		}
		kernels.LogProbs(lp[:n], logits[:n*V], n, V, tg[:n])
		for k, w := range kinds[lo : lo+n] {
			if w.cont >= 0 {
				out[w.job][w.cont] += float64(lp[k])
				continue
			}
			row := logits[k*V : (k+1)*V]
			logNorm := LogSumExp(row)
			for ci, cont := range jobs[w.job].Conts {
				out[w.job][ci] += float64(row[cont[0]]) - logNorm
			}
		}
	}
	return out, st, nil
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
			l := commonPrefix(gr.prefix, p[:len(p)-1])
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

func commonPrefix(a, b []int) int {
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
	toks []int
	k, v [][]float32 // [layer][len(toks) × KVHeads·HeadDim]
}

// NewPrefixCache returns a prefix cache holding at most maxBytes of keys and values.
func NewPrefixCache(maxBytes int64) *PrefixCache {
	return &PrefixCache{max: maxBytes}
}

// Stats returns the counters and the bytes held.
func (pc *PrefixCache) Stats() (hits, misses, tokens, bytes int64) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.Hits, pc.Misses, pc.Tokens, pc.used
}

// load appends to c the rows of the cached entry sharing the longest prefix
// with toks and returns how many it appended.
func (pc *PrefixCache) load(c *KVCache, toks []int) int {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	best, n := -1, 0
	for i, e := range pc.entries {
		if l := commonPrefix(e.toks, toks); l > n {
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
// that toks extends is replaced.
func (pc *PrefixCache) store(c *KVCache, toks []int, copyLo, copied, restLo int) {
	w := c.kvw
	size := int64(2*len(c.K)*len(toks)*w) * 4
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if size > pc.max {
		return
	}
	e := &prefixEntry{toks: slices.Clone(toks), k: make([][]float32, len(c.K)), v: make([][]float32, len(c.V))}
	for l := range c.K {
		for _, kv := range [2]struct{ dst, src *[]float32 }{{&e.k[l], &c.K[l]}, {&e.v[l], &c.V[l]}} {
			d := make([]float32, len(toks)*w)
			copy(d, (*kv.src)[copyLo*w:(copyLo+copied)*w])
			copy(d[copied*w:], (*kv.src)[restLo*w:(restLo+len(toks)-copied)*w])
			*kv.dst = d
		}
	}
	pc.entries = slices.DeleteFunc(pc.entries, func(o *prefixEntry) bool {
		if commonPrefix(o.toks, toks) == len(o.toks) {
			pc.used -= int64(2*len(o.k)*len(o.toks)*w) * 4
			return true
		}
		return false
	})
	pc.entries = append(pc.entries, e)
	pc.used += size
	for pc.used > pc.max {
		o := pc.entries[0]
		pc.used -= int64(2*len(o.k)*len(o.toks)*w) * 4
		pc.entries = slices.Delete(pc.entries, 0, 1)
	}
}
