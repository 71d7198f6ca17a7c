package data

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestRNGGolden pins splitmix64 so splits are identical everywhere.
func TestRNGGolden(t *testing.T) {
	r := newRNG(0)
	for _, want := range []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f} {
		if got := r.next(); got != want {
			t.Fatalf("next = %#x, want %#x", got, want)
		}
	}
	r = newRNG(1)
	for i := 0; i < 1000; i++ {
		if v := r.intn(7); v < 0 || v >= 7 {
			t.Fatal(v)
		}
	}
}

func splitRows() []Example {
	var rows []Example
	for s := 0; s < 10; s++ {
		for c := 0; c < 3; c++ {
			for q := 0; q < 2; q++ {
				rows = append(rows, Example{
					StudyID: "s" + string(rune('a'+s)), ConditionNum: c, TaskNum: q, Participant: (s*7 + c*3 + q) % 11,
					Input: "Demographics: Age: 1\n\nScenario: x", Output: "Response: 1",
				})
			}
		}
	}
	return rows
}

func TestSplit(t *testing.T) {
	rows := splitRows()
	for _, by := range []SplitBy{ByRow, ByStudy, ByCondition, ByOutcome, ByParticipant} {
		t.Run(by.String(), func(t *testing.T) {
			train, eval := Split(rows, by, 0.3, 42)
			if len(train)+len(eval) != len(rows) || len(eval) == 0 || len(train) == 0 {
				t.Fatalf("train %d eval %d", len(train), len(eval))
			}
			side := map[string]string{}
			units := map[string]bool{}
			for i, set := range [][]Example{train, eval} {
				for j := range set {
					k := groupKey(&set[j], -1, by)
					if by == ByRow {
						continue
					}
					units[k] = true
					name := []string{"train", "eval"}[i]
					if s, ok := side[k]; ok && s != name {
						t.Fatalf("unit %q on both sides", k)
					}
					side[k] = name
				}
			}
			train2, eval2 := Split(rows, by, 0.3, 42)
			if !reflect.DeepEqual(eval, eval2) || !reflect.DeepEqual(train, train2) {
				t.Error("not deterministic")
			}
			_, eval3 := Split(rows, by, 0.3, 43)
			if by != ByParticipant && reflect.DeepEqual(eval, eval3) {
				t.Error("seed has no effect")
			}
		})
	}
	// Exactly round(0.3*10) = 3 studies held out.
	_, eval := Split(rows, ByStudy, 0.3, 7)
	studies := map[string]bool{}
	for _, e := range eval {
		studies[e.StudyID] = true
	}
	if len(studies) != 3 {
		t.Errorf("%d eval studies, want 3", len(studies))
	}
	// Golden: pins the exact choice, which must not change across platforms.
	var got []string
	for _, e := range eval {
		if !contains(got, e.StudyID) {
			got = append(got, e.StudyID)
		}
	}
	t.Logf("seed 7 eval studies: %v", got)
	if want := goldenStudies; !reflect.DeepEqual(got, want) {
		t.Errorf("eval studies %v, want %v", got, want)
	}
	// Edge cases: fractions 0 and 1, tiny fractions keep at least one unit.
	if tr, ev := Split(rows, ByStudy, 0, 1); len(ev) != 0 || len(tr) != len(rows) {
		t.Error("evalFrac 0")
	}
	if tr, ev := Split(rows, ByStudy, 1, 1); len(tr) != 0 || len(ev) != len(rows) {
		t.Error("evalFrac 1")
	}
	if _, ev := Split(rows, ByStudy, 0.001, 1); len(ev) != 6 {
		t.Errorf("tiny evalFrac: %d rows", len(ev))
	}
	if tr, ev := Split(nil, ByStudy, 0.5, 1); tr != nil || ev != nil {
		t.Error("empty input")
	}
}

var goldenStudies = []string{"sb", "sf", "si"}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestParseSplitBy(t *testing.T) {
	for _, by := range []SplitBy{ByRow, ByStudy, ByCondition, ByOutcome, ByParticipant} {
		if got, err := ParseSplitBy(by.String()); err != nil || got != by {
			t.Errorf("%v: %v %v", by, got, err)
		}
	}
	if _, err := ParseSplitBy("nope"); err == nil {
		t.Error("accepted nope")
	}
}

func TestSplitSample(t *testing.T) {
	rows := loadSample(t)
	train, eval := Split(rows, ByStudy, 0.2, 1)
	studies := map[string]bool{}
	for _, e := range eval {
		studies[e.StudyID] = true
	}
	if len(studies) != 4 || len(train)+len(eval) != len(rows) {
		t.Errorf("%d eval studies, %d+%d rows", len(studies), len(train), len(eval))
	}
	t.Logf("by study: train %d eval %d rows", len(train), len(eval))
}

func TestMappings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pm, err := ReadParticipantMapping(write("participant_mapping.json", `{"seen":["sa","sb"],"unseen":["sc"]}`))
	if err != nil {
		t.Fatal(err)
	}
	rows := splitRows()
	train, eval, rest := pm.Apply(rows)
	if len(train) != 12 || len(eval) != 6 || len(rest) != 42 {
		t.Errorf("participant mapping: %d %d %d", len(train), len(eval), len(rest))
	}
	cm, err := ReadSplitMapping(write("condition_mapping.json", `{"sa":{"train":[0,1],"eval":[2]},"sb":{"train":["0"],"eval":[1]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cm["sb"], TrainEval{Train: []int{0}, Eval: []int{1}}) {
		t.Errorf("%+v", cm)
	}
	train, eval, rest = cm.Apply(rows, false)
	if len(train) != 6 || len(eval) != 4 || len(rest) != 50 {
		t.Errorf("condition mapping: %d %d %d", len(train), len(eval), len(rest))
	}
	tm, err := ReadSplitMapping(write("task_mapping.json", `{"sa":{"train":[0],"eval":[1]}}`))
	if err != nil {
		t.Fatal(err)
	}
	train, eval, _ = tm.Apply(rows, true)
	if len(train) != 3 || len(eval) != 3 {
		t.Errorf("task mapping: %d %d", len(train), len(eval))
	}
	for _, tt := range []struct{ name, src, want string }{
		{"p1.json", `{"seen":[true]}`, "want string or number"},
		{"p2.json", `{}`, "no \"seen\""},
		{"p3.json", `[`, "p3.json"},
	} {
		if _, err := ReadParticipantMapping(write(tt.name, tt.src)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	for _, tt := range []struct{ name, src, want string }{
		{"c1.json", `{"s":{"train":["x"]}}`, "not an integer"},
		{"c2.json", `{"s":{"train":[1.5]}}`, "not an integer"},
		{"c3.json", `{"s":[1]}`, "c3.json"},
	} {
		if _, err := ReadSplitMapping(write(tt.name, tt.src)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if _, err := ReadSplitMapping(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
}
