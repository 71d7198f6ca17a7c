package train

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/model/safetensors"
)

// readTensors reads every tensor of a safetensors file as float32, by name.
func readTensors(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]float32{}
	for _, name := range f.Names() {
		tn, _ := f.Tensor(name)
		if out[name], err = tn.ToF32(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// newFull loads dir as a model for full finetuning.
func newFull(t *testing.T, dir string) *model.Full {
	t.Helper()
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	f, err := model.NewFull(m)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFullSGDStepMatchesReference is the goal check of full finetuning: one
// plain SGD step with lr 1, no clipping, decay or dropout, from the stored
// weights, moves every tensor by exactly the PyTorch reference's gradient
// (scripts/reference/make_full_fixture.py), in one micro-batch or
// accumulated over three; on a tied BF16 Qwen2, an odd-shaped Llama and an
// odd-shaped Qwen3 (q_norm, k_norm).
func TestFullSGDStepMatchesReference(t *testing.T) {
	for _, name := range []string{"tiny-qwen2-bf16", "tiny-odd-llama", "tiny-qwen3-f32"} {
		for _, accum := range []int{1, 3} {
			dir := filepath.Join("..", "model", "testdata", name)
			f := newFull(t, dir)
			raw, err := os.ReadFile(filepath.Join(dir, "full-batch.json"))
			if err != nil {
				t.Fatal(err)
			}
			var gb gradBatch
			if err := json.Unmarshal(raw, &gb); err != nil {
				t.Fatal(err)
			}
			var data []Example
			for _, s := range gb.Sequences {
				data = append(data, completionExample(s.PromptIDs, s.CompletionIDs))
			}
			names, ws := f.Params()
			before := make([][]float32, len(ws))
			for i, w := range ws {
				before[i] = append([]float32(nil), w...)
			}
			cfg := Config{LR: 1, Scheduler: "constant", BatchSize: 3 / accum, GradAccum: accum, MaxSteps: 1, Optim: "sgd", Seed: 1}
			tr, err := NewFull(f, cfg, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.Run(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			grads := readTensors(t, filepath.Join(dir, "full-grad.safetensors"))
			if len(grads) != len(ws) {
				t.Errorf("%s: %d tensors trained, the reference has %d gradients", name, len(ws), len(grads))
			}
			worst := 0.0
			for i, w := range ws {
				want, ok := grads[names[i]]
				if !ok {
					t.Fatalf("reference lacks %s", names[i])
				}
				var num, den float64
				for j := range want {
					d := float64(before[i][j]-w[j]) - float64(want[j]) // the update is lr·g
					num += d * d
					den += float64(want[j]) * float64(want[j])
				}
				rel := math.Sqrt(num / den)
				worst = max(worst, rel)
				if rel > 1e-3 {
					t.Errorf("%s accum %d: %s updated by the gradient to a relative %.2e", name, accum, names[i], rel)
				}
			}
			t.Logf("%s accum %d: worst relative error of an update %.2e over %d tensors", name, accum, worst, len(ws))
		}
	}
}

// TestFullResumeBitwise: a full-finetuning AdamW run interrupted after step 3
// and resumed from its checkpoint ends with exactly the weights of an
// uninterrupted run; a LoRA checkpoint is refused.
func TestFullResumeBitwise(t *testing.T) {
	m := smallModel(t)
	data := randomExamples(24, m.Config.VocabSize, 5)
	fresh := func() *model.Full {
		f, err := model.NewFull(m)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	cfg := DefaultConfig()
	cfg.LR, cfg.BatchSize, cfg.GradAccum, cfg.Epochs, cfg.WarmupRatio, cfg.WeightDecay = 1e-3, 2, 2, 2, 0.1, 0.01
	cfg.SaveSteps = 2
	cfg.OutDir = t.TempDir()
	whole := fresh()
	tr, err := NewFull(whole, cfg, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}

	cfg.OutDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	tr, _ = NewFull(fresh(), cfg, data, nil)
	err = tr.Run(ctx, func(s StepInfo) {
		if s.Step == 3 {
			cancel()
		}
	})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run returned %v", err)
	}
	ck := LatestCheckpoint(cfg.OutDir)
	// the checkpoint loads as a model
	if cm, err := model.Load(ck); err != nil {
		t.Errorf("checkpoint %s does not load as a model: %v", ck, err)
	} else {
		cm.Close()
	}
	resumed := fresh()
	tr, _ = NewFull(resumed, cfg, data, nil)
	if err := tr.Resume(ck); err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	sameParams(t, whole, resumed)
	ad, _ := m.NewAdapter(model.AdapterConfig{R: 2, LoraAlpha: 4, TargetModules: []string{"q"}}, 1)
	lora, _ := New(m, ad, cfg, data, nil)
	if err := lora.Resume(ck); err == nil {
		t.Error("a LoRA run resumed from a full-finetuning checkpoint")
	}
}

// TestFullLearns: full finetuning lowers the loss of learnable data much
// further than the LoRA test's bound (the embeddings and head move too), and
// full DPO raises the held-out reward accuracy above 1/2.
func TestFullLearns(t *testing.T) {
	m := smallModel(t)
	data := randomExamples(16, m.Config.VocabSize, 8)
	f, err := model.NewFull(m)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := MeanLoss(f.Model, nil, data)
	cfg := DefaultConfig()
	cfg.LR, cfg.MaxSteps = 1e-2, 30
	tr, err := NewFull(f, cfg, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	after, _ := MeanLoss(f.Model, nil, data)
	if after > before/4 {
		t.Errorf("loss %v → %v: did not fall to a quarter", before, after)
	}
	t.Logf("sft loss %.3f → %.3f over %d steps", before, after, cfg.MaxSteps)

	var pairs []Pair
	for i, e := range randomExamples(24, m.Config.VocabSize, 4) {
		pairs = append(pairs, Pair{Prompt: e.Tokens[:len(e.Tokens)-2], Chosen: []int{11, 12}, Rejected: []int{13, 14 + i%2}})
	}
	f, _ = model.NewFull(m)
	cfg.LR, cfg.MaxSteps, cfg.BatchSize = 1e-3, 20, 4
	tr, err = NewFullDPO(f, cfg, DPOConfig{Beta: 0.1, Loss: "sigmoid"}, pairs[:18], pairs[18:])
	if err != nil {
		t.Fatal(err)
	}
	var last StepInfo
	if err := tr.Run(context.Background(), func(s StepInfo) { last = s }); err != nil {
		t.Fatal(err)
	}
	if acc := last.Metrics["eval_rewards/accuracies"]; acc <= 0.5 {
		t.Errorf("full DPO: held-out reward accuracy %v after training", acc)
	}
	t.Logf("dpo: eval loss %.3f, reward accuracy %.2f", *last.EvalLoss, last.Metrics["eval_rewards/accuracies"])
}

// TestModulesToSaveResume: LoRA with modules_to_save trains the saved
// tensors (they move) and resumes bitwise from a checkpoint.
func TestModulesToSaveResume(t *testing.T) {
	m := smallModel(t)
	data := randomExamples(12, m.Config.VocabSize, 3)
	fresh := func() *model.Adapter {
		ad, err := m.NewAdapter(model.AdapterConfig{R: 4, LoraAlpha: 8, TargetModules: []string{"q", "v"},
			ModulesToSave: []string{"embed_tokens", "norm"}}, 1)
		if err != nil {
			t.Fatal(err)
		}
		return ad
	}
	cfg := DefaultConfig()
	cfg.LR, cfg.MaxSteps, cfg.BatchSize, cfg.Dropout = 1e-2, 4, 3, 0
	cfg.OutDir = t.TempDir()
	whole := fresh()
	before := append([]float32(nil), whole.Saved["model.norm.weight"]...)
	tr, err := New(m, whole, cfg, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if whole.Saved["model.norm.weight"][0] == before[0] {
		t.Error("the saved final norm did not train")
	}
	cfg.OutDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	tr, _ = New(m, fresh(), cfg, data, nil)
	tr.Run(ctx, func(s StepInfo) {
		if s.Step == 2 {
			cancel()
		}
	})
	resumed := fresh()
	tr, _ = New(m, resumed, cfg, data, nil)
	if err := tr.Resume(LatestCheckpoint(cfg.OutDir)); err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	sameParams(t, whole, resumed)
}

// sameParams fails unless the uninterrupted and the resumed run's trained
// tensors are bitwise equal.
func sameParams(t *testing.T, whole, resumed interface {
	Params() ([]string, [][]float32)
}) {
	t.Helper()
	_, a := whole.Params()
	_, b := resumed.Params()
	for i := range a {
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				t.Fatalf("tensor %d [%d]: resumed %v, uninterrupted %v", i, j, b[i][j], a[i][j])
			}
		}
	}
}
