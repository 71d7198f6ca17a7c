package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotrain/gotrain/predict"
	"github.com/gotrain/gotrain/tokenize"
)

// hostileModelDir is the tiny model of hostile_test.go, removed after the tests.
var hostileModelDir string

// TestMain lets the tests run the CLI as a separate process (to see its exit
// code): with GOTRAIN_AS_CLI=1 the test binary is gotrain itself.
func TestMain(m *testing.M) {
	if os.Getenv("GOTRAIN_AS_CLI") == "1" {
		main()
		os.Exit(0)
	}
	code := m.Run()
	if hostileModelDir != "" {
		os.RemoveAll(filepath.Dir(hostileModelDir))
	}
	os.Exit(code)
}

// gotrain runs the CLI with args and returns its combined output and exit code.
func gotrain(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return gotrainIn(t, "", args...)
}

// gotrainIn is gotrain with standard input read from the file in ("": none).
func gotrainIn(t *testing.T, in string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GOTRAIN_AS_CLI=1")
	if in != "" {
		f, err := os.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "panic:") || strings.Contains(string(out), "goroutine ") {
		t.Fatalf("gotrain %v panicked:\n%s", args, out)
	}
	return string(out), code
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestScoreGolden runs `gotrain score` on the reference fixtures' token ids.
func TestScoreGolden(t *testing.T) {
	dir := filepath.Join("..", "..", "model", "testdata", "tiny-llama-f32")
	golden, err := os.ReadFile(filepath.Join(dir, "golden.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	var want [][]float64
	for _, line := range strings.Split(strings.TrimSpace(string(golden)), "\n") {
		var c struct {
			PromptIDs     []int     `json:"prompt_ids"`
			CompletionIDs []int     `json:"completion_ids"`
			Adapter       string    `json:"adapter"`
			Logprobs      []float64 `json:"logprobs"`
		}
		json.Unmarshal([]byte(line), &c)
		if c.Adapter != "adapter" {
			continue
		}
		b, _ := json.Marshal(map[string]any{"prompt_ids": c.PromptIDs, "completion_ids": c.CompletionIDs})
		in.Write(append(b, '\n'))
		want = append(want, c.Logprobs)
	}
	tmp := t.TempDir()
	data := writeFile(t, filepath.Join(tmp, "in.jsonl"), in.String())
	out := filepath.Join(tmp, "out.jsonl")
	// the reference ran in float32
	if msg, code := gotrain(t, "score", "--compute", "f32", "--base", dir, "--adapter", filepath.Join(dir, "adapter"), "--data", data, "--out", out); code != 0 {
		t.Fatalf("score failed (%d): %s", code, msg)
	}
	f, _ := os.Open(out)
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for ; sc.Scan(); i++ {
		var o predict.ScoredItem
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatal(err)
		}
		for p, v := range o.Logprobs {
			if math.Abs(float64(v)-want[i][p]) > 1e-4 {
				t.Errorf("line %d token %d: %v, reference %v", i+1, p, v, want[i][p])
			}
		}
	}
	if i != len(want) || i == 0 {
		t.Fatalf("%d output lines, want %d", i, len(want))
	}
}

// TestEndToEnd runs init-model, sft, predict and eval on a tiny model and a
// few bundled SocSci210 rows, then resumes a finished run.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a tiny model with the full Qwen2.5 vocabulary")
	}
	tmp, m, run := tinyWorkspace(t, "qwen2", 24)
	ad := filepath.Join(tmp, "adapter")
	run("sft", "--base", m, "--data", filepath.Join(tmp, "train.jsonl"), "--eval-data", filepath.Join(tmp, "eval.jsonl"),
		"--out", ad, "--max-steps", "4", "--batch-size", "4", "--save-steps", "2", "--lr", "1e-3")
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors", "metrics.jsonl", "loss.svg", "checkpoint-2/trainer_state.json"} {
		if _, err := os.Stat(filepath.Join(ad, f)); err != nil {
			t.Errorf("sft output lacks %s", f)
		}
	}
	pred := filepath.Join(tmp, "pred.jsonl")
	run("predict", "--base", m, "--adapter", ad, "--data", filepath.Join(tmp, "eval.jsonl"), "--out", pred)
	// prepacked weights: the same predictions, byte for byte
	packed := filepath.Join(tmp, "pred-packed.jsonl")
	run("predict", "--base", m, "--adapter", ad, "--data", filepath.Join(tmp, "eval.jsonl"), "--out", packed, "--pack-weights")
	if a, b := readFile(t, pred), readFile(t, packed); a != b {
		t.Errorf("predict --pack-weights differs:\n%s\nunpacked:\n%s", b, a)
	}
	out := run("eval", "--pred", pred, "--train", filepath.Join(tmp, "train.jsonl"), "--report", filepath.Join(tmp, "report"))
	if !strings.Contains(out, "W1 macro") {
		t.Errorf("eval printed no W1:\n%s", out)
	}
	if page := readFile(t, filepath.Join(tmp, "report", "index.html")); !strings.Contains(page, `id="study-table"`) {
		t.Error("eval --report wrote no page with the study table")
	}
	// shards merged give the same metrics as one run
	var shards []string
	for i := 0; i < 2; i++ {
		p := filepath.Join(tmp, "shard"+string(rune('0'+i))+".jsonl")
		run("predict", "--base", m, "--adapter", ad, "--data", filepath.Join(tmp, "eval.jsonl"), "--out", p, "--shard", string(rune('0'+i))+"/2")
		shards = append(shards, p)
	}
	merged := run("eval", "--pred", strings.Join(shards, ","), "--train", filepath.Join(tmp, "train.jsonl"))
	if firstLines(merged, 6) != firstLines(out, 6) {
		t.Errorf("merged shards:\n%s\nunsharded:\n%s", merged, out)
	}
	// an open numeric question gets the distribution of its answer
	open := writeFile(t, filepath.Join(tmp, "open.jsonl"), `{"instruction": "Answer as the person would.", "input": "Scenario: How much would you give? Only return an integer representing dollars.", "output": "Response: 20"}`+"\n"+
		`{"instruction": "Answer as the person would.", "input": "Scenario: How much would you give? Only return an integer representing dollars.", "output": "Response: 50"}`+"\n")
	numPred := filepath.Join(tmp, "open-pred.jsonl")
	if msg := run("predict", "--base", m, "--data", open, "--out", numPred, "--numeric-nodes", "24"); !strings.Contains(msg, "numeric 2,") || !strings.Contains(msg, "by answer format: numeric 2") {
		t.Errorf("predict summary: %s", msg)
	}
	var rec struct {
		Method     string
		Numeric    []struct{ Value, Prob float64 }
		Covered    float64
		Prediction *float64
	}
	if err := json.Unmarshal([]byte(firstLines(readFile(t, numPred), 1)), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Method != "numeric" || len(rec.Numeric) == 0 || rec.Covered <= 0 || rec.Prediction == nil {
		t.Errorf("numeric row: %+v", rec)
	}
	// and eval scores it as a numeric cell
	if out := run("eval", "--pred", numPred); !strings.Contains(out, "numeric cells only") || !strings.Contains(out, "numeric 2 (100.0%)") {
		t.Errorf("eval of a numeric row:\n%s", out)
	}
	// full finetuning with 8-bit moments: a checkpoint in the base's dtype that
	// predict takes as --base; a LoRA adapter with modules_to_save
	full := filepath.Join(tmp, "full")
	run("sft", "--full", "--optim", "adamw8bit", "--base", m, "--data", filepath.Join(tmp, "train.jsonl"),
		"--out", full, "--max-steps", "2", "--batch-size", "4", "--save-steps", "1", "--lr", "1e-3")
	for _, f := range []string{"model.safetensors", "config.json", "tokenizer.json", "checkpoint-1/model.safetensors", "checkpoint-1/optimizer.safetensors"} {
		if _, err := os.Stat(filepath.Join(full, f)); err != nil {
			t.Errorf("sft --full output lacks %s", f)
		}
	}
	run("predict", "--base", full, "--data", filepath.Join(tmp, "eval.jsonl"), "--out", filepath.Join(tmp, "pred-full.jsonl"))
	saved := filepath.Join(tmp, "saved")
	run("sft", "--modules-to-save", "embed_tokens,norm", "--base", m, "--data", filepath.Join(tmp, "train.jsonl"),
		"--out", saved, "--max-steps", "1", "--batch-size", "4", "--lr", "1e-3")
	run("predict", "--base", m, "--adapter", saved, "--data", filepath.Join(tmp, "eval.jsonl"), "--out", filepath.Join(tmp, "pred-saved.jsonl"))
}

// tinyWorkspace writes, in a temporary directory, a tiny init-model
// checkpoint of arch ("model") and the first rows lines of each side of the
// bundled sample split by study (train.jsonl, eval.jsonl: a small slice
// keeps the tests fast). run runs the CLI and fails the test on a non-zero
// exit.
func tinyWorkspace(t *testing.T, arch string, rows int) (tmp, m string, run func(args ...string) string) {
	tmp = t.TempDir()
	m = filepath.Join(tmp, "model")
	run = func(args ...string) string {
		t.Helper()
		out, code := gotrain(t, args...)
		if code != 0 {
			t.Fatalf("gotrain %v failed (%d):\n%s", args, code, out)
		}
		return out
	}
	run("init-model", "--arch", arch, "--size", "tiny", "--out", m)
	run("split", "--data", "sample", "--by", "study", "--train", filepath.Join(tmp, "train.jsonl"), "--eval", filepath.Join(tmp, "eval.jsonl"))
	for _, side := range []string{"train", "eval"} {
		p := filepath.Join(tmp, side+".jsonl")
		b, _ := os.ReadFile(p)
		lines := strings.SplitN(string(b), "\n", rows+1)
		os.WriteFile(p, []byte(strings.Join(lines[:rows], "\n")+"\n"), 0o644)
	}
	return tmp, m, run
}

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// TestBadInput: each kind of bad input is a clear error and a non-zero exit code.
func TestBadInput(t *testing.T) {
	tmp := t.TempDir()
	fixture := filepath.Join("..", "..", "model", "testdata", "tiny-llama-f32")
	bad := writeFile(t, filepath.Join(tmp, "bad.jsonl"), "{\"prompt_ids\": [1,2], \"completion_ids\": [3]}\n{oops\n")
	outOfRange := writeFile(t, filepath.Join(tmp, "range.jsonl"), "{\"prompt_ids\": [1], \"completion_ids\": [99999]}\n")
	empty := writeFile(t, filepath.Join(tmp, "empty.jsonl"), "{\"prompt_ids\": [], \"completion_ids\": [3]}\n")
	brokenModel := filepath.Join(tmp, "broken")
	os.MkdirAll(brokenModel, 0o755)
	writeFile(t, filepath.Join(brokenModel, "config.json"), "{")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"score", "--base", fixture, "--data", bad}, "bad.jsonl:2"},
		{[]string{"score", "--base", fixture, "--data", outOfRange}, "range.jsonl:1"},
		{[]string{"score", "--base", fixture, "--data", empty}, "prompt is empty"},
		{[]string{"score", "--base", brokenModel, "--data", bad}, "config.json"},
		{[]string{"score", "--base", filepath.Join(tmp, "nope"), "--data", bad}, "nope"},
		{[]string{"score", "--base", fixture, "--adapter", filepath.Join(tmp, "nope"), "--data", bad}, "no such directory"},
		{[]string{"predict", "--base", fixture, "--data", bad, "--shard", "3/2"}, "--shard"},
		{[]string{"predict", "--base", fixture, "--data", bad, "--numeric-eps", "0"}, "--numeric-eps"},
		{[]string{"init-model", "--arch", "gpt2", "--out", filepath.Join(tmp, "x")}, "gpt2"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		out, code := gotrain(t, tc.args...)
		if code == 0 {
			t.Errorf("gotrain %v succeeded:\n%s", tc.args, out)
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("gotrain %v: message does not mention %q:\n%s", tc.args, tc.want, out)
		}
	}
}

// TestSFTBadLinesAndInterrupt: bad training lines are fatal with file:line by
// default and skipped with --skip-bad; SIGINT saves a checkpoint that
// --resume auto continues to the end.
func TestSFTBadLinesAndInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a tiny model with the full Qwen2.5 vocabulary")
	}
	tmp := t.TempDir()
	m := filepath.Join(tmp, "model")
	if out, code := gotrain(t, "init-model", "--size", "tiny", "--out", m); code != 0 {
		t.Fatal(out)
	}
	good := `{"instruction": "Say a number.", "input": "", "output": "Response: 3"}`
	bad := strings.Join([]string{good, `{"instruction": "x", "output": ""}`, `not json`, `{"instruction": "y"}`,
		`{"instruction": "` + strings.Repeat("long ", 200) + `", "output": "Response: 1"}`, good}, "\n") + "\n"
	data := writeFile(t, filepath.Join(tmp, "bad.jsonl"), bad)
	args := []string{"sft", "--base", m, "--data", data, "--out", filepath.Join(tmp, "a"), "--max-steps", "1", "--max-len", "120"}
	out, code := gotrain(t, args...)
	if code == 0 || !strings.Contains(out, "bad.jsonl:2") {
		t.Errorf("bad line not fatal with file:line (exit %d):\n%s", code, out)
	}
	out, code = gotrain(t, append(args, "--skip-bad")...)
	if code != 0 {
		t.Fatalf("--skip-bad failed:\n%s", out)
	}
	for _, line := range []string{"bad.jsonl:2", "bad.jsonl:3", "bad.jsonl:4", "bad.jsonl:5"} {
		if !strings.Contains(out, line) {
			t.Errorf("--skip-bad does not report %s:\n%s", line, out)
		}
	}

	// interrupt a long run, then resume it
	var lines []string
	for i := 0; i < 40; i++ {
		lines = append(lines, fmt.Sprintf(`{"instruction": "Pick %d.", "input": "", "output": "Response: %d"}`, i, i%5+1))
	}
	data = writeFile(t, filepath.Join(tmp, "train.jsonl"), strings.Join(lines, "\n")+"\n")
	outDir := filepath.Join(tmp, "run")
	args = []string{"sft", "--base", m, "--data", data, "--out", outDir, "--max-steps", "120", "--batch-size", "2"}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GOTRAIN_AS_CLI=1")
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ { // wait until a few steps are done
		time.Sleep(100 * time.Millisecond)
		if b, err := os.ReadFile(filepath.Join(outDir, "metrics.jsonl")); err == nil && strings.Count(string(b), "\n") >= 3 {
			break
		}
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if err == nil || !strings.Contains(buf.String(), "interrupted") {
		t.Fatalf("interrupted run: %v\n%s", err, buf.String())
	}
	ck := latestCheckpoint(t, outDir)
	if ck == "" {
		t.Fatalf("no checkpoint after SIGINT:\n%s", buf.String())
	}
	out, code = gotrain(t, append(args, "--resume", "auto")...)
	if code != 0 || !strings.Contains(out, "resumed from "+ck) {
		t.Fatalf("resume failed (%d):\n%s", code, out)
	}
	b, _ := os.ReadFile(filepath.Join(outDir, "metrics.jsonl"))
	if n := strings.Count(string(b), "\n"); n != 120 {
		t.Errorf("metrics.jsonl has %d lines after resume, want 120", n)
	}
}

func latestCheckpoint(t *testing.T, dir string) string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	last := ""
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "checkpoint-") {
			last = filepath.Join(dir, e.Name())
		}
	}
	return last
}

// TestNativeRowsReasoning: native SocSci210 rows train directly, with the
// reasoning text as part of the target under --target reasoning.
func TestNativeRowsReasoning(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a tiny model with the full Qwen2.5 vocabulary")
	}
	tmp := t.TempDir()
	m := filepath.Join(tmp, "model")
	if out, code := gotrain(t, "init-model", "--size", "tiny", "--out", m); code != 0 {
		t.Fatal(out)
	}
	row := func(id int, reasoning string) string {
		return fmt.Sprintf(`{"sample_id": "s%d", "participant": %d, "demographic": {"age": 40, "sex": "Male"}, "stimuli": "You read a text and then were asked: “Do you agree?” Only return an integer from 1 to 5.", "reasoning": %q, "response": %d, "condition_num": 1, "task_num": 0, "study_id": "abcde"}`, id, id, reasoning, id%5+1)
	}
	good := writeFile(t, filepath.Join(tmp, "native.jsonl"), row(1, "They lean towards agreeing.")+"\n"+row(2, "Mild disagreement is likely.")+"\n")
	out, code := gotrain(t, "sft", "--base", m, "--data", good, "--out", filepath.Join(tmp, "a"), "--max-steps", "1", "--target", "reasoning")
	if code != 0 {
		t.Fatalf("sft --target reasoning on native rows failed:\n%s", out)
	}
	bad := writeFile(t, filepath.Join(tmp, "noreason.jsonl"), row(1, "fine")+"\n"+row(2, "")+"\n")
	out, code = gotrain(t, "sft", "--base", m, "--data", bad, "--out", filepath.Join(tmp, "b"), "--max-steps", "1", "--target", "reasoning")
	if code == 0 || !strings.Contains(out, "noreason.jsonl:2") {
		t.Errorf("a row without reasoning was not reported (%d):\n%s", code, out)
	}
}

// TestMemoryRefusal: a run that cannot fit is refused before any weight is
// read, with a plan and a suggestion (a 14B config without weights here).
func TestMemoryRefusal(t *testing.T) {
	tmp := t.TempDir()
	if err := tokenize.WriteBundled(tmp, "qwen2.5"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(tmp, "config.json"), `{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
		"vocab_size": 152064, "hidden_size": 5120, "intermediate_size": 13824, "num_hidden_layers": 48,
		"num_attention_heads": 40, "num_key_value_heads": 8, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
		"tie_word_embeddings": false, "torch_dtype": "bfloat16"}`)
	data := writeFile(t, filepath.Join(tmp, "d.jsonl"), `{"instruction": "`+strings.Repeat("word ", 900)+`", "output": "Response: 1"}`+"\n")
	cmd := exec.Command(os.Args[0], "sft", "--base", tmp, "--data", data, "--out", filepath.Join(t.TempDir(), "o"), "--batch-size", "16")
	cmd.Env = append(os.Environ(), "GOTRAIN_AS_CLI=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--quantize nf4") || !strings.Contains(string(out), "total") {
		t.Fatalf("a 14B BF16 run with 16 × 900-token batches was not refused with a plan:\n%s", out)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
