package report

import (
	"math"
	"strings"
	"testing"
)

// FuzzCharts draws charts from arbitrary labels and values: every result
// is well-formed XML, and no markup from the strings survives as markup.
func FuzzCharts(f *testing.F) {
	f.Add("q9w6s", "1 · Strongly agree", "<script>alert(1)</script>", 0.5, -0.2)
	f.Add("\x00\x01\xff", "]]>", "&amp;&#0;", math.NaN(), math.Inf(1))
	f.Add("", "", "", 0.0, 0.0)
	f.Add(strings.Repeat("x", 300), "a b c d e f g h i j k l m n o p", `"'<>&`, 1e300, -1e-300)
	f.Fuzz(func(t *testing.T, a, b, c string, x, y float64) {
		bar := barChart{ID: "z", Title: c, Subtitle: a, XLabel: b, YLabel: c, Categories: []string{a, b, c},
			Series: []string{c, a}, Values: [][]float64{{x, y, x}, {y, x}}}
		forest := forestPlot{ID: "f", Title: a, Subtitle: c, XLabel: b,
			Rows: []forestRow{{Label: c, Est: x, Lo: y, Hi: x, HasCI: true}, {Label: a, Est: y}}}
		for _, ch := range []interface{ svg() (string, error) }{&bar, &forest} {
			s, err := ch.svg()
			if err != nil {
				t.Fatal(err)
			}
			wellFormed(t, "chart", []byte(s))
			if strings.Contains(s, "<script") {
				t.Fatal("markup from the data in the chart")
			}
			if text := a + b + c; !strings.Contains(text, "NaN") && !strings.Contains(text, "Inf") && (strings.Contains(s, "NaN") || strings.Contains(s, "Inf")) {
				t.Fatalf("a NaN or Inf coordinate in the chart")
			}
		}
	})
}
