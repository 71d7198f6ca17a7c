//go:build linux

package report

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotrain/gotrain/predict"
)

// These tests open the pages in a real headless browser (Debian's
// chromium; they skip without it, so CI need not install it). Screenshots
// go to $GOTRAIN_TEST_ARTIFACTS when set, else to the test's temporary
// directory; the log names them.

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("GOTRAIN_CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium: install it (apt-get install chromium) to check the pages in a browser")
	return ""
}

// browse runs headless chromium on a local file with extra flags (e.g.
// --dump-dom, --screenshot=...), returning stdout and the console messages
// it logged. The browser and its helpers are killed after 3 minutes (a loaded machine
// can take a minute to start it).
func browse(t *testing.T, bin, page string, flags ...string) (stdout string, console []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}, flags...)
	args = append(args, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", page, err, errb.String())
	}
	for _, line := range strings.Split(errb.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") || strings.Contains(line, "Content Security Policy") {
			console = append(console, line)
		}
	}
	return out.String(), console
}

func artifactDir(t *testing.T) string {
	if d := os.Getenv("GOTRAIN_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// openPage opens dir/index.html, checks that it logs nothing to the
// console and that its script ran to the end, keeps a screenshot of the
// given height under artifactDir, and returns the DOM.
func openPage(t *testing.T, bin, dir, shotName string, height int) string {
	t.Helper()
	shot := filepath.Join(artifactDir(t), shotName)
	dom, console := browse(t, bin, filepath.Join(dir, "index.html"), "--dump-dom", "--window-size=1200,"+strconv.Itoa(height), "--screenshot="+shot)
	if len(console) > 0 {
		t.Errorf("console messages:\n%s", strings.Join(console, "\n"))
	}
	if !strings.Contains(dom, `data-ready="1"`) {
		t.Error("the page's script did not run to its end")
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10000 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
	return dom
}

// TestBrowserDetectsConsoleErrors checks the check: a page that throws and
// one that fetches are both reported.
func TestBrowserDetectsConsoleErrors(t *testing.T) {
	bin := chromium(t)
	page := filepath.Join(t.TempDir(), "bad.html")
	html := `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'"></head>` +
		`<body><img src="https://example.invalid/x.png"><script>throw new Error("broken page")</script></body></html>`
	if err := os.WriteFile(page, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	_, console := browse(t, bin, page, "--dump-dom")
	joined := strings.Join(console, "\n")
	if !strings.Contains(joined, "broken page") || !strings.Contains(joined, "example.invalid") {
		t.Errorf("console errors not detected; got:\n%s", joined)
	}
}

var (
	reMetricRow = regexp.MustCompile(`(?s)<tr data-metric="([^"]+)">(.*?)</tr>`)
	reStudyRow  = regexp.MustCompile(`(?s)<tr data-study="([^"]+)">(.*?)</tr>`)
	reNumCell   = regexp.MustCompile(`<td class="num (model|uniform|prior)[^"]*" data-v="([^"]+)">([^<]*)</td>`)
)

// checkCells checks the model, uniform and prior cells of a row against
// want: data-v exactly, the text as 4 decimals.
func checkCells(t *testing.T, what, row string, want map[string]float64) {
	t.Helper()
	cells := reNumCell.FindAllStringSubmatch(row, -1)
	if len(cells) != 3 {
		t.Errorf("%s: %d model/uniform/prior cells in %q", what, len(cells), row)
		return
	}
	for _, c := range cells {
		got, err := strconv.ParseFloat(c[2], 64)
		w := want[c[1]]
		if err != nil || got != w {
			t.Errorf("%s %s: page %s, metrics.json %v", what, c[1], c[2], w)
		}
		if text := strconv.FormatFloat(w, 'f', 4, 64); c[3] != text {
			t.Errorf("%s %s: shown %q, want %q", what, c[1], c[3], text)
		}
	}
}

func TestBrowserEvalPage(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	if err := WriteEval(dir, heldOutInput(t, 3, true)); err != nil {
		t.Fatal(err)
	}
	dom := openPage(t, bin, dir, "eval-report.png", 2400)
	if regexp.MustCompile(`<html[^>]*data-pwned`).MatchString(dom) {
		t.Error("markup from the data ran in the page")
	}
	if !strings.Contains(dom, `aria-sort`) && !strings.Contains(dom, `<button type="button" title="sort by study">`) {
		t.Error("the study table did not become sortable")
	}
	// the numbers on the page are metrics.json's
	var m struct {
		MacroW1    map[string]float64 `json:"macro_w1"`
		DPD        map[string]float64 `json:"dpd"`
		Individual struct {
			Accuracy, LogLik, RPS map[string]float64
		} `json:"individual"`
		Studies []struct {
			Study string             `json:"study_id"`
			W1    map[string]float64 `json:"w1"`
		} `json:"studies"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]float64{"macro_w1": m.MacroW1, "dpd": m.DPD,
		"individual.accuracy": m.Individual.Accuracy, "individual.loglik": m.Individual.LogLik, "individual.rps": m.Individual.RPS}
	rows := reMetricRow.FindAllStringSubmatch(dom, -1)
	if len(rows) != len(want) {
		t.Errorf("%d headline rows, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		checkCells(t, r[1], r[2], want[r[1]])
	}
	studies := reStudyRow.FindAllStringSubmatch(dom, -1)
	if len(studies) != len(m.Studies) {
		t.Fatalf("%d study rows, want %d", len(studies), len(m.Studies))
	}
	for i, r := range studies {
		// the DOM serialises the id as text: compare unescaped
		if id := strings.NewReplacer("&quot;", `"`, "&gt;", ">", "&lt;", "<", "&amp;", "&").Replace(r[1]); id != m.Studies[i].Study {
			t.Errorf("study row %d is %q, want %q", i, id, m.Studies[i].Study)
		}
		checkCells(t, "study "+m.Studies[i].Study, r[2], m.Studies[i].W1)
	}
}

func TestBrowserSimulationPage(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	exp, res := simFixture(t)
	if err := WriteSimulation(dir, exp, res); err != nil {
		t.Fatal(err)
	}
	dom := openPage(t, bin, dir, "simulate-report.png", 1800)
	var back predict.SimResult
	b, _ := os.ReadFile(filepath.Join(dir, "result.json"))
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	means := regexp.MustCompile(`<td class="num mean" data-v="([^"]+)">([^<]+)</td>`).FindAllStringSubmatch(dom, -1)
	diffs := regexp.MustCompile(`<td class="num diff" data-v="([^"]+)">`).FindAllStringSubmatch(dom, -1)
	cis := regexp.MustCompile(`<td class="num ci" data-lo="([^"]+)" data-hi="([^"]+)">`).FindAllStringSubmatch(dom, -1)
	if len(means) != len(back.Conditions) || len(diffs) != len(back.Conditions)-1 || len(cis) != len(diffs) {
		t.Fatalf("%d means, %d effects, %d CIs on the page for %d conditions", len(means), len(diffs), len(cis), len(back.Conditions))
	}
	k := 0
	for i, c := range back.Conditions {
		if v, _ := strconv.ParseFloat(means[i][1], 64); v != c.Mean || means[i][2] != strconv.FormatFloat(c.Mean, 'f', 3, 64) {
			t.Errorf("%s: mean %v (%s), result.json %v", c.Name, means[i][1], means[i][2], c.Mean)
		}
		if c.Effect == nil {
			continue
		}
		d, _ := strconv.ParseFloat(diffs[k][1], 64)
		lo, _ := strconv.ParseFloat(cis[k][1], 64)
		hi, _ := strconv.ParseFloat(cis[k][2], 64)
		if d != c.Effect.Diff || lo != c.Effect.CI[0] || hi != c.Effect.CI[1] {
			t.Errorf("%s: effect %v [%v, %v], result.json %+v %v", c.Name, d, lo, hi, c.Effect, *c.Effect.CI)
		}
		k++
	}
}

// TestBrowserInteractions clicks the page's controls from a harness page
// that holds the report in a frame: sorting the study table by a column,
// both ways, and "show more" on a study's cells.
func TestBrowserInteractions(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	if err := WriteEval(dir, heldOutInput(t, 3, false)); err != nil {
		t.Fatal(err)
	}
	harness := `<!DOCTYPE html><html><body><pre id="out">not run</pre>
<iframe id="f" src="index.html" width="1200" height="800"></iframe>
<script>
document.getElementById("f").addEventListener("load", function () {
  var out = [];
  try {
    var d = this.contentDocument;
    var table = d.getElementById("study-table");
    var col = table.tHead.rows[0].cells[3].querySelector("button");
    var read = function () {
      return Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[3].getAttribute("data-v"); }).join(" ");
    };
    col.click(); out.push("asc " + read());
    col.click(); out.push("desc " + read());
    var more = d.querySelector("button.more");
    var target = d.getElementById(more.getAttribute("data-target"));
    out.push("hidden " + (target.offsetHeight === 0));
    more.click(); out.push("shown " + (target.offsetHeight > 0) + " " + more.textContent);
  } catch (e) { out.push("error " + e); }
  document.getElementById("out").textContent = out.join("\n");
});
</script></body></html>`
	page := filepath.Join(dir, "harness.html")
	if err := os.WriteFile(page, []byte(harness), 0o644); err != nil {
		t.Fatal(err)
	}
	dom, console := browse(t, bin, page, "--dump-dom", "--allow-file-access-from-files", "--virtual-time-budget=5000")
	if len(console) > 0 {
		t.Errorf("console messages:\n%s", strings.Join(console, "\n"))
	}
	m := regexp.MustCompile(`(?s)<pre id="out">(.*?)</pre>`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no output in %q", dom[:min(len(dom), 500)])
	}
	lines := strings.Split(m[1], "\n")
	if len(lines) != 4 {
		t.Fatalf("harness: %q", m[1])
	}
	sorted := func(line, prefix string, asc bool) {
		f := strings.Fields(strings.TrimPrefix(line, prefix))
		if !strings.HasPrefix(line, prefix) || len(f) < 2 {
			t.Errorf("harness: %q", line)
			return
		}
		for i := 1; i < len(f); i++ {
			a, _ := strconv.ParseFloat(f[i-1], 64)
			b, _ := strconv.ParseFloat(f[i], 64)
			if (asc && a > b) || (!asc && a < b) {
				t.Errorf("not sorted: %q", line)
			}
		}
	}
	sorted(lines[0], "asc ", true)
	sorted(lines[1], "desc ", false)
	if lines[2] != "hidden true" || lines[3] != "shown true show fewer" {
		t.Errorf("show more: %q", lines[2:])
	}
}
