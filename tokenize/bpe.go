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
	syms []symbol
	heap []cand
}

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

// bpe appends the ids of word (raw bytes, one pre-token) to out, merging the
// lowest-ranked adjacent pair first: O(n log n) in the word's length.
func (t *Tokenizer) bpe(out []int32, word string, w *workspace) []int32 {
	if t.ignoreMerges || len(word) == 1 {
		if id, ok := t.vocab[word]; ok {
			return append(out, id)
		}
	}
	n := len(word)
	syms := w.syms[:0]
	for i := 0; i < n; i++ {
		syms = append(syms, symbol{id: t.byteIDs[word[i]], prev: int32(i - 1), next: int32(i + 1)})
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
	for i := int32(0); i >= 0; i = syms[i].next {
		out = append(out, syms[i].id)
	}
	return out
}

func (t *Tokenizer) pushPair(w *workspace, pos, a, b int32) {
	if m, ok := t.merges[pairKey(a, b)]; ok {
		w.push(cand{rank: m.rank, pos: pos, left: a, right: b, id: m.id})
	}
}
