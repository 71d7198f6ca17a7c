package data

import "sort"

// Pair is one DPO preference pair: the prompt is the Example's (persona and
// scenario unchanged), Chosen is the preferred answer, Rejected the other.
type Pair struct {
	Example
	Chosen        string  `json:"chosen"`
	Rejected      string  `json:"rejected"`
	ChosenValue   float64 `json:"chosen_value"`
	RejectedValue float64 `json:"rejected_value"`
}

// PairStats counts what ContrastivePairs did.
type PairStats struct {
	Rows          int `json:"rows"`           // input rows
	NoResponse    int `json:"no_response"`    // rows whose output has no numeric answer
	Cells         int `json:"cells"`          // cells among rows with answers
	SingletonCell int `json:"singleton_cell"` // cells with one row: nobody to contrast with
	UniformCells  int `json:"uniform_cells"`  // cells (of 2+ rows) where everyone gave the same answer
	RowsPaired    int `json:"rows_paired"`    // rows that produced at least one pair
	Pairs         int `json:"pairs"`
}

// ContrastivePairs builds the paper's contrastive DPO pairs. For each row
// (persona p, cell = study, condition, question) chosen is p's real answer
// and rejected is a different answer another participant gave in the same
// cell; the prompt stays p's. Each row yields up to perExample pairs, with
// distinct rejected values drawn with the seed. Rows are visited in input
// order, so the result is deterministic. Cells where everyone answered the
// same produce no pairs and are counted in stats.
func ContrastivePairs(rows []Example, perExample int, seed uint64) (pairs []Pair, stats PairStats) {
	stats.Rows = len(rows)
	if perExample <= 0 {
		perExample = 1
	}
	cells := map[CellKey][]int{} // cell -> row indices, in input order
	var order []CellKey
	keys := make([]CellKey, len(rows))
	for i := range rows {
		if !rows[i].HasResponse {
			stats.NoResponse++
			continue
		}
		k := rows[i].Cell()
		keys[i] = k
		if _, ok := cells[k]; !ok {
			order = append(order, k)
		}
		cells[k] = append(cells[k], i)
	}
	stats.Cells = len(order)
	for _, k := range order {
		idx := cells[k]
		if len(idx) == 1 {
			stats.SingletonCell++
			continue
		}
		first, same := rows[idx[0]].Response, true
		for _, i := range idx[1:] {
			if rows[i].Response != first {
				same = false
				break
			}
		}
		if same {
			stats.UniformCells++
		}
	}
	r := newRNG(seed)
	for i := range rows {
		if !rows[i].HasResponse {
			continue
		}
		p := &rows[i]
		// Distinct answers others in the cell gave, in sorted order so the
		// draw depends on the seed only.
		var cand []float64
		seen := map[float64]bool{p.Response: true}
		for _, j := range cells[keys[i]] {
			q := &rows[j]
			if j == i || (p.Participant >= 0 && q.Participant == p.Participant) || seen[q.Response] {
				continue
			}
			seen[q.Response] = true
			cand = append(cand, q.Response)
		}
		if len(cand) == 0 {
			continue
		}
		sort.Float64s(cand)
		r.shuffle(len(cand), func(a, b int) { cand[a], cand[b] = cand[b], cand[a] })
		if len(cand) > perExample {
			cand = cand[:perExample]
		}
		stats.RowsPaired++
		for _, v := range cand {
			pairs = append(pairs, Pair{
				Example:       *p,
				Chosen:        p.Output,
				Rejected:      FormatResponse(v),
				ChosenValue:   p.Response,
				RejectedValue: v,
			})
		}
	}
	stats.Pairs = len(pairs)
	return pairs, stats
}
