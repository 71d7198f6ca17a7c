package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServePredictMatchesCLI: `gotrain serve`'s /v1/predict answers rows with
// the records `gotrain predict` writes for them (every field equal, the
// probabilities within 1e-6), and SIGTERM-style cancellation stops the
// server cleanly.
func TestServePredictMatchesCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a tiny model with the full Qwen2.5 vocabulary")
	}
	tmp := t.TempDir()
	m := filepath.Join(tmp, "model")
	if err := runInitModel([]string{"--size", "tiny", "--out", m}); err != nil {
		t.Fatal(err)
	}
	// 24 of the sample rows: several studies, open-ended rows among them
	sample, err := os.ReadFile(filepath.Join("..", "..", "data", "testdata", "socsci_sample.expect.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(sample, []byte("\n"))
	rowsPath := writeFile(t, filepath.Join(tmp, "rows.jsonl"), string(bytes.Join(lines[:24], nil)))
	out := filepath.Join(tmp, "pred.jsonl")
	if err := runPredict([]string{"--base", m, "--data", rowsPath, "--out", out}); err != nil {
		t.Fatal(err)
	}
	var want []map[string]any
	var rows []json.RawMessage
	for _, p := range []string{out, rowsPath} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if p == out {
				var r map[string]any
				json.Unmarshal(sc.Bytes(), &r)
				want = append(want, r)
			} else {
				rows = append(rows, append(json.RawMessage(nil), sc.Bytes()...))
			}
		}
		f.Close()
	}

	// the prefix caches' bound (and the lanes' KV caches) counts in the memory check: a petabyte
	// for each of two models is refused after loading, 0 before
	t.Setenv("GOTRAIN_NO_MEMCHECK", "")
	for _, c := range []struct{ mib, want string }{{"1073741824", "need 2097152.0"}, {"0", "want MiB from 1"}} {
		err := serveUntil(context.Background(), []string{"--base", m, "--adapter", "again=" + m, "--prefix-cache", c.mib, "--addr", "127.0.0.1:0", "--quiet"}, nil)
		if err == nil || !strings.Contains(err.Error(), "--prefix-cache "+c.mib) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--prefix-cache %s: %v", c.mib, err)
		}
	}

	ctx, stop := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	served := make(chan error, 1)
	go func() {
		served <- serveUntil(ctx, []string{"--base", m, "--name", "tiny", "--addr", "127.0.0.1:0", "--quiet"}, func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-served:
		t.Fatal(err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the server did not start")
	}
	body, _ := json.Marshal(map[string]any{"model": "tiny", "rows": rows})
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Post("http://"+addr+"/v1/predict", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Rows []map[string]any `json:"rows"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(got.Rows) != len(want) {
		t.Fatalf("status %d, %d rows (want %d), %v", resp.StatusCode, len(got.Rows), len(want), err)
	}
	worst := 0.0
	for i := range want {
		for k, w := range want[i] {
			d, same := jsonDiff(got.Rows[i][k], w)
			if !same {
				t.Errorf("row %d field %s: %s, want %s", i, k, jsonText(got.Rows[i][k]), jsonText(w))
			}
			worst = max(worst, d)
		}
		if len(got.Rows[i]) != len(want[i]) {
			t.Errorf("row %d: %d fields, want %d", i, len(got.Rows[i]), len(want[i]))
		}
	}
	t.Logf("%d rows; largest difference from gotrain predict %.2g", len(want), worst)
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the server did not stop")
	}
}

// jsonDiff compares two decoded JSON values: the same shape and strings,
// numbers within 1e-6 (probabilities: the server batches rows differently,
// which changes the float sums in the last digits). It returns the largest
// numeric difference.
func jsonDiff(a, b any) (float64, bool) {
	switch b := b.(type) {
	case float64:
		x, ok := a.(float64)
		return math.Abs(x - b), ok && math.Abs(x-b) <= 1e-6
	case []any:
		x, ok := a.([]any)
		if !ok || len(x) != len(b) {
			return 0, false
		}
		worst := 0.0
		for i := range b {
			d, same := jsonDiff(x[i], b[i])
			if !same {
				return d, false
			}
			worst = max(worst, d)
		}
		return worst, true
	case map[string]any:
		x, ok := a.(map[string]any)
		if !ok || len(x) != len(b) {
			return 0, false
		}
		worst := 0.0
		for k := range b {
			d, same := jsonDiff(x[k], b[k])
			if !same {
				return d, false
			}
			worst = max(worst, d)
		}
		return worst, true
	}
	return 0, jsonText(a) == jsonText(b)
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
