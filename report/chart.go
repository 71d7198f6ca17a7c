package report

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The palette is Okabe & Ito's (distinct under the three common colour
// blindnesses); series after the first also carry a pattern, and the
// colours' greyscale lightness differs (blue 37%, green 47%, orange 64%),
// so a greyscale print still tells them apart.
var palette = []struct{ color, pattern string }{
	{"#0072B2", ""},         // blue, solid
	{"#E69F00", "diagonal"}, // orange
	{"#009E73", "dots"},     // bluish green
	{"#CC79A7", "cross"},    // reddish purple
	{"#56B4E9", "horizontal"},
	{"#D55E00", "vertical"},
	{"#F0E442", "antidiagonal"},
	{"#000000", ""},
}

// fontFamily is set on every SVG so the files and the page look the same.
const fontFamily = "system-ui, 'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif"

// Text sizes (px) and an average glyph width of the sans fonts above, used
// to lay out labels without font metrics.
const (
	tickSize  = 11
	labelSize = 12
	titleSize = 14
	glyph     = 0.6 // × size
)

func textWidth(s string, size float64) float64 {
	return float64(utf8.RuneCountInString(s)) * size * glyph
}

// clean makes a string from the data safe to put in XML: invalid UTF-8 and
// the control characters XML 1.0 forbids become U+FFFD (escaping of <, &,
// quotes is html/template's job).
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0xFFFE || r == 0xFFFF {
			return '\uFFFD'
		}
		return r
	}, s)
}

// shorten cuts s to at most n runes, ending in "…" when cut.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// el is one SVG element; which fields count depends on Tag.
type el struct {
	Tag           string // rect, line, text, circle
	X, Y, W, H    float64
	X2, Y2        float64 // line end
	Fill, Stroke  string
	Dash          bool
	Text, Tip     string // text content; tooltip (<title>)
	Anchor        string // text-anchor
	Size          float64
	Bold          bool
	Rotate        float64 // text rotation (degrees) about (X, Y)
	StrokeWidthPx float64
}

// patternDef is a fill pattern over a series colour.
type patternDef struct {
	ID, Color, Kind, Ink string
}

type svgDoc struct {
	ID, Label string
	W, H      float64
	Font      string
	Patterns  []patternDef
	Els       []el
}

var svgTemplate = template.Must(template.New("svg").Funcs(template.FuncMap{"px": px}).Parse(
	`<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{{px .W}}" height="{{px .H}}" viewBox="0 0 {{px .W}} {{px .H}}" font-family="{{.Font}}" role="img" aria-label="{{.Label}}">
{{- if .Patterns}}<defs>{{range .Patterns}}<pattern id="{{.ID}}" patternUnits="userSpaceOnUse" width="6" height="6">` +
		`<rect width="6" height="6" fill="{{.Color}}"/>` +
		`{{if eq .Kind "diagonal"}}<path d="M-1,1 l2,-2 M0,6 l6,-6 M5,7 l2,-2" stroke="{{.Ink}}" stroke-width="1.4"/>` +
		`{{else if eq .Kind "antidiagonal"}}<path d="M-1,5 l2,2 M0,0 l6,6 M5,-1 l2,2" stroke="{{.Ink}}" stroke-width="1.4"/>` +
		`{{else if eq .Kind "dots"}}<circle cx="3" cy="3" r="1.3" fill="{{.Ink}}"/>` +
		`{{else if eq .Kind "cross"}}<path d="M0,3 h6 M3,0 v6" stroke="{{.Ink}}" stroke-width="1.2"/>` +
		`{{else if eq .Kind "horizontal"}}<path d="M0,3 h6" stroke="{{.Ink}}" stroke-width="1.4"/>` +
		`{{else if eq .Kind "vertical"}}<path d="M3,0 v6" stroke="{{.Ink}}" stroke-width="1.4"/>{{end}}` +
		`</pattern>{{end}}</defs>{{end}}
<rect width="100%" height="100%" fill="#fff"/>
{{range .Els}}
{{- if eq .Tag "rect"}}<rect x="{{px .X}}" y="{{px .Y}}" width="{{px .W}}" height="{{px .H}}" fill="{{.Fill}}"{{with .Stroke}} stroke="{{.}}" stroke-width="0.8"{{end}}>{{with .Tip}}<title>{{.}}</title>{{end}}</rect>
{{else if eq .Tag "line"}}<line x1="{{px .X}}" y1="{{px .Y}}" x2="{{px .X2}}" y2="{{px .Y2}}" stroke="{{.Stroke}}" stroke-width="{{px .StrokeWidthPx}}"{{if .Dash}} stroke-dasharray="4 3"{{end}}/>
{{else if eq .Tag "circle"}}<circle cx="{{px .X}}" cy="{{px .Y}}" r="{{px .W}}" fill="{{.Fill}}" stroke="{{.Stroke}}" stroke-width="1">{{with .Tip}}<title>{{.}}</title>{{end}}</circle>
{{else if eq .Tag "text"}}<text x="{{px .X}}" y="{{px .Y}}" font-size="{{px .Size}}"{{with .Anchor}} text-anchor="{{.}}"{{end}}{{if .Bold}} font-weight="bold"{{end}}{{if .Rotate}} transform="rotate({{px .Rotate}} {{px .X}} {{px .Y}})"{{end}} fill="{{with .Fill}}{{.}}{{else}}#222{{end}}">{{with .Tip}}<title>{{.}}</title>{{end}}{{.Text}}</text>
{{end}}{{end}}</svg>
`))

// signed formats a difference with its sign: 3 decimals, or 2 significant
// digits for one too small to show in 3 decimals.
func signed(x float64) string {
	if x != 0 && math.Abs(x) < 0.0005 {
		s := strconv.FormatFloat(x, 'g', 2, 64)
		if x > 0 {
			s = "+" + s
		}
		return s
	}
	return fmt.Sprintf("%+.3f", x)
}

// px formats a coordinate with one decimal.
func px(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func (d *svgDoc) render() (string, error) {
	d.Font = fontFamily
	var b bytes.Buffer
	if err := svgTemplate.Execute(&b, d); err != nil {
		return "", fmt.Errorf("report: svg: %w", err)
	}
	return b.String(), nil
}

// fill returns series s's fill, adding its pattern to d when it has one.
func (d *svgDoc) fill(s int) string {
	p := palette[s%len(palette)]
	if p.pattern == "" {
		return p.color
	}
	id := fmt.Sprintf("%s-p%d", d.ID, s)
	for _, q := range d.Patterns {
		if q.ID == id {
			return "url(#" + id + ")"
		}
	}
	ink := "#000000"
	if lightness(p.color) < 0.5 {
		ink = "#ffffff"
	}
	d.Patterns = append(d.Patterns, patternDef{ID: id, Color: p.color, Kind: p.pattern, Ink: ink})
	return "url(#" + id + ")"
}

// lightness is the relative luminance of a #rrggbb colour.
func lightness(hex string) float64 {
	v, _ := strconv.ParseUint(strings.TrimPrefix(hex, "#"), 16, 32)
	r, g, b := float64(v>>16&255)/255, float64(v>>8&255)/255, float64(v&255)/255
	return 0.2126*r + 0.7152*g + 0.0722*b
}

func (d *svgDoc) text(x, y float64, s string, size float64, anchor string) *el {
	d.Els = append(d.Els, el{Tag: "text", X: x, Y: y, Text: clean(s), Size: size, Anchor: anchor})
	return &d.Els[len(d.Els)-1]
}

func (d *svgDoc) line(x1, y1, x2, y2 float64, stroke string, width float64, dash bool) {
	d.Els = append(d.Els, el{Tag: "line", X: x1, Y: y1, X2: x2, Y2: y2, Stroke: stroke, StrokeWidthPx: width, Dash: dash})
}

// legendChars is the most characters of a series name a legend shows.
const legendChars = 64

func legendEntryWidth(name string) float64 {
	return 14 + 5 + textWidth(shorten(clean(name), legendChars), labelSize) + 16
}

// legend lays the series names out in rows from (x, y) within width,
// outside the plot; it returns the y below the last row.
func (d *svgDoc) legend(x, y, width float64, names []string) float64 {
	cx := x
	for s, name := range names {
		w := legendEntryWidth(name)
		name = shorten(clean(name), legendChars)
		if cx > x && cx+w > x+width {
			cx, y = x, y+18
		}
		d.Els = append(d.Els, el{Tag: "rect", X: cx, Y: y - 10, W: 14, H: 12, Fill: d.fill(s), Stroke: "#333"})
		d.text(cx+19, y, name, labelSize, "start")
		cx += w
	}
	return y + 8
}

// heading writes the title and subtitle wrapped to width (at most 2 and 3
// lines, the rest cut with "…" and kept whole in the tooltip); it returns
// the y where the content below may start.
func (d *svgDoc) heading(title, subtitle string, width float64) float64 {
	if title == "" && subtitle == "" {
		return 14
	}
	y := 4.0
	for _, part := range []struct {
		s     string
		size  float64
		lines int
		bold  bool
	}{{title, titleSize, 2, true}, {subtitle, labelSize, 3, false}} {
		s := clean(part.s)
		for _, line := range wrap(s, int(width/(part.size*glyph)), part.lines) {
			y += part.size + 5
			d.Els = append(d.Els, el{Tag: "text", X: 10, Y: y, Text: line, Tip: s, Size: part.size, Bold: part.bold})
		}
	}
	return y + 20
}

// wrap breaks s into lines of at most n runes at spaces, at most lines of
// them, the last cut with "…" if s does not fit.
func wrap(s string, n, lines int) []string {
	n = max(n, 8)
	var out []string
	words := strings.Fields(s)
	cur := ""
	for i, w := range words {
		next := w
		if cur != "" {
			next = cur + " " + w
		}
		if utf8.RuneCountInString(next) <= n || cur == "" {
			cur = next
			continue
		}
		out = append(out, cur)
		if len(out) == lines {
			out[lines-1] = shorten(out[lines-1]+" "+strings.Join(words[i:], " "), n)
			return out
		}
		cur = w
	}
	if cur != "" {
		out = append(out, shorten(cur, n))
	}
	if len(out) > lines {
		out = out[:lines]
	}
	return out
}

// axis is a linear scale with round ticks.
type axis struct {
	lo, hi float64 // data range covered by the axis (after padding)
	ticks  []float64
	format string
}

// niceAxis covers [lo, hi] with about n round ticks, padding hi (and lo
// when below zero) so the extreme data stay inside the axis.
func niceAxis(lo, hi float64, n int) axis {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	a := axis{lo: math.Floor(lo/step) * step, hi: math.Ceil(hi/step) * step}
	if a.hi-hi < 0.02*(a.hi-a.lo) { // pad: the tallest bar stays below the top tick line
		a.hi += step
	}
	if lo < 0 && lo-a.lo < 0.02*(a.hi-a.lo) {
		a.lo -= step
	}
	if !(step > 0) || math.IsInf(a.hi-a.lo, 0) || (a.hi-a.lo)/step > 4*float64(n) { // subnormal or overflowing ranges
		return axis{lo: 0, hi: 1, ticks: []float64{0, 1}, format: "%g"}
	}
	for k := 0; a.lo+float64(k)*step <= a.hi+step/2; k++ {
		a.ticks = append(a.ticks, math.Round((a.lo+float64(k)*step)/step)*step)
	}
	dec := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	if step/math.Pow(10, -float64(dec)) != math.Trunc(step/math.Pow(10, -float64(dec))) {
		dec++
	}
	a.format = "%." + strconv.Itoa(dec) + "f"
	return a
}

func (a axis) at(v, p0, p1 float64) float64 { return p0 + (v-a.lo)/(a.hi-a.lo)*(p1-p0) }

// barChart is a grouped bar chart: one group per category, one bar per
// series.
type barChart struct {
	ID, Title, Subtitle string
	Alt                 string // the chart's accessible name when untitled
	XLabel, YLabel      string
	Categories          []string // full labels; shortened on the axis
	Series              []string
	Values              [][]float64 // [series][category]
	Format              string      // of values in tooltips
	PlotHeight          float64
}

func (c *barChart) svg() (string, error) {
	d := &svgDoc{ID: c.ID, Label: clean(c.Title + c.Alt)}
	nc, ns := len(c.Categories), max(1, len(c.Series))
	hi := 0.0
	for _, vs := range c.Values {
		for _, v := range vs {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				hi = max(hi, v)
			}
		}
	}
	ax := niceAxis(0, hi, 5)
	tickW := 0.0
	for _, t := range ax.ticks {
		tickW = max(tickW, textWidth(fmt.Sprintf(ax.format, t), tickSize))
	}
	left := 24 + tickW + 8
	right := 16.0
	// a group needs room for its bars; narrow bars when there are many groups
	barW := 12.0
	if nc*ns > 60 {
		barW = max(3, 480/float64(nc*ns))
	}
	slot := float64(ns)*barW + max(6, barW)
	// category labels: shortened; a few categories get wider slots and
	// labels wrapped on up to 3 lines; else labels are rotated when they do
	// not fit their slot, and thinned when even rotated ones would overlap
	labels := make([]string, nc)
	longest := 0.0
	for i, s := range c.Categories {
		labels[i] = shorten(clean(s), 28)
		longest = max(longest, textWidth(labels[i], tickSize))
	}
	if nc <= 10 && longest > slot-4 {
		slot = max(slot, min(longest+8, 110))
	}
	plotW := max(float64(nc)*slot, 360)
	if len(c.Series) > 1 { // room for the widest legend entry
		for _, name := range c.Series {
			plotW = max(plotW, legendEntryWidth(name))
		}
	}
	slot = plotW / float64(max(nc, 1))
	width := left + plotW + right
	titleW := width - 20
	var wrapped [][]string
	if longest > slot-4 && nc <= 10 {
		wrapped = make([][]string, nc)
		n := int((slot - 4) / (tickSize * glyph))
		for i := range labels {
			wrapped[i] = wrap(clean(c.Categories[i]), n, 3)
		}
		longest = 0
	}
	rotate := longest > slot-4
	every := 1
	if rotate {
		every = int(math.Ceil(15 / slot))
	}
	if rotate && nc > 0 { // the first label, rotated, reaches left of the plot
		cos := math.Cos(40 * math.Pi / 180)
		if need := textWidth(labels[0], tickSize)*cos - slot/2 + 6; need > left {
			width += need - left
			left = need
		}
	}
	y := d.heading(c.Title, c.Subtitle, titleW)
	if len(c.Series) > 1 {
		y = d.legend(left, y, plotW, c.Series) + 8
	}
	top := y + 4
	ph := c.PlotHeight
	if ph == 0 {
		ph = 220
	}
	bottom := top + ph
	// y axis: grid, ticks, label
	for _, t := range ax.ticks {
		ty := ax.at(t, bottom, top)
		d.line(left, ty, left+plotW, ty, "#dddddd", 1, false)
		d.text(left-6, ty+4, fmt.Sprintf(ax.format, t), tickSize, "end")
	}
	d.line(left, bottom, left+plotW, bottom, "#333333", 1, false)
	d.line(left, top, left, bottom, "#333333", 1, false)
	if c.YLabel != "" {
		t := d.text(14, (top+bottom)/2, c.YLabel, labelSize, "middle")
		t.Rotate = -90
	}
	format := c.Format
	if format == "" {
		format = "%.4f"
	}
	for i := 0; i < nc; i++ {
		x0 := left + float64(i)*slot + (slot-float64(ns)*barW)/2
		for s := range c.Values {
			if i >= len(c.Values[s]) {
				continue
			}
			v := c.Values[s][i]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			by := min(max(ax.at(v, bottom, top), top), bottom) // off-scale values stop at the frame
			tip := clean(c.Categories[i])
			if len(c.Series) > 0 {
				tip += " — " + clean(c.Series[s])
			}
			d.Els = append(d.Els, el{Tag: "rect", X: x0 + float64(s)*barW, Y: by, W: barW, H: bottom - by,
				Fill: d.fill(s), Stroke: "#333", Tip: tip + ": " + fmt.Sprintf(format, v)})
		}
		if i%every != 0 {
			continue
		}
		cx := left + (float64(i)+0.5)*slot
		if wrapped != nil {
			for j, line := range wrapped[i] {
				d.text(cx, bottom+15+float64(j)*(tickSize+3), line, tickSize, "middle").Tip = clean(c.Categories[i])
			}
			continue
		}
		t := d.text(cx, bottom+15, labels[i], tickSize, "middle")
		t.Tip = clean(c.Categories[i])
		if rotate {
			t.X, t.Y, t.Anchor, t.Rotate = cx+4, bottom+10, "end", -40
		}
	}
	xlabY := bottom + 36
	for _, w := range wrapped {
		xlabY = max(xlabY, bottom+36+float64(len(w)-1)*(tickSize+3))
	}
	if rotate {
		xlabY = bottom + 22 + longest*math.Sin(40*math.Pi/180)
	}
	if c.XLabel != "" {
		d.text(left+plotW/2, xlabY, c.XLabel, labelSize, "middle")
	}
	d.W, d.H = width, xlabY+12
	return d.render()
}

// forestRow is one estimate with its interval.
type forestRow struct {
	Label  string
	Est    float64
	Lo, Hi float64
	HasCI  bool
}

// forestPlot draws estimates with their confidence intervals against a
// reference line at zero.
type forestPlot struct {
	ID, Title, Subtitle, XLabel string
	Rows                        []forestRow
}

func (f *forestPlot) svg() (string, error) {
	d := &svgDoc{ID: f.ID, Label: clean(f.Title)}
	lo, hi := 0.0, 0.0
	labelW := 0.0
	vals := make([]string, len(f.Rows))
	valW := textWidth("estimate [95% CI]", tickSize)
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	for i := range f.Rows {
		r := &f.Rows[i]
		r.HasCI = r.HasCI && finite(r.Lo) && finite(r.Hi)
		if !finite(r.Est) {
			vals[i] = "—"
			continue
		}
		lo, hi = math.Min(lo, r.Est), math.Max(hi, r.Est)
		vals[i] = signed(r.Est)
		if r.HasCI {
			lo, hi = math.Min(lo, r.Lo), math.Max(hi, r.Hi)
			vals[i] += " [" + signed(r.Lo) + ", " + signed(r.Hi) + "]"
		}
		labelW = max(labelW, textWidth(shorten(clean(r.Label), 36), labelSize))
		valW = max(valW, textWidth(vals[i], tickSize))
	}
	pad := 0.08 * (hi - lo)
	if pad == 0 {
		pad = 0.1
	}
	ax := niceAxis(lo-pad, hi+pad, 6)
	left := 16 + labelW + 12
	plotW := 360.0
	width := left + plotW + 16 + valW + 12
	top := d.heading(f.Title, f.Subtitle, width-20)
	rowH := 26.0
	bottom := top + rowH*float64(max(1, len(f.Rows)))
	for _, t := range ax.ticks {
		tx := ax.at(t, left, left+plotW)
		d.line(tx, top, tx, bottom, "#e4e4e4", 1, false)
		d.text(tx, bottom+15, fmt.Sprintf(ax.format, t), tickSize, "middle")
	}
	d.line(left, bottom, left+plotW, bottom, "#333333", 1, false)
	xat := func(v float64) float64 { return min(max(ax.at(v, left, left+plotW), left), left+plotW) }
	zx := xat(0)
	d.line(zx, top-6, zx, bottom, "#333333", 1.2, true)
	d.text(left+plotW+16, top-6, "estimate [95% CI]", tickSize, "start")
	for i, r := range f.Rows {
		cy := top + rowH*(float64(i)+0.5)
		t := d.text(left-12, cy+4, shorten(clean(r.Label), 36), labelSize, "end")
		t.Tip = clean(r.Label)
		d.text(left+plotW+16, cy+4, vals[i], tickSize, "start")
		if !finite(r.Est) {
			continue
		}
		if r.HasCI {
			x1, x2 := xat(r.Lo), xat(r.Hi)
			d.line(x1, cy, x2, cy, "#222222", 2, false)
			d.line(x1, cy-5, x1, cy+5, "#222222", 2, false)
			d.line(x2, cy-5, x2, cy+5, "#222222", 2, false)
		}
		d.Els = append(d.Els, el{Tag: "circle", X: xat(r.Est), Y: cy, W: 5, Fill: palette[0].color, Stroke: "#000", Tip: clean(r.Label) + ": " + vals[i]})
	}
	if f.XLabel != "" {
		d.text(left+plotW/2, bottom+36, f.XLabel, labelSize, "middle")
	}
	d.W, d.H = width, bottom+48
	return d.render()
}
