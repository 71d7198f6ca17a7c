package model

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotrain/gotrain/model/safetensors"
)

type gradBatch struct {
	Adapter   string `json:"adapter"`
	Sequences []struct {
		PromptIDs     []int `json:"prompt_ids"`
		CompletionIDs []int `json:"completion_ids"`
	} `json:"sequences"`
	Loss float64 `json:"loss"`
}

// completionBatch packs prompt/completion pairs with weight 1/N on each of the
// N completion tokens: the mean token cross-entropy.
func completionBatch(seqs [][2][]int) *TrainBatch {
	n := 0
	for _, s := range seqs {
		n += len(s[1])
	}
	var b TrainBatch
	for _, s := range seqs {
		toks := append(append([]int{}, s[0]...), s[1]...)
		w := make([]float32, len(toks))
		for p := len(s[0]); p < len(toks); p++ {
			w[p] = 1 / float32(n)
		}
		b.AddSequence(toks, w)
	}
	return &b
}

// TestGoldenGradients compares the loss and every LoRA gradient with the
// PyTorch reference (scripts/reference), relative to the gradient's norm.
func TestGoldenGradients(t *testing.T) {
	for _, name := range []string{"tiny-qwen2-bf16", "tiny-llama-f32"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			raw, err := os.ReadFile(filepath.Join(dir, "grad-batch.json"))
			if err != nil {
				t.Fatal(err)
			}
			var gb gradBatch
			if err := json.Unmarshal(raw, &gb); err != nil {
				t.Fatal(err)
			}
			ad, err := m.LoadAdapter(filepath.Join(dir, gb.Adapter))
			if err != nil {
				t.Fatal(err)
			}
			var seqs [][2][]int
			for _, s := range gb.Sequences {
				seqs = append(seqs, [2][]int{s.PromptIDs, s.CompletionIDs})
			}
			g := ad.ZerosLike()
			loss, err := m.LossAndGrad(completionBatch(seqs), ad, g, TrainOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(loss - gb.Loss); d > 1e-4*math.Abs(gb.Loss) {
				t.Errorf("loss %v, reference %v", loss, gb.Loss)
			}
			ref, err := safetensors.Open(filepath.Join(dir, "grad.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			worst := 0.0
			compare := func(key string, got []float32) {
				tn, ok := ref.Tensor(key)
				if !ok {
					t.Fatalf("reference has no %s", key)
				}
				want, err := tn.ToF32()
				if err != nil {
					t.Fatal(err)
				}
				var num, den float64
				for i := range want {
					d := float64(got[i] - want[i])
					num += d * d
					den += float64(want[i]) * float64(want[i])
				}
				rel := math.Sqrt(num / max(den, 1e-30))
				worst = max(worst, rel)
				if rel > 1e-4 {
					t.Errorf("%s: relative error %.2e", key, rel)
				}
			}
			for l, layer := range g.Layers {
				for mod, lr := range layer {
					if lr == nil {
						continue
					}
					p := peftPrefix(l, Module(mod))
					compare(p+"lora_A.weight", lr.A)
					compare(p+"lora_B.weight", lr.B)
				}
			}
			t.Logf("loss %.6f (reference %.6f), worst relative gradient error %.2e", loss, gb.Loss, worst)
		})
	}
}

// TestGradFiniteDifference checks LoRA gradients with dropout against central
// differences of the loss on a small random model.
func TestGradFiniteDifference(t *testing.T) {
	m, err := Load(writeSmall(t, Qwen2, "f32"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ad := randomAdapter(t, m, "q", "k", "v", "o", "gate", "up", "down")
	rng := rand.New(rand.NewPCG(9, 9))
	b := completionBatch([][2][]int{
		{randomTokens(rng, 5, m.Config.VocabSize), randomTokens(rng, 4, m.Config.VocabSize)},
		{randomTokens(rng, 3, m.Config.VocabSize), randomTokens(rng, 6, m.Config.VocabSize)},
	})
	opt := TrainOptions{Dropout: 0.3, Seed: 42}
	g := ad.ZerosLike()
	if _, err := m.LossAndGrad(b, ad, g, opt); err != nil {
		t.Fatal(err)
	}
	lossAt := func() float64 {
		l, err := m.LossAndGrad(b, ad, ad.ZerosLike(), opt)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for l := range ad.Layers {
		for mod, lr := range ad.Layers[l] {
			for _, which := range []struct {
				w, g []float32
			}{{lr.A, g.Layers[l][mod].A}, {lr.B, g.Layers[l][mod].B}} {
				for k := 0; k < 3; k++ {
					i := rng.IntN(len(which.w))
					const h = 1e-2
					orig := which.w[i]
					which.w[i] = orig + h
					up := lossAt()
					which.w[i] = orig - h
					down := lossAt()
					which.w[i] = orig
					fd := (up - down) / (2 * h)
					if d := math.Abs(fd - float64(which.g[i])); d > 2e-3*max(1, math.Abs(fd)) {
						t.Errorf("layer %d %s [%d]: gradient %v, finite difference %v", l, Module(mod), i, which.g[i], fd)
					}
				}
			}
		}
	}
}
