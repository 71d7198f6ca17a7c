package data

import (
	"reflect"
	"testing"
)

func row(study string, cond int, q, persona string, resp string) Example {
	e := Example{
		StudyID: study, ConditionNum: cond, TaskNum: -1, Participant: -1,
		Instruction: DefaultInstruction,
		Input:       BuildPrompt(persona, `You were asked: "`+q+`" Only return an integer from 1 to 5, nothing else.`),
		Output:      resp,
	}
	e.Response, e.HasResponse = ParseResponse(resp)
	return e
}

func TestContrastivePairs(t *testing.T) {
	rows := []Example{
		row("a", 0, "Q?", "Age: 1", "Response: 1"),
		row("a", 0, "Q?", "Age: 2", "Response: 2"),
		row("a", 0, "Q?", "Age: 3", "Response: 2"),
		row("a", 0, "Q?", "Age: 4", "Response: 3"),
		row("a", 1, "Q?", "Age: 5", "Response: 4"), // uniform cell
		row("a", 1, "Q?", "Age: 6", "Response: 4"),
		row("b", 0, "Q?", "Age: 7", "Response: 5"), // singleton
		row("b", 0, "R?", "Age: 8", "no answer"),
	}
	others := map[int][]float64{0: {2, 3}, 1: {1, 3}, 2: {1, 3}, 3: {1, 2}}
	tests := []struct {
		per       int
		wantPairs int
	}{{1, 4}, {2, 8}, {5, 8}, {0, 4}}
	for _, tt := range tests {
		pairs, st := ContrastivePairs(rows, tt.per, 9)
		want := PairStats{Rows: 8, NoResponse: 1, Cells: 3, SingletonCell: 1, UniformCells: 1, RowsPaired: 4, Pairs: tt.wantPairs}
		if st != want {
			t.Errorf("per %d: stats %+v, want %+v", tt.per, st, want)
		}
		if len(pairs) != tt.wantPairs {
			t.Fatalf("per %d: %d pairs", tt.per, len(pairs))
		}
		seen := map[[2]float64]bool{}
		for _, p := range pairs {
			src := -1
			for i := range rows {
				if rows[i].Input == p.Input {
					src = i
				}
			}
			if src < 0 || p.Chosen != rows[src].Output || p.ChosenValue != rows[src].Response {
				t.Fatalf("pair %+v does not keep its row's persona and answer", p)
			}
			if !contains64(others[src], p.RejectedValue) || p.Rejected != FormatResponse(p.RejectedValue) {
				t.Errorf("row %d: rejected %v not another answer of the cell %v", src, p.RejectedValue, others[src])
			}
			k := [2]float64{float64(src), p.RejectedValue}
			if seen[k] {
				t.Errorf("row %d: rejected %v twice", src, p.RejectedValue)
			}
			seen[k] = true
		}
		again, _ := ContrastivePairs(rows, tt.per, 9)
		if !reflect.DeepEqual(pairs, again) {
			t.Error("not deterministic")
		}
	}
	// The same participant answering twice in a cell is not a contrast.
	same := []Example{row("a", 0, "Q?", "Age: 1", "Response: 1"), row("a", 0, "Q?", "Age: 1", "Response: 2")}
	same[0].Participant, same[1].Participant = 5, 5
	if pairs, st := ContrastivePairs(same, 1, 1); len(pairs) != 0 || st.RowsPaired != 0 {
		t.Errorf("same participant paired: %+v", st)
	}
}

func contains64(xs []float64, x float64) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestContrastivePairsSample(t *testing.T) {
	rows := loadSample(t)
	pairs, st := ContrastivePairs(rows, 1, 1)
	if st.Pairs != len(pairs) || st.Pairs == 0 || st.Cells != 1097 {
		t.Errorf("%+v", st)
	}
	t.Logf("sample: %+v", st)
}
