package model

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/internal/inputfile"
	"github.com/gotrain/gotrain/kernels"
	"github.com/gotrain/gotrain/model/safetensors"
)

// Module names one of the seven linear layers of a decoder block.
type Module int

// The seven adapted modules, in PEFT key order within a layer.
const (
	ModQ Module = iota
	ModK
	ModV
	ModO
	ModGate
	ModUp
	ModDown
	NumModules
)

// moduleNames are PEFT's target_modules names, indexed by Module.
var moduleNames = [NumModules]string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// modulePaths are the modules' paths inside a decoder layer.
var modulePaths = [NumModules]string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}

// modRouter marks a sparse layer's router (mlp.gate, [experts × hidden])
// in parsed adapter keys and in LoRA dropout masks; it is not one of the
// seven modules (Adapter.Routers holds its LoRA weights).
const modRouter = NumModules

// routerName is the router's PEFT module name (Qwen3MoeSparseMoeBlock.gate),
// the one target_modules lists; gotrain's --target-modules calls it "router".
const routerName = "gate"

// String is the module's PEFT name ("q_proj", ..., "gate" for the router).
func (m Module) String() string {
	if m == modRouter {
		return routerName
	}
	return moduleNames[m]
}

// each calls fn with every LoRA module of the adapter and its module path
// ("model.layers.3.self_attn.q_proj", "model.layers.3.mlp.gate",
// "model.layers.3.mlp.experts.7.up_proj"), layer by layer: a layer's
// modules in module order, its router, then its experts.
func (a *Adapter) each(fn func(path string, lr *LoRA)) {
	for l, layer := range a.Layers {
		for mod, lr := range layer {
			if lr != nil {
				fn(fmt.Sprintf("model.layers.%d.%s", l, modulePaths[mod]), lr)
			}
		}
		if lr := a.router(l); lr != nil {
			fn(fmt.Sprintf("model.layers.%d.mlp.gate", l), lr)
		}
		if l >= len(a.Experts) {
			continue
		}
		for e, ex := range a.Experts[l] {
			for mod, lr := range ex {
				if lr != nil {
					fn(expertPath(l, e, Module(mod)), lr)
				}
			}
		}
	}
}

// Params lists the adapter's LoRA tensors in a fixed order (layer, module, A
// then B) with their PEFT key names; the slices alias the adapter's weights.
func (a *Adapter) Params() (names []string, ts [][]float32) {
	a.each(func(path string, lr *LoRA) {
		p := "base_model.model." + path + "."
		names = append(names, p+"lora_A.weight", p+"lora_B.weight")
		ts = append(ts, lr.A, lr.B)
	})
	for _, n := range a.savedNames() {
		names, ts = append(names, savedPrefix+n), append(ts, a.Saved[n])
	}
	return names, ts
}

// router returns the LoRA weights of layer l's router, or nil.
func (a *Adapter) router(l int) *LoRA {
	if a == nil || l >= len(a.Routers) {
		return nil
	}
	return a.Routers[l]
}

// routerSlot makes a.Routers hold a slot for every layer.
func (a *Adapter) routerSlot(l int) {
	if a.Routers == nil {
		a.Routers = make([]*LoRA, len(a.Layers))
	}
}

// ParseModule accepts "q_proj" or the short "q" (and likewise for the others).
func ParseModule(s string) (Module, error) {
	for i, n := range moduleNames {
		if s == n || s+"_proj" == n {
			return Module(i), nil
		}
	}
	return 0, fmt.Errorf("unknown LoRA target module %q (want q,k,v,o,gate,up,down)", s)
}

// LoRA is one adapted linear layer: y += Scale · B·(A·x).
type LoRA struct {
	R, In, Out int
	A          []float32 // [R × In]
	B          []float32 // [Out × R]
	Scale      float32
}

// AdapterConfig is PEFT's adapter_config.json, the fields gotrain reads and writes.
type AdapterConfig struct {
	PeftType          string             `json:"peft_type"`
	TaskType          string             `json:"task_type"`
	BaseModel         string             `json:"base_model_name_or_path"`
	R                 int                `json:"r"`
	LoraAlpha         float64            `json:"lora_alpha"`
	LoraDropout       float64            `json:"lora_dropout"`
	UseRSLoRA         bool               `json:"use_rslora"`
	TargetModules     []string           `json:"target_modules"`
	Bias              string             `json:"bias"`
	FanInFanOut       bool               `json:"fan_in_fan_out"`
	InitLoraWeights   bool               `json:"init_lora_weights"`
	InferenceMode     bool               `json:"inference_mode"`
	ModulesToSave     []string           `json:"modules_to_save"`
	UseDoRA           bool               `json:"use_dora"`
	LayersToTransform []int              `json:"layers_to_transform"`
	RankPattern       map[string]int     `json:"rank_pattern"`
	AlphaPattern      map[string]float64 `json:"alpha_pattern"`
	Revision          *string            `json:"revision"`
}

// Adapter is a set of LoRA weights for a model, kept apart from the frozen
// base (never merged), so one base can serve several adapters at once.
type Adapter struct {
	Config AdapterConfig
	Layers [][NumModules]*LoRA // [layer][module]; nil where not adapted
	// Experts are the LoRA weights of sparse layers' experts (gate, up and
	// down), [layer][expert][module]; nil for a layer without any.
	Experts [][][NumModules]*LoRA
	// Routers are the LoRA weights of sparse layers' routers (mlp.gate,
	// which PEFT's "all-linear" adapts), by layer; nil when none.
	Routers []*LoRA
	// Saved holds PEFT's modules_to_save (saved.go): whole tensors that
	// replace the base's, by the base tensor's name.
	Saved      map[string][]float32
	savedShape map[string][]int // their shapes, for Save
	// the model with Saved bound in (saved.go), for the model boundTo
	bind           sync.Mutex
	bound, boundTo *Model
}

// Scaling is PEFT's LoRA scaling: alpha/r, or alpha/sqrt(r) with rsLoRA.
func Scaling(alpha float64, r int, rslora bool) float32 {
	if rslora {
		return float32(alpha / math.Sqrt(float64(r)))
	}
	return float32(alpha / float64(r))
}

// rawAdapterConfig reads target_modules as a list or a string.
type rawAdapterConfig struct {
	AdapterConfig
	TargetModules json.RawMessage `json:"target_modules"`
	LoraAlpha     *float64        `json:"lora_alpha"`
}

// LoadAdapter reads a PEFT LoRA adapter directory (adapter_config.json +
// adapter_model.safetensors) and checks it against the model.
func (m *Model) LoadAdapter(dir string) (*Adapter, error) {
	a, err := m.loadAdapter(dir)
	if err != nil {
		return nil, fmt.Errorf("model: adapter %s: %w", dir, err)
	}
	return a, nil
}

func (m *Model) loadAdapter(dir string) (*Adapter, error) {
	b, err := inputfile.ReadFile(filepath.Join(dir, "adapter_config.json"), inputfile.MaxSmallFile)
	if err != nil {
		return nil, err
	}
	var raw rawAdapterConfig
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("adapter_config.json: invalid JSON: %w", err)
	}
	cfg := raw.AdapterConfig
	if cfg.PeftType != "" && cfg.PeftType != "LORA" {
		return nil, fmt.Errorf("adapter_config.json: peft_type %q: only LORA is supported: %w", cfg.PeftType, ErrUnsupported)
	}
	switch {
	case cfg.UseDoRA:
		return nil, &UnsupportedError{"use_dora", "true", "DoRA adapters are not implemented"}
	case cfg.FanInFanOut:
		return nil, &UnsupportedError{"fan_in_fan_out", "true", "only nn.Linear layouts are implemented"}
	case cfg.Bias != "" && cfg.Bias != "none":
		return nil, &UnsupportedError{"bias", quote(cfg.Bias), "LoRA bias training is not implemented"}
	case len(cfg.AlphaPattern) > 0:
		return nil, &UnsupportedError{"alpha_pattern", fmt.Sprint(cfg.AlphaPattern), "per-module alpha is not implemented"}
	}
	if cfg.R <= 0 {
		return nil, fmt.Errorf("adapter_config.json: r = %d must be positive", cfg.R)
	}
	if raw.LoraAlpha == nil {
		cfg.LoraAlpha = 8 // PEFT's default
	} else {
		cfg.LoraAlpha = *raw.LoraAlpha
	}
	match, err := targetMatcher(raw.TargetModules)
	if err != nil {
		return nil, err
	}
	f, err := safetensors.Open(filepath.Join(dir, "adapter_model.safetensors"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a := &Adapter{Config: cfg, Layers: make([][NumModules]*LoRA, m.Config.Layers)}
	type half struct{ a, b *safetensors.Tensor }
	found := map[[3]int]*half{} // layer, expert (−1: none), module
	var allowed []string        // the modules modules_to_save selects
	if len(cfg.ModulesToSave) > 0 {
		if allowed, err = savedModules(&m.Config, cfg.ModulesToSave); err != nil {
			return nil, fmt.Errorf("adapter_config.json: %w", err)
		}
	}
	for _, name := range f.Names() {
		if saved := m.parseSavedKey(name); saved != "" {
			if !slices.Contains(allowed, strings.TrimSuffix(saved, ".weight")) {
				return nil, fmt.Errorf("tensor %q: module not in modules_to_save %v", name, cfg.ModulesToSave)
			}
			t, _ := f.Tensor(name)
			if n := savableTensors(&m.Config)[strings.TrimSuffix(saved, ".weight")]; t.NumElements() != n {
				return nil, fmt.Errorf("tensor %q has shape %v, the model's %d values: %w", name, t.Shape, n, ErrShape)
			}
			v, err := t.ToF32()
			if err != nil {
				return nil, fmt.Errorf("tensor %q: %w", name, err)
			}
			a.addSaved(saved, v, t.Shape)
			continue
		}
		layer, expert, mod, isA, err := parseLoRAKey(name)
		if err != nil {
			return nil, err
		}
		if layer >= m.Config.Layers {
			return nil, fmt.Errorf("tensor %q: layer %d, the model has %d layers: %w", name, layer, m.Config.Layers, ErrShape)
		}
		if sparse := m.Config.Sparse(layer); sparse != (expert >= 0) && isExpertModule(mod) || expert >= m.Config.Experts || mod == modRouter && !sparse {
			return nil, fmt.Errorf("tensor %q does not fit layer %d of the model (%d experts, layer sparse: %v): %w", name, layer, m.Config.Experts, sparse, ErrShape)
		}
		key := [3]int{layer, expert, int(mod)}
		h := found[key]
		if h == nil {
			h = &half{}
			found[key] = h
		}
		t, _ := f.Tensor(name)
		if isA {
			h.a = t
		} else {
			h.b = t
		}
	}
	if len(found) == 0 && len(a.Saved) == 0 {
		return nil, fmt.Errorf("adapter_model.safetensors holds no LoRA tensors")
	}
	adapted := map[string]bool{}
	for key, h := range found {
		layer, expert, mod := key[0], key[1], Module(key[2])
		var path string
		var out, in int
		switch {
		case mod == modRouter:
			path, out, in = fmt.Sprintf("model.layers.%d.mlp.gate", layer), m.Config.Experts, m.Config.Hidden
		case expert >= 0:
			path = expertPath(layer, expert, mod)
			out, in = m.expertShape(mod)
		default:
			path = fmt.Sprintf("model.layers.%d.%s", layer, modulePaths[mod])
			out, in = m.moduleShape(mod)
		}
		name := "base_model.model." + path
		if h.a == nil || h.b == nil {
			return nil, fmt.Errorf("tensor %s: lora_A and lora_B must both be present", name)
		}
		if !match(mod.String(), path) {
			return nil, fmt.Errorf("tensor %s: module %s is not in target_modules", name, mod)
		}
		if len(h.a.Shape) != 2 || len(h.b.Shape) != 2 || h.a.Shape[1] != in || h.b.Shape[0] != out || h.a.Shape[0] != h.b.Shape[1] {
			return nil, fmt.Errorf("tensor %s: lora_A %v and lora_B %v do not fit a [%d × %d] layer (adapter for another model?): %w", name, h.a.Shape, h.b.Shape, out, in, ErrShape)
		}
		r := h.a.Shape[0]
		if want, err := cfg.rankOf(name); err != nil {
			return nil, err
		} else if r != want {
			// PEFT refuses such an adapter: the scaling alpha/r would be wrong.
			return nil, fmt.Errorf("adapter_config.json: r = %d, but tensor %s.lora_A has rank %d: %w", want, name, r, ErrShape)
		}
		A, err := h.a.ToF32()
		if err != nil {
			return nil, fmt.Errorf("tensor %s.lora_A: %w", name, err)
		}
		B, err := h.b.ToF32()
		if err != nil {
			return nil, fmt.Errorf("tensor %s.lora_B: %w", name, err)
		}
		lr := &LoRA{R: r, In: in, Out: out, A: A, B: B, Scale: Scaling(cfg.LoraAlpha, r, cfg.UseRSLoRA)}
		switch {
		case mod == modRouter:
			a.routerSlot(layer)
			a.Routers[layer] = lr
		case expert >= 0:
			a.expertLayer(layer, m.Config.Experts)[expert][mod] = lr
		default:
			a.Layers[layer][mod] = lr
		}
		adapted[mod.String()] = true
	}
	if len(cfg.TargetModules) == 0 {
		for _, n := range append(moduleNames[:], routerName) {
			if adapted[n] {
				cfg.TargetModules = append(cfg.TargetModules, n)
			}
		}
		a.Config.TargetModules = cfg.TargetModules
	}
	return a, nil
}

var loraKey = regexp.MustCompile(`^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(?:experts\.(\d+)\.)?(\w+)\.lora_([AB])(?:\.default)?\.weight$`)

// parseLoRAKey parses a PEFT LoRA tensor name; expert is −1 but for a
// sparse layer's expert ("mlp.experts.E.gate_proj").
func parseLoRAKey(name string) (layer, expert int, mod Module, isA bool, err error) {
	s := loraKey.FindStringSubmatch(name)
	if s == nil {
		return 0, 0, 0, false, fmt.Errorf("tensor %q is not a LoRA weight of a decoder layer's attention, MLP or experts (adapter for another architecture?)", name)
	}
	layer, err = strconv.Atoi(s[1])
	if err != nil || len(s[1]) > 6 {
		return 0, 0, 0, false, fmt.Errorf("tensor %q: layer %s out of range", name, s[1])
	}
	expert = -1
	if s[3] != "" {
		if expert, err = strconv.Atoi(s[3]); err != nil || len(s[3]) > 6 {
			return 0, 0, 0, false, fmt.Errorf("tensor %q: expert %s out of range", name, s[3])
		}
	}
	if s[2] == "mlp" && s[4] == routerName && expert < 0 {
		return layer, -1, modRouter, s[5] == "A", nil
	}
	mod, err = ParseModule(s[4])
	if err != nil || moduleNames[mod] != s[4] || !strings.HasPrefix(modulePaths[mod], s[2]+".") || expert >= 0 && !isExpertModule(mod) {
		return 0, 0, 0, false, fmt.Errorf("tensor %q: unknown module %s.%s", name, s[2], s[4])
	}
	return layer, expert, mod, s[5] == "A", nil
}

// targetMatcher follows PEFT: a list matches module names by exact name or
// dotted suffix; a string is "all-linear" or a regular expression that must
// match the whole module path.
func targetMatcher(raw json.RawMessage) (func(short, path string) bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return func(string, string) bool { return true }, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return func(short, path string) bool {
			for _, t := range list {
				if t == short || t == path || strings.HasSuffix(path, "."+t) {
					return true
				}
			}
			return false
		}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("adapter_config.json: target_modules must be a list or a string: %s", raw)
	}
	if s == "all-linear" {
		return func(string, string) bool { return true }, nil
	}
	re, err := regexp.Compile("^(?:" + s + ")$")
	if err != nil {
		return nil, fmt.Errorf("adapter_config.json: target_modules regex %q: %w", s, err)
	}
	return func(_, path string) bool { return re.MatchString(path) }, nil
}

// expertShape returns an expert module's weight shape [out, in].
func (m *Model) expertShape(mod Module) (out, in int) { return expertShapeOf(&m.Config, mod) }

func expertShapeOf(c *Config, mod Module) (out, in int) {
	if mod == ModDown {
		return c.Hidden, c.MoEIntermediate
	}
	return c.MoEIntermediate, c.Hidden
}

// expertLayer returns layer l's expert LoRA slots, making them for E
// experts when absent.
func (a *Adapter) expertLayer(l, E int) [][NumModules]*LoRA {
	if a.Experts == nil {
		a.Experts = make([][][NumModules]*LoRA, len(a.Layers))
	}
	if a.Experts[l] == nil {
		a.Experts[l] = make([][NumModules]*LoRA, E)
	}
	return a.Experts[l]
}

// moduleShape returns a module's weight shape [out, in].
func (m *Model) moduleShape(mod Module) (out, in int) {
	c := &m.Config
	q, kv := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	switch mod {
	case ModQ:
		return q, c.Hidden
	case ModK, ModV:
		return kv, c.Hidden
	case ModO:
		return c.Hidden, q
	case ModGate, ModUp:
		return c.Intermediate, c.Hidden
	}
	return c.Hidden, c.Intermediate
}

// Save writes the adapter as a PEFT directory (adapter_config.json and
// adapter_model.safetensors, float32), each file to a temporary name first.
func (a *Adapter) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	var ts []safetensors.Tensor
	a.each(func(path string, l *LoRA) {
		p := "base_model.model." + path + "."
		ts = append(ts,
			safetensors.Tensor{Name: p + "lora_A.weight", DType: safetensors.F32, Shape: []int{l.R, l.In}, Data: safetensors.BytesOfF32(l.A)},
			safetensors.Tensor{Name: p + "lora_B.weight", DType: safetensors.F32, Shape: []int{l.Out, l.R}, Data: safetensors.BytesOfF32(l.B)})
	})
	for _, n := range a.savedNames() {
		ts = append(ts, safetensors.Tensor{Name: savedPrefix + n, DType: safetensors.F32, Shape: a.savedShape[n], Data: safetensors.BytesOfF32(a.Saved[n])})
	}
	if err := safetensors.Write(filepath.Join(dir, "adapter_model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	cfg := a.Config
	cfg.PeftType, cfg.TaskType = "LORA", "CAUSAL_LM"
	if cfg.Bias == "" {
		cfg.Bias = "none"
	}
	sort.Strings(cfg.TargetModules)
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, "adapter_config.json"), append(b, '\n'))
}

// writeFileAtomic writes data to a temporary file beside path and renames it.
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("model: writing %s: %w", path, err)
	}
	return nil
}

// apply adds the LoRA term to y [T × Out] for input x [T × In]; tmp holds T×R floats.
func (l *LoRA) apply(y, x, tmp []float32, T int) {
	u := tmp[:T*l.R]
	kernels.MatMulT(u, x, T, kernels.NewF32(l.R, l.In, l.A), false)
	for i := range u {
		u[i] *= l.Scale
	}
	kernels.MatMulT(y, u, T, kernels.NewF32(l.Out, l.R, l.B), true)
}

// NewAdapter returns a fresh adapter initialised as PEFT does: A
// Kaiming-uniform with a = √5, i.e. U(−1/√in, 1/√in), and B zero, so the
// adapted model starts equal to the base. cfg.TargetModules holds module names
// ("q_proj" or "q").
func (m *Model) NewAdapter(cfg AdapterConfig, seed uint64) (*Adapter, error) {
	if cfg.R <= 0 {
		return nil, fmt.Errorf("model: LoRA rank %d must be positive", cfg.R)
	}
	var targets []Module
	router := false
	for i, t := range cfg.TargetModules {
		if t == "router" || t == "mlp.gate" {
			router, cfg.TargetModules[i] = true, routerName
			continue
		}
		mod, err := ParseModule(t)
		if err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
		targets = append(targets, mod)
		cfg.TargetModules[i] = mod.String()
	}
	if len(targets) == 0 && !router {
		return nil, fmt.Errorf("model: no LoRA target modules")
	}
	if router && m.Config.SparseLayers() == 0 {
		return nil, fmt.Errorf("model: LoRA target router: the model has no mixture-of-experts layers")
	}
	rng := rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d))
	a := &Adapter{Config: cfg, Layers: make([][NumModules]*LoRA, m.Config.Layers)}
	scale := Scaling(cfg.LoraAlpha, cfg.R, cfg.UseRSLoRA)
	newLoRA := func(out, in int) *LoRA {
		lr := &LoRA{R: cfg.R, In: in, Out: out, A: make([]float32, cfg.R*in), B: make([]float32, out*cfg.R), Scale: scale}
		bound := 1 / math.Sqrt(float64(in))
		for i := range lr.A {
			lr.A[i] = float32((2*rng.Float64() - 1) * bound)
		}
		return lr
	}
	for l := range a.Layers {
		for _, mod := range targets {
			if !m.Config.Sparse(l) || !isExpertModule(mod) {
				a.Layers[l][mod] = newLoRA(m.moduleShape(mod))
				continue
			}
			// PEFT matches gate_proj, up_proj and down_proj to every
			// expert's module of that name.
			ex := a.expertLayer(l, m.Config.Experts)
			for e := range ex {
				ex[e][mod] = newLoRA(m.expertShape(mod))
			}
		}
		if router && m.Config.Sparse(l) {
			a.routerSlot(l)
			a.Routers[l] = newLoRA(m.Config.Experts, m.Config.Hidden)
		}
	}
	if err := m.initSaved(a); err != nil {
		return nil, err
	}
	return a, nil
}

// rankOf is the rank adapter_config.json gives the module of that full
// name: r, or the value of the first rank_pattern key that matches its end
// (PEFT matches "(.*\.)?(KEY)$"; longest key first, for a stable choice).
func (c AdapterConfig) rankOf(name string) (int, error) {
	keys := make([]string, 0, len(c.RankPattern))
	for k := range c.RankPattern {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return len(keys[i]) > len(keys[j]) || len(keys[i]) == len(keys[j]) && keys[i] < keys[j]
	})
	for _, k := range keys {
		re, err := regexp.Compile(`^(.*\.)?(` + k + `)$`)
		if err != nil {
			return 0, fmt.Errorf("adapter_config.json: rank_pattern key %q: %w", k, err)
		}
		if re.MatchString(name) {
			return c.RankPattern[k], nil
		}
	}
	return c.R, nil
}

// maxRank is the largest LoRA rank of the adapter (0 for nil or none).
func (a *Adapter) maxRank() int {
	r := 0
	if a != nil {
		a.each(func(_ string, lr *LoRA) { r = max(r, lr.R) })
	}
	return r
}
