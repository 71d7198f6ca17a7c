package model

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/model/safetensors"
)

// moeConfig is an odd-shaped Qwen3-MoE small enough for finite differences:
// head_dim ≠ hidden/heads, GQA, 5 experts top 3, layer 1 dense by
// mlp_only_layers.
func moeConfig(norm bool) *Config {
	c, _ := ConfigFor(Qwen3MoE, "tiny")
	c.VocabSize, c.Hidden, c.Heads, c.KVHeads, c.HeadDim, c.Intermediate, c.Layers = 300, 32, 4, 2, 12, 40, 3
	c.Experts, c.ExpertsPerTok, c.MoEIntermediate, c.MLPOnlyLayers, c.NormTopKProb = 5, 3, 24, []int{1}, norm
	c.TieEmbeddings = false
	return c
}

// loadRandom writes a random checkpoint of c and loads it, closed when the
// test ends.
func loadRandom(t *testing.T, c *Config, dtype string, seed uint64) *Model {
	t.Helper()
	return loadRandomWith(t, c, dtype, seed, LoadOptions{})
}

// loadRandomWith is loadRandom with load options (a quantized base).
func loadRandomWith(t *testing.T, c *Config, dtype string, seed uint64, opt LoadOptions) *Model {
	t.Helper()
	dir := t.TempDir()
	if err := WriteRandom(dir, c, dtype, seed); err != nil {
		t.Fatal(err)
	}
	m, err := LoadWith(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// randomizeB gives every LoRA B (experts' too) nonzero values.
func randomizeB(ad *Adapter) {
	rng := rand.New(rand.NewPCG(5, 6))
	ad.each(func(_ string, l *LoRA) {
		for i := range l.B {
			l.B[i] = float32(rng.NormFloat64() * 0.1)
		}
	})
}

func TestMoEConfig(t *testing.T) {
	base := `{"architectures":["Qwen3MoeForCausalLM"],"model_type":"qwen3_moe","vocab_size":100,"hidden_size":16,
	"intermediate_size":32,"num_hidden_layers":6,"num_attention_heads":2,"num_key_value_heads":1,"head_dim":8`
	c, err := ParseConfig([]byte(base + `,"num_experts":5,"num_experts_per_tok":3,"moe_intermediate_size":12,
	"decoder_sparse_step":2,"mlp_only_layers":[3,99],"norm_topk_prob":true,"output_router_logits":true,"router_aux_loss_coef":0.02}`))
	if err != nil {
		t.Fatal(err)
	}
	var sparse []int
	for l := 0; l < c.Layers; l++ {
		if c.Sparse(l) {
			sparse = append(sparse, l)
		}
	}
	// (l+1) % 2 == 0 → 1, 3, 5; 3 is in mlp_only_layers
	if len(sparse) != 2 || sparse[0] != 1 || sparse[1] != 5 || !c.NormTopKProb || c.DefaultRouterAuxCoef() != 0.02 {
		t.Errorf("sparse layers %v, config %+v", sparse, c.MoEConfig)
	}
	if d, _ := ParseConfig([]byte(base + `}`)); d == nil || d.Experts != 128 || d.ExpertsPerTok != 8 || d.DefaultRouterAuxCoef() != 0 {
		t.Errorf("defaults: %+v", d)
	}
	for field, bad := range map[string]string{
		"num_experts_per_tok":             `,"num_experts":4,"num_experts_per_tok":5`,
		"decoder_sparse_step":             `,"decoder_sparse_step":0`,
		"shared_expert_intermediate_size": `,"shared_expert_intermediate_size":64`,
		"moe_intermediate_size":           `,"moe_intermediate_size":-1`,
		"router_aux_loss_coef":            `,"router_aux_loss_coef":-1`,
	} {
		if _, err := ParseConfig([]byte(base + bad + `}`)); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %v", field, err)
		}
	}
	_, err = ParseConfig([]byte(`{"model_type":"qwen2","vocab_size":100,"hidden_size":16,"intermediate_size":32,
	"num_hidden_layers":2,"num_attention_heads":2,"num_experts":4}`))
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "num_experts") {
		t.Errorf("qwen2 with experts: %v", err)
	}
}

// centralDiff is the central difference of lossAt in w[i] with step h.
func centralDiff(w []float32, i int, h float32, lossAt func() float64) float64 {
	orig := w[i]
	w[i] = orig + h
	up := lossAt()
	w[i] = orig - h
	down := lossAt()
	w[i] = orig
	return (up - down) / float64(2*h)
}

// TestMoEGradFiniteDifference checks LoRA gradients (attention, dense MLP
// and every expert) and full finetuning's (router included) against
// finite differences, with the load-balancing loss weighted in.
func TestMoEGradFiniteDifference(t *testing.T) {
	for _, norm := range []bool{true, false} {
		m := loadRandom(t, moeConfig(norm), "f32", 11)
		rng := rand.New(rand.NewPCG(9, 9))
		V := m.Config.VocabSize
		b := completionBatch([][2][]int{
			{randomTokens(rng, 5, V), randomTokens(rng, 4, V)},
			{randomTokens(rng, 3, V), randomTokens(rng, 6, V)},
		})
		opt := TrainOptions{RouterAuxCoef: 0.5}
		check := func(name string, w, g []float32, lossAt func() float64) {
			for k := 0; k < 3; k++ {
				i := rng.IntN(len(w))
				// A step that moves a token to another expert makes the
				// loss jump (top-k and the balancing loss's counts are
				// piecewise constant): a smaller step then agrees.
				ok := false
				var fd float64
				for _, h := range []float32{2e-3, 5e-4, 1e-4} {
					fd = centralDiff(w, i, h, lossAt)
					ok = ok || math.Abs(fd-float64(g[i])) <= 3e-3*max(1, math.Abs(fd))
				}
				if !ok {
					t.Errorf("norm %v %s [%d]: gradient %v, finite difference %v", norm, name, i, g[i], fd)
				}
			}
		}
		ad, err := m.NewAdapter(AdapterConfig{R: 3, LoraAlpha: 6, TargetModules: []string{"q", "o", "gate", "up", "down", "router"}}, 3)
		if err != nil {
			t.Fatal(err)
		}
		randomizeB(ad)
		g := ad.ZerosLike()
		var aux float64
		opt.RouterAux = &aux
		if _, err := m.LossAndGrad(b, ad, g, opt); err != nil {
			t.Fatal(err)
		}
		opt.RouterAux = nil
		if !(aux >= 1 && aux < float64(m.Config.Experts)) { // ≥ 1 (k·E·Σ f·P ≥ k·1 in expectation per slot), well below E·k
			t.Errorf("router aux loss %v", aux)
		}
		names, ws := ad.Params()
		_, gs := g.Params()
		experts, routers := 0, 0
		for k := range ws {
			if strings.Contains(names[k], "mlp.gate.lora_") {
				routers++
			}
			if strings.Contains(names[k], "experts.") {
				experts++
				if experts%4 != 1 {
					continue
				}
			}
			check(names[k], ws[k], gs[k], func() float64 {
				l, err := m.LossAndGrad(b, ad, ad.ZerosLike(), opt)
				if err != nil {
					t.Fatal(err)
				}
				return l
			})
		}
		if want := 2 * 2 * 5 * 3; experts != want { // 2 sparse layers × 5 experts × 3 modules × A, B
			t.Errorf("%d expert LoRA tensors, want %d", experts, want)
		}
		if routers != 2*2 { // 2 sparse layers' routers × A, B
			t.Errorf("%d router LoRA tensors, want 4", routers)
		}
		f, err := NewFull(m)
		if err != nil {
			t.Fatal(err)
		}
		fg := f.ZerosLike()
		if _, err := f.Backprop(b, fg, opt, nil); err != nil {
			t.Fatal(err)
		}
		fnames, fws := f.Params()
		_, fgs := fg.Params()
		for k := range fws {
			if !strings.Contains(fnames[k], "mlp.gate.weight") && !strings.Contains(fnames[k], "experts.3.") && !strings.Contains(fnames[k], "layers.1.mlp") {
				continue
			}
			check(fnames[k], fws[k], fgs[k], func() float64 {
				l, err := f.Backprop(b, f.ZerosLike(), opt, nil)
				if err != nil {
					t.Fatal(err)
				}
				return l
			})
		}
	}
}

// decodeLogProbs decodes toks one at a time through a cache and returns
// the log-probability of each next token, as Score's [1:].
func decodeLogProbs(t *testing.T, m *Model, toks []int, ad *Adapter) []float32 {
	t.Helper()
	c := m.NewCache()
	var got []float32
	for p, tok := range toks[:len(toks)-1] {
		var b Batch
		b.Add(tok, p, 0, p+1, 0, 0)
		h, err := m.Forward(c, &b, ad, []int{0})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.logProbs(h, []int32{int32(toks[p+1])})...)
	}
	return got
}

// TestMoECacheAndAdapterRoundTrip: prefill equals token-by-token decoding
// (which reads only the chosen experts), an adapter with experts' LoRA saves
// under PEFT's names and loads back equal, and merging it gives the same
// log-probs.
func TestMoECacheAndAdapterRoundTrip(t *testing.T) {
	m := loadRandom(t, moeConfig(true), "f32", 11)
	ad, err := m.NewAdapter(AdapterConfig{R: 2, LoraAlpha: 4, TargetModules: []string{"k", "gate_proj", "down_proj", "router"}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	randomizeB(ad)
	toks := randomTokens(rand.New(rand.NewPCG(1, 2)), 23, m.Config.VocabSize)
	whole, err := m.Score([]Sequence{{Tokens: toks, From: 1}}, ad)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeLogProbs(t, m, toks, ad)
	for i := range got {
		if d := math.Abs(float64(got[i] - whole[0][i])); d > 1e-4 {
			t.Fatalf("token %d: decoded %v, prefill %v", i+1, got[i], whole[0][i])
		}
	}
	dir := t.TempDir()
	if err := ad.Save(dir); err != nil {
		t.Fatal(err)
	}
	names, _ := ad.Params()
	found, router := false, false
	for _, n := range names {
		found = found || n == "base_model.model.model.layers.2.mlp.experts.4.down_proj.lora_B.weight"
		router = router || n == "base_model.model.model.layers.2.mlp.gate.lora_A.weight"
	}
	if !router {
		t.Errorf("no PEFT router key among %v", names)
	}
	if !found {
		t.Errorf("no PEFT expert key among %d tensors, e.g. %s", len(names), names[len(names)-1])
	}
	back, err := m.LoadAdapter(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := m.Score([]Sequence{{Tokens: toks, From: 1}}, back)
	for i := range again[0] {
		if again[0][i] != whole[0][i] {
			t.Fatalf("reloaded adapter: token %d %v vs %v", i, again[0][i], whole[0][i])
		}
	}
	mdir := t.TempDir()
	if err := m.Merge(ad, mdir); err != nil {
		t.Fatal(err)
	}
	mm, err := Load(mdir)
	if err != nil {
		t.Fatal(err)
	}
	defer mm.Close()
	merged, _ := mm.Score([]Sequence{{Tokens: toks, From: 1}}, nil)
	for i := range merged[0] {
		if d := math.Abs(float64(merged[0][i] - whole[0][i])); d > 1e-4 {
			t.Fatalf("merged: token %d %v vs %v", i, merged[0][i], whole[0][i])
		}
	}
}

// TestPlanMoE: the memory plan holds every expert of Qwen3-MoE-30B-A3B
// (29 billion expert weights, NF4 ≈ 0.56 bytes each) and predicts it
// within the 20 GiB of the goal.
func TestPlanMoE(t *testing.T) {
	c, err := ConfigFor(Qwen3MoE, "30b-a3b")
	if err != nil {
		t.Fatal(err)
	}
	pl := PlanMemory(c, PlanInput{Quantize: "nf4", BatchTokens: 512, KVTokens: 4096})
	var experts int64
	for _, p := range pl.Parts {
		if strings.HasPrefix(p.Name, "experts") {
			experts = p.Bytes
		}
	}
	want := 48.0 * 128 * 3 * 768 * 2048 * (0.5 + 4.0/64)
	if math.Abs(float64(experts)-want) > 0.01*want || pl.Total > 20<<30 || pl.Total < int64(want) {
		t.Errorf("experts %d bytes (want %.0f), total %d:\n%s", experts, want, pl.Total, pl)
	}
	lora := PlanMemory(c, PlanInput{Quantize: "nf4", LoRARank: 8, Optimizer: "adamw", BatchTokens: 256})
	if lora.Total <= pl.Total-int64(4096*48*2*512*4) {
		t.Errorf("LoRA training plan %d below inference's", lora.Total)
	}
	t.Logf("predict:\n%s\nLoRA r=8 train 256 tokens:\n%s", pl, lora)
	if FullParams(c) < 30e9 || FullParams(c) > 31e9 {
		t.Errorf("FullParams %d, want 30.5 billion", FullParams(c))
	}
}

// TestMoEAdapterRejects: LoRA keys that do not fit the experts are refused
// by name: a router of a dense layer, an expert of a dense layer, a dense MLP key in a
// sparse layer, an expert beyond num_experts.
func TestMoEAdapterRejects(t *testing.T) {
	m := loadRandom(t, moeConfig(true), "f32", 11)
	for key, want := range map[string]string{
		"base_model.model.model.layers.1.mlp.gate.lora_A.weight":                "does not fit layer 1",
		"base_model.model.model.layers.1.mlp.experts.0.up_proj.lora_A.weight":   "does not fit layer 1",
		"base_model.model.model.layers.0.mlp.up_proj.lora_A.weight":             "does not fit layer 0",
		"base_model.model.model.layers.2.mlp.experts.5.down_proj.lora_A.weight": "does not fit layer 2",
		"base_model.model.model.layers.2.mlp.experts.1.q_proj.lora_A.weight":    "unknown module",
	} {
		dir := t.TempDir()
		ts := []safetensors.Tensor{{Name: key, DType: safetensors.F32, Shape: []int{1, 1}, Data: make([]byte, 4)}}
		if err := safetensors.Write(filepath.Join(dir, "adapter_model.safetensors"), ts, nil); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "adapter_config.json"), []byte(`{"r": 1, "lora_alpha": 1}`), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := m.LoadAdapter(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", key, err, want)
		}
	}
}

// TestZerosInExpertsRouters: a gradient laid out in one flat buffer (the
// data-parallel trainer's) aliases it in Params order for every tensor,
// experts' and routers' included.
func TestZerosInExpertsRouters(t *testing.T) {
	m := loadRandom(t, moeConfig(true), "f32", 11)
	ad, err := m.NewAdapter(AdapterConfig{R: 2, LoraAlpha: 4, TargetModules: []string{"q", "up", "router"}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	_, ts := ad.Params()
	n := 0
	for _, v := range ts {
		n += len(v)
	}
	flat := make([]float32, n)
	_, gs := ad.ZerosIn(flat).Params()
	off := 0
	for i, v := range gs {
		if len(v) != len(ts[i]) || len(v) == 0 || &v[0] != &flat[off] {
			t.Fatalf("tensor %d: not at offset %d of the flat buffer", i, off)
		}
		off += len(v)
	}
}
