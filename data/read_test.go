package data

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readString(t *testing.T, src string, opt ReadOptions) ([]Example, error) {
	t.Helper()
	return ReadSFTFrom(strings.NewReader(src), "in.jsonl", opt)
}

func TestReadFormats(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		format Format
		check  func(t *testing.T, ex []Example)
	}{
		{"alpaca", `{"instruction":"I","input":"X","output":"Response: 3","system":"S","history":[["u","a"]],"study_id":"ab12c","condition_num":2,"weird":{"k":1}}`, FormatAlpaca,
			func(t *testing.T, ex []Example) {
				e := ex[0]
				if e.Instruction != "I" || e.Input != "X" || e.Output != "Response: 3" || e.System != "S" || len(e.History) != 1 || e.History[0] != [2]string{"u", "a"} {
					t.Errorf("fields: %+v", e)
				}
				if e.StudyID != "ab12c" || e.ConditionNum != 2 || e.TaskNum != -1 || e.Participant != -1 {
					t.Errorf("ids: %+v", e)
				}
				if !e.HasResponse || e.Response != 3 {
					t.Errorf("response %v %v", e.Response, e.HasResponse)
				}
				if string(e.Extra["weird"]) != `{"k":1}` {
					t.Errorf("extra %q", e.Extra)
				}
				c := e.Conversation()
				want := []Message{{"system", "S"}, {"user", "u"}, {"assistant", "a"}, {"user", "I\nX"}, {"assistant", "Response: 3"}}
				if len(c) != len(want) {
					t.Fatalf("conversation %v", c)
				}
				for i := range c {
					if c[i] != want[i] {
						t.Errorf("turn %d: %v want %v", i, c[i], want[i])
					}
				}
				if p := e.Prompt(); len(p) != 4 {
					t.Errorf("prompt %v", p)
				}
			}},
		{"prompt-completion", `{"prompt":"P","completion":"C"}`, FormatPrompt,
			func(t *testing.T, ex []Example) {
				if ex[0].Input != "P" || ex[0].Output != "C" || ex[0].UserText() != "P" {
					t.Errorf("%+v", ex[0])
				}
			}},
		{"chat", `{"messages":[{"role":"system","content":"S"},{"role":"user","content":"U"},{"role":"assistant","content":"Response: 1"}]}`, FormatChat,
			func(t *testing.T, ex []Example) {
				e := ex[0]
				if e.System != "S" || e.Output != "Response: 1" || len(e.Messages) != 3 || e.Response != 1 {
					t.Errorf("%+v", e)
				}
				if p := e.Prompt(); len(p) != 2 || p[1].Content != "U" {
					t.Errorf("prompt %v", p)
				}
			}},
		{"preference", `{"prompt":"P","chosen":"Response: 1","rejected":"Response: 2"}`, FormatPreference,
			func(t *testing.T, ex []Example) {
				if ex[0].Chosen != "Response: 1" || ex[0].Rejected != "Response: 2" || ex[0].Output != "Response: 1" {
					t.Errorf("%+v", ex[0])
				}
			}},
		{"preference-messages", `{"messages":[{"role":"user","content":"U"}],"chosen":[{"role":"assistant","content":"A"}],"rejected":"B"}`, FormatPreference,
			func(t *testing.T, ex []Example) {
				if ex[0].Chosen != "A" || ex[0].Rejected != "B" || len(ex[0].Messages) != 2 || ex[0].Prompt()[0].Content != "U" {
					t.Errorf("%+v", ex[0])
				}
			}},
		{"socsci-native", `{"sample_id":"s1","participant":7,"demographic":{"age":40,"sex":"Female","education":"Bachelor's degree","income":"50-74K","employment":null,"party_id":"Lean Democrat","ideology":"Moderate"},"stimuli":"You read X and then were asked: “Q?” Only return an integer from 1 to 5, nothing else.","prompt":"","reasoning":"R","response":4,"condition_num":1,"task_num":2,"study_id":"zz9zz"}`, FormatSocSci,
			func(t *testing.T, ex []Example) {
				e := ex[0]
				want := "Demographics: Age: 40; Gender: Female; Education: Bachelor's degree; Income: 50-74K; Political affiliation: Lean Democrat; Ideology: Moderate\n\nScenario: You read X and then were asked: “Q?” Only return an integer from 1 to 5, nothing else."
				if e.Input != want {
					t.Errorf("input\n%q\nwant\n%q", e.Input, want)
				}
				if e.Output != "Response: 4" || e.Participant != 7 || e.TaskNum != 2 || e.SampleID != "s1" || e.Reasoning != "R" || e.Instruction != DefaultInstruction {
					t.Errorf("%+v", e)
				}
				if k := e.Cell(); k != (CellKey{"zz9zz", 1, 2, ""}) {
					t.Errorf("cell %v", k)
				}
				if v, ok := e.Demographic("Gender"); !ok || v != "Female" {
					t.Errorf("gender %q", v)
				}
			}},
		{"json-array", "[\n {\"instruction\":\"a\",\"output\":\"b\"},\n {\"instruction\":\"c\",\n  \"output\":\"d\"}\n]\n", FormatAlpaca,
			func(t *testing.T, ex []Example) {
				if len(ex) != 2 || ex[0].Line != 2 || ex[1].Line != 3 {
					t.Errorf("lines: %d %d", ex[0].Line, ex[1].Line)
				}
			}},
		{"blank-lines-bom", "\xef\xbb\xbf{\"instruction\":\"a\",\"output\":\"b\"}\n\n  \n{\"instruction\":\"c\",\"output\":\"d\"}", FormatAlpaca,
			func(t *testing.T, ex []Example) {
				if len(ex) != 2 || ex[0].Line != 1 || ex[1].Line != 4 {
					t.Errorf("got %d rows, lines %v", len(ex), ex)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rep ReadReport
			ex, err := readString(t, tt.src, ReadOptions{Report: &rep})
			if err != nil {
				t.Fatal(err)
			}
			if len(ex) == 0 {
				t.Fatal("no records")
			}
			if rep.Format != tt.format || ex[0].Format != tt.format || rep.Records != len(ex) {
				t.Errorf("format %v/%v, want %v", rep.Format, ex[0].Format, tt.format)
			}
			if ex[0].File != "in.jsonl" {
				t.Errorf("file %q", ex[0].File)
			}
			tt.check(t, ex)
		})
	}
}

func TestReadErrors(t *testing.T) {
	good := `{"instruction":"a","input":"x","output":"Response: 1"}` + "\n"
	tests := []struct {
		name   string
		src    string
		format Format
		line   int
		want   string
	}{
		{"invalid-json", good + `{"instruction":` + "\n", FormatAuto, 2, "invalid JSON"},
		{"not-object", good + `[1,2]` + "\n", FormatAuto, 2, "want an object"},
		{"null", good + "null\n", FormatAuto, 2, "null"},
		{"missing-output", good + `{"instruction":"a"}`, FormatAuto, 2, `missing field "output"`},
		{"empty-output", good + `{"instruction":"a","output":"  "}`, FormatAuto, 2, `"output" is empty`},
		{"no-instruction", `{"output":"x"}`, FormatAuto, 1, "both missing or empty"},
		{"wrong-type", good + good + `{"instruction":"a","output":5}`, FormatAuto, 3, `field "output": want string, got number`},
		{"wrong-cond", `{"instruction":"a","output":"b","condition_num":"2"}`, FormatAuto, 1, `"condition_num": want integer, got string`},
		{"frac-cond", `{"instruction":"a","output":"b","condition_num":1.5}`, FormatAuto, 1, `want integer, got 1.5`},
		{"bad-history", `{"instruction":"a","output":"b","history":[["x"]]}`, FormatAuto, 1, "turn 0 has 1 strings"},
		{"undetectable", `{"foo":1}`, FormatAuto, 1, "cannot detect"},
		{"empty-completion", `{"prompt":"p","completion":""}`, FormatAuto, 1, `"completion" is empty`},
		{"chat-no-assistant", `{"messages":[{"role":"user","content":"u"}]}`, FormatAuto, 1, `want "assistant"`},
		{"chat-bad-role", `{"messages":[{"role":"bot","content":"u"}]}`, FormatAuto, 1, `unknown role`},
		{"chat-not-array", `{"messages":"hi"}`, FormatAuto, 1, `want array`},
		{"pref-empty", `{"prompt":"p","chosen":"a","rejected":""}`, FormatAuto, 1, `"rejected" is empty`},
		{"socsci-no-response", `{"sample_id":"1","participant":1,"study_id":"s","condition_num":0,"task_num":0,"prompt":"p"}`, FormatAuto, 1, `missing field "response"`},
		{"socsci-bad-demo", `{"sample_id":"1","participant":1,"study_id":"s","condition_num":0,"task_num":0,"prompt":"p","response":1,"demographic":{"age":"old"}}`, FormatAuto, 1, `"demographic"`},
		{"forced-format", good, FormatChat, 1, `missing field "messages"`},
		{"array-broken", "[\n{\"instruction\":\"a\",\"output\":\"b\"},\n{\"instruction\": }\n]", FormatAuto, 3, "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readString(t, tt.src, ReadOptions{Format: tt.format})
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a *LineError", err)
			}
			if le.File != "in.jsonl" || le.Line != tt.line {
				t.Errorf("at %s:%d, want line %d", le.File, le.Line, tt.line)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "in.jsonl:") {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestReadSkipBad(t *testing.T) {
	src := `{"instruction":"a","output":"1"}
not json
{"instruction":"b","output":""}
{"instruction":"c","output":"3"}
`
	var rep ReadReport
	ex, err := readString(t, src, ReadOptions{SkipBad: true, Report: &rep})
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 2 || ex[1].Line != 4 {
		t.Fatalf("got %d records", len(ex))
	}
	if len(rep.Skipped) != 2 || rep.Skipped[0].Line != 2 || rep.Skipped[1].Line != 3 || rep.Records != 2 {
		t.Errorf("report %+v", rep)
	}
}

func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "a.jsonl")
	src := `{"prompt":"p","chosen":"Response: 1","rejected":"Response: 2"}` + "\n"
	if err := os.WriteFile(plain, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(src))
	zw.Close()
	gz := filepath.Join(dir, "a.jsonl.gz")
	if err := os.WriteFile(gz, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{plain, gz} {
		pairs, err := ReadPairs(p, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(pairs) != 1 || pairs[0].ChosenValue != 1 || pairs[0].RejectedValue != 2 || pairs[0].File != p {
			t.Errorf("%s: %+v", p, pairs)
		}
	}
	if _, err := ReadSFT(filepath.Join(dir, "missing.jsonl"), ReadOptions{}); err == nil || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadSocSci(plain, ReadOptions{}); err == nil {
		t.Error("ReadSocSci accepted a preference file")
	}
}

// TestReadSharedDev reads the real dev file when /work/shared is present.
func TestReadSharedDev(t *testing.T) {
	const path = "/work/shared/data/socsci210/dev.jsonl"
	if _, err := os.Stat(path); err != nil {
		t.Skip("shared data not present")
	}
	ex, err := ReadSFT(path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sample := loadSample(t)
	if len(ex) != len(sample) || ex[100].Input != sample[100].Input {
		t.Errorf("shared dev (%d rows) differs from the bundled sample (%d)", len(ex), len(sample))
	}
}

func FuzzReadJSONL(f *testing.F) {
	seeds := []string{
		`{"instruction":"a","input":"b","output":"Response: 2","study_id":"x","condition_num":1}`,
		`{"prompt":"p","completion":"c"}`,
		`{"messages":[{"role":"user","content":"u"},{"role":"assistant","content":"a"}]}`,
		`{"prompt":"p","chosen":"a","rejected":"b"}`,
		`{"sample_id":1,"participant":2,"demographic":{"age":3},"stimuli":"s","response":1,"condition_num":0,"task_num":0,"study_id":"q"}`,
		"[{\"instruction\":\"a\",\"output\":\"b\"}]",
		"\x1f\x8b\x08",
		`{"instruction":"a","output":"b","history":[[1,2]]}`,
		"{\"output\":\"\xff\"}\n{]",
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, skip bool) {
		var rep ReadReport
		// With skip, a small line limit also exercises the long-line path.
		opt := ReadOptions{SkipBad: skip, Report: &rep}
		if skip {
			opt.MaxLineBytes = 64
		}
		ex, err := ReadSFTFrom(bytes.NewReader(b), "fuzz", opt)
		if err != nil {
			var le *LineError
			if errors.As(err, &le) && (le.Line < 1 || le.File != "fuzz") {
				t.Fatalf("bad LineError %+v", le)
			}
			return
		}
		for _, e := range ex {
			if e.Line < 1 || strings.TrimSpace(e.Output) == "" {
				t.Fatalf("bad record %+v", e)
			}
			e.Conversation()
			e.Options()
			e.Cell()
		}
	})
}

// TestMaxLineBytes: a record over the limit is a bad line named by number,
// refused before parsing (it need not be valid JSON); at the limit it is read.
func TestMaxLineBytes(t *testing.T) {
	rec := func(n int) string { // a record of exactly n bytes
		s := `{"prompt":"p","completion":"`
		return s + strings.Repeat("c", n-len(s)-2) + `"}`
	}
	const max = 200
	for _, nl := range []string{"\n", "\r\n"} {
		in := rec(max) + nl + rec(max+1) + nl + strings.Repeat("x", 5000) + nl + rec(100)
		_, err := ReadSFTFrom(strings.NewReader(in), "f.jsonl", ReadOptions{MaxLineBytes: max})
		var le *LineError
		if !errors.As(err, &le) || le.Line != 2 || !strings.Contains(err.Error(), "longer than 200 bytes") {
			t.Fatalf("err %v, want line 2 too long", err)
		}
		var rep ReadReport
		ex, err := ReadSFTFrom(strings.NewReader(in), "f.jsonl", ReadOptions{MaxLineBytes: max, SkipBad: true, Report: &rep})
		if err != nil || len(ex) != 2 || ex[1].Line != 4 || len(rep.Skipped) != 2 || rep.Skipped[1].Line != 3 {
			t.Fatalf("skip-bad: %d records, %v, skipped %v", len(ex), err, rep.Skipped)
		}
	}
	arr := "[" + rec(max) + ",\n" + rec(max+50) + "]"
	if _, err := ReadSFTFrom(strings.NewReader(arr), "a.json", ReadOptions{MaxLineBytes: max}); err == nil || !strings.Contains(err.Error(), "a.json:2") {
		t.Errorf("array: %v", err)
	}
	// The last line without a newline counts the same.
	if _, err := ReadSFTFrom(strings.NewReader(rec(max+1)), "f", ReadOptions{MaxLineBytes: max}); err == nil {
		t.Error("unterminated long line accepted")
	}
	if ex, err := ReadSFTFrom(strings.NewReader(rec(max)), "f", ReadOptions{MaxLineBytes: max}); err != nil || len(ex) != 1 {
		t.Errorf("unterminated line at the limit: %v", err)
	}
}
