package model

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// hugeConfig is a valid config with one field replaced by v.
func hugeConfig(field string, v any) []byte {
	f := map[string]any{"model_type": `"qwen2"`, "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128,
		"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}
	f[field] = v
	var b strings.Builder
	b.WriteString("{")
	i := 0
	for k, v := range f {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%q:%v", k, v)
		i++
	}
	b.WriteString("}")
	return []byte(b.String())
}

// TestConfigBounds: every size field beyond its bound (up to the int64
// extremes) is refused naming the field, and the plan of the largest
// accepted config neither wraps nor goes negative.
func TestConfigBounds(t *testing.T) {
	for _, field := range []string{"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
		"num_attention_heads", "num_key_value_heads", "head_dim"} {
		for _, v := range []any{int64(math.MaxInt64), int64(1) << 62, int64(4611686018427387904), -1, "1e400"} {
			_, err := ParseConfig(hugeConfig(field, v))
			if err == nil {
				t.Errorf("%s = %v accepted", field, v)
				continue
			}
			if v != "1e400" && !strings.Contains(err.Error(), field) {
				t.Errorf("%s = %v: error %q does not name the field", field, v, err)
			}
		}
	}
	for _, kv := range [][2]any{{"rms_norm_eps", 1e300}, {"rope_theta", -1}, {"rope_theta", 1e300}, {"eos_token_id", -5}, {"bos_token_id", int64(1) << 40}} {
		if _, err := ParseConfig(hugeConfig(kv[0].(string), kv[1])); err == nil {
			t.Errorf("%v = %v accepted", kv[0], kv[1])
		}
	}
	big := &Config{Arch: Qwen2, VocabSize: maxVocab, Hidden: maxHidden, Intermediate: maxIntermediate, Layers: maxLayers,
		Heads: maxHeads, KVHeads: maxHeads, HeadDim: maxHidden / maxHeads, QKVBias: true}
	for _, in := range []PlanInput{
		{BatchTokens: math.MaxInt, KVTokens: math.MaxInt, LoRARank: math.MaxInt, Optimizer: "adamw", Threads: math.MaxInt},
		{BatchTokens: 1 << 20, Quantize: "nf4-dq", LoRARank: 64, Optimizer: "sgd"},
		{BatchTokens: -5, KVTokens: -5, LoRARank: -1},
	} {
		p := PlanMemory(big, in)
		if p.Total <= 1<<40 {
			t.Errorf("plan of the largest config with %+v: %d bytes", in, p.Total)
		}
		for _, part := range p.Parts {
			if part.Bytes < 0 {
				t.Errorf("%s: %d bytes", part.Name, part.Bytes)
			}
		}
		if p.Check(24<<30) == nil {
			t.Errorf("plan %d passes a 24 GiB check", p.Total)
		}
	}
}

// FuzzParseConfig: no config panics the parser, and an accepted one has
// sizes within the bounds and a plan that does not wrap.
func FuzzParseConfig(f *testing.F) {
	f.Add(hugeConfig("num_hidden_layers", 2))
	f.Add(hugeConfig("num_hidden_layers", int64(maxLayers)))
	f.Add(hugeConfig("vocab_size", int64(maxVocab)))
	f.Add(hugeConfig("hidden_size", int64(maxHidden)))
	f.Add(hugeConfig("head_dim", int64(maxHeadDim)))
	f.Add(hugeConfig("rope_scaling", `{"rope_type":"llama3","factor":1e308,"low_freq_factor":1e-308,"high_freq_factor":1e308,"original_max_position_embeddings":9223372036854775807}`))
	f.Add(hugeConfig("eos_token_id", "[0, 4194303, -1]"))
	f.Add([]byte(`{"model_type":"llama","vocab_size":1,"hidden_size":2,"intermediate_size":1,"num_hidden_layers":1,"num_attention_heads":1,"max_position_embeddings":9223372036854775807}`))
	f.Add([]byte(qwen3Config))
	f.Add([]byte(mistralConfig))
	// the largest experts accepted, and a hostile list of dense layers
	f.Add([]byte(`{"model_type":"qwen3_moe","vocab_size":1000,"hidden_size":131072,"intermediate_size":524288,"num_hidden_layers":1024,"num_attention_heads":1,"head_dim":4096,"num_experts":4096,"num_experts_per_tok":4096,"moe_intermediate_size":524288,"decoder_sparse_step":1,"mlp_only_layers":[-1,0,1e9]}`))
	f.Add([]byte(`{"model_type":"qwen3_moe","vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":3,"num_attention_heads":2,"num_experts":3,"num_experts_per_tok":2,"moe_intermediate_size":4,"decoder_sparse_step":2,"mlp_only_layers":[1],"norm_topk_prob":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		if c.VocabSize > maxVocab || c.Hidden > maxHidden || c.Layers > maxLayers || c.Heads*c.HeadDim > maxHidden || c.MaxPositions > maxPositions {
			t.Fatalf("accepted out-of-bounds config %+v", c)
		}
		if p := PlanMemory(c, PlanInput{BatchTokens: 4096, LoRARank: 16, Optimizer: "adamw", KVTokens: 4096}); p.Total <= 0 {
			t.Fatalf("plan %d", p.Total)
		}
		_ = c.InvFreq()
	})
}
