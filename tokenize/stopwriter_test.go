package tokenize

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// recorder records each write separately.
type recorder struct{ writes []string }

func (r *recorder) Write(b []byte) (int, error) {
	r.writes = append(r.writes, string(b))
	return len(b), nil
}

func TestStopWriter(t *testing.T) {
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
			s := NewStopWriter(r, tc.stops)
			n := 0
			for _, p := range tc.pieces {
				n++
				if !s.Add(p) {
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
			if err := s.Finish(); err != nil {
				t.Fatal(err)
			}
			if s.Text() != tc.text || strings.Join(r.writes, "") != tc.text {
				t.Errorf("text %q, written %q, want %q", s.Text(), strings.Join(r.writes, ""), tc.text)
			}
			for _, w := range r.writes[:min(len(r.writes), len(tc.writes))] {
				if !utf8.ValidString(w) && !strings.Contains(w, "\xff") {
					t.Errorf("wrote a partial character %q", w)
				}
			}
		})
	}
}
