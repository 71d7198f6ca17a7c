package model

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/gotrain/gotrain/model/safetensors"
)

// randomShardBytes is the largest shard WriteRandom writes: a checkpoint
// larger than this is written shard by shard, never held whole in memory.
// A variable so that tests can shard small checkpoints.
var randomShardBytes int64 = 4 << 30

// InitOptions describes a random-weight checkpoint.
type InitOptions struct {
	Arch  Arch   // Qwen2, Qwen3 or Llama
	Size  string // one of Sizes(Arch)
	DType string // "bf16" or "f32"
	Seed  uint64
}

// shape is the geometry of a named size.
type shape struct {
	size                                      string
	hidden, layers, heads, kvHeads, inter, hd int // hd 0: hidden/heads
	untied                                    bool
}

// shapes lists the sizes InitCheckpoint knows per architecture, smallest
// first: test sizes, then released models' shapes from their config.json.
var shapes = map[Arch][]shape{
	Qwen2: qwen2Shapes,
	Llama: qwen2Shapes, // the Llama variants share the layer shapes (with an untied head)
	Qwen3: {
		// head_dim ≠ hidden/heads, as in every released Qwen3
		{"tiny", 64, 2, 4, 2, 192, 32, false},
		{"small", 256, 4, 8, 2, 704, 64, false},
		{"0.6b", 1024, 28, 16, 8, 3072, 128, false},
		{"1.7b", 2048, 28, 16, 8, 6144, 128, false},
		{"4b", 2560, 36, 32, 8, 9728, 128, false},
		{"8b", 4096, 36, 32, 8, 12288, 128, true},
		{"14b", 5120, 40, 40, 8, 17408, 128, true},
		{"32b", 5120, 64, 64, 8, 25600, 128, true},
	},
}

var qwen2Shapes = []shape{
	{"tiny", 64, 2, 4, 2, 192, 0, false},
	{"small", 256, 4, 8, 2, 704, 0, false},
	{"0.5b", 896, 24, 14, 2, 4864, 0, false},  // Qwen2.5-0.5B
	{"14b", 5120, 48, 40, 8, 13824, 0, false}, // Qwen2.5-14B (untied below)
}

// Sizes lists the shapes InitCheckpoint knows for arch, smallest first.
func Sizes(arch Arch) []string {
	if arch == Qwen3MoE {
		return MoESizes
	}
	var out []string
	for _, s := range shapes[arch] {
		out = append(out, s.size)
	}
	return out
}

// ConfigFor returns the config of a random checkpoint. Vocabularies are the
// real tokenizers' (Qwen2.5 and Qwen3: 151936 rows, Llama 3: 128256) so the
// bundled tokenizer files work with it. For qwen2 "0.5b" and "14b" are
// Qwen2.5-0.5B's and Qwen2.5-14B's shapes; for qwen3 "0.6b" … "32b" are
// the Qwen3 models'.
func ConfigFor(arch Arch, size string) (*Config, error) {
	if arch == Qwen3MoE {
		return qwen3MoEConfigFor(size)
	}
	c := &Config{Arch: arch, RMSNormEps: 1e-6, MaxPositions: 32768, BOSTokenID: -1}
	if _, ok := shapes[arch]; !ok {
		return nil, fmt.Errorf("model: unknown architecture %q (want qwen2, qwen3 or llama)", arch)
	}
	i := slices.IndexFunc(shapes[arch], func(s shape) bool { return s.size == size })
	if i < 0 {
		return nil, fmt.Errorf("model: unknown %s size %q (want one of %v)", arch, size, Sizes(arch))
	}
	sh := shapes[arch][i]
	c.Hidden, c.Layers, c.Heads, c.KVHeads, c.Intermediate = sh.hidden, sh.layers, sh.heads, sh.kvHeads, sh.inter
	c.HeadDim, c.TieEmbeddings = sh.hd, !sh.untied
	if c.HeadDim == 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	switch arch {
	case Qwen2:
		c.VocabSize, c.RopeTheta, c.QKVBias = 151936, 1e6, true
		c.BOSTokenID, c.EOSTokenIDs = 151643, []int{151645}
		if size == "14b" { // Qwen2.5-14B: a padded vocabulary and an untied head
			c.VocabSize, c.TieEmbeddings = 152064, false
		}
	case Qwen3:
		c.VocabSize, c.RopeTheta, c.QKNorm, c.MaxPositions = 151936, 1e6, true, 40960
		c.BOSTokenID, c.EOSTokenIDs = 151643, []int{151645}
	case Llama:
		c.VocabSize, c.RopeTheta, c.RMSNormEps, c.TieEmbeddings = 128256, 500000, 1e-5, false
		c.RopeScaling = &RopeScaling{Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 8192}
		c.BOSTokenID, c.EOSTokenIDs = 128000, []int{128001, 128008, 128009}
	}
	return c, nil
}

// MarshalHF renders the config as a Hugging Face config.json.
func (c *Config) MarshalHF() ([]byte, error) {
	m := map[string]any{
		"vocab_size":              c.VocabSize,
		"hidden_size":             c.Hidden,
		"intermediate_size":       c.Intermediate,
		"num_hidden_layers":       c.Layers,
		"num_attention_heads":     c.Heads,
		"num_key_value_heads":     c.KVHeads,
		"head_dim":                c.HeadDim,
		"rms_norm_eps":            c.RMSNormEps,
		"rope_theta":              c.RopeTheta,
		"tie_word_embeddings":     c.TieEmbeddings,
		"hidden_act":              "silu",
		"max_position_embeddings": c.MaxPositions,
		"initializer_range":       0.02,
		"attention_dropout":       0.0,
		"use_cache":               true,
		"torch_dtype":             c.TorchDType,
		"transformers_version":    "4.45.0",
	}
	if c.BOSTokenID >= 0 {
		m["bos_token_id"] = c.BOSTokenID
	}
	if len(c.EOSTokenIDs) == 1 {
		m["eos_token_id"] = c.EOSTokenIDs[0]
	} else if len(c.EOSTokenIDs) > 1 {
		m["eos_token_id"] = c.EOSTokenIDs
	}
	switch c.Arch {
	case Qwen2:
		m["architectures"] = []string{"Qwen2ForCausalLM"}
		m["model_type"] = "qwen2"
		m["use_sliding_window"] = false
		m["sliding_window"] = c.MaxPositions
		m["max_window_layers"] = c.Layers
	case Qwen3:
		m["architectures"] = []string{"Qwen3ForCausalLM"}
		m["model_type"] = "qwen3"
		m["attention_bias"] = false
		m["use_sliding_window"] = false
		m["sliding_window"] = nil
		m["max_window_layers"] = c.Layers
		m["rope_scaling"] = nil
	case Mistral:
		m["architectures"] = []string{"MistralForCausalLM"}
		m["model_type"] = "mistral"
		m["sliding_window"] = nil
		if c.SlidingWindow > 0 {
			m["sliding_window"] = c.SlidingWindow
		}
	case Llama:
		m["architectures"] = []string{"LlamaForCausalLM"}
		m["model_type"] = "llama"
		m["attention_bias"] = c.QKVBias
		m["mlp_bias"] = c.MLPBias
		m["pretraining_tp"] = 1
		if s := c.RopeScaling; s != nil {
			m["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": s.Factor,
				"low_freq_factor": s.LowFreqFactor, "high_freq_factor": s.HighFreqFactor,
				"original_max_position_embeddings": s.OriginalMaxPos}
		} else {
			m["rope_scaling"] = nil
		}
	case Qwen3MoE:
		c.marshalMoE(m)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	return append(b, '\n'), err
}

// InitCheckpoint writes config.json and model.safetensors of a random-weight
// model of a known size into dir and returns its config.
func InitCheckpoint(dir string, o InitOptions) (*Config, error) {
	c, err := ConfigFor(o.Arch, o.Size)
	if err != nil {
		return nil, err
	}
	return c, WriteRandom(dir, c, o.DType, o.Seed)
}

// WriteRandom writes config.json and model.safetensors for config c with
// random weights in dtype ("bf16" or "f32"): linear and embedding weights
// ~ N(0, 0.02²) as HF's initializer_range, biases ~ N(0, 0.02²), norm weights 1.
func WriteRandom(dir string, c *Config, dtype string, seed uint64) error {
	var dt safetensors.DType
	switch dtype {
	case "bf16", "":
		dt, c.TorchDType = safetensors.BF16, "bfloat16"
	case "f32":
		dt, c.TorchDType = safetensors.F32, "float32"
	default:
		return fmt.Errorf("model: unknown dtype %q (want bf16 or f32)", dtype)
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	// Tensors are described first and generated in that order later, one
	// shard at a time, so a checkpoint larger than memory can be written.
	type spec struct {
		name  string
		fill  func(int) float32
		shape []int
	}
	var specs []spec
	add := func(name string, fill func(int) float32, shape ...int) {
		specs = append(specs, spec{name, fill, shape})
	}
	gen := func(sp spec) safetensors.Tensor {
		name, fill, shape := sp.name, sp.fill, sp.shape
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = fill(i)
		}
		t := safetensors.Tensor{Name: name, DType: dt, Shape: shape}
		if dt == safetensors.BF16 {
			u := make([]uint16, n)
			safetensors.BF16FromF32(u, v)
			t.Data = safetensors.BytesOfU16(u)
		} else {
			t.Data = safetensors.BytesOfF32(v)
		}
		return t
	}
	normal := func(int) float32 { return float32(rng.NormFloat64() * 0.02) }
	one := func(int) float32 { return 1 }
	H, D, I := c.Hidden, c.HeadDim, c.Intermediate
	// The embedding (the LM head too, when tied) gets std 1/√H instead of
	// 0.02 so that the logits of small random models span a useful range:
	// with 0.02 a tiny model's logits can hardly move and finetuning it
	// shows nothing. RMSNorm makes the input side indifferent to the scale.
	embStd := max(0.02, 1/math.Sqrt(float64(H)))
	add("model.embed_tokens.weight", func(int) float32 { return float32(rng.NormFloat64() * embStd) }, c.VocabSize, H)
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		add(p+"input_layernorm.weight", one, H)
		add(p+"post_attention_layernorm.weight", one, H)
		mlpI := I
		if c.Sparse(l) {
			mlpI = 0 // no dense MLP: the experts below
			add(p+"mlp.gate.weight", normal, c.Experts, H)
			for e := 0; e < c.Experts; e++ {
				q := fmt.Sprintf("%smlp.experts.%d.", p, e)
				add(q+"gate_proj.weight", normal, c.MoEIntermediate, H)
				add(q+"up_proj.weight", normal, c.MoEIntermediate, H)
				add(q+"down_proj.weight", normal, H, c.MoEIntermediate)
			}
		}
		for _, lin := range []struct {
			name    string
			out, in int
			bias    bool
		}{
			{"self_attn.q_proj", c.Heads * D, H, c.QKVBias},
			{"self_attn.k_proj", c.KVHeads * D, H, c.QKVBias},
			{"self_attn.v_proj", c.KVHeads * D, H, c.QKVBias},
			{"self_attn.o_proj", H, c.Heads * D, c.OBias},
			{"mlp.gate_proj", mlpI, H, c.MLPBias},
			{"mlp.up_proj", mlpI, H, c.MLPBias},
			{"mlp.down_proj", H, mlpI, c.MLPBias},
		} {
			if lin.out*lin.in == 0 {
				continue
			}
			add(p+lin.name+".weight", normal, lin.out, lin.in)
			if lin.bias {
				add(p+lin.name+".bias", normal, lin.out)
			}
			if lin.name == "self_attn.o_proj" && c.QKNorm {
				add(p+"self_attn.q_norm.weight", one, D)
				add(p+"self_attn.k_norm.weight", one, D)
			}
		}
	}
	add("model.norm.weight", one, H)
	if !c.TieEmbeddings {
		add("lm_head.weight", func(int) float32 { return float32(rng.NormFloat64() * embStd) }, c.VocabSize, H)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	// shards of at most randomShardBytes, in generation order
	var shards [][]spec
	var cur []spec
	var curBytes, total int64
	for _, sp := range specs {
		n := int64(dt.Size())
		for _, d := range sp.shape {
			n *= int64(d)
		}
		if len(cur) > 0 && curBytes+n > randomShardBytes {
			shards, cur, curBytes = append(shards, cur), nil, 0
		}
		cur, curBytes, total = append(cur, sp), curBytes+n, total+n
	}
	shards = append(shards, cur)
	meta := map[string]string{"format": "pt"}
	if len(shards) == 1 {
		ts := make([]safetensors.Tensor, len(specs))
		for i, sp := range specs {
			ts[i] = gen(sp)
		}
		if err := safetensors.Write(filepath.Join(dir, safetensors.SingleFileName), ts, meta); err != nil {
			return fmt.Errorf("model: %w", err)
		}
	} else {
		weightMap := map[string]string{}
		for k, sh := range shards {
			file := fmt.Sprintf("model-%05d-of-%05d.safetensors", k+1, len(shards))
			ts := make([]safetensors.Tensor, len(sh))
			for i, sp := range sh {
				ts[i] = gen(sp)
				weightMap[sp.name] = file
			}
			if err := safetensors.Write(filepath.Join(dir, file), ts, meta); err != nil {
				return fmt.Errorf("model: %w", err)
			}
		}
		idx, err := json.MarshalIndent(map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap}, "", "  ")
		if err != nil {
			return fmt.Errorf("model: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(dir, safetensors.IndexFileName), append(idx, '\n')); err != nil {
			return err
		}
	}
	cj, err := c.MarshalHF()
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, "config.json"), cj); err != nil {
		return err
	}
	return nil
}
