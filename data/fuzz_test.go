package data

import (
	"testing"
)

// FuzzParseText feeds arbitrary text to the text parsers: they must never
// panic, and options they return must be self-consistent.
func FuzzParseText(f *testing.F) {
	for _, s := range []string{
		"Demographics: Age: 1\n\nScenario: You read “X” and then were asked: “Q?” Only return an integer from 1 to 7, where 1 means A and 7 means B, nothing else.",
		"Only return 1 for 'A'; 2 for 'B'; 3 for 'C', nothing else.",
		"Only return 1 if x, up to 4 if y.",
		"Only return 1 for Yes or 1 for No",
		"asked: “", "asked:'Only return", "Only return an integer from -9999999999999999999 to 1",
		"Response: 1,200", "Demographics: ; : \n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if o, ok := ParseOptions(s); ok {
			if o.Min > o.Max || len(o.Values) > MaxOptionValues || (o.Labels != nil && len(o.Labels) != len(o.Values)) {
				t.Fatalf("inconsistent options %+v", o)
			}
			for _, v := range o.Values {
				if !o.Contains(float64(v)) {
					t.Fatalf("value %d not contained", v)
				}
			}
		}
		Question(s)
		ParseResponse(s)
		ParseDemographics(s)
		SplitPrompt(s)
		e := Example{Input: s, TaskNum: -1}
		e.Cell()
		e.Demographic("Gender")
	})
}

func BenchmarkReadSample(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := SampleRows(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseOptionsSample(b *testing.B) {
	rows, err := SampleRows()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range rows {
			rows[j].Options()
			rows[j].Cell()
		}
	}
}
