package train

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotrain/gotrain/model"
)

func TestSchedule(t *testing.T) {
	// values of transformers' get_{cosine,linear,constant}_schedule_with_warmup lambdas × lr
	for _, tc := range []struct {
		kind string
		step int
		want float64
	}{
		{"cosine", 0, 0}, {"cosine", 1, 0.5}, {"cosine", 2, 1}, {"cosine", 6, 0.5}, {"cosine", 10, 0},
		{"linear", 1, 0.5}, {"linear", 6, 0.5}, {"linear", 8, 0.25},
		{"constant", 0, 0}, {"constant", 9, 1},
	} {
		s := Schedule{Kind: tc.kind, LR: 1, WarmupSteps: 2, TotalSteps: 10}
		if got := s.At(tc.step); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s at %d = %v, want %v", tc.kind, tc.step, got, tc.want)
		}
	}
	if WarmupSteps(10, 0.05) != 1 || WarmupSteps(100, 0.1) != 10 {
		t.Error("warmup steps are not ceil(total·ratio)")
	}
}

// TestAdamW checks two steps against torch.optim.AdamW computed by hand.
func TestAdamW(t *testing.T) {
	p := [][]float32{{1, -2}}
	o := NewAdamW(0.1)
	o.Step(p, [][]float32{{0.5, 0.25}}, 0.01)
	// step 1: p·(1−lr·wd) − lr·sign-ish(g): m̂ = g, v̂ = g², update = g/(|g|+eps)
	want := []float64{1*(1-0.001) - 0.01*0.5/(0.5+1e-8), -2*(1-0.001) - 0.01*0.25/(0.25+1e-8)}
	for i := range want {
		if math.Abs(float64(p[0][i])-want[i]) > 1e-6 {
			t.Errorf("after one step p[%d] = %v, want %v", i, p[0][i], want[i])
		}
	}
	st := o.State()
	o2 := NewAdamW(0.1)
	if err := o2.SetState(st); err != nil {
		t.Fatal(err)
	}
	q := [][]float32{{p[0][0], p[0][1]}}
	o.Step(p, [][]float32{{-1, 1}}, 0.01)
	o2.Step(q, [][]float32{{-1, 1}}, 0.01)
	if p[0][0] != q[0][0] || p[0][1] != q[0][1] {
		t.Error("restored optimizer state does not continue identically")
	}
}

func TestClipGradNorm(t *testing.T) {
	g := [][]float32{{3}, {4}}
	if n := ClipGradNorm(g, 1); n != 5 || math.Abs(float64(g[0][0])-0.6) > 1e-6 || math.Abs(float64(g[1][0])-0.8) > 1e-6 {
		t.Errorf("clip: norm %v, grads %v", n, g)
	}
}

type gradBatch struct {
	Sequences []struct {
		PromptIDs     []int `json:"prompt_ids"`
		CompletionIDs []int `json:"completion_ids"`
	} `json:"sequences"`
}

func completionExample(prompt, completion []int) Example {
	toks := append(append([]int{}, prompt...), completion...)
	mask := make([]bool, len(toks))
	for p := len(prompt); p < len(toks); p++ {
		mask[p] = true
	}
	return Example{Tokens: toks, Mask: mask}
}

// TestSGDStepMatchesReference: from an adapter with A and B nonzero, one SGD
// step with lr 1 leaves adapter − gradient as the PyTorch reference computed,
// with the batch in one micro-batch or accumulated over three.
func TestSGDStepMatchesReference(t *testing.T) {
	for _, name := range []string{"tiny-qwen2-bf16", "tiny-llama-f32", "tiny-qwen3-f32"} {
		for _, accum := range []int{1, 3} {
			dir := filepath.Join("..", "model", "testdata", name)
			m, err := model.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			ad, err := m.LoadAdapter(filepath.Join(dir, "adapter"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := m.LoadAdapter(filepath.Join(dir, "sgd-step"))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(filepath.Join(dir, "grad-batch.json"))
			var gb gradBatch
			if err := json.Unmarshal(raw, &gb); err != nil {
				t.Fatal(err)
			}
			var data []Example
			for _, s := range gb.Sequences {
				data = append(data, completionExample(s.PromptIDs, s.CompletionIDs))
			}
			cfg := Config{LR: 1, Scheduler: "constant", BatchSize: 3 / accum, GradAccum: accum, MaxSteps: 1, Optim: "sgd", Seed: 1}
			tr, err := New(m, ad, cfg, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.Run(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			_, got := ad.Params()
			names, ref := want.Params()
			for i := range ref {
				var num, den float64
				for j := range ref[i] {
					d := float64(got[i][j] - ref[i][j])
					num += d * d
					den += float64(ref[i][j]) * float64(ref[i][j])
				}
				if rel := math.Sqrt(num / den); rel > 1e-4 {
					t.Errorf("%s accum %d: %s relative error %.2e", name, accum, names[i], rel)
				}
			}
			m.Close()
		}
	}
}

func smallModel(t *testing.T) *model.Model {
	t.Helper()
	c, _ := model.ConfigFor(model.Qwen2, "tiny")
	c.VocabSize, c.Hidden, c.Heads, c.KVHeads, c.HeadDim, c.Intermediate, c.Layers = 200, 32, 4, 2, 8, 48, 2
	dir := t.TempDir()
	if err := model.WriteRandom(dir, c, "f32", 3); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func randomExamples(n, vocab int, seed uint64) []Example {
	rng := rand.New(rand.NewPCG(seed, 1))
	var out []Example
	for i := 0; i < n; i++ {
		p, c := make([]int, 3+rng.IntN(8)), make([]int, 1+rng.IntN(4))
		for j := range p {
			p[j] = rng.IntN(vocab)
		}
		for j := range c {
			c[j] = 7 + j // learnable: every completion is 7, 8, 9, ...
		}
		out = append(out, completionExample(p, c))
	}
	return out
}

// TestResumeBitwise: a run interrupted after step 3 and resumed from its
// checkpoint ends with exactly the adapter of an uninterrupted run.
func TestResumeBitwise(t *testing.T) {
	m := smallModel(t)
	data := randomExamples(24, m.Config.VocabSize, 5)
	newAdapter := func() *model.Adapter {
		ad, err := m.NewAdapter(model.AdapterConfig{R: 4, LoraAlpha: 8, TargetModules: []string{"q", "v", "up"}}, 1)
		if err != nil {
			t.Fatal(err)
		}
		return ad
	}
	cfg := DefaultConfig()
	cfg.LR, cfg.BatchSize, cfg.GradAccum, cfg.Epochs, cfg.WarmupRatio, cfg.Dropout = 1e-2, 2, 2, 2, 0.1, 0.1
	cfg.SaveSteps = 2

	cfg.OutDir = t.TempDir()
	full := newAdapter()
	tr, err := New(m, full, cfg, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	total := tr.TotalSteps()

	cfg.OutDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	tr, _ = New(m, newAdapter(), cfg, data, nil)
	err = tr.Run(ctx, func(s StepInfo) {
		if s.Step == 3 {
			cancel()
		}
	})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run returned %v", err)
	}
	ck := LatestCheckpoint(cfg.OutDir)
	if filepath.Base(ck) != "checkpoint-3" {
		t.Fatalf("latest checkpoint %q, want checkpoint-3", ck)
	}
	resumed := newAdapter()
	tr, _ = New(m, resumed, cfg, data, nil)
	if err := tr.Resume(ck); err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	sameParams(t, full, resumed)
	ms, err := ReadMetrics(filepath.Join(cfg.OutDir, metricsFile))
	if err != nil || len(ms) != total {
		t.Fatalf("metrics.jsonl after resume: %d lines (%v), want %d", len(ms), err, total)
	}
	// other data is refused
	tr, _ = New(m, newAdapter(), cfg, data[1:], nil)
	if err := tr.Resume(ck); err == nil {
		t.Error("resume with other data accepted")
	}
}

// TestLossFalls: a few steps on learnable data lower the training loss.
func TestLossFalls(t *testing.T) {
	m := smallModel(t)
	data := randomExamples(16, m.Config.VocabSize, 8)
	ad, _ := m.NewAdapter(model.AdapterConfig{R: 8, LoraAlpha: 16, TargetModules: []string{"q", "k", "v", "o", "gate", "up", "down"}}, 2)
	before, _ := MeanLoss(m, ad, data)
	cfg := DefaultConfig()
	cfg.LR, cfg.MaxSteps, cfg.Dropout = 5e-2, 40, 0
	tr, err := New(m, ad, cfg, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	after, _ := MeanLoss(m, ad, data)
	if after > before-0.3 { // tied 0.02-scale embeddings bound how far logits can move
		t.Errorf("loss %v → %v: did not fall", before, after)
	}
	t.Logf("loss %.3f → %.3f over %d steps", before, after, cfg.MaxSteps)
}

// TestOutDirLocked: a second run into a directory in use is refused.
func TestOutDirLocked(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := smallModel(t)
	ad, _ := m.NewAdapter(model.AdapterConfig{R: 2, LoraAlpha: 4, TargetModules: []string{"q"}}, 1)
	cfg := DefaultConfig()
	cfg.MaxSteps, cfg.OutDir = 1, dir
	tr, _ := New(m, ad, cfg, randomExamples(2, m.Config.VocabSize, 1), nil)
	if err := tr.Run(context.Background(), nil); err == nil {
		t.Error("a run into a locked directory was accepted")
	}
	unlock()
	if err := tr.Run(context.Background(), nil); err != nil {
		t.Errorf("after unlocking: %v", err)
	}
}
