package data

import (
	"os"
	"strings"
	"testing"
)

func TestPersonaRender(t *testing.T) {
	tests := []struct {
		p    Persona
		want string
	}{
		{Persona{Age: 76, Sex: "Male", Education: "Vocational/tech school/some college/associates", Income: "50-74K", Employment: "Retired", PartyID: "Don't Lean/Independent/None", Ideology: "Moderate", Location: "Iowa"},
			"Demographics: Age: 76; Gender: Male; Education: Vocational/tech school/some college/associates; Income: 50-74K; Employment: Retired; Political affiliation: Don't Lean/Independent/None; Ideology: Moderate"},
		{Persona{Age: 30, Education: "Bachelor's degree", Income: "20-29K"},
			"Demographics: Age: 30; Education: Bachelor's degree; Income: 20-29K"},
		{Persona{}, "Demographics: "},
	}
	for _, tt := range tests {
		if got := tt.p.Render(); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
}

func TestBuildPrompt(t *testing.T) {
	want := "Demographics: Age: 30\n\nScenario: You read X."
	for _, args := range [][2]string{
		{"Demographics: Age: 30", "Scenario: You read X."},
		{"Age: 30", "You read X."},
	} {
		if got := BuildPrompt(args[0], args[1]); got != want {
			t.Errorf("BuildPrompt(%q, %q) = %q", args[0], args[1], got)
		}
	}
	p, s, ok := SplitPrompt(want)
	if !ok || p != "Demographics: Age: 30" || s != "You read X." {
		t.Errorf("SplitPrompt: %q %q %v", p, s, ok)
	}
	if _, _, ok := SplitPrompt("no persona"); ok {
		t.Error("SplitPrompt accepted text without a persona")
	}
}

// TestSamplePersonaStyle checks that every bundled row's input is exactly
// BuildPrompt(RenderFields(parsed fields), scenario), that labels always
// come in the canonical order, and that bundled participants whose profile
// a row uses render to that row's persona line byte for byte.
func TestSamplePersonaStyle(t *testing.T) {
	rows := loadSample(t)
	order := map[string]int{}
	for i, l := range personaLabels {
		order[l.label] = i
	}
	lines := map[string]bool{}
	for i := range rows {
		r := &rows[i]
		fs, err := ParseDemographics(r.Input)
		if err != nil {
			t.Fatalf("%s: %v", r.Where(), err)
		}
		last := -1
		for _, f := range fs {
			o, ok := order[f.Label]
			if !ok || o <= last {
				t.Fatalf("%s: label %q unknown or out of order", r.Where(), f.Label)
			}
			last = o
		}
		persona, scen, ok := SplitPrompt(r.Input)
		if !ok || BuildPrompt(RenderFields(fs), scen) != r.Input {
			t.Fatalf("%s: input does not round-trip", r.Where())
		}
		lines[persona] = true
	}
	ps, err := SamplePersonas()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1000 {
		t.Fatalf("%d personas, want 1000", len(ps))
	}
	full := 0
	for _, p := range ps {
		if lines[p.Render()] {
			full++
		}
		if !strings.HasPrefix(p.Render(), "Demographics: Age: ") {
			t.Errorf("participant %d renders as %q", p.ParticipantID, p.Render())
		}
	}
	// The bundled subset was chosen to include the participants whose
	// full profile appears verbatim in some dev row (409 of them).
	if full < 300 {
		t.Errorf("only %d participants render to a real row's persona line", full)
	}
	t.Logf("%d distinct persona lines; %d participants render to one exactly", len(lines), full)
}

func TestDemographicLookup(t *testing.T) {
	e := Example{Input: "Demographics: Age: 40; Gender: Female; Political affiliation: Strong Democrat\n\nScenario: x"}
	for _, tt := range []struct{ field, want string }{
		{"Gender", "Female"}, {"sex", "Female"}, {"party_id", "Strong Democrat"}, {"age", "40"}, {"Ideology", ""},
	} {
		got, ok := e.Demographic(tt.field)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("%s: %q %v", tt.field, got, ok)
		}
	}
}

func TestReadPersonasShared(t *testing.T) {
	const path = "/work/shared/data/socsci210/participants.json"
	if _, err := os.Stat(path); err != nil {
		t.Skip("shared data not present")
	}
	ps, err := ReadPersonas(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 6335 {
		t.Errorf("%d personas, want 6335", len(ps))
	}
}

func TestReadPersonasErrors(t *testing.T) {
	for _, src := range []string{`{}`, `[{"age":"x"}]`, `nope`} {
		if _, err := ReadPersonasFrom(strings.NewReader(src), "p.json"); err == nil || !strings.Contains(err.Error(), "p.json") {
			t.Errorf("%s: error %v", src, err)
		}
	}
}
