package model

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gotrain/gotrain/kernels"
)

// PEFT's modules_to_save: whole modules (embeddings, LM head, norms) trained
// beside the LoRA weights and saved in adapter_model.safetensors under
// "base_model.model.<module>.weight" (PEFT strips its
// "modules_to_save.<adapter name>." on save). An adapter holds them in
// Saved, by the base tensor's name; a model run with the adapter uses them
// in place of the base's.

// savedPrefix is the PEFT key prefix of a saved module's tensor.
const savedPrefix = "base_model.model."

// savableTensors lists the tensors modules_to_save may replace, by module
// path ("model.embed_tokens" → "model.embed_tokens.weight"), with their
// element counts.
func savableTensors(c *Config) map[string]int {
	H := c.Hidden
	out := map[string]int{"model.embed_tokens": c.VocabSize * H, "lm_head": c.VocabSize * H, "model.norm": H}
	for l := 0; l < c.Layers; l++ {
		out[fmt.Sprintf("model.layers.%d.input_layernorm", l)] = H
		out[fmt.Sprintf("model.layers.%d.post_attention_layernorm", l)] = H
		if c.QKNorm {
			out[fmt.Sprintf("model.layers.%d.self_attn.q_norm", l)] = c.HeadDim
			out[fmt.Sprintf("model.layers.%d.self_attn.k_norm", l)] = c.HeadDim
		}
	}
	return out
}

// savedModules returns the module paths of a model of config c that the
// modules_to_save names select: a name matches a module path equal to it or
// ending in "."+name.
func savedModules(c *Config, names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		found := false
		for path := range savableTensors(c) {
			if path == n || strings.HasSuffix(path, "."+n) {
				out, found = append(out, path), true
			}
		}
		if !found {
			return nil, fmt.Errorf("modules_to_save %q names no embedding, LM head or norm of this model (want e.g. embed_tokens, lm_head, norm, input_layernorm, post_attention_layernorm, and q_norm, k_norm for Qwen3)", n)
		}
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// initSaved fills a.Saved with copies of the base's tensors of the modules
// cfg.ModulesToSave selects.
func (m *Model) initSaved(a *Adapter) error {
	if len(a.Config.ModulesToSave) == 0 {
		return nil
	}
	if m.ckpt == nil {
		return fmt.Errorf("model: modules_to_save needs a model loaded from a checkpoint")
	}
	paths, err := savedModules(&m.Config, a.Config.ModulesToSave)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	for _, p := range paths {
		name := p + ".weight"
		src := name
		if p == "lm_head" && m.tiedHead() {
			src = "model.embed_tokens.weight" // a tied head's copy starts as the embedding
		}
		t, ok := m.ckpt.Tensor(src)
		if !ok {
			return fmt.Errorf("model: tensor %q is missing", src)
		}
		v, err := t.ToF32()
		if err != nil {
			return fmt.Errorf("model: tensor %q: %w", src, err)
		}
		a.addSaved(name, v, t.Shape)
	}
	return nil
}

// addSaved adds a saved module's tensor.
func (a *Adapter) addSaved(name string, v []float32, shape []int) {
	if a.Saved == nil {
		a.Saved, a.savedShape = map[string][]float32{}, map[string][]int{}
	}
	a.Saved[name], a.savedShape[name] = v, shape
}

// parseSavedKey maps a saved module's PEFT key (or its in-memory form with
// "modules_to_save.default.") to the base tensor name, or "".
func (m *Model) parseSavedKey(key string) string {
	rest, ok := strings.CutPrefix(key, savedPrefix)
	if !ok || !strings.HasSuffix(rest, ".weight") {
		return ""
	}
	rest = strings.Replace(rest, ".modules_to_save.default.", ".", 1)
	if _, ok := savableTensors(&m.Config)[strings.TrimSuffix(rest, ".weight")]; !ok {
		return ""
	}
	return rest
}

// savedNames lists a.Saved's names, sorted.
func (a *Adapter) savedNames() []string {
	names := make([]string, 0, len(a.Saved))
	for n := range a.Saved {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// with returns m with the adapter's saved modules in place of the base's
// tensors (m itself when there are none). The result shares m's weights
// and is cached in the adapter.
func (m *Model) with(ad *Adapter) *Model {
	if ad == nil || len(ad.Saved) == 0 {
		return m
	}
	ad.bind.Lock()
	defer ad.bind.Unlock()
	if ad.bound != nil && ad.boundTo == m {
		return ad.bound
	}
	d := m.shallow()
	bindSaved(d, ad.Saved)
	ad.bound, ad.boundTo = d, m
	return d
}

// shallow returns a Model sharing m's weights, with its own layer table
// (so tensors can be swapped) and its own scratch.
func (m *Model) shallow() *Model {
	d := &Model{Config: m.Config, Dir: m.Dir, Embed: m.Embed, Norm: m.Norm, LMHead: m.LMHead,
		compute: m.compute, rope: m.rope, ropeLen: m.ropeLen, ckpt: m.ckpt, tied: m.tied}
	d.Layers = append([]Layer(nil), m.Layers...)
	return d
}

// bindSaved points d's tensors named in saved at them.
func bindSaved(d *Model, saved map[string][]float32) {
	c := &d.Config
	for name, v := range saved {
		switch name {
		case "model.embed_tokens.weight":
			d.Embed = kernels.NewF32(c.VocabSize, c.Hidden, v)
		case "lm_head.weight":
			d.LMHead = kernels.NewF32(c.VocabSize, c.Hidden, v)
		case "model.norm.weight":
			d.Norm = v
		default:
			var l int
			var which string
			fmt.Sscanf(name, "model.layers.%d.%s", &l, &which)
			switch which {
			case "input_layernorm.weight":
				d.Layers[l].AttnNorm = v
			case "post_attention_layernorm.weight":
				d.Layers[l].MLPNorm = v
			case "self_attn.q_norm.weight":
				d.Layers[l].QNorm = v
			case "self_attn.k_norm.weight":
				d.Layers[l].KNorm = v
			}
		}
	}
}

// savedGrads returns a Model holding g's saved-module gradients and nothing
// else, for backprop's grad (cached in g).
func (g *Adapter) savedGrads(c *Config) *Model {
	if len(g.Saved) == 0 {
		return nil
	}
	g.bind.Lock()
	defer g.bind.Unlock()
	if g.bound == nil {
		d := &Model{Config: *c, Layers: make([]Layer, c.Layers)}
		bindSaved(d, g.Saved)
		g.bound = d
	}
	return g.bound
}

// ZerosIn is ZerosLike with the tensors laid out in flat (len: the sum of
// Params' lengths, in Params order), so a gradient is one buffer.
func (a *Adapter) ZerosIn(flat []float32) *Adapter {
	g := a.ZerosLike()
	off := 0
	take := func(n int) []float32 {
		v := flat[off : off+n : off+n]
		off += n
		return v
	}
	// each is Params' order: layers' modules, routers and experts (the
	// experts' tensors were left out of flat before routers came)
	g.each(func(_ string, lr *LoRA) { lr.A, lr.B = take(len(lr.A)), take(len(lr.B)) })
	for _, n := range g.savedNames() {
		g.Saved[n] = take(len(g.Saved[n]))
	}
	return g
}
