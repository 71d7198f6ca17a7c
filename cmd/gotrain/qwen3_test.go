package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQwen3CLI runs the commands on a tiny random Qwen3 checkpoint written by
// init-model without its tokenizer files (so the bundled Qwen3 tokenizer is
// used): sft (LoRA and full), predict with and without --thinking, merge,
// predict on the merged checkpoint, score, generate and simulate.
//
// The same runs on a tiny Qwen3-MoE (8 experts, top 2), whose training
// metrics report the router's load-balancing loss.
func TestQwen3CLI(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a tiny model with the full Qwen3 vocabulary")
	}
	for _, arch := range []string{"qwen3", "qwen3moe"} {
		t.Run(arch, func(t *testing.T) { testQwen3CLI(t, arch) })
	}
}

func testQwen3CLI(t *testing.T, arch string) {
	tmp, m, run := tinyWorkspace(t, arch, 8)
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		if err := os.Remove(filepath.Join(m, f)); err != nil {
			t.Fatal(err)
		}
	}
	train, eval := filepath.Join(tmp, "train.jsonl"), filepath.Join(tmp, "eval.jsonl")
	ad := filepath.Join(tmp, "adapter")
	if out := run("sft", "--base", m, "--data", train, "--out", ad, "--max-steps", "2", "--batch-size", "4", "--lr", "1e-2"); !strings.Contains(out, "bundled qwen3 tokenizer") {
		t.Errorf("sft did not say it used the bundled tokenizer:\n%s", out)
	}
	if metrics, _ := os.ReadFile(filepath.Join(ad, "metrics.jsonl")); arch == "qwen3moe" && !strings.Contains(string(metrics), `"aux_loss"`) {
		t.Errorf("no aux_loss in the MoE's training metrics:\n%s", metrics)
	}
	pred := func(name string, args ...string) string {
		p := filepath.Join(tmp, name)
		run(append([]string{"predict", "--data", eval, "--out", p}, args...)...)
		return readFile(t, p)
	}
	withAd := pred("pred.jsonl", "--base", m, "--adapter", ad)
	// With --thinking every answer starts with the same empty think block,
	// which moves into the prompt: option distributions do not change.
	if thinking := pred("pred-think.jsonl", "--base", m, "--adapter", ad, "--thinking"); thinking != withAd {
		t.Errorf("predict --thinking changed the option distributions:\n%s\nwithout:\n%s", firstLines(thinking, 2), firstLines(withAd, 2))
	}
	// the generation prompt does change: it ends in the empty think block only without --thinking
	chatIn := writeFile(t, filepath.Join(tmp, "chat.jsonl"), `[{"role": "user", "content": "Hi"}]`+"\n")
	ids := func(args ...string) string {
		out, code := gotrainIn(t, chatIn, append([]string{"tokenize", "--tokenizer", "qwen3", "--chat", "--gen", "--decode=false"}, args...)...)
		if code != 0 {
			t.Fatalf("tokenize %v: %s", args, out)
		}
		return out
	}
	if off, on := ids(), ids("--thinking"); !strings.Contains(off, "151668") || strings.Contains(on, "151668") {
		t.Errorf("tokenize --gen: without --thinking %s (want </think>, id 151668), with %s", off, on)
	}
	merged := filepath.Join(tmp, "merged")
	run("merge", "--base", m, "--adapter", ad, "--out", merged)
	// the merged BF16 checkpoint predicts what base + adapter does, up to BF16 rounding of the merged weights
	if got := pred("pred-merged.jsonl", "--base", merged); !closeProbs(t, got, withAd, 0.02) {
		t.Errorf("merged checkpoint predicts differently:\n%s\nbase+adapter:\n%s", firstLines(got, 2), firstLines(withAd, 2))
	}
	full := filepath.Join(tmp, "full")
	run("sft", "--full", "--base", m, "--data", train, "--out", full, "--max-steps", "1", "--batch-size", "4", "--lr", "1e-3")
	pred("pred-full.jsonl", "--base", full)
	scoreIn := writeFile(t, filepath.Join(tmp, "score.jsonl"), `{"prompt": "How old are you?", "completion": "Response: 3"}`+"\n")
	var sc struct {
		CompletionIDs []int     `json:"completion_ids"`
		Logprobs      []float64 `json:"logprobs"`
	}
	if err := json.Unmarshal([]byte(lastLine(run("score", "--base", m, "--adapter", ad, "--data", scoreIn, "--chat"))), &sc); err != nil || len(sc.Logprobs) == 0 || len(sc.Logprobs) != len(sc.CompletionIDs) {
		t.Errorf("score: %+v %v", sc, err)
	}
	if out := run("generate", "--base", m, "--adapter", ad, "--prompt", "Hi", "--chat", "--temperature", "0", "--max-new-tokens", "4"); strings.TrimSpace(out) == "" {
		t.Error("generate --chat printed nothing")
	}
	spec := filepath.Join("..", "..", "examples", "experiment.json")
	if out := run("simulate", "--base", m, "--adapter", ad, "--experiment", spec, "--n", "2", "--bootstrap", "0"); !strings.Contains(out, "2 personas") {
		t.Errorf("simulate:\n%s", out)
	}
	if out, code := gotrain(t, "predict", "--base", m, "--data", eval, "--out", filepath.Join(tmp, "x.jsonl"), "--thinking", "--template", "qwen2.5"); code == 0 || !strings.Contains(out, "--thinking") {
		t.Errorf("--thinking with the qwen2.5 template: exit %d\n%s", code, out)
	}
}

// closeProbs reports whether two prediction files have the same rows with
// probabilities within tol.
func closeProbs(t *testing.T, a, b string, tol float64) bool {
	t.Helper()
	la, lb := strings.Split(strings.TrimSpace(a), "\n"), strings.Split(strings.TrimSpace(b), "\n")
	if len(la) != len(lb) {
		return false
	}
	for i := range la {
		var ra, rb struct{ Probs []float64 }
		if json.Unmarshal([]byte(la[i]), &ra) != nil || json.Unmarshal([]byte(lb[i]), &rb) != nil || len(ra.Probs) != len(rb.Probs) {
			return false
		}
		for k := range ra.Probs {
			if d := ra.Probs[k] - rb.Probs[k]; d > tol || d < -tol {
				return false
			}
		}
	}
	return true
}
