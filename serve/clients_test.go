package serve

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClients runs the example clients in examples/clients against a server
// on a free loopback port: Python's standard library always (skipped without
// python3), the npm openai package and R's httr2 where installed. Each
// predicts the sample rows and must print every row's prediction.
func TestClients(t *testing.T) {
	if testing.Short() {
		t.Skip("runs external clients")
	}
	s := startServer(t, func(c *Config) { c.APIKey = "client-key" })
	dir, _ := filepath.Abs(filepath.Join("..", "examples", "clients"))
	env := append(os.Environ(), "GOTRAIN_URL="+s.url, "GOTRAIN_API_KEY=client-key", "GOTRAIN_MODEL=tuned")
	run := func(t *testing.T, wd string, name string, args ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir, cmd.Env = wd, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		for _, id := range []string{"s0", "s1", "s2"} {
			if !strings.Contains(string(out), id) {
				t.Errorf("%s: no prediction of row %s:\n%s", name, id, out)
			}
		}
		t.Logf("%s:\n%s", name, out)
	}
	t.Run("python", func(t *testing.T) {
		py, err := exec.LookPath("python3")
		if err != nil {
			t.Skip("no python3")
		}
		run(t, dir, py, "python_client.py")
	})
	t.Run("openai-npm", func(t *testing.T) {
		node, err := exec.LookPath("node")
		if err != nil {
			t.Skip("no node")
		}
		if _, err := os.Stat(filepath.Join(dir, "js", "node_modules", "openai")); err != nil {
			t.Skip("the openai package is not installed (npm install in examples/clients/js)")
		}
		run(t, filepath.Join(dir, "js"), node, "client.mjs")
	})
	t.Run("r-httr2", func(t *testing.T) {
		r, err := exec.LookPath("Rscript")
		if err != nil {
			t.Skip("no Rscript")
		}
		if exec.Command(r, "-e", "library(httr2); library(jsonlite)").Run() != nil {
			t.Skip("R lacks httr2 or jsonlite (apt-get install r-cran-httr2 r-cran-jsonlite)")
		}
		run(t, dir, r, "r_client.R")
	})
}
