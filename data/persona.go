package data

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gotrain/gotrain/internal/inputfile"
)

// Persona is one participant's demographic profile, as in SocSci210's
// participants.json and the native rows' demographic struct. Missing
// (null) strings are "", a missing age or household size is 0.
type Persona struct {
	ParticipantID    int    `json:"participant_id"`
	Age              int    `json:"age"`
	Sex              string `json:"sex"`
	Ethnicity        string `json:"ethnicity"`
	Education        string `json:"education"`
	Employment       string `json:"employment"`
	Income           string `json:"income"`
	MaritalStatus    string `json:"marital_status"`
	HouseholdSize    int    `json:"household_size"`
	HousingOwnership string `json:"housing_ownership"`
	HousingType      string `json:"housing_type"`
	Location         string `json:"location"`
	MetroStatus      string `json:"metro_status"`
	Ideology         string `json:"ideology"`
	PartyID          string `json:"party_id"`
	InternetAccess   string `json:"internet_access"`
	PhoneService     string `json:"phone_service"`
}

// Field is one "Label: value" item of a rendered persona.
type Field struct {
	Label string
	Value string
}

// personaLabels is the order and wording the SocSci210 prompts use, with
// the participants.json key each label comes from. Studies that did not
// record a field simply omit it; the order of the rest never changes.
var personaLabels = []struct{ label, key string }{
	{"Age", "age"},
	{"Gender", "sex"},
	{"Education", "education"},
	{"Income", "income"},
	{"Employment", "employment"},
	{"Political affiliation", "party_id"},
	{"Ideology", "ideology"},
}

// demographicsPrefix starts every rendered persona.
const demographicsPrefix = "Demographics: "

// Fields returns the persona's rendered fields in prompt order, skipping
// missing ones.
func (p *Persona) Fields() []Field {
	var f []Field
	add := func(label, v string) {
		if v != "" {
			f = append(f, Field{label, v})
		}
	}
	if p.Age > 0 {
		add("Age", strconv.Itoa(p.Age))
	}
	add("Gender", p.Sex)
	add("Education", p.Education)
	add("Income", p.Income)
	add("Employment", p.Employment)
	add("Political affiliation", p.PartyID)
	add("Ideology", p.Ideology)
	return f
}

// Render returns the persona line exactly as SocSci210 prompts write it:
// "Demographics: Age: 76; Gender: Male; Education: ...; Income: ...;
// Employment: ...; Political affiliation: ...; Ideology: ...".
func (p *Persona) Render() string { return RenderFields(p.Fields()) }

// RenderFields joins fields into a "Demographics: ..." line.
func RenderFields(f []Field) string {
	var b strings.Builder
	b.WriteString(demographicsPrefix)
	for i, x := range f {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(x.Label)
		b.WriteString(": ")
		b.WriteString(x.Value)
	}
	return b.String()
}

// ParseDemographics splits a "Demographics: Label: value; ..." line (or a
// whole input whose first paragraph is one) into its fields.
func ParseDemographics(text string) ([]Field, error) {
	if i := strings.Index(text, "\n\n"); i >= 0 {
		text = text[:i]
	}
	if !strings.HasPrefix(text, demographicsPrefix) {
		return nil, fmt.Errorf("data: persona text does not start with %q", demographicsPrefix)
	}
	text = text[len(demographicsPrefix):]
	var out []Field
	for _, item := range strings.Split(text, "; ") {
		label, value, ok := strings.Cut(item, ": ")
		if !ok || label == "" {
			return nil, fmt.Errorf("data: persona item %q is not \"Label: value\"", item)
		}
		out = append(out, Field{label, value})
	}
	return out, nil
}

// BuildPrompt lays out a model input the way SocSci210 rows do:
// "Demographics: ...\n\nScenario: ...". The prefixes are added when the
// arguments lack them.
func BuildPrompt(persona, scenario string) string {
	if !strings.HasPrefix(persona, demographicsPrefix) {
		persona = demographicsPrefix + persona
	}
	if !strings.HasPrefix(scenario, "Scenario: ") {
		scenario = "Scenario: " + scenario
	}
	return persona + "\n\n" + scenario
}

// SplitPrompt is the inverse of BuildPrompt: the persona line and the
// scenario text without its "Scenario: " prefix.
func SplitPrompt(input string) (persona, scenario string, ok bool) {
	persona, scenario, ok = strings.Cut(input, "\n\n")
	if !ok || !strings.HasPrefix(persona, demographicsPrefix) {
		return "", input, false
	}
	return persona, strings.TrimPrefix(scenario, "Scenario: "), true
}

// Demographic returns the value of one demographic field of an example,
// named by its prompt label ("Gender", "Political affiliation") or its
// participants.json key ("sex", "party_id"), case-insensitively. Native
// rows answer from their Persona, alpaca rows from the rendered text.
func (e *Example) Demographic(field string) (string, bool) {
	label := field
	for _, l := range personaLabels {
		if strings.EqualFold(field, l.key) || strings.EqualFold(field, l.label) {
			label = l.label
		}
	}
	if e.Persona != nil {
		for _, f := range e.Persona.Fields() {
			if f.Label == label {
				return f.Value, true
			}
		}
		return "", false
	}
	fs, err := ParseDemographics(e.Input)
	if err != nil {
		return "", false
	}
	for _, f := range fs {
		if strings.EqualFold(f.Label, label) {
			return f.Value, true
		}
	}
	return "", false
}

// ReadPersonas reads a participants.json file (a JSON array of profiles),
// gzip compressed or not.
func ReadPersonas(path string) ([]Persona, error) {
	f, err := inputfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	return ReadPersonasFrom(f, path)
}

// ReadPersonasFrom is ReadPersonas on an open stream; name is used in errors.
func ReadPersonasFrom(r io.Reader, name string) ([]Persona, error) {
	// Read whole, so bounded like a JSON array data file (a gzip bomb stops there).
	tooBig := fmt.Errorf("data: %s: a persona file over %d MiB (6,335 real profiles are 4 MB)", name, maxArrayBytes>>20)
	b, err := io.ReadAll(io.LimitReader(r, maxArrayBytes+1))
	if err != nil {
		return nil, fmt.Errorf("data: %s: %w", name, err)
	}
	if len(b) > maxArrayBytes {
		return nil, tooBig
	}
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("data: %s: %w", name, err)
		}
		if b, err = io.ReadAll(io.LimitReader(zr, maxArrayBytes+1)); err != nil {
			return nil, fmt.Errorf("data: %s: %w", name, err)
		}
		if len(b) > maxArrayBytes {
			return nil, tooBig
		}
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return nil, fmt.Errorf("data: %s: want a JSON array of personas: %w", name, err)
	}
	out := make([]Persona, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return nil, fmt.Errorf("data: %s: persona %d: %w", name, i, err)
		}
	}
	return out, nil
}
