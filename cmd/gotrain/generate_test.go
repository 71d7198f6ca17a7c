package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gotrain/gotrain/predict"
)

// recorder records each write separately.
type recorder struct{ writes []string }

func (r *recorder) Write(b []byte) (int, error) {
	r.writes = append(r.writes, string(b))
	return len(b), nil
}

func TestStreamer(t *testing.T) {
	e := "\u00e9" // é: 2 bytes
	for _, tc := range []struct {
		name   string
		pieces []string
		stops  []string
		text   string   // the completion
		writes []string // what was written after each piece (before finish), "" skipped
		more   int      // pieces accepted before add returned false (len(pieces) if never)
	}{
		{"plain", []string{"Hel", "lo", " world"}, nil, "Hello world", []string{"Hel", "lo", " world"}, 3},
		{"split rune", []string{"caf", e[:1], e[1:], "!"}, nil, "café!", []string{"caf", e, "!"}, 4},
		{"split 4-byte rune", []string{"a", "\U0001F600"[:2], "\U0001F600"[2:3], "\U0001F600"[3:]}, nil, "a\U0001F600", []string{"a", "\U0001F600"}, 4},
		{"stop inside a piece", []string{"Answer: 4", "\n\nQ", "uestion"}, []string{"\n\n"}, "Answer: 4", []string{"Answer: 4"}, 2},
		{"stop across pieces", []string{"ab", "<", "/s", ">", "cd"}, []string{"</s>"}, "ab", []string{"ab"}, 4},
		{"held prefix released", []string{"ab", "<", "x"}, []string{"</s>"}, "ab<x", []string{"ab", "<x"}, 3},
		{"earliest of two stops", []string{"one. two", "\nthree"}, []string{"\n", "."}, "one", []string{"one"}, 1},
		{"stop at once", []string{"STOP", "more"}, []string{"STOP"}, "", nil, 1},
		{"invalid bytes pass", []string{"a\xff", "b"}, nil, "a\xffb", []string{"a\xff", "b"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			s := streamer{w: r, stops: tc.stops}
			n := 0
			for _, p := range tc.pieces {
				n++
				if !s.add(p) {
					break
				}
			}
			if n != tc.more {
				t.Errorf("stopped after %d pieces, want %d", n, tc.more)
			}
			got := append([]string(nil), r.writes...)
			if strings.Join(got, "|") != strings.Join(tc.writes, "|") {
				t.Errorf("writes %q, want %q", got, tc.writes)
			}
			if err := s.finish(); err != nil {
				t.Fatal(err)
			}
			if s.text() != tc.text || strings.Join(r.writes, "") != tc.text {
				t.Errorf("text %q, written %q, want %q", s.text(), strings.Join(r.writes, ""), tc.text)
			}
			for _, w := range r.writes[:min(len(r.writes), len(tc.writes))] {
				if !utf8.ValidString(w) && !strings.Contains(w, "\xff") {
					t.Errorf("wrote a partial character %q", w)
				}
			}
		})
	}
}

// TestGenerateSimulateTiny runs generate and simulate on one random tiny
// Qwen2 model (the full Qwen2.5 vocabulary, so written once for both).
func TestGenerateSimulateTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a tiny model with the full Qwen2.5 vocabulary")
	}
	tmp := t.TempDir()
	m := filepath.Join(tmp, "model")
	if err := runInitModel([]string{"--size", "tiny", "--out", m}); err != nil {
		t.Fatal(err)
	}
	gen := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := generate(append([]string{"--base", m}, args...), &out)
		return out.String(), err
	}
	t.Run("greedy", func(t *testing.T) {
		a, err := gen("--prompt", "The survey asked", "--temperature", "0", "--max-new-tokens", "24")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := gen("--prompt", "The survey asked", "--temperature", "0", "--max-new-tokens", "24", "--seed", "9")
		if a != b || len(a) < 2 {
			t.Fatalf("greedy runs differ or are empty: %q vs %q", a, b)
		}
		// the chat template changes the prompt, so the completion
		c, err := gen("--prompt", "The survey asked", "--temperature", "0", "--max-new-tokens", "24", "--chat")
		if err != nil || c == a {
			t.Errorf("--chat: %q, %v", c, err)
		}
		// a stop string taken from the middle of the completion cuts it there
		text := strings.TrimSuffix(a, "\n")
		runes := []rune(text)
		if len(runes) < 4 {
			t.Skipf("completion %q too short to cut", text)
		}
		stop := string(runes[len(runes)/2 : len(runes)/2+2])
		want := text[:strings.Index(text, stop)]
		got, err := gen("--prompt", "The survey asked", "--temperature", "0", "--max-new-tokens", "24", "--stop", stop)
		if err != nil || got != want+"\n" {
			t.Errorf("--stop %q: %q, want %q (%v)", stop, got, want+"\n", err)
		}
	})
	t.Run("sampled", func(t *testing.T) {
		args := []string{"--prompt", "Hello", "--temperature", "1", "--top-p", "1", "--max-new-tokens", "12"}
		a, err := gen(append(args, "--seed", "1")...)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := gen(append(args, "--seed", "1")...)
		c, _ := gen(append(args, "--seed", "2")...)
		if a != b || a == c {
			t.Errorf("seeded sampling: %q %q %q", a, b, c)
		}
	})
	t.Run("data", func(t *testing.T) {
		in := writeFile(t, filepath.Join(tmp, "prompts.jsonl"), `{"prompt": "one"}`+"\n\n"+`{"prompt": "two <b>", "id": 7}`+"\n")
		out := filepath.Join(tmp, "gen.jsonl")
		if _, err := gen("--data", in, "--out", out, "--temperature", "0", "--max-new-tokens", "8"); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(out)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		single, _ := gen("--prompt", "two <b>", "--temperature", "0", "--max-new-tokens", "8")
		if len(lines) != 2 {
			t.Fatalf("output %q", b)
		}
		var r struct{ Prompt, Completion string }
		if err := json.Unmarshal([]byte(lines[1]), &r); err != nil || r.Prompt != "two <b>" || r.Completion+"\n" != single {
			t.Errorf("line 2: %+v (%v), --prompt gave %q", r, err, single)
		}
	})
	t.Run("bad flags", func(t *testing.T) {
		bad := writeFile(t, filepath.Join(tmp, "bad.jsonl"), `{"text": "x"}`+"\n")
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--prompt", "x", "--data", bad}, "exactly one of --prompt and --data"},
			{[]string{}, "exactly one of --prompt and --data"},
			{[]string{"--prompt", "x", "--temperature", "-1"}, "--temperature"},
			{[]string{"--prompt", "x", "--top-p", "1.5"}, "--top-p"},
			{[]string{"--prompt", "x", "--top-k", "-2"}, "--top-k"},
			{[]string{"--prompt", "x", "--max-new-tokens", "0"}, "--max-new-tokens"},
			{[]string{"--prompt", "x", "--stop", ""}, "empty stop string"},
			{[]string{"--prompt", "x", "--out", "y"}, "--out goes with --data"},
			{[]string{"--prompt", "x", "--max-new-tokens", "100000000"}, "exceeds"},
			{[]string{"--prompt", "x", "--template", "nonesuch"}, "nonesuch"},
			{[]string{"--data", bad}, `bad.jsonl:1: no "prompt"`},
			{[]string{"--data", filepath.Join(tmp, "missing.jsonl")}, "missing.jsonl"},
			{[]string{"--prompt", "x", "stray"}, `unexpected argument "stray"`},
		} {
			if _, err := gen(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
			}
		}
		if err := generate([]string{"--prompt", "x"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--base") {
			t.Errorf("no --base: %v", err)
		}
	})
	t.Run("simulate", func(t *testing.T) {
		spec := filepath.Join("..", "..", "examples", "experiment.json")
		out := filepath.Join(tmp, "sim.json")
		var table bytes.Buffer
		rows := filepath.Join(tmp, "rows.jsonl")
		if err := simulate([]string{"--base", m, "--experiment", spec, "--n", "6", "--bootstrap", "100", "--out", out, "--rows", rows, "--report", filepath.Join(tmp, "simreport")}, &table); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"index.html", "distributions.svg", "effects.svg", "result.json"} {
			if fi, err := os.Stat(filepath.Join(tmp, "simreport", f)); err != nil || fi.Size() == 0 {
				t.Errorf("--report: %s: %v", f, err)
			}
		}
		for _, want := range []string{"neutral (control)", "gain", "loss", "P(7)"} {
			if !strings.Contains(table.String(), want) {
				t.Errorf("table lacks %q:\n%s", want, table.String())
			}
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var res predict.SimResult
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		if res.Personas != 6 || len(res.Conditions) != 3 || res.Conditions[2].Effect == nil || res.Conditions[2].Effect.CI == nil {
			t.Errorf("result %s", b)
		}
		// `gotrain predict` on the written rows gives every persona's distribution
		// (the alpaca reader wants an answer: give each row a placeholder)
		rb, _ := os.ReadFile(rows)
		labeled := writeFile(t, filepath.Join(tmp, "rows-labeled.jsonl"), strings.ReplaceAll(string(rb), `"output":""`, `"output":"Response: 1"`))
		pred := filepath.Join(tmp, "rows-pred.jsonl")
		if err := runPredict([]string{"--base", m, "--data", labeled, "--out", pred}); err != nil {
			t.Fatal(err)
		}
		pb, _ := os.ReadFile(pred)
		lines := strings.Split(strings.TrimSpace(string(pb)), "\n")
		if len(lines) != 18 {
			t.Fatalf("%d predicted rows, want 18", len(lines))
		}
		for _, line := range lines {
			var r struct {
				Participant int       `json:"participant"`
				Condition   string    `json:"condition"`
				Options     []int     `json:"options"`
				Probs       []float64 `json:"probs"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatal(err)
			}
			var mean float64
			for k, p := range r.Probs {
				mean += p * float64(r.Options[k])
			}
			j := -1
			for i, id := range res.Participants {
				if id == r.Participant {
					j = i
				}
			}
			c := -1
			for i, cr := range res.Conditions {
				if cr.Name == r.Condition {
					c = i
				}
			}
			if j < 0 || c < 0 || math.Abs(res.Conditions[c].PersonaMeans[j]-mean) > 1e-5 {
				t.Errorf("predict on row %s: mean %v; simulate: participant %d condition %d", line[:min(80, len(line))], mean, j, c)
			}
		}
		// a participants file instead of the bundled pool
		pp := writeFile(t, filepath.Join(tmp, "participants.json"), `[{"participant_id": 3, "age": 40, "sex": "Female", "party_id": "Independent"}]`)
		table.Reset()
		if err := simulate([]string{"--base", m, "--experiment", spec, "--personas", pp, "--bootstrap", "0"}, &table); err != nil || !strings.Contains(table.String(), "1 personas") {
			t.Errorf("participants file: %v\n%s", err, table.String())
		}
	})
	t.Run("simulate bad flags", func(t *testing.T) {
		spec := filepath.Join("..", "..", "examples", "experiment.json")
		badSpec := writeFile(t, filepath.Join(tmp, "bad-spec.json"), `{"name": "x", "conditions": [], "control": "a", "outcome": {"question": "q"}}`)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--experiment", spec}, "--base and --experiment are required"},
			{[]string{"--base", m}, "--base and --experiment are required"},
			{[]string{"--base", m, "--experiment", spec, "--n", "-1"}, "must be ≥ 0"},
			{[]string{"--base", m, "--experiment", badSpec}, "bad-spec.json: conditions: need at least 2"},
			{[]string{"--base", m, "--experiment", spec, "--personas", filepath.Join(tmp, "nope.json")}, "nope.json"},
			{[]string{"--base", filepath.Join(tmp, "nomodel"), "--experiment", spec}, "nomodel"},
		} {
			if err := simulate(tc.args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
			}
		}
	})
}
