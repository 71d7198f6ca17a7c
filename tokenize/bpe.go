package tokenize

// merge is one BPE merge rule: the pair's priority and the merged token's id.
type merge struct{ rank, id int32 }

// pairKey packs two token ids into a map key.
func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// symbol is one token of a word being merged, in a doubly linked list over
// the word's initial bytes; id < 0 marks a symbol merged into its left.
type symbol struct{ id, prev, next int32 }

// cand is a candidate merge of the symbols at pos and its right neighbour,
// valid while they still hold ids left and right.
type cand struct{ rank, pos, left, right, id int32 }

// workspace holds the buffers of one word's BPE so encoding allocates
// nothing per word.
type workspace struct {
	syms  []symbol
	heap  []cand
	ids   []int32
	pairs []merge // pairs[i]: merge of ids[i] and ids[i+1]; rank noMerge if none
}

// noMerge is the rank of a pair that has no merge rule.
const noMerge = 1<<31 - 1

// smallWord is the longest word merged by linear scans instead of a heap:
// O(n^2), but faster for the short words that make up almost all text.
const smallWord = 24

// less orders candidates by rank, then leftmost first, as Hugging Face does.
func (a cand) less(b cand) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

func (w *workspace) push(c cand) {
	h := append(w.heap, c)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].less(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	w.heap = h
}

func (w *workspace) pop() cand {
	h := w.heap
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h[r].less(h[l]) {
			m = r
		}
		if !h[m].less(h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	w.heap = h
	return top
}

// bpe appends the ids of word (one pre-token: raw bytes, or characters for
// byte_fallback) to out, merging the lowest-ranked adjacent pair first: O(n log n) in the word's length.
func (t *Tokenizer) bpe(out []int32, word string, w *workspace) []int32 {
	if t.ignoreMerges || len(word) == 1 {
		if id, ok := t.vocab[word]; ok {
			return append(out, id)
		}
	}
	var init []int32
	if t.spm != nil {
		init = t.spmInit(word, w)
	} else {
		init = w.ids[:0]
		for i := 0; i < len(word); i++ {
			init = append(init, t.byteIDs[word[i]])
		}
		w.ids = init
	}
	n := len(init)
	if n <= smallWord {
		return t.bpeSmall(out, word, init, w)
	}
	syms := w.syms[:0]
	for i, id := range init {
		syms = append(syms, symbol{id: id, prev: int32(i - 1), next: int32(i + 1)})
	}
	syms[n-1].next = -1
	w.syms = syms
	w.heap = w.heap[:0]
	for i := 0; i+1 < n; i++ {
		t.pushPair(w, int32(i), syms[i].id, syms[i+1].id)
	}
	for len(w.heap) > 0 {
		c := w.pop()
		s := &syms[c.pos]
		if s.id != c.left || s.next < 0 || syms[s.next].id != c.right {
			continue // stale: one side was merged since this was pushed
		}
		r := &syms[s.next]
		s.id = c.id
		s.next = r.next
		r.id = -1
		if s.next >= 0 {
			syms[s.next].prev = c.pos
			t.pushPair(w, c.pos, s.id, syms[s.next].id)
		}
		if s.prev >= 0 {
			t.pushPair(w, s.prev, syms[s.prev].id, s.id)
		}
	}
	ids := w.ids[:0]
	for i := int32(0); i >= 0; i = syms[i].next {
		ids = append(ids, syms[i].id)
	}
	w.ids = ids
	return t.appendSymbols(out, ids, word)
}

// appendSymbols appends a word's merged symbols; a byte_fallback model
// replaces its unknown characters.
func (t *Tokenizer) appendSymbols(out, ids []int32, word string) []int32 {
	if t.spm != nil {
		return t.spmFallback(out, ids, word)
	}
	return append(out, ids...)
}

func (t *Tokenizer) pushPair(w *workspace, pos, a, b int32) {
	if m, ok := t.merges[pairKey(a, b)]; ok {
		w.push(cand{rank: m.rank, pos: pos, left: a, right: b, id: m.id})
	}
}

// bpeSmall is bpe for short words: find the lowest-ranked pair by a scan,
// merge it, update its two neighbouring pairs, repeat.
func (t *Tokenizer) bpeSmall(out []int32, word string, ids []int32, w *workspace) []int32 {
	pairs := w.pairs[:0]
	for i := 0; i+1 < len(ids); i++ {
		pairs = append(pairs, t.pair(ids[i], ids[i+1]))
	}
	for len(pairs) > 0 {
		best := 0
		for i := 1; i < len(pairs); i++ {
			if pairs[i].rank < pairs[best].rank {
				best = i
			}
		}
		if pairs[best].rank == noMerge {
			break
		}
		ids[best] = pairs[best].id
		ids = append(ids[:best+1], ids[best+2:]...)
		pairs = append(pairs[:best], pairs[best+1:]...)
		if best < len(pairs) {
			pairs[best] = t.pair(ids[best], ids[best+1])
		}
		if best > 0 {
			pairs[best-1] = t.pair(ids[best-1], ids[best])
		}
	}
	w.ids, w.pairs = ids, pairs
	return t.appendSymbols(out, ids, word)
}

// pair returns the merge rule of a and b, rank noMerge if there is none.
func (t *Tokenizer) pair(a, b int32) merge {
	if m, ok := t.merges[pairKey(a, b)]; ok {
		return m
	}
	return merge{rank: noMerge}
}
