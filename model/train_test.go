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
	for _, name := range goldenFixtures {
		t.Run(name, func(t *testing.T) {
			m, dir := loadFixture(t, name)
			checkGoldenGradients(t, m, dir)
			// Qwen3-MoE: an adapter with LoRA on the routers too
			// (scripts/reference/make_router_fixture.py)
			if sub := filepath.Join(dir, "router-lora"); fileExists(filepath.Join(sub, "grad-batch.json")) {
				checkGoldenGradients(t, m, sub)
			}
		})
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// checkGoldenGradients compares LossAndGrad with dir's grad-batch.json,
// grad.safetensors and (Qwen3-MoE) grad-aux.json and grad-aux.safetensors.
func checkGoldenGradients(t *testing.T, m *Model, dir string) {
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
	// grad.safetensors: the cross-entropy's gradients; for Qwen3-MoE
	// also grad-aux.safetensors: with the router's load-balancing
	// loss weighted in (grad-aux.json).
	var aux struct {
		Coef float64 `json:"router_aux_loss_coef"`
		Aux  float64 `json:"aux_loss"`
		Loss float64 `json:"loss"`
	}
	variants := []string{"grad"}
	if raw, err := os.ReadFile(filepath.Join(dir, "grad-aux.json")); err == nil {
		if err := json.Unmarshal(raw, &aux); err != nil {
			t.Fatal(err)
		}
		variants = append(variants, "grad-aux")
	}
	for _, v := range variants {
		opt, wantLoss := TrainOptions{}, gb.Loss
		var gotAux float64
		if v == "grad-aux" {
			opt, wantLoss = TrainOptions{RouterAuxCoef: aux.Coef, RouterAux: &gotAux}, aux.Loss
		}
		g := ad.ZerosLike()
		loss, err := m.LossAndGrad(completionBatch(seqs), ad, g, opt)
		if err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(loss - wantLoss); d > 1e-4*math.Abs(wantLoss) {
			t.Errorf("%s: loss %v, reference %v", v, loss, wantLoss)
		}
		if d := math.Abs(gotAux - aux.Aux); v == "grad-aux" && d > 1e-4*aux.Aux {
			t.Errorf("router aux loss %v, reference %v", gotAux, aux.Aux)
		}
		ref, err := safetensors.Open(filepath.Join(dir, v+".safetensors"))
		if err != nil {
			t.Fatal(err)
		}
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
			rel := relErr(got, want)
			worst = max(worst, rel)
			if rel > 1e-4 {
				t.Errorf("%s: %s: relative error %.2e", v, key, rel)
			}
		}
		g.each(func(path string, lr *LoRA) {
			p := "base_model.model." + path + "."
			compare(p+"lora_A.weight", lr.A)
			compare(p+"lora_B.weight", lr.B)
		})
		ref.Close()
		t.Logf("%s %s: loss %.6f (reference %.6f), aux %.6f, worst relative gradient error %.2e", dir, v, loss, wantLoss, gotAux, worst)
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

// TestSharedPromptAndObjective: a prompt shared by two continuations
// (AddShared) with an objective over their log-probs gives the same loss and
// gradients as the continuations packed as separate sequences with the
// objective's weights.
func TestSharedPromptAndObjective(t *testing.T) {
	m, err := Load(writeSmall(t, Llama, "f32"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ad := randomAdapter(t, m, "q", "k", "v", "o", "gate", "up", "down")
	rng := rand.New(rand.NewPCG(2, 3))
	prompt := randomTokens(rng, 9, m.Config.VocabSize)
	conts := [][]int{randomTokens(rng, 3, m.Config.VocabSize), randomTokens(rng, 1, m.Config.VocabSize)}
	// objective: loss = −log σ(Σ lp(chosen) − Σ lp(rejected)), rows in batch order
	var shared TrainBatch
	ones := [][]float32{{1, 1, 1}, {1}}
	rows := shared.AddShared(prompt, conts, ones)
	owner := map[int]int{}
	for k, rs := range rows {
		for _, r := range rs {
			owner[r] = k
		}
	}
	var order []int // continuation of each target, in batch order
	for tpos, tg := range shared.Targets {
		if tg >= 0 {
			order = append(order, owner[tpos])
		}
	}
	obj := func(lp []float32) (float64, []float32) {
		var s [2]float64
		for i, v := range lp {
			s[order[i]] += float64(v)
		}
		h := s[0] - s[1]
		sig := 1 / (1 + math.Exp(-h))
		d := make([]float32, len(lp))
		for i := range lp {
			if order[i] == 0 {
				d[i] = float32(-(1 - sig))
			} else {
				d[i] = float32(1 - sig)
			}
		}
		return -math.Log(sig), d
	}
	g1 := ad.ZerosLike()
	loss1, err := m.Backprop(&shared, ad, g1, TrainOptions{}, obj)
	if err != nil {
		t.Fatal(err)
	}
	var lpSum [2]float64
	seqs := []Sequence{{Tokens: append(append([]int{}, prompt...), conts[0]...), From: len(prompt)},
		{Tokens: append(append([]int{}, prompt...), conts[1]...), From: len(prompt)}}
	lps, _ := m.Score(seqs, ad)
	for k := range lps {
		for _, v := range lps[k] {
			lpSum[k] += float64(v)
		}
	}
	h := lpSum[0] - lpSum[1]
	sig := 1 / (1 + math.Exp(-h))
	if math.Abs(loss1+math.Log(sig)) > 1e-5 {
		t.Errorf("shared-prompt loss %v, separate %v", loss1, -math.Log(sig))
	}
	// the same through separate sequences with weights −dloss/dlp: the loss
	// Σ w·(−log p) has gradient −w with respect to log p
	var sep TrainBatch
	for k, c := range conts {
		toks := append(append([]int{}, prompt...), c...)
		w := make([]float32, len(toks))
		for j := range c {
			w[len(prompt)+j] = float32(1 - sig)
			if k == 1 {
				w[len(prompt)+j] = -float32(1 - sig)
			}
		}
		sep.AddSequence(toks, w)
	}
	g2 := ad.ZerosLike()
	if _, err := m.LossAndGrad(&sep, ad, g2, TrainOptions{}); err != nil {
		t.Fatal(err)
	}
	_, a := g1.Params()
	_, b := g2.Params()
	for i := range a {
		for j := range a[i] {
			if d := math.Abs(float64(a[i][j] - b[i][j])); d > 1e-5*max(1, math.Abs(float64(b[i][j]))) {
				t.Fatalf("param %d [%d]: shared %v, separate %v", i, j, a[i][j], b[i][j])
			}
		}
	}
}
