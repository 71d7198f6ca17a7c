package model

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/model/safetensors"
)

// TestModulesToSave: LoRA with modules_to_save trains the embedding, an
// untied LM head and norms beside A and B (gradients against finite
// differences); the adapter saves them under PEFT's key names, loads back
// to the same scores, and a model run with it equals the merged checkpoint.
func TestModulesToSave(t *testing.T) {
	for _, tc := range []struct {
		arch       Arch
		save, want []string
	}{
		{Llama, []string{"embed_tokens", "lm_head", "norm", "post_attention_layernorm"}, []string{"lm_head.weight", "model.embed_tokens.weight",
			"model.layers.0.post_attention_layernorm.weight", "model.layers.1.post_attention_layernorm.weight", "model.norm.weight"}},
		{Qwen3, []string{"q_norm", "k_norm"}, []string{"model.layers.0.self_attn.k_norm.weight", "model.layers.0.self_attn.q_norm.weight",
			"model.layers.1.self_attn.k_norm.weight", "model.layers.1.self_attn.q_norm.weight"}},
	} {
		t.Run(string(tc.arch), func(t *testing.T) { testModulesToSave(t, tc.arch, tc.save, tc.want) })
	}
}

func testModulesToSave(t *testing.T, arch Arch, save, want []string) {
	c := smallConfig(arch)
	c.TieEmbeddings = false
	dir := t.TempDir()
	if err := WriteRandom(dir, c, "f32", 7); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ad, err := m.NewAdapter(AdapterConfig{R: 4, LoraAlpha: 8, TargetModules: []string{"q", "v", "down"},
		ModulesToSave: save}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := ad.savedNames(); !slices.Equal(got, want) {
		t.Fatalf("saved modules %v, want %v", got, want)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	for _, v := range ad.Saved { // move them off the base's values
		for i := range v {
			v[i] += float32(rng.NormFloat64() * 0.05)
		}
	}
	V := c.VocabSize
	b := completionBatch([][2][]int{{randomTokens(rng, 6, V), randomTokens(rng, 4, V)}, {randomTokens(rng, 3, V), randomTokens(rng, 5, V)}})
	g := ad.ZerosLike()
	if _, err := m.LossAndGrad(b, ad, g, TrainOptions{}); err != nil {
		t.Fatal(err)
	}
	names, ws := ad.Params()
	_, gs := g.Params()
	for k, name := range names {
		if !strings.HasPrefix(name, savedPrefix) || strings.Contains(name, "lora_") {
			continue
		}
		big := 0
		for i, v := range gs[k] {
			if math.Abs(float64(v)) > math.Abs(float64(gs[k][big])) {
				big = i
			}
		}
		for _, i := range []int{big, rng.IntN(len(ws[k]))} {
			const h = 1e-2
			orig := ws[k][i]
			ws[k][i] = orig + h
			up, _ := m.LossAndGrad(b, ad, ad.ZerosLike(), TrainOptions{})
			ws[k][i] = orig - h
			down, _ := m.LossAndGrad(b, ad, ad.ZerosLike(), TrainOptions{})
			ws[k][i] = orig
			fd := (up - down) / (2 * h)
			if d := math.Abs(fd - float64(gs[k][i])); d > 1e-2*math.Abs(float64(gs[k][big]))+1e-4 {
				t.Errorf("%s [%d]: gradient %v, finite difference %v", name, i, gs[k][i], fd)
			}
		}
	}
	// save: PEFT's key names; load: the same scores
	out := filepath.Join(t.TempDir(), "adapter")
	if err := ad.Save(out); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(out, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range want {
		if tn, ok := f.Tensor(savedPrefix + name); !ok || !slices.Equal(tn.Shape, ad.savedShape[name]) {
			t.Errorf("adapter file lacks %s or has it in another shape", savedPrefix+name)
		}
	}
	f.Close()
	back, err := m.LoadAdapter(out)
	if err != nil {
		t.Fatal(err)
	}
	seqs := []Sequence{{Tokens: randomTokens(rng, 12, V), From: 1}}
	s1, _ := m.Score(seqs, ad)
	s2, _ := m.Score(seqs, back)
	s0, _ := m.Score(seqs, nil)
	if !slices.Equal(s1[0], s2[0]) || slices.Equal(s1[0], s0[0]) {
		t.Errorf("scores: adapter %v, reloaded %v, base %v", s1[0][:3], s2[0][:3], s0[0][:3])
	}
	// merged: the same scores from a plain model
	merged := filepath.Join(t.TempDir(), "merged")
	if err := m.Merge(ad, merged); err != nil {
		t.Fatal(err)
	}
	mm, err := Load(merged)
	if err != nil {
		t.Fatal(err)
	}
	defer mm.Close()
	s3, _ := mm.Score(seqs, nil)
	for i := range s1[0] {
		if math.Abs(float64(s1[0][i]-s3[0][i])) > 1e-4 {
			t.Fatalf("token %d: adapter %v, merged %v", i, s1[0][i], s3[0][i])
		}
	}
	// a module not in modules_to_save is refused
	cfgNo := ad.Config
	cfgNo.ModulesToSave = []string{"input_layernorm"}
	other := &Adapter{Config: cfgNo, Layers: ad.Layers, Saved: ad.Saved, savedShape: ad.savedShape}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := other.Save(bad); err != nil {
		t.Fatal(err)
	}
	if _, err := m.LoadAdapter(bad); err == nil || !strings.Contains(err.Error(), "not in modules_to_save") {
		t.Errorf("an adapter saving modules it does not list loaded: %v", err)
	}
}

// FuzzAdapterKeys: any tensor name in an adapter file is a LoRA key, a
// saved module of this model, or refused; never a panic or a tensor the
// model does not have.
func FuzzAdapterKeys(f *testing.F) {
	for _, k := range []string{"base_model.model.model.embed_tokens.weight", "base_model.model.lm_head.modules_to_save.default.weight",
		"base_model.model.model.layers.1.input_layernorm.weight", "base_model.model.model.layers.9.input_layernorm.weight",
		"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", "base_model.model.model.norm.bias", ""} {
		f.Add(k)
	}
	c := smallConfig(Qwen2)
	m := &Model{Config: *c}
	f.Fuzz(func(t *testing.T, key string) {
		if name := m.parseSavedKey(key); name != "" {
			if _, ok := savableTensors(&m.Config)[strings.TrimSuffix(name, ".weight")]; !ok {
				t.Fatalf("%q parsed as %q, not a tensor of the model", key, name)
			}
		}
		parseLoRAKey(key)
	})
}
