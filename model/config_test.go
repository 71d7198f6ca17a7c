package model

import (
	"errors"
	"math"
	"strings"
	"testing"
)

const qwenConfig = `{"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","vocab_size":512,"hidden_size":64,
"intermediate_size":160,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"rms_norm_eps":1e-6,
"rope_theta":1000000.0,"tie_word_embeddings":true,"hidden_act":"silu","use_sliding_window":false,"sliding_window":32768,
"max_position_embeddings":32768,"bos_token_id":151643,"eos_token_id":151645,"torch_dtype":"bfloat16"}`

const llamaConfig = `{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":512,"hidden_size":64,
"intermediate_size":96,"num_hidden_layers":3,"num_attention_heads":8,"num_key_value_heads":2,"head_dim":16,
"rms_norm_eps":1e-5,"rope_theta":500000.0,"rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,
"high_freq_factor":4.0,"original_max_position_embeddings":8192},"tie_word_embeddings":false,"attention_bias":false,
"mlp_bias":false,"hidden_act":"silu","bos_token_id":128000,"eos_token_id":[128001,128008,128009]}`

// qwen3Config is Qwen3-0.6B's config.json: head_dim 128 ≠ hidden/heads = 64.
const qwen3Config = `{"architectures":["Qwen3ForCausalLM"],"attention_bias":false,"attention_dropout":0.0,
"bos_token_id":151643,"eos_token_id":151645,"head_dim":128,"hidden_act":"silu","hidden_size":1024,
"initializer_range":0.02,"intermediate_size":3072,"max_position_embeddings":40960,"max_window_layers":28,
"model_type":"qwen3","num_attention_heads":16,"num_hidden_layers":28,"num_key_value_heads":8,"rms_norm_eps":1e-06,
"rope_scaling":null,"rope_theta":1000000,"sliding_window":null,"tie_word_embeddings":true,"torch_dtype":"bfloat16",
"transformers_version":"4.51.0","use_cache":true,"use_sliding_window":false,"vocab_size":151936}`

// mistralConfig is Mistral-7B-v0.1's: a 4096 sliding window, no head_dim.
const mistralConfig = `{"architectures":["MistralForCausalLM"],"bos_token_id":1,"eos_token_id":2,"hidden_act":"silu",
"hidden_size":4096,"initializer_range":0.02,"intermediate_size":14336,"max_position_embeddings":32768,
"model_type":"mistral","num_attention_heads":32,"num_hidden_layers":32,"num_key_value_heads":8,"rms_norm_eps":1e-05,
"rope_theta":10000.0,"sliding_window":4096,"tie_word_embeddings":false,"torch_dtype":"bfloat16",
"transformers_version":"4.34.0.dev0","use_cache":true,"vocab_size":32000}`

func TestParseConfigQwen3Mistral(t *testing.T) {
	q, err := ParseConfig([]byte(qwen3Config))
	if err != nil {
		t.Fatal(err)
	}
	if q.Arch != Qwen3 || !q.QKNorm || q.QKVBias || q.OBias || q.HeadDim != 128 || q.Heads*q.HeadDim == q.Hidden || !q.TieEmbeddings || q.MaxPositions != 40960 {
		t.Errorf("qwen3 config parsed wrong: %+v", q)
	}
	// Qwen3Config's head_dim default is 128, not hidden/heads
	q, err = ParseConfig([]byte(strings.Replace(qwen3Config, `"head_dim":128,`, ``, 1)))
	if err != nil || q.HeadDim != 128 {
		t.Errorf("qwen3 without head_dim: %v, %+v", err, q)
	}
	m, err := ParseConfig([]byte(mistralConfig))
	if err != nil {
		t.Fatal(err)
	}
	if m.Arch != Mistral || m.QKNorm || m.QKVBias || m.HeadDim != 128 || m.MaxPositions != 4096 || m.SlidingWindow != 4096 {
		t.Errorf("mistral config parsed wrong: %+v", m)
	}
	for _, edit := range []string{`"sliding_window":null`, `"sliding_window":32768`, `"sliding_window":100000`, `"sliding_window":1000000000000`} {
		m, err := ParseConfig([]byte(strings.Replace(mistralConfig, `"sliding_window":4096`, edit, 1)))
		if err != nil || m.MaxPositions != 32768 || m.SlidingWindow != 0 {
			t.Errorf("mistral with %s: %v, %+v", edit, err, m)
		}
	}
	// Mistral Nemo: head_dim 128 with hidden 5120 over 32 heads
	m, err = ParseConfig([]byte(strings.Replace(mistralConfig, `"hidden_size":4096,`, `"hidden_size":5120,"head_dim":128,`, 1)))
	if err != nil || m.HeadDim != 128 {
		t.Errorf("mistral with head_dim: %v, %+v", err, m)
	}
}

func TestParseConfig(t *testing.T) {
	q, err := ParseConfig([]byte(qwenConfig))
	if err != nil {
		t.Fatal(err)
	}
	if q.Arch != Qwen2 || !q.QKVBias || q.OBias || !q.TieEmbeddings || q.HeadDim != 16 || q.KVHeads != 2 || q.EOSTokenIDs[0] != 151645 {
		t.Errorf("qwen2 config parsed wrong: %+v", q)
	}
	l, err := ParseConfig([]byte(llamaConfig))
	if err != nil {
		t.Fatal(err)
	}
	if l.Arch != Llama || l.QKVBias || l.TieEmbeddings || l.HeadDim != 16 || l.RopeScaling == nil || l.RopeScaling.Factor != 8 || len(l.EOSTokenIDs) != 3 {
		t.Errorf("llama config parsed wrong: %+v", l)
	}
}

func TestParseConfigRejects(t *testing.T) {
	for _, tc := range []struct {
		name, edit, want string
		unsupported      bool
	}{
		{"broken json", `{"vocab_size":`, "invalid JSON", false},
		{"other arch", `{"architectures":["Gemma2ForCausalLM"],"model_type":"gemma2"}`, "architectures", true},
		{"mixed arch", strings.Replace(qwen3Config, `"Qwen3ForCausalLM"`, `"Qwen2ForCausalLM"`, 1), "architectures", true},
		{"qwen3 bias", strings.Replace(qwen3Config, `"attention_bias":false`, `"attention_bias":true`, 1), "attention_bias", true},
		{"qwen3 sliding", strings.Replace(qwen3Config, `"use_sliding_window":false`, `"use_sliding_window":true`, 1), "use_sliding_window", true},
		{"layer types", strings.Replace(qwen3Config, `"use_cache":true`, `"layer_types":["full_attention","sliding_attention"]`, 1), "layer_types[1]", true},
		{"mistral window", strings.Replace(mistralConfig, `"sliding_window":4096`, `"sliding_window":-1`, 1), "sliding_window", false},
		{"mistral window type", strings.Replace(mistralConfig, `"sliding_window":4096`, `"sliding_window":"4096"`, 1), "sliding_window", false},
		{"sliding window", strings.Replace(qwenConfig, `"use_sliding_window":false`, `"use_sliding_window":true`, 1), "use_sliding_window", true},
		{"rope type", strings.Replace(llamaConfig, `"rope_type":"llama3"`, `"rope_type":"yarn"`, 1), "rope_scaling.rope_type", true},
		{"act", strings.Replace(qwenConfig, `"hidden_act":"silu"`, `"hidden_act":"gelu"`, 1), "hidden_act", true},
		{"moe", strings.Replace(qwenConfig, `"vocab_size":512`, `"vocab_size":512,"num_experts":8`, 1), "num_experts", true},
		{"quantized", strings.Replace(qwenConfig, `"vocab_size":512`, `"vocab_size":512,"quantization_config":{"bits":4}`, 1), "quantization_config", true},
		{"missing field", strings.Replace(qwenConfig, `"hidden_size":64,`, ``, 1), "hidden_size", false},
		{"bad kv heads", strings.Replace(qwenConfig, `"num_key_value_heads":2`, `"num_key_value_heads":3`, 1), "num_key_value_heads", false},
		{"negative", strings.Replace(qwenConfig, `"num_hidden_layers":2`, `"num_hidden_layers":-1`, 1), "num_hidden_layers", false},
		{"bad llama3 scaling", strings.Replace(llamaConfig, `"factor":8.0`, `"factor":0`, 1), "rope_scaling", false},
		{"bad eos", strings.Replace(qwenConfig, `"eos_token_id":151645`, `"eos_token_id":"x"`, 1), "eos_token_id", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.edit))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
			if got := errors.Is(err, ErrUnsupported); got != tc.unsupported {
				t.Errorf("errors.Is(err, ErrUnsupported) = %v, want %v (%v)", got, tc.unsupported, err)
			}
		})
	}
}

// TestInvFreqLlama3 checks the three regions of llama3 rope scaling against
// values computed by hand from HF's _compute_llama3_parameters.
func TestInvFreqLlama3(t *testing.T) {
	c := &Config{HeadDim: 128, RopeTheta: 500000, RopeScaling: &RopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 8192}}
	f := c.InvFreq()
	if f[0] != 1 { // wavelength 2π < 2048: unchanged
		t.Errorf("inv_freq[0] = %v, want 1", f[0])
	}
	// i = 63: base freq 500000^(-126/128) ≈ 2.4e-6, wavelength ≫ 8192: divided by 8.
	want := float32(1 / (8 * math.Pow(500000, 126.0/128)))
	if d := f[63]/want - 1; d > 1e-6 || d < -1e-6 {
		t.Errorf("inv_freq[63] = %v, want %v", f[63], want)
	}
}

// TestQwen3Shapes checks init-model's Qwen3 shapes against the parameter
// counts of the model cards (total and non-embedding, in billions).
func TestQwen3Shapes(t *testing.T) {
	for _, tc := range []struct {
		size         string
		total, nonEm float64
	}{
		{"0.6b", 0.6, 0.44}, {"1.7b", 1.7, 1.4}, {"4b", 4.0, 3.6}, {"8b", 8.2, 6.95}, {"14b", 14.8, 13.2}, {"32b", 32.8, 31.2},
	} {
		c, err := ConfigFor(Qwen3, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		n := float64(FullParams(c))
		emb := float64(c.VocabSize * c.Hidden)
		if !c.TieEmbeddings {
			emb *= 2
		}
		// the cards round to 0.1B (0.05 for the smallest)
		if math.Abs(n/1e9-tc.total) > 0.06 || math.Abs((n-emb)/1e9-tc.nonEm) > 0.06 {
			t.Errorf("qwen3 %s: %.3fB parameters, %.3fB without embeddings; the card says %.2fB, %.2fB", tc.size, n/1e9, (n-emb)/1e9, tc.total, tc.nonEm)
		}
	}
}
