package model

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/gotrain/gotrain/kernels"
)

// PlanInput describes a run for PlanMemory.
type PlanInput struct {
	// WeightDType is the stored dtype of the checkpoint: "F32", "BF16" or
	// "F16" ("" means the config's torch_dtype, else BF16). F16 is widened
	// to float32 at load.
	WeightDType string
	// Quantize is LoadOptions.Quantize ("", "int8", "nf4", "nf4-dq").
	Quantize string
	// LoRARank and LoRATargets (PEFT module names, nil = all seven) size
	// the adapter; rank 0 means no adapter (inference).
	LoRARank    int
	LoRATargets []string
	// ModulesToSave are the adapter's fully trained modules (PEFT's
	// modules_to_save: embed_tokens, lm_head, norm): float32 copies trained
	// like the adapter's tensors.
	ModulesToSave []string
	// Optimizer is "adamw" (gradients + 2 moments), "adamw8bit" (gradients
	// + 2 moments of one byte each, block-wise scaled), "sgd" (gradients
	// only) or "" (no training: no gradients, no activations kept).
	Optimizer string
	// Full plans full finetuning: float32 master copies of every weight,
	// their gradients and the optimiser's moments (LoRARank is ignored).
	Full bool
	// BatchTokens is the number of tokens in one LossAndGrad call (or one
	// forward chunk in inference).
	BatchTokens int
	// NoCheckpointing estimates keeping every layer's activations instead
	// of gotrain's per-layer checkpointing (only layer inputs kept, each
	// layer recomputed in the backward pass).
	NoCheckpointing bool
	// KVTokens is the KV cache capacity in tokens (generation, scoring).
	KVTokens int
	// Threads is the kernel worker count (packing buffers); 0 = 2.
	Threads int
	// Ranks is the number of data-parallel processes of the job (0 or 1:
	// one). Each holds the whole model; with several, a second micro-batch
	// gradient and the pieces received from the peers are kept as well.
	Ranks int
}

// PlanPart is one line of a Plan.
type PlanPart struct {
	Name  string
	Bytes int64
}

// Plan is an estimate of a run's resident memory, by part.
type Plan struct {
	Parts []PlanPart
	Total int64
	Input PlanInput // what the plan was made for
	cfg   *Config
}

// Replan is the plan for the same model with another input (for
// suggestions: "with --quantize nf4 it would need ...").
func (p Plan) Replan(in PlanInput) Plan {
	if p.cfg == nil {
		return Plan{Input: in}
	}
	return PlanMemory(p.cfg, in)
}

// runtimeBytes is the fixed cost of the Go runtime, the binary and small
// buffers, measured as the RSS of an idle gotrain process (about 20 MB)
// plus slack.
const runtimeBytes = 32 << 20

// PlanMemory estimates the resident memory of a run of cfg. Weights count
// in full (memory-mapped pages become resident as the forward touches
// them); activations follow layerState and Backprop, whose buffers are kept
// from one step to the next (so a training loop leaves little garbage).
func PlanMemory(cfg *Config, p PlanInput) Plan {
	pl := Plan{Input: p, cfg: cfg}
	// float64 arithmetic cannot wrap (int64 did, to a plan of 0 bytes, for
	// hostile sizes); it is exact up to 8 PiB, and a part beyond
	// math.MaxInt64 bytes saturates there.
	var total float64
	add := func(name string, b float64) {
		if b != 0 {
			pl.Parts = append(pl.Parts, PlanPart{name, saturate(b)})
			total += b
		}
	}
	H, I, L, V := float64(cfg.Hidden), float64(cfg.Intermediate), float64(cfg.Layers), float64(cfg.VocabSize)
	qw, kvw := float64(cfg.Heads)*float64(cfg.HeadDim), float64(cfg.KVHeads)*float64(cfg.HeadDim)
	dt := strings.ToUpper(p.WeightDType)
	if dt == "" {
		switch cfg.TorchDType {
		case "float32":
			dt = "F32"
		case "float16":
			dt = "F16"
		default:
			dt = "BF16"
		}
	}
	elem := 2.0
	if dt == "F32" || dt == "F16" {
		elem = 4 // F16 is widened to a float32 copy
	}
	// The LM head is read whole every step. An untied embedding stays
	// memory-mapped, but looking up rows maps the page cache's large folios
	// around them: after one 1024-token step of the Qwen3-0.6B shape,
	// untied, all 297 MiB of it were resident (MADV_RANDOM did not change
	// that, Linux 6.18), so it counts whole (F16: its float32 copy).
	emb, embName := V*H*elem, "LM head (+ tied embedding) ("+dt+")"
	switch {
	case !cfg.TieEmbeddings && p.Quantize != "":
		// an untied head is quantized to Q8 with the layers (HeadQuantize)
		embName = "embedding (" + dt + ")"
		add("LM head (int8)", quantBytes(V, H, HeadQuantize, elem))
	case !cfg.TieEmbeddings:
		emb, embName = 2*emb, "LM head + embedding ("+dt+")"
	}
	add(embName, emb)
	// The seven linears of every layer: [out × in] pairs.
	shapes := [NumModules][2]float64{{qw, H}, {kvw, H}, {kvw, H}, {H, qw}, {I, H}, {I, H}, {H, I}}
	var lin float64
	for _, s := range shapes {
		lin += quantBytes(s[0], s[1], p.Quantize, elem)
	}
	name := "linear weights (" + dt + ")"
	if p.Quantize != "" {
		name = "linear weights (" + p.Quantize + ")"
	}
	if sp := float64(cfg.SparseLayers()); sp > 0 {
		// A sparse layer holds every expert (all resident: any token may
		// choose any) and its router (stored dtype) instead of the dense MLP.
		E, Im := float64(cfg.Experts), float64(cfg.MoEIntermediate)
		dense := 2*quantBytes(I, H, p.Quantize, elem) + quantBytes(H, I, p.Quantize, elem)
		experts := 2*quantBytes(Im, H, p.Quantize, elem) + quantBytes(H, Im, p.Quantize, elem)
		add(fmt.Sprintf("experts (%g layers × %g)", sp, E), sp*E*experts)
		add("routers ("+dt+")", sp*E*H*elem)
		lin -= sp / L * dense
	}
	add(name, L*lin)
	// Norms and biases are float32 heap copies.
	small := (2*L + 1) * H
	if cfg.QKVBias {
		small += L * (qw + 2*kvw)
	}
	if cfg.QKNorm {
		small += 2 * L * float64(cfg.HeadDim)
	}
	add("norms + biases (F32)", small*4)
	// cos and sin of every position the model supports (head_dim/2 each):
	// 8 MiB at head_dim 64, 16 MiB at Qwen3's 128, 12% of the small Qwen3
	// shape's measured training step before it was counted here.
	add("RoPE table (F32)", float64(min(cfg.MaxPositions, maxRopePositions))*float64(cfg.HeadDim)*4)

	// LoRA adapter: A [r × in] and B [out × r] per targeted module.
	var loraParams float64
	if p.Full {
		p.LoRARank = 0
	}
	r := float64(max(p.LoRARank, 0))
	if r > 0 {
		sp := float64(cfg.SparseLayers())
		for mod, s := range shapes {
			if targeted(p.LoRATargets, Module(mod)) {
				n := L
				if isExpertModule(Module(mod)) && sp > 0 {
					// every expert's module of a sparse layer has its own
					out, in := expertShapeOf(cfg, Module(mod))
					loraParams += sp * float64(cfg.Experts) * r * float64(out+in)
					n -= sp
				}
				loraParams += n * r * (s[0] + s[1])
			}
		}
		if sp := float64(cfg.SparseLayers()); sp > 0 && slices.ContainsFunc(p.LoRATargets, func(t string) bool { return t == "router" || t == "mlp.gate" || t == "all-linear" }) {
			loraParams += sp * r * float64(cfg.Experts+cfg.Hidden) // the routers [experts × hidden]
		}
		add("LoRA adapter (F32)", loraParams*4)
		// the tensors the loader will copy (an unknown name is its error)
		var saved float64
		names := make([]string, len(p.ModulesToSave))
		for i, n := range p.ModulesToSave {
			names[i] = strings.TrimSpace(n)
		}
		if paths, err := savedModules(cfg, names); err == nil {
			sizes := savableTensors(cfg)
			for _, path := range paths {
				saved += float64(sizes[path])
			}
		}
		if saved > 0 {
			add("modules_to_save copies (F32)", saved*4)
			loraParams += saved // trained like the adapter: gradients and moments below
		}
	}
	T := float64(max(p.BatchTokens, 0))
	// gradients: the step's sum and one micro-batch's; with several ranks
	// another micro-batch's and up to a whole gradient in received pieces
	grads := 2.0
	if p.Ranks > 1 {
		grads = 4
	}
	if p.Full {
		addFullParts(add, cfg, p.Optimizer, grads)
	}
	switch p.Optimizer {
	case "adamw":
		add("LoRA grads + AdamW moments", (grads+2)*loraParams*4)
	case "adamw8bit":
		add("LoRA grads + 8-bit AdamW moments", grads*loraParams*4+2*loraParams)
	case "sgd":
		add("LoRA grads", grads*loraParams*4)
	}
	if p.Optimizer != "" && T > 0 {
		// Backprop's buffers kept across layers, and one layer's training
		// activations and backward scratch: the tables Backprop allocates from.
		// (in int64: the config's sizes are bounded, so T·I and L·T·r fit)
		kept := float64(trainKeptFloats(cfg, int64(T), int64(r)))
		st := float64(trainLayerFloats(cfg, int64(T), int64(r)))
		layers := kept + st
		if p.NoCheckpointing {
			layers = (L+3)*T*H + L*st
		}
		add("activations (F32)", layers*4)
		// The LM head works headRows rows at a time.
		add("LM head chunk", (headRows*V+4*headRows*H)*4)
	} else if T > 0 {
		// Inference chunk: residual, xn, q, att, k, v, gate, up and logits
		// of the rows scored.
		var moe int64
		moeBuffers(cfg, int64(T), false, &moeState{}, func(_ *[]float32, n int64) { moe += n })
		add("activations (F32)", (T*(2*H+2*qw+2*kvw+2*I)+float64(moe))*4+logitRows*V*4)
	}
	if p.KVTokens > 0 {
		add("KV cache (F32)", float64(p.KVTokens)*L*2*kvw*4)
	}
	th := float64(p.Threads)
	if th <= 0 {
		th = 2
	}
	// Per-thread GEMM packing (KC×MC A block, KC×NC B panel) plus a
	// dequantized panel for quantized weights.
	// B panels are KC × min(NC, widest output) (the LM head's vocabulary).
	pack := th * (256*240 + 256*min(8192, max(V, I, H, qw))) * 4
	if p.Quantize != "" {
		pack += th * min(2<<20, I*H) * 4 // kernels.quantPanel floats at most
	}
	if p.Optimizer != "" && T > 0 && r > 0 { // LoRA's input side, block by block
		c := cfg
		pack += float64(kernels.LoRAScratchBytes(int(th), int(r), max(c.Hidden, c.Intermediate, c.Heads*c.HeadDim, c.MoEIntermediate)))
	}
	add("GEMM buffers", pack)
	add("Go runtime + binary", runtimeBytes)
	pl.Total = saturate(total)
	return pl
}

// saturate converts a byte count to int64, clamping at math.MaxInt64.
func saturate(b float64) int64 {
	if b >= math.MaxInt64 || math.IsNaN(b) {
		return math.MaxInt64
	}
	return int64(b)
}

// quantBytes is the size of an [n × k] weight quantized as kind (elem bytes
// per value when not quantized).
func quantBytes(n, k float64, kind string, elem float64) float64 {
	switch kind {
	case "int8":
		return n*k + n*math.Ceil(k/32)*4
	case "nf4":
		return n*math.Ceil(k/2) + n*math.Ceil(k/64)*4
	case "nf4-dq":
		nb := n * math.Ceil(k/64)
		return n*math.Ceil(k/2) + nb + math.Ceil(nb/256)*4 + 4
	}
	return n * k * elem
}

// targeted reports whether mod is among targets (PEFT names; nil = all).
func targeted(targets []string, mod Module) bool {
	if len(targets) == 0 {
		return true
	}
	for _, t := range targets {
		if t == mod.String() || t == strings.TrimSuffix(mod.String(), "_proj") || t == "all-linear" {
			return true
		}
	}
	return false
}

// String renders the plan as a short table, largest parts first is not
// implied: parts keep the order above.
func (p Plan) String() string {
	var b strings.Builder
	for _, part := range p.Parts {
		fmt.Fprintf(&b, "  %-32s %10s\n", part.Name, FormatBytes(part.Bytes))
	}
	fmt.Fprintf(&b, "  %-32s %10s\n", "total", FormatBytes(p.Total))
	return b.String()
}

// FormatBytes renders n as "812.0 MiB" / "14.20 GiB".
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Available returns the memory available for a new process (MemAvailable
// of /proc/meminfo, in bytes), or -1 when unknown (not Linux).
func Available() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return -1
	}
	defer f.Close()
	return parseMemAvailable(f)
}

// parseMemAvailable reads "MemAvailable:  123456 kB" from a meminfo file.
func parseMemAvailable(r interface{ Read([]byte) (int, error) }) int64 {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemAvailable:" {
			v, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return -1
			}
			if len(f) >= 3 && f[2] == "kB" {
				v *= 1024
			}
			return v
		}
	}
	return -1
}

// ErrOutOfMemory marks a run whose memory plan exceeds the available memory.
var ErrOutOfMemory = errors.New("not enough memory")

// MemoryError is a refused memory plan: errors.Is(err, ErrOutOfMemory).
type MemoryError struct {
	Plan      Plan
	Available int64
}

// Error gives the need and what is available.
func (e *MemoryError) Error() string {
	return fmt.Sprintf("the run needs about %s but only %s is available", FormatBytes(e.Plan.Total), FormatBytes(e.Available))
}

// Unwrap makes errors.Is(err, ErrOutOfMemory) hold.
func (e *MemoryError) Unwrap() error { return ErrOutOfMemory }

// Check returns a *MemoryError when the plan needs more than avail bytes
// (avail < 0, unknown, passes).
func (p Plan) Check(avail int64) error {
	if avail < 0 || p.Total <= avail {
		return nil
	}
	return &MemoryError{Plan: p, Available: avail}
}
