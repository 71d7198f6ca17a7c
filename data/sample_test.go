package data

import (
	"testing"
)

func loadSample(t testing.TB) []Example {
	t.Helper()
	rows, err := SampleRows()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestSampleOptionsCoverage parses the options of every bundled row and
// checks the true answer lies within them.
func TestSampleOptionsCoverage(t *testing.T) {
	rows := loadSample(t)
	if len(rows) != 2780 {
		t.Fatalf("got %d rows, want 2780", len(rows))
	}
	found, inside, enumerated, missing := 0, 0, 0, 0
	for i := range rows {
		r := &rows[i]
		if !r.HasResponse {
			t.Errorf("%s: no response in %q", r.Where(), r.Output)
			continue
		}
		o, ok := r.Options()
		if !ok {
			if missing++; missing <= 3 {
				t.Logf("%s: no options: %.200q", r.Where(), r.Input[len(r.Input)-min(200, len(r.Input)):])
			}
			continue
		}
		found++
		if len(o.Values) > 0 {
			enumerated++
		}
		if o.Contains(r.Response) {
			inside++
		} else {
			t.Errorf("%s: response %v outside options %v..%v (%d values)", r.Where(), r.Response, o.Min, o.Max, len(o.Values))
		}
	}
	cov := float64(found) / float64(len(rows))
	t.Logf("options found for %d/%d rows (%.2f%%), %d enumerated; truth inside for %d/%d", found, len(rows), 100*cov, enumerated, inside, found)
	if cov < 0.95 {
		t.Errorf("coverage %.3f < 0.95", cov)
	}
}
