package data

import (
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
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

// TestSampleOptionsCoverage parses the options of every bundled row (and
// of any other SocSci210 JSONL file in ../../shared/data/socsci210, for
// held-out rows) and reports them per form: ≥ 99.5% of rows must get
// options or an open numeric answer, and the true answer must lie within.
func TestSampleOptionsCoverage(t *testing.T) {
	rows := loadSample(t)
	if len(rows) != 2780 {
		t.Fatalf("got %d rows, want 2780", len(rows))
	}
	checkCoverage(t, "sample", rows)
	files, _ := filepath.Glob("../../shared/data/socsci210/*.jsonl")
	for _, f := range files {
		if filepath.Base(f) == "dev.jsonl" {
			continue // the bundled sample
		}
		rows, err := ReadSFT(f, ReadOptions{SkipBad: true})
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		checkCoverage(t, f, rows)
	}
}

func checkCoverage(t *testing.T, name string, rows []Example) {
	type count struct{ rows, enumerated, open, outside int }
	forms := map[string]*count{}
	none := 0
	for i := range rows {
		r := &rows[i]
		o, ok := r.Options()
		if !ok {
			if none++; none <= 5 {
				t.Logf("%s: no options: %.200q", r.Where(), AnswerFormat(r.Input))
			}
			continue
		}
		c := forms[o.Form]
		if c == nil {
			c = &count{}
			forms[o.Form] = c
		}
		c.rows++
		if o.Open() {
			c.open++
		} else {
			c.enumerated++
		}
		if r.HasResponse && !o.Contains(r.Response) {
			if c.outside++; c.outside <= 3 {
				t.Logf("%s: response %v outside options %s: %.200q", r.Where(), r.Response, o.Summary(), AnswerFormat(r.Input))
			}
		}
	}
	names := make([]string, 0, len(forms))
	outside := 0
	for f, c := range forms {
		names = append(names, f)
		outside += c.outside
	}
	sort.Strings(names)
	for _, f := range names {
		c := forms[f]
		t.Logf("%s: form %-12s %5d rows: %5d enumerated, %4d open numeric, %3d truths outside", name, f, c.rows, c.enumerated, c.open, c.outside)
	}
	cov := 1 - float64(none)/float64(len(rows))
	t.Logf("%s: %d rows, %.2f%% with options or an open numeric answer, %d without, %d truths outside", name, len(rows), 100*cov, none, outside)
	if cov < 0.995 {
		t.Errorf("%s: coverage %.4f < 0.995", name, cov)
	}
	if float64(outside) > 0.005*float64(len(rows)) {
		t.Errorf("%s: %d truths outside their options", name, outside)
	}
}

// TestRephrasedRows restates every bundled row's answer format in the other
// phrasings the forms cover (as held-out studies may word them) and checks
// the options come out the same: the parser is built for the class of
// sentence, not for the sample's wording.
func TestRephrasedRows(t *testing.T) {
	rows := loadSample(t)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	checked := 0
	seen := map[string]bool{}
	for i := range rows {
		r := &rows[i]
		o, ok := r.Options()
		if format := AnswerFormat(r.Input); !ok || o.Open() || seen[format] {
			continue
		} else {
			seen[format] = true
		}
		n := len(o.Values)
		lab := func(k int) string {
			if o.Labels == nil || o.Labels[k] == "" {
				return "option " + f(o.Values[k])
			}
			return o.Labels[k]
		}
		var forms []string
		switch o.Form {
		case "range":
			lo, hi := f(o.Min), f(o.Max)
			forms = []string{
				"Only return an integer from " + lo + " (" + lab(0) + ") to " + hi + " (" + lab(n-1) + "), nothing else.",
				"Only return an integer between " + lo + " “" + lab(0) + "” and " + hi + " “" + lab(n-1) + "”.",
				"Only return a number on a scale of " + lo + " to " + hi + ", where " + lo + " = " + lab(0) + " and " + hi + " = " + lab(n-1) + ".",
				"Return only an integer (" + lo + "-" + hi + "), nothing else.",
				"Only return an integer in the range " + lo + " to " + hi + " inclusive.",
			}
		case "list":
			var fr, eq, lv, vl []string
			for k, v := range o.Values {
				fr = append(fr, f(v)+" for '"+lab(k)+"'")
				eq = append(eq, f(v)+" = "+lab(k))
				lv = append(lv, lab(k)+" ("+f(v)+")")
				vl = append(vl, f(v)+" ("+lab(k)+")")
			}
			join := func(p []string) string { return strings.Join(p[:n-1], ", ") + ", or " + p[n-1] }
			forms = []string{
				"Only return " + strings.Join(fr, "; ") + ", nothing else.",
				"Only return " + join(eq) + ".",
				"Only return " + join(lv) + ", nothing else.",
				"Only return a number: " + join(vl) + ".",
			}
		}
		for _, s := range forms {
			got, ok := ParseOptions("Scenario: You were asked: “Q?” " + s)
			if !ok || !reflect.DeepEqual(got.Values, o.Values) {
				t.Fatalf("%s: %q gives %v (%v), want %v", r.Where(), s, got.Values, ok, o.Values)
			}
			checked++
		}
	}
	t.Logf("%d rephrased answer formats give the rows' options", checked)
}
