package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/gotrain/gotrain/internal/inputfile"
)

// Arch names a supported model family.
type Arch string

const (
	Qwen2   Arch = "qwen2"   // Qwen2ForCausalLM: Qwen2 and Qwen2.5
	Llama   Arch = "llama"   // LlamaForCausalLM: Llama 2, 3, 3.1, 3.2
	Qwen3   Arch = "qwen3"   // Qwen3ForCausalLM: dense Qwen3 (per-head q/k RMSNorm)
	Mistral Arch = "mistral" // MistralForCausalLM: LLaMA layers
	// Qwen3MoE is Qwen3MoeForCausalLM: Qwen3's attention and sparse
	// mixture-of-experts MLPs (moe.go).
	Qwen3MoE Arch = "qwen3_moe"
)

// archClasses maps each Arch to its config.json model_type (the Arch's
// string) and architectures class name.
var archClasses = []struct {
	arch  Arch
	class string
}{
	{Qwen2, "Qwen2ForCausalLM"},
	{Llama, "LlamaForCausalLM"},
	{Qwen3, "Qwen3ForCausalLM"},
	{Mistral, "MistralForCausalLM"},
	{Qwen3MoE, "Qwen3MoeForCausalLM"},
}

// ParseArch reads a command line's architecture name: an Arch, or
// "qwen3moe" for Qwen3MoE.
func ParseArch(s string) Arch {
	if s == "qwen3moe" {
		return Qwen3MoE
	}
	return Arch(s)
}

// class is the Arch's architectures class name.
func (a Arch) class() string {
	for _, e := range archClasses {
		if e.arch == a {
			return e.class
		}
	}
	return ""
}

// archClassNames lists the implemented architectures classes, for errors.
func archClassNames() string {
	var s []string
	for _, a := range archClasses {
		s = append(s, a.class)
	}
	return strings.Join(s, ", ")
}

// ErrUnsupported marks a config value the engine does not implement. It is
// returned wrapped in an *UnsupportedError naming the field.
var ErrUnsupported = errors.New("not supported")

// UnsupportedError reports a config.json field whose value the engine does not
// implement, so that the model is refused rather than silently computed wrong.
type UnsupportedError struct {
	Field, Value, Why string
}

// Error names the field, its value and why it is refused.
func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("config field %q = %s: %s", e.Field, e.Value, e.Why)
}

// Unwrap makes errors.Is(err, ErrUnsupported) hold.
func (e *UnsupportedError) Unwrap() error { return ErrUnsupported }

// RopeScaling is the "llama3" rope_scaling of Llama 3.1 and 3.2.
type RopeScaling struct {
	Factor         float64 `json:"factor"`
	LowFreqFactor  float64 `json:"low_freq_factor"`
	HighFreqFactor float64 `json:"high_freq_factor"`
	OriginalMaxPos int     `json:"original_max_position_embeddings"`
}

// Config is the part of a Hugging Face config.json the engine uses.
type Config struct {
	Arch          Arch
	VocabSize     int
	Hidden        int     // hidden_size
	Intermediate  int     // intermediate_size
	Layers        int     // num_hidden_layers
	Heads         int     // num_attention_heads
	KVHeads       int     // num_key_value_heads
	HeadDim       int     // head_dim, default Hidden/Heads
	RMSNormEps    float64 // rms_norm_eps
	RopeTheta     float64
	RopeScaling   *RopeScaling // nil: plain RoPE
	TieEmbeddings bool         // tie_word_embeddings
	QKVBias       bool         // biases on q, k, v (always for Qwen2; attention_bias for Llama)
	QKNorm        bool         // RMSNorm of each query and key head before RoPE (Qwen3's q_norm, k_norm)
	OBias         bool         // bias on o_proj (Llama attention_bias)
	MLPBias       bool         // Llama mlp_bias
	MaxPositions  int          // max_position_embeddings, capped by SlidingWindow
	// SlidingWindow is Mistral's sliding_window when it is below
	// max_position_embeddings (0 otherwise): attention over at most that
	// many rows equals full attention, so sequences up to it are run and
	// longer ones refused (MaxPositions is capped to it).
	SlidingWindow int
	BOSTokenID    int // -1 when absent
	EOSTokenIDs   []int
	TorchDType    string // torch_dtype as written, informational
	MoEConfig            // Qwen3-MoE's experts (moe.go); zero for dense models
}

// rawConfig mirrors config.json; pointer fields tell absent from zero.
type rawConfig struct {
	Architectures     []string        `json:"architectures"`
	ModelType         string          `json:"model_type"`
	VocabSize         *int            `json:"vocab_size"`
	HiddenSize        *int            `json:"hidden_size"`
	IntermediateSize  *int            `json:"intermediate_size"`
	NumHiddenLayers   *int            `json:"num_hidden_layers"`
	NumAttentionHeads *int            `json:"num_attention_heads"`
	NumKeyValueHeads  *int            `json:"num_key_value_heads"`
	HeadDim           *int            `json:"head_dim"`
	RMSNormEps        *float64        `json:"rms_norm_eps"`
	RopeTheta         *float64        `json:"rope_theta"`
	RopeScaling       json.RawMessage `json:"rope_scaling"`
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
	AttentionBias     *bool           `json:"attention_bias"`
	MLPBias           *bool           `json:"mlp_bias"`
	HiddenAct         *string         `json:"hidden_act"`
	MaxPositions      *int            `json:"max_position_embeddings"`
	UseSlidingWindow  *bool           `json:"use_sliding_window"`
	SlidingWindow     json.RawMessage `json:"sliding_window"` // read for Mistral only (Qwen2 writes it unused)
	LayerTypes        []string        `json:"layer_types"`
	BOSTokenID        json.RawMessage `json:"bos_token_id"`
	EOSTokenID        json.RawMessage `json:"eos_token_id"`
	TorchDType        string          `json:"torch_dtype"`
	Quantization      json.RawMessage `json:"quantization_config"`
	NumExperts        *int            `json:"num_experts"`
	NumLocalExperts   *int            `json:"num_local_experts"`
	rawMoE
	AttnLogitCap  *float64 `json:"attn_logit_softcapping"`
	FinalLogitCap *float64 `json:"final_logit_softcapping"`
}

// LoadConfig reads and validates a config.json.
func LoadConfig(path string) (*Config, error) {
	b, err := inputfile.ReadFile(path, inputfile.MaxSmallFile)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses and validates config.json bytes.
func ParseConfig(b []byte) (*Config, error) {
	var r rawConfig
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	c := &Config{BOSTokenID: -1}
	for _, a := range archClasses { // model_type first, else the class
		if r.ModelType == string(a.arch) {
			c.Arch = a.arch
		}
	}
	for _, a := range archClasses {
		if c.Arch == "" && has(r.Architectures, a.class) {
			c.Arch = a.arch
		}
	}
	if c.Arch == "" {
		v := r.ModelType
		if len(r.Architectures) > 0 {
			v = fmt.Sprint(r.Architectures)
		}
		return nil, &UnsupportedError{"architectures", quote(v), "only " + archClassNames() + " are implemented"}
	}
	for _, a := range r.Architectures {
		if a != c.Arch.class() {
			return nil, &UnsupportedError{"architectures", quote(a), "only " + archClassNames() + " are implemented, matching model_type " + quote(string(c.Arch))}
		}
	}
	// Bounds far above any released model (Llama 3.1 405B: hidden 16384,
	// intermediate 53248, 126 layers, 128 heads; Gemma: 256000 tokens) keep
	// every product of sizes in the loader and the memory plan far from
	// overflow, so a hostile config fails here, not in makeslice.
	req := []struct {
		name string
		p    *int
		dst  *int
		max  int
	}{
		{"vocab_size", r.VocabSize, &c.VocabSize, maxVocab},
		{"hidden_size", r.HiddenSize, &c.Hidden, maxHidden},
		{"intermediate_size", r.IntermediateSize, &c.Intermediate, maxIntermediate},
		{"num_hidden_layers", r.NumHiddenLayers, &c.Layers, maxLayers},
		{"num_attention_heads", r.NumAttentionHeads, &c.Heads, maxHeads},
	}
	for _, f := range req {
		if f.p == nil {
			return nil, fmt.Errorf("config field %q is missing", f.name)
		}
		if *f.p <= 0 || *f.p > f.max {
			return nil, fmt.Errorf("config field %q = %d must be between 1 and %d", f.name, *f.p, f.max)
		}
		*f.dst = *f.p
	}
	c.KVHeads = c.Heads
	if r.NumKeyValueHeads != nil {
		c.KVHeads = *r.NumKeyValueHeads
	}
	if c.KVHeads <= 0 || c.KVHeads > c.Heads || c.Heads%c.KVHeads != 0 {
		return nil, fmt.Errorf("config field \"num_key_value_heads\" = %d must divide num_attention_heads = %d", c.KVHeads, c.Heads)
	}
	switch {
	case r.HeadDim != nil && *r.HeadDim != 0: // 0 and null mean the default, as in MistralAttention (head_dim or hidden // heads)
		c.HeadDim = *r.HeadDim
	case c.Arch == Qwen3:
		c.HeadDim = 128 // Qwen3Config's default, whatever hidden/heads is
	default:
		if c.Hidden%c.Heads != 0 {
			return nil, fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d and head_dim is absent", c.Hidden, c.Heads)
		}
		c.HeadDim = c.Hidden / c.Heads
	}
	if c.HeadDim <= 0 || c.HeadDim%2 != 0 || c.HeadDim > maxHeadDim {
		return nil, fmt.Errorf("config field \"head_dim\" = %d must be positive, even and at most %d", c.HeadDim, maxHeadDim)
	}
	if c.Heads*c.HeadDim > maxHidden {
		return nil, fmt.Errorf("config fields num_attention_heads × head_dim = %d × %d exceed %d", c.Heads, c.HeadDim, maxHidden)
	}
	c.RMSNormEps = 1e-6
	if r.RMSNormEps != nil {
		c.RMSNormEps = *r.RMSNormEps
	}
	c.RopeTheta = 10000
	if r.RopeTheta != nil {
		c.RopeTheta = *r.RopeTheta
	}
	if !(c.RMSNormEps > 0 && c.RMSNormEps <= 1) {
		return nil, fmt.Errorf("config field \"rms_norm_eps\" = %g must be in (0, 1]", c.RMSNormEps)
	}
	if !(c.RopeTheta > 0 && c.RopeTheta <= 1e12) {
		return nil, fmt.Errorf("config field \"rope_theta\" = %g must be in (0, 1e12]", c.RopeTheta)
	}
	if r.TieWordEmbeddings != nil {
		c.TieEmbeddings = *r.TieWordEmbeddings
	}
	if r.HiddenAct != nil && *r.HiddenAct != "silu" {
		return nil, &UnsupportedError{"hidden_act", quote(*r.HiddenAct), "only silu (SwiGLU) is implemented"}
	}
	c.MaxPositions = 32768
	if r.MaxPositions != nil && *r.MaxPositions > 0 {
		c.MaxPositions = min(*r.MaxPositions, maxPositions)
	}
	switch c.Arch {
	case Qwen2:
		c.QKVBias = true
		if r.UseSlidingWindow != nil && *r.UseSlidingWindow {
			return nil, &UnsupportedError{"use_sliding_window", "true", "sliding-window attention is not implemented"}
		}
	case Qwen3, Qwen3MoE:
		c.QKNorm = true
		if r.AttentionBias != nil && *r.AttentionBias {
			return nil, &UnsupportedError{"attention_bias", "true", "Qwen3 attention biases are not implemented (released Qwen3 models have none)"}
		}
		if r.UseSlidingWindow != nil && *r.UseSlidingWindow {
			return nil, &UnsupportedError{"use_sliding_window", "true", "sliding-window attention is not implemented"}
		}
	case Llama:
		if r.AttentionBias != nil && *r.AttentionBias {
			c.QKVBias, c.OBias = true, true
		}
		if r.MLPBias != nil {
			c.MLPBias = *r.MLPBias
		}
	case Mistral:
		// MistralAttention and MistralMLP have no biases (the config has no
		// attention_bias or mlp_bias). A sliding window at least as long as
		// the sequence is full attention: cap the positions to it.
		if len(r.SlidingWindow) > 0 && string(r.SlidingWindow) != "null" {
			var w int
			if err := json.Unmarshal(r.SlidingWindow, &w); err != nil || w <= 0 {
				return nil, fmt.Errorf("config field \"sliding_window\" = %s must be a positive integer or null", r.SlidingWindow)
			}
			if w < c.MaxPositions {
				c.MaxPositions, c.SlidingWindow = w, w
			}
		}
	}
	for i, t := range r.LayerTypes {
		if t != "full_attention" {
			return nil, &UnsupportedError{fmt.Sprintf("layer_types[%d]", i), quote(t), "only full_attention layers are implemented"}
		}
	}
	if err := parseRopeScaling(r.RopeScaling, c); err != nil {
		return nil, err
	}
	if len(r.Quantization) > 0 && string(r.Quantization) != "null" {
		return nil, &UnsupportedError{"quantization_config", string(r.Quantization), "pre-quantized checkpoints are not implemented; load the BF16 checkpoint"}
	}
	if err := parseMoE(&r, c); err != nil {
		return nil, err
	}
	if r.NumLocalExperts != nil && *r.NumLocalExperts > 0 {
		return nil, &UnsupportedError{"num_local_experts", fmt.Sprint(*r.NumLocalExperts), "mixture-of-experts is not implemented"}
	}
	if r.AttnLogitCap != nil || r.FinalLogitCap != nil {
		return nil, &UnsupportedError{"attn_logit_softcapping", "set", "logit soft-capping is not implemented"}
	}
	var err error
	if c.BOSTokenID, err = parseTokenID(r.BOSTokenID, "bos_token_id"); err != nil {
		return nil, err
	}
	if c.EOSTokenIDs, err = parseTokenIDs(r.EOSTokenID, "eos_token_id"); err != nil {
		return nil, err
	}
	for _, id := range append([]int{c.BOSTokenID}, c.EOSTokenIDs...) {
		if id < -1 || id >= maxVocab {
			return nil, fmt.Errorf("config fields bos_token_id/eos_token_id: token id %d is out of range", id)
		}
	}
	c.TorchDType = r.TorchDType
	return c, nil
}

// windowNote explains a position limit that comes from SlidingWindow.
func (c *Config) windowNote() string {
	if c.SlidingWindow == 0 {
		return ""
	}
	return fmt.Sprintf(" (config field \"sliding_window\" = %d: attention over a window shorter than the sequence is not implemented)", c.SlidingWindow)
}

// Upper bounds of config sizes (see ParseConfig).
const (
	maxVocab        = 1 << 22
	maxHidden       = 1 << 17
	maxIntermediate = 1 << 19
	maxLayers       = 1 << 10
	maxHeads        = 1 << 10
	maxHeadDim      = 1 << 12
	maxPositions    = 1 << 26
)

func parseRopeScaling(raw json.RawMessage, c *Config) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var rs struct {
		RopeType *string `json:"rope_type"`
		Type     *string `json:"type"`
		RopeScaling
	}
	if err := json.Unmarshal(raw, &rs); err != nil {
		return fmt.Errorf("config field \"rope_scaling\": %w", err)
	}
	typ := ""
	if rs.RopeType != nil {
		typ = *rs.RopeType
	} else if rs.Type != nil {
		typ = *rs.Type
	}
	switch typ {
	case "default":
		return nil
	case "llama3":
		s := rs.RopeScaling
		if s.Factor <= 0 || s.LowFreqFactor <= 0 || s.HighFreqFactor <= s.LowFreqFactor || s.OriginalMaxPos <= 0 {
			return fmt.Errorf("config field \"rope_scaling\" of type llama3 needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0: %s", raw)
		}
		c.RopeScaling = &s
		return nil
	}
	return &UnsupportedError{"rope_scaling.rope_type", quote(typ), "only llama3 rope scaling is implemented"}
}

// InvFreq returns RoPE's inverse frequencies [HeadDim/2], with llama3 scaling
// applied as Hugging Face's _compute_llama3_parameters does.
func (c *Config) InvFreq() []float32 {
	half := c.HeadDim / 2
	out := make([]float32, half)
	for i := range out {
		f := 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim))
		if s := c.RopeScaling; s != nil {
			lowWave := float64(s.OriginalMaxPos) / s.LowFreqFactor
			highWave := float64(s.OriginalMaxPos) / s.HighFreqFactor
			wave := 2 * math.Pi / f
			switch {
			case wave < highWave:
			case wave > lowWave:
				f /= s.Factor
			default:
				smooth := (float64(s.OriginalMaxPos)/wave - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
				f = (1-smooth)*f/s.Factor + smooth*f
			}
		}
		out[i] = float32(f)
	}
	return out
}

func parseTokenID(raw json.RawMessage, field string) (int, error) {
	ids, err := parseTokenIDs(raw, field)
	if err != nil || len(ids) == 0 {
		return -1, err
	}
	return ids[0], nil
}

func parseTokenIDs(raw json.RawMessage, field string) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if json.Unmarshal(raw, &one) == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("config field %q: want an integer or a list of integers: %s", field, raw)
	}
	return many, nil
}

func has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
