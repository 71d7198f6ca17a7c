// Package report turns evaluation and simulation results into what people
// look at: SVG charts drawn here (html/template, so every string from the
// data is escaped; Okabe–Ito colours with patterns; legends outside the
// data) and one self-contained HTML page per report that embeds them, with
// tables, and opens from disk without fetching anything.
package report

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"strconv"
)

// The page shell shared by the eval and simulate pages: everything inline
// (the Content-Security-Policy forbids every fetch, so a page that tried one
// would show it as a console error in the browser test), print styles, and
// the small script that sorts tables and reveals collapsed cells.
const pageShell = `{{define "head"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="gotrain">
<title>{{.Title}}</title>
<style>
:root { --ink: #1d1d1f; --muted: #5b5b66; --rule: #d9d9de; --band: #f4f5f7; --accent: #0072B2; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { font-family: system-ui, 'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif; color: var(--ink); margin: 0; line-height: 1.45; font-size: 15px; }
main { max-width: 1120px; margin: 0 auto; padding: 8px 24px 48px; }
header { border-bottom: 1px solid var(--rule); margin-bottom: 8px; }
h1 { font-size: 1.6em; margin: 18px 0 4px; }
h2 { font-size: 1.25em; margin: 28px 0 8px; padding-top: 8px; border-top: 1px solid var(--rule); }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
.summary { font-size: 1.05em; margin: 6px 0 10px; max-width: 60em; }
.meta, .note { color: var(--muted); font-size: 0.92em; margin: 4px 0; }
nav { position: sticky; top: 0; background: #fff; padding: 6px 0; border-bottom: 1px solid var(--rule); z-index: 1; font-size: 0.92em; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.93em; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
thead th { background: var(--band); border-bottom: 2px solid #b9b9c0; white-space: nowrap; }
#sim-table td:first-child { min-width: 14em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody th { font-weight: 400; }
td.best { font-weight: 700; }
td.best::after { content: " ◆"; font-size: 0.75em; color: var(--accent); }
th button { font: inherit; font-weight: 700; background: none; border: 0; padding: 0; cursor: pointer; color: inherit; }
th[aria-sort=ascending] button::after { content: " ▲"; font-size: 0.75em; }
th[aria-sort=descending] button::after { content: " ▼"; font-size: 0.75em; }
.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 10px 0; }
figure.chart { overflow-x: auto; }
svg.chart { display: block; }
details.study { border: 1px solid var(--rule); border-radius: 6px; margin: 8px 0; padding: 0 12px; }
details.study > summary { cursor: pointer; padding: 8px 0; font-weight: 600; }
details.study > summary .meta { font-weight: 400; margin-left: 8px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid var(--rule); border-radius: 6px; padding: 8px 10px; flex: 1 1 440px; max-width: 540px; margin: 0; break-inside: avoid; overflow-x: auto; }
.card h4 { margin: 0 0 4px; font-size: 0.95em; }
.card blockquote { margin: 4px 0 6px; padding-left: 8px; border-left: 3px solid var(--accent); font-size: 0.93em; }
.card details { font-size: 0.85em; color: var(--muted); margin-bottom: 4px; }
button.more { margin: 8px 0 12px; font: inherit; padding: 4px 12px; border: 1px solid var(--accent); color: var(--accent); background: #fff; border-radius: 4px; cursor: pointer; }
.spec dt { font-weight: 600; margin-top: 6px; }
.spec dd { margin: 2px 0 6px 16px; }
.tag { font-size: 0.8em; color: var(--muted); border: 1px solid var(--rule); border-radius: 3px; padding: 0 4px; margin-left: 4px; }
@media print {
  nav, button.more { display: none; }
  main { max-width: none; padding: 0; }
  body { font-size: 11pt; }
  h2 { break-after: avoid; }
  figure, .card, table { break-inside: avoid; }
  .card { flex-basis: 45%; }
  .card svg.chart { max-width: 100%; height: auto; }
  .scroll, figure.chart { overflow: visible; }
  svg.chart { max-width: 100%; height: auto; }
  a { color: inherit; text-decoration: none; }
}
</style>
</head>
<body>
<main>
{{end}}
{{define "foot"}}</main>
<script>
(function () {
  "use strict";
  function key(cell) {
    var v = cell.getAttribute("data-v");
    return v === null ? null : parseFloat(v);
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = th.textContent;
      b.title = "sort by " + th.textContent;
      th.textContent = "";
      th.appendChild(b);
      b.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var a = r1.cells[col], b = r2.cells[col], ka = key(a), kb = key(b), c;
          if (ka !== null && kb !== null) { c = ka - kb; } else { c = a.textContent.localeCompare(b.textContent); }
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.querySelectorAll("button.more").forEach(function (b) {
    var target = document.getElementById(b.getAttribute("data-target"));
    var more = b.textContent;
    b.addEventListener("click", function () {
      target.hidden = !target.hidden;
      b.textContent = target.hidden ? more : "show fewer";
    });
  });
  document.documentElement.setAttribute("data-ready", "1");
})();
</script>
</body>
</html>
{{end}}`

var pageFuncs = template.FuncMap{
	// f formats a number for reading, v exactly (for sorting and checks)
	"f4": func(x float64) string { return num(x, 4) },
	"f3": func(x float64) string { return num(x, 3) },
	"v":  func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) },
	"pct": func(n, of int) string {
		if of == 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
	},
	"signed": signed,
	// svg inlines a chart this package rendered through svgTemplate, where
	// every string from the data was escaped
	"svg":   func(s string) template.HTML { return template.HTML(s) },
	"clean": clean,
	"diff":  func(a, b float64) float64 { return a - b },
	"short": func(s string) string { return shorten(s, 140) },
}

func num(x float64, dec int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "—"
	}
	return strconv.FormatFloat(x, 'f', dec, 64)
}

func parsePage(body string) *template.Template {
	return template.Must(template.Must(template.New("page").Funcs(pageFuncs).Parse(pageShell)).Parse(body))
}

func renderPage(t *template.Template, view any) ([]byte, error) {
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "body", view); err != nil {
		return nil, fmt.Errorf("report: page: %w", err)
	}
	return b.Bytes(), nil
}
