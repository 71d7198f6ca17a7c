package data

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/gotrain/gotrain/internal/inputfile"
)

// SplitBy names the unit that Split keeps whole on one side.
type SplitBy int

// Split units.
const (
	ByRow         SplitBy = iota // each row on its own
	ByStudy                      // unseen studies
	ByCondition                  // unseen (study, condition) arms
	ByOutcome                    // unseen (study, question) outcomes
	ByParticipant                // unseen participants (id, else the persona text)
)

var splitNames = [...]string{"row", "study", "condition", "outcome", "participant"}

// String returns the unit's name.
func (b SplitBy) String() string {
	if b < 0 || int(b) >= len(splitNames) {
		return fmt.Sprintf("SplitBy(%d)", int(b))
	}
	return splitNames[b]
}

// ParseSplitBy reads a unit name as written by String.
func ParseSplitBy(s string) (SplitBy, error) {
	for i, n := range splitNames {
		if n == s {
			return SplitBy(i), nil
		}
	}
	return 0, fmt.Errorf("data: unknown split unit %q (want row, study, condition, outcome or participant)", s)
}

// groupKey returns the unit a row belongs to.
func groupKey(e *Example, i int, by SplitBy) string {
	switch by {
	case ByStudy:
		return e.StudyID
	case ByCondition:
		return e.StudyID + "\x00" + strconv.Itoa(e.ConditionNum)
	case ByOutcome:
		k := e.Cell()
		return k.Study + "\x00" + strconv.Itoa(k.Task) + "\x00" + k.Question
	case ByParticipant:
		if e.Participant >= 0 {
			return "id\x00" + strconv.Itoa(e.Participant)
		}
		// Alpaca rows carry no participant id: the rendered persona is
		// the best available proxy (identical profiles share a side).
		if p, _, ok := SplitPrompt(e.Input); ok {
			return "persona\x00" + p
		}
	}
	return "row\x00" + strconv.Itoa(i)
}

// Split divides rows into train and eval so that every unit (study,
// condition, outcome or participant) lands wholly on one side, with about
// evalFrac of the units in eval (at least one, and at least one left for
// training, when there are two or more units and 0 < evalFrac < 1). The
// units are sorted and shuffled with a splitmix64 stream seeded by seed, so
// the result is the same on every run and platform; rows keep their order.
func Split(rows []Example, by SplitBy, evalFrac float64, seed uint64) (train, eval []Example) {
	keys := make([]string, len(rows))
	set := map[string]bool{}
	var units []string
	for i := range rows {
		keys[i] = groupKey(&rows[i], i, by)
		if !set[keys[i]] {
			set[keys[i]] = true
			units = append(units, keys[i])
		}
	}
	sort.Strings(units)
	newRNG(seed).shuffle(len(units), func(a, b int) { units[a], units[b] = units[b], units[a] })
	n := len(units)
	nEval := 0
	if !math.IsNaN(evalFrac) {
		nEval = int(math.Round(evalFrac * float64(n)))
	}
	if n >= 2 && evalFrac > 0 && evalFrac < 1 {
		nEval = max(1, min(nEval, n-1))
	}
	nEval = max(0, min(nEval, n))
	inEval := make(map[string]bool, nEval)
	for _, u := range units[:nEval] {
		inEval[u] = true
	}
	for i := range rows {
		if inEval[keys[i]] {
			eval = append(eval, rows[i])
		} else {
			train = append(train, rows[i])
		}
	}
	return train, eval
}

// ParticipantMapping is the paper's participant_mapping.json: studies whose
// participants training sees, and held-out ones.
type ParticipantMapping struct {
	Seen   []string `json:"seen"`
	Unseen []string `json:"unseen"`
}

// TrainEval lists the condition (or task) numbers of one study on each side.
type TrainEval struct {
	Train []int `json:"train"`
	Eval  []int `json:"eval"`
}

// SplitMapping is the paper's condition_mapping.json or task_mapping.json:
// study id -> train/eval numbers.
type SplitMapping map[string]TrainEval

func readJSONFile(path string, v any) error {
	b, err := inputfile.ReadFile(path, inputfile.MaxSmallFile)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("data: %s: %w", path, err)
	}
	return nil
}

// ids decodes a list of identifiers written as strings or numbers.
func ids(raw []json.RawMessage) ([]string, error) {
	out := make([]string, len(raw))
	for i, r := range raw {
		switch kind(r) {
		case "string":
			if err := json.Unmarshal(r, &out[i]); err != nil {
				return nil, err
			}
		case "number":
			out[i] = string(bytes.TrimSpace(r))
		default:
			return nil, fmt.Errorf("item %d: want string or number, got %s", i, kind(r))
		}
	}
	return out, nil
}

// ReadParticipantMapping reads participant_mapping.json
// ({"seen": [study ids], "unseen": [study ids]}).
func ReadParticipantMapping(path string) (ParticipantMapping, error) {
	var raw map[string][]json.RawMessage
	if err := readJSONFile(path, &raw); err != nil {
		return ParticipantMapping{}, err
	}
	var m ParticipantMapping
	var err error
	if m.Seen, err = ids(raw["seen"]); err != nil {
		return m, fmt.Errorf("data: %s: \"seen\": %w", path, err)
	}
	if m.Unseen, err = ids(raw["unseen"]); err != nil {
		return m, fmt.Errorf("data: %s: \"unseen\": %w", path, err)
	}
	if len(m.Seen)+len(m.Unseen) == 0 {
		return m, fmt.Errorf("data: %s: no \"seen\" or \"unseen\" studies", path)
	}
	return m, nil
}

// ReadSplitMapping reads condition_mapping.json or task_mapping.json
// ({study: {"train": [...], "eval": [...]}}); numbers may be written as
// JSON numbers or numeric strings.
func ReadSplitMapping(path string) (SplitMapping, error) {
	var raw map[string]map[string][]json.RawMessage
	if err := readJSONFile(path, &raw); err != nil {
		return nil, err
	}
	m := make(SplitMapping, len(raw))
	for study, sides := range raw {
		var te TrainEval
		for side, dst := range map[string]*[]int{"train": &te.Train, "eval": &te.Eval} {
			s, err := ids(sides[side])
			if err != nil {
				return nil, fmt.Errorf("data: %s: study %q %q: %w", path, study, side, err)
			}
			for _, x := range s {
				f, err := strconv.ParseFloat(x, 64)
				if err != nil || f != math.Trunc(f) {
					return nil, fmt.Errorf("data: %s: study %q %q: %q is not an integer", path, study, side, x)
				}
				*dst = append(*dst, int(f))
			}
		}
		m[study] = te
	}
	return m, nil
}

// Apply splits rows by study: seen studies to train, unseen to eval; rows
// of studies in neither list go to rest.
func (m ParticipantMapping) Apply(rows []Example) (train, eval, rest []Example) {
	side := map[string]int{}
	for _, s := range m.Seen {
		side[s] = 1
	}
	for _, s := range m.Unseen {
		side[s] = 2
	}
	for _, r := range rows {
		switch side[r.StudyID] {
		case 1:
			train = append(train, r)
		case 2:
			eval = append(eval, r)
		default:
			rest = append(rest, r)
		}
	}
	return train, eval, rest
}

// Apply splits rows by the mapping, matching each row's condition_num (or
// task_num when byTask) against its study's lists; unlisted rows (and rows
// without a task number when byTask) go to rest.
func (m SplitMapping) Apply(rows []Example, byTask bool) (train, eval, rest []Example) {
	has := func(xs []int, v int) bool {
		for _, x := range xs {
			if x == v {
				return true
			}
		}
		return false
	}
	for _, r := range rows {
		te, ok := m[r.StudyID]
		v := r.ConditionNum
		if byTask {
			v = r.TaskNum
			ok = ok && v >= 0
		}
		switch {
		case ok && has(te.Train, v):
			train = append(train, r)
		case ok && has(te.Eval, v):
			eval = append(eval, r)
		default:
			rest = append(rest, r)
		}
	}
	return train, eval, rest
}
