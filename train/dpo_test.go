package train

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/model/safetensors"
)

type dpoFixture struct {
	Beta           float64 `json:"beta"`
	LabelSmoothing float64 `json:"label_smoothing"`
	Pairs          []struct {
		Prompt   []int `json:"prompt_ids"`
		Chosen   []int `json:"chosen_ids"`
		Rejected []int `json:"rejected_ids"`
	} `json:"pairs"`
	Sigmoid, IPO struct {
		Loss    float64            `json:"loss"`
		Metrics map[string]float64 `json:"metrics"`
	}
}

// TestDPOMatchesReference: DPO loss, TRL metrics and LoRA gradients against
// the PyTorch reference (scripts/reference/make_dpo_fixture.py), with a
// nonzero reference adapter and a different policy, for sigmoid (with label
// smoothing) and IPO.
func TestDPOMatchesReference(t *testing.T) {
	for _, name := range []string{"tiny-llama-f32", "tiny-qwen2-bf16", "tiny-qwen3-f32"} {
		dir := filepath.Join("..", "model", "testdata", name)
		raw, err := os.ReadFile(filepath.Join(dir, "dpo-batch.json"))
		if err != nil {
			t.Fatal(err)
		}
		var fx dpoFixture
		if err := json.Unmarshal(raw, &fx); err != nil {
			t.Fatal(err)
		}
		fx.IPO = struct {
			Loss    float64            `json:"loss"`
			Metrics map[string]float64 `json:"metrics"`
		}{}
		var both map[string]json.RawMessage
		json.Unmarshal(raw, &both)
		json.Unmarshal(both["ipo"], &fx.IPO)
		m, err := model.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		ref, _ := m.LoadAdapter(filepath.Join(dir, "adapter"))
		var pairs []Pair
		for _, p := range fx.Pairs {
			pairs = append(pairs, Pair{Prompt: p.Prompt, Chosen: p.Chosen, Rejected: p.Rejected})
		}
		for _, lt := range []string{"sigmoid", "ipo"} {
			want := fx.Sigmoid
			if lt == "ipo" {
				want = fx.IPO
			}
			// the reference is the adapter/ policy; training starts from sgd-step/
			policy, _ := m.LoadAdapter(filepath.Join(dir, "sgd-step"))
			cfg := Config{LR: 1, Scheduler: "constant", BatchSize: len(pairs), GradAccum: 1, MaxSteps: 1, Optim: "sgd", Seed: 1}
			tr, err := NewDPO(m, ref, cfg, DPOConfig{Beta: fx.Beta, LabelSmoothing: fx.LabelSmoothing, Loss: lt}, pairs, nil)
			if err != nil {
				t.Fatal(err)
			}
			tr.ad = policy
			g := policy.ZerosLike()
			all := []int{0, 1, 2}
			loss, _, ms, err := tr.task.accumulate(tr, all, all, grads{ad: g}, model.TrainOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(loss-want.Loss) > 1e-4*max(1, math.Abs(want.Loss)) {
				t.Errorf("%s %s: loss %v, reference %v", name, lt, loss, want.Loss)
			}
			for k, v := range want.Metrics {
				if math.Abs(ms[k]-v) > 1e-3*max(1, math.Abs(v)) {
					t.Errorf("%s %s: %s = %v, reference %v", name, lt, k, ms[k], v)
				}
			}
			f, err := safetensors.Open(filepath.Join(dir, "dpo-"+lt+"-grad.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			names, got := g.Params()
			for i, key := range names {
				tn, ok := f.Tensor(key)
				if !ok {
					t.Fatalf("reference lacks %s", key)
				}
				wantG, _ := tn.ToF32()
				var num, den float64
				for j := range wantG {
					d := float64(got[i][j] - wantG[j])
					num += d * d
					den += float64(wantG[j]) * float64(wantG[j])
				}
				if rel := math.Sqrt(num / max(den, 1e-30)); rel > 1e-4 {
					t.Errorf("%s %s: %s relative gradient error %.2e", name, lt, key, rel)
				}
			}
			f.Close()
		}
	}
}

// TestDPORaisesRewardAccuracy: a few DPO steps on learnable pairs make the
// held-out pairs' reward accuracy exceed 1/2, and resume works for DPO.
func TestDPOLearns(t *testing.T) {
	m := smallModel(t)
	var pairs []Pair
	for i, e := range randomExamples(24, m.Config.VocabSize, 4) {
		prompt := e.Tokens[:len(e.Tokens)-2]
		pairs = append(pairs, Pair{Prompt: prompt, Chosen: []int{11, 12}, Rejected: []int{13, 14 + i%2}})
	}
	ad, _ := m.NewAdapter(model.AdapterConfig{R: 8, LoraAlpha: 16, TargetModules: []string{"q", "v", "o", "up", "down"}}, 1)
	cfg := DefaultConfig()
	cfg.LR, cfg.MaxSteps, cfg.Dropout, cfg.BatchSize = 2e-2, 25, 0, 4
	cfg.OutDir = t.TempDir()
	tr, err := NewDPO(m, ad, cfg, DPOConfig{Beta: 0.1, Loss: "sigmoid"}, pairs[:18], pairs[18:])
	if err != nil {
		t.Fatal(err)
	}
	var last StepInfo
	if err := tr.Run(context.Background(), func(s StepInfo) { last = s }); err != nil {
		t.Fatal(err)
	}
	if acc := last.Metrics["eval_rewards/accuracies"]; acc <= 0.5 {
		t.Errorf("held-out reward accuracy %v after training", acc)
	}
	ms, err := ReadMetrics(filepath.Join(cfg.OutDir, metricsFile))
	if err != nil || ms[len(ms)-1].Metrics["rewards/margins"] == 0 {
		t.Errorf("metrics.jsonl lacks DPO metrics: %v %+v", err, ms[len(ms)-1])
	}
}

// TestDPOResumeBitwise: a DPO run interrupted after step 2 and resumed ends
// with exactly the adapter of an uninterrupted run; the reference
// log-probabilities are recomputed from the starting adapter, not the trained one.
func TestDPOResumeBitwise(t *testing.T) {
	m := smallModel(t)
	var pairs []Pair
	for i, e := range randomExamples(12, m.Config.VocabSize, 9) {
		pairs = append(pairs, Pair{Prompt: e.Tokens[:len(e.Tokens)-1], Chosen: []int{11, 12}, Rejected: []int{13, 14 + i%3}})
	}
	fresh := func() *model.Adapter {
		ad, _ := m.NewAdapter(model.AdapterConfig{R: 4, LoraAlpha: 8, TargetModules: []string{"q", "v", "down"}}, 1)
		return ad
	}
	cfg := DefaultConfig()
	cfg.LR, cfg.MaxSteps, cfg.BatchSize, cfg.GradAccum, cfg.Dropout, cfg.SaveSteps = 1e-2, 5, 2, 2, 0.1, 1
	dcfg := DPOConfig{Beta: 0.1, LabelSmoothing: 0.1, Loss: "sigmoid"}
	cfg.OutDir = t.TempDir()
	full := fresh()
	tr, err := NewDPO(m, full, cfg, dcfg, pairs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	cfg.OutDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	tr, _ = NewDPO(m, fresh(), cfg, dcfg, pairs, nil)
	if err := tr.Run(ctx, func(s StepInfo) {
		if s.Step == 2 {
			cancel()
		}
	}); err == nil {
		t.Fatal("the interrupted run did not report the interruption")
	}
	resumed := fresh()
	tr, err = NewDPO(m, resumed, cfg, dcfg, pairs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Resume(LatestCheckpoint(cfg.OutDir)); err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	sameParams(t, full, resumed)
}
