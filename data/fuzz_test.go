package data

import (
	"encoding/json"
	"runtime"
	"testing"
)

// FuzzParseText feeds arbitrary text to the text parsers: they must never
// panic, options they return must be self-consistent, and a range is
// expanded only as far as the limit, whatever its width (issue 14: a range
// as wide as int64 panicked or looped).
func FuzzParseText(f *testing.F) {
	for _, s := range []string{
		"Demographics: Age: 1\n\nScenario: You read “X” and then were asked: “Q?” Only return an integer from 1 to 7, where 1 means A and 7 means B, nothing else.",
		"Only return 1 for 'A'; 2 for 'B'; 3 for 'C', nothing else.",
		"Only return 1 if x, up to 4 if y.",
		"Only return 1 for Yes or 1 for No",
		"asked: “", "asked:'Only return", "Only return an integer from -9999999999999999999 to 1",
		"Only return an integer from -4611686018427387904 to 4611686018427387904",
		"Only return an integer from -9223372036854775808 to 9223372036854775807",
		"Only return an integer from 9223372036854775806 to 9223372036854775807",
		"Only return an integer from 9007199254740990 to 9007199254740992",
		"Only return a multiple of 3 between -9223372036854775807 and 9223372036854775806",
		"Only return a number from -0.000000000000001 to 0.000000000000001 in steps of 0.000000000000001",
		"Only return a number from 0.5 to 1.5 in increments of 0.25",
		"Only return 1 = a, …, 9223372036854775807 = b",
		"Only return 1152921504606846976 = a, up to 1152921504606846977 = b",
		"Only return an integer from 1 (X) to 5 (Y)", "Only return X (1) or Y (2)", "Only return 0 or 1",
		"Only return an integer of at least 9223372036854775807",
		"Response: 1,200", "Demographics: ; : \n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, limit := range []int{DefaultMaxOptions, MaxOptionValues} {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			o, ok := ParseOptionsMax(s, limit)
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20+uint64(200*len(s))+uint64(128*limit) {
				t.Fatalf("limit %d: %d bytes allocated for %d bytes of text", limit, grew, len(s))
			}
			if !ok {
				continue
			}
			if !(o.Min < o.Max) && len(o.Values) != 1 || len(o.Values) > limit || (o.Labels != nil && len(o.Labels) != len(o.Values)) {
				t.Fatalf("inconsistent options %+v", o)
			}
			for i, v := range o.Values {
				if o.Index(v) != i || v < o.Min || v > o.Max {
					t.Fatalf("value %v at %d: Index %d, scale %v..%v", v, i, o.Index(v), o.Min, o.Max)
				}
			}
			if _, err := json.Marshal(o); err != nil {
				t.Fatal(err)
			}
		}
		Question(s)
		ParseResponse(s)
		ParseDemographics(s)
		SplitPrompt(s)
		AnswerFormat(s)
		e := Example{Input: s, TaskNum: -1}
		e.Cell()
		e.Demographic("Gender")
	})
}

// FuzzOptionsField feeds arbitrary JSON to the options-field decoder.
func FuzzOptionsField(f *testing.F) {
	for _, s := range []string{`[1,2,3]`, `["Yes","No"]`, `[{"value":0,"label":"no"}]`, `{"values":[1,2],"min":0,"max":3}`,
		`{"min":-1e308,"max":1e308}`, `[1e308,-1e308]`, `[9223372036854775807,-9223372036854775808]`, `{"values":[1],"labels":[]}`, `[1,1]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseOptionsField(b)
		if err != nil {
			return
		}
		if len(o.Values) > MaxOptionValues || o.Labels != nil && len(o.Labels) != len(o.Values) || len(o.Values) == 0 && !(o.Min < o.Max) {
			t.Fatalf("inconsistent options %+v", o)
		}
		for i, v := range o.Values {
			if o.Index(v) != i {
				t.Fatalf("value %v at %d: Index %d", v, i, o.Index(v))
			}
		}
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
