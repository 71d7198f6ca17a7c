package model

import (
	"fmt"
	"slices"

	"github.com/gotrain/gotrain/kernels"
)

// Qwen3-MoE's sparse mixture-of-experts MLP, as transformers'
// Qwen3MoeSparseMoeBlock computes it: a router (mlp.gate, no bias) gives
// each token a softmax (float32) over the experts; the top k are kept,
// renormalised to sum to 1 when norm_topk_prob, and the token's MLP output
// is the routing-weighted sum of those experts' SwiGLU outputs. Tokens are
// grouped by expert, so each expert runs one GEMM over its tokens (a prompt,
// a training batch) and a decoded token reads only its k experts' weights.

// MoEConfig is the part of config.json describing the experts.
type MoEConfig struct {
	Experts         int   // num_experts; 0 for a dense model
	ExpertsPerTok   int   // num_experts_per_tok, the k of top-k
	MoEIntermediate int   // moe_intermediate_size, each expert's SwiGLU width
	NormTopKProb    bool  // norm_topk_prob: the k routing weights are renormalised to sum to 1
	SparseStep      int   // decoder_sparse_step
	MLPOnlyLayers   []int // mlp_only_layers: layers with a dense MLP of intermediate_size
	// RouterAuxCoef is router_aux_loss_coef; transformers adds
	// coef × load-balancing loss to the training loss only when
	// OutputRouterLogits (output_router_logits) is set.
	RouterAuxCoef      float64
	OutputRouterLogits bool
}

// rawMoE mirrors config.json's expert fields (num_experts is rawConfig's).
type rawMoE struct {
	NumExpertsPerTok    *int     `json:"num_experts_per_tok"`
	MoEIntermediateSize *int     `json:"moe_intermediate_size"`
	NormTopKProb        *bool    `json:"norm_topk_prob"`
	DecoderSparseStep   *int     `json:"decoder_sparse_step"`
	MLPOnlyLayers       []int    `json:"mlp_only_layers"`
	RouterAuxLossCoef   *float64 `json:"router_aux_loss_coef"`
	OutputRouterLogits  *bool    `json:"output_router_logits"`
	SharedExpertSize    *int     `json:"shared_expert_intermediate_size"`
}

// maxExperts bounds num_experts (DeepSeek-V3: 256; Qwen3-235B: 128).
const maxExperts = 1 << 12

// parseMoE reads the expert fields; a dense architecture with experts is
// refused by name. Defaults are Qwen3MoeConfig's.
func parseMoE(r *rawConfig, c *Config) error {
	if c.Arch != Qwen3MoE {
		if r.NumExperts != nil && *r.NumExperts > 0 {
			return &UnsupportedError{"num_experts", fmt.Sprint(*r.NumExperts), "mixture-of-experts is implemented for Qwen3MoeForCausalLM only"}
		}
		return nil
	}
	if r.SharedExpertSize != nil && *r.SharedExpertSize > 0 {
		return &UnsupportedError{"shared_expert_intermediate_size", fmt.Sprint(*r.SharedExpertSize), "shared experts (Qwen2-MoE) are not implemented"}
	}
	m := MoEConfig{Experts: 128, ExpertsPerTok: 8, MoEIntermediate: 768, SparseStep: 1, RouterAuxCoef: 0.001}
	for _, f := range []struct {
		name string
		p    *int
		dst  *int
		lo   int
		max  int
	}{
		{"num_experts", r.NumExperts, &m.Experts, 0, maxExperts},
		{"num_experts_per_tok", r.NumExpertsPerTok, &m.ExpertsPerTok, 1, maxExperts},
		{"moe_intermediate_size", r.MoEIntermediateSize, &m.MoEIntermediate, 1, maxIntermediate},
		{"decoder_sparse_step", r.DecoderSparseStep, &m.SparseStep, 1, maxLayers},
	} {
		if f.p != nil {
			*f.dst = *f.p
		}
		if *f.dst < f.lo || *f.dst > f.max {
			return fmt.Errorf("config field %q = %d must be between %d and %d", f.name, *f.dst, f.lo, f.max)
		}
	}
	if m.Experts > 0 && m.ExpertsPerTok > m.Experts {
		return fmt.Errorf("config field \"num_experts_per_tok\" = %d exceeds num_experts = %d", m.ExpertsPerTok, m.Experts)
	}
	if r.NormTopKProb != nil {
		m.NormTopKProb = *r.NormTopKProb
	}
	if r.RouterAuxLossCoef != nil {
		m.RouterAuxCoef = *r.RouterAuxLossCoef
	}
	if !(m.RouterAuxCoef >= 0 && m.RouterAuxCoef <= 1e6) {
		return fmt.Errorf("config field \"router_aux_loss_coef\" = %g must be in [0, 1e6]", m.RouterAuxCoef)
	}
	if r.OutputRouterLogits != nil {
		m.OutputRouterLogits = *r.OutputRouterLogits
	}
	// Entries outside [0, layers) select no layer, as in transformers.
	m.MLPOnlyLayers = slices.Clone(r.MLPOnlyLayers)
	c.MoEConfig = m
	return nil
}

// Sparse reports whether layer l has a mixture-of-experts MLP: as
// transformers' Qwen3MoeDecoderLayer, when l is not in mlp_only_layers,
// num_experts > 0 and (l+1) is a multiple of decoder_sparse_step.
func (c *Config) Sparse(l int) bool {
	return c.Experts > 0 && !slices.Contains(c.MLPOnlyLayers, l) && (l+1)%c.SparseStep == 0
}

// SparseLayers is the number of layers with experts.
func (c *Config) SparseLayers() int {
	n := 0
	for l := 0; l < c.Layers; l++ {
		if c.Sparse(l) {
			n++
		}
	}
	return n
}

// DefaultRouterAuxCoef is the coefficient of the router's load-balancing
// loss in the training loss when no flag sets it: router_aux_loss_coef if
// output_router_logits is set, else 0, as transformers' forward does.
func (c *Config) DefaultRouterAuxCoef() float64 {
	if c.Experts > 0 && c.OutputRouterLogits {
		return c.RouterAuxCoef
	}
	return 0
}

// Expert is one SwiGLU expert of a sparse layer.
type Expert struct {
	Gate, Up, Down Linear
}

// module returns the expert's linear module mod (gate, up or down).
func (e *Expert) module(mod Module) *Linear {
	switch mod {
	case ModGate:
		return &e.Gate
	case ModUp:
		return &e.Up
	case ModDown:
		return &e.Down
	}
	return nil
}

// MoE is a sparse layer's router and experts.
type MoE struct {
	Router  *kernels.Matrix // [Experts × Hidden], mlp.gate.weight
	Experts []Expert
}

// isExpertModule reports whether mod is one an expert has.
func isExpertModule(mod Module) bool { return mod == ModGate || mod == ModUp || mod == ModDown }

// expertPath is the module path of expert e's module mod in layer l.
func expertPath(l, e int, mod Module) string {
	return fmt.Sprintf("model.layers.%d.mlp.experts.%d.%s", l, e, moduleNames[mod])
}

// moe loads layer prefix p's router and experts.
func (l *loader) moe(p string, c *Config) *MoE {
	H, I := c.Hidden, c.MoEIntermediate
	b := &MoE{Router: l.matrix(p+"mlp.gate.weight", c.Experts, H), Experts: make([]Expert, c.Experts)}
	for e := range b.Experts {
		q := fmt.Sprintf("%smlp.experts.%d.", p, e)
		b.Experts[e] = Expert{
			Gate: l.linear(q+"gate_proj", I, H, false),
			Up:   l.linear(q+"up_proj", I, H, false),
			Down: l.linear(q+"down_proj", H, I, false),
		}
	}
	return b
}

// moeState is a sparse layer's buffers for T tokens routed to k experts
// each: R = T·k rows, grouped by expert.
type moeState struct {
	probs   []float32 // [T × E] router softmax (training: kept for the backward)
	sel     []int32   // [T × k] chosen experts
	w       []float32 // [T × k] routing weights
	off     []int32   // [E+1] expert e's rows are [off[e], off[e+1])
	next    []int32   // [E] route's scratch
	rowSlot []int32   // [R] the slot t·k+j of each row
	xg      []float32 // [R × H] the rows' inputs
	gate    []float32 // [R × I]
	up      []float32 // [R × I]
	h       []float32 // [R × I]
	y       []float32 // [R × H] the experts' outputs, before weighting
	// backward
	dy, dxg    []float32  // [R × H]
	dgate, dup []float32  // [R × I]
	dw         []float32  // [T × k]
	dp         []float32  // [T × E]
	sub        layerState // an expert's view: T = its rows
	// moeDecode's argument lists, kept between calls
	ys, xs [][]float32
	ws     []*kernels.Matrix
}

// moeBuffers calls visit with every float buffer of a sparse layer's state
// for T tokens (with the backward's when train), for size and PlanMemory.
func moeBuffers(c *Config, T int64, train bool, s *moeState, visit func(b *[]float32, n int64)) {
	if c.Experts == 0 {
		return
	}
	E, K, H, I := int64(c.Experts), int64(c.ExpertsPerTok), int64(c.Hidden), int64(c.MoEIntermediate)
	R := T * K
	for _, b := range []struct {
		p *[]float32
		n int64
	}{{&s.probs, T * E}, {&s.w, T * K}, {&s.xg, R * H}, {&s.gate, R * I}, {&s.up, R * I}, {&s.h, R * I}, {&s.y, R * H}} {
		visit(b.p, b.n)
	}
	if !train {
		return
	}
	for _, b := range []struct {
		p *[]float32
		n int64
	}{{&s.dy, R * H}, {&s.dxg, R * H}, {&s.dgate, R * I}, {&s.dup, R * I}, {&s.dw, T * K}, {&s.dp, T * E}} {
		visit(b.p, b.n)
	}
}

// sizeMoE (re)allocates the sparse layers' buffers of st for T tokens.
func (st *layerState) sizeMoE(c *Config, T int) {
	if c.Experts == 0 || c.SparseLayers() == 0 {
		return
	}
	if st.moe == nil {
		st.moe = &moeState{}
	}
	s := st.moe
	moeBuffers(c, int64(T), st.train, s, func(b *[]float32, n int64) { *b = grow(*b, int(n)) })
	K := T * c.ExpertsPerTok
	s.sel = growInt32(s.sel, K)
	s.rowSlot = growInt32(s.rowSlot, K)
	s.off = growInt32(s.off, c.Experts+1)
}

func growInt32(b []int32, n int) []int32 {
	if cap(b) < n {
		return make([]int32, n)
	}
	return b[:n]
}

// route picks each token's top k experts from probs [T × E], sets their
// routing weights and groups the T·k rows by expert (counting sort, so
// rows keep token order within an expert).
func (s *moeState) route(T, E, K int, norm bool) {
	for t := 0; t < T; t++ {
		p := s.probs[t*E : (t+1)*E]
		sel, w := s.sel[t*K:(t+1)*K], s.w[t*K:(t+1)*K]
		// Selection of the k largest, ties to the lower index (as torch.topk
		// on CPU); k is small, so insertion into a sorted list of k.
		n := 0
		for e, v := range p {
			if n == K && v <= w[K-1] {
				continue
			}
			i := min(n, K-1)
			for i > 0 && v > w[i-1] {
				w[i], sel[i] = w[i-1], sel[i-1]
				i--
			}
			w[i], sel[i] = v, int32(e)
			n = min(n+1, K)
		}
		if norm {
			var sum float32
			for _, v := range w {
				sum += v
			}
			for j := range w {
				w[j] /= sum
			}
		}
	}
	off := s.off
	clear(off)
	for _, e := range s.sel[:T*K] {
		off[e+1]++
	}
	for e := 1; e <= E; e++ {
		off[e] += off[e-1]
	}
	s.next = append(s.next[:0], off[:E]...)
	next := s.next
	for slot, e := range s.sel[:T*K] {
		s.rowSlot[next[e]] = int32(slot)
		next[e]++
	}
}

// expert sets up s.sub as expert e's view of st for its n rows.
func (s *moeState) expert(st *layerState, e, n int) *layerState {
	sub := &s.sub
	sub.train, sub.T, sub.recompute, sub.grad, sub.exact = st.train, n, st.recompute, st.grad, st.exact
	sub.layer, sub.expert = st.layer, e+1
	sub.dropout, sub.seed = st.dropout, st.seed^kernels.SplitMix64(uint64(e)+1)
	if st.train {
		// The parent's LoRA scratch covers T ≥ n rows of the widest input.
		sub.tmp, sub.dz = st.tmp, st.dz
		sub.lu = &st.elu[e]
	}
	return sub
}

// expertLoRA returns the adapter's LoRA weights of layer l's expert e, or nil.
func (a *Adapter) expertLoRA(l, e int) *[NumModules]*LoRA {
	if a == nil || a.Experts == nil || a.Experts[l] == nil {
		return nil
	}
	return &a.Experts[l][e]
}

// routerStats accumulates the load-balancing loss's terms over a training
// forward's sparse layers: transformers' load_balancing_loss_func over the
// concatenated router logits of N = layers·T rows is
// E · Σ_e (count_e/N)·(Σ p_e/N), with count_e the rows choosing e.
type routerStats struct {
	count []float64 // [E]
	psum  []float64 // [E]
	rows  int
	scale float64 // the gradient's coef·E/N², set after the forward
}

func (r *routerStats) reset(E int) {
	r.count, r.psum = slices.Grow(r.count[:0], E)[:E], slices.Grow(r.psum[:0], E)[:E]
	clear(r.count)
	clear(r.psum)
	r.rows, r.scale = 0, 0
}

// loss is the load-balancing loss.
func (r *routerStats) loss() float64 {
	if r.rows == 0 {
		return 0
	}
	var s float64
	for e := range r.count {
		s += r.count[e] * r.psum[e]
	}
	N := float64(r.rows)
	return float64(len(r.count)) * s / (N * N)
}

// moeForward adds the sparse MLP of layer l on st.xn2 to x [T × H].
func (m *Model) moeForward(l int, x []float32, b *MoE, ad *Adapter, st *layerState) {
	c := &m.Config
	T, H, E, K, I := st.T, c.Hidden, c.Experts, c.ExpertsPerTok, c.MoEIntermediate
	s := st.moe
	// Router logits and softmax in float32 whatever the compute mode: the
	// router is a few hundredths of a layer's work, and a rounded logit can
	// move a token to another expert (a jump, not a rounding error).
	st.matMulT(s.probs, st.xn2, b.Router, false, kernels.ComputeF32)
	if lr := ad.router(l); lr != nil {
		u := st.loraInner(st.xn2, lr, modRouter, kernels.ComputeF32)
		st.matMulT(s.probs, u, kernels.NewF32(lr.Out, lr.R, lr.B), true, kernels.ComputeF32)
	}
	kernels.Softmax(s.probs, T, E)
	s.route(T, E, K, c.NormTopKProb)
	if st.train && !st.recompute && st.router != nil {
		r := st.router
		for _, e := range s.sel[:T*K] {
			r.count[e]++
		}
		for t := 0; t < T; t++ {
			for e, p := range s.probs[t*E : (t+1)*E] {
				r.psum[e] += float64(p)
			}
		}
		r.rows += T
	}
	// quantized experts decode as one job a step in either compute mode
	// (ComputeBF16: NF4 by dotNF4RowsBF16, the bf16 GEMM's products)
	if T == 1 && !st.train && !st.exact && (m.compute == kernels.ComputeF32 || b.Experts[0].Gate.W.IsQuantized()) {
		m.moeDecode(l, x, b, ad, st)
		return
	}
	for e := 0; e < E; e++ {
		lo, hi := int(s.off[e]), int(s.off[e+1])
		if lo == hi {
			continue
		}
		xg := s.xg[lo*H : hi*H]
		for r, slot := range s.rowSlot[lo:hi] {
			t := int(slot) / K
			copy(xg[r*H:(r+1)*H], st.xn2[t*H:(t+1)*H])
		}
		sub := s.expert(st, e, hi-lo)
		ex, la := &b.Experts[e], ad.expertLoRA(l, e)
		gate, up, h := s.gate[lo*I:hi*I], s.up[lo*I:hi*I], s.h[lo*I:hi*I]
		m.linearGroup(xg, [][]float32{gate, up}, []*Linear{&ex.Gate, &ex.Up}, []Module{ModGate, ModUp}, la, sub)
		kernels.SwiGLU(h, gate, up)
		y := s.y[lo*H : hi*H]
		m.linear(y, h, &ex.Down, la, ModDown, false, sub)
		for r, slot := range s.rowSlot[lo:hi] {
			t, w := int(slot)/K, s.w[slot]
			xt, yr := x[t*H:(t+1)*H], y[r*H:(r+1)*H]
			for i := range xt {
				xt[i] += w * yr[i]
			}
		}
	}
}

// moeDecode is moeForward for one token: its k experts' gate and up
// projections run as one job of the worker pool, then their down
// projections as another (MatMulTManyCompute), instead of two jobs an
// expert.
func (m *Model) moeDecode(l int, x []float32, b *MoE, ad *Adapter, st *layerState) {
	c := &m.Config
	H, K, I := c.Hidden, c.ExpertsPerTok, c.MoEIntermediate
	s := st.moe
	s.ys, s.xs, s.ws = s.ys[:0], s.xs[:0], s.ws[:0]
	for r, slot := range s.rowSlot[:K] { // the rows in expert order
		ex := &b.Experts[s.sel[slot]]
		s.ys = append(s.ys, s.gate[r*I:(r+1)*I], s.up[r*I:(r+1)*I])
		s.xs = append(s.xs, st.xn2[:H], st.xn2[:H])
		s.ws = append(s.ws, ex.Gate.W, ex.Up.W)
	}
	kernels.MatMulTManyCompute(s.ys, s.xs, s.ws, m.compute)
	s.ys, s.xs, s.ws = s.ys[:0], s.xs[:0], s.ws[:0]
	for r, slot := range s.rowSlot[:K] {
		e := int(s.sel[slot])
		ex, la, sub := &b.Experts[e], ad.expertLoRA(l, e), s.expert(st, e, 1)
		gate, up, h := s.gate[r*I:(r+1)*I], s.up[r*I:(r+1)*I], s.h[r*I:(r+1)*I]
		m.linearRest(gate, st.xn2[:H], &ex.Gate, la, ModGate, sub)
		m.linearRest(up, st.xn2[:H], &ex.Up, la, ModUp, sub)
		kernels.SwiGLU(h, gate, up)
		s.ys, s.xs, s.ws = append(s.ys, s.y[r*H:(r+1)*H]), append(s.xs, h), append(s.ws, ex.Down.W)
	}
	kernels.MatMulTManyCompute(s.ys, s.xs, s.ws, m.compute)
	for r, slot := range s.rowSlot[:K] {
		e := int(s.sel[slot])
		y := s.y[r*H : (r+1)*H]
		m.linearRest(y, s.h[r*I:(r+1)*I], &b.Experts[e].Down, ad.expertLoRA(l, e), ModDown, s.expert(st, e, 1))
		w := s.w[slot]
		for i := range x[:H] {
			x[i] += w * y[i]
		}
	}
}

// moeBackward turns dx, the gradient of the sparse MLP's output [T × H],
// into the gradient of its input st.xn2, written to st.dxn, adding the
// experts' LoRA gradients to g and, in full finetuning, the experts' and
// the router's weight gradients to st.grad. The top-k selection is a
// constant, as in PyTorch; the gradient flows through the routing weights
// into the softmax and the router, plus auxScale·count_e for the
// load-balancing loss (st.router's scale = coef·E/N²).
func (m *Model) moeBackward(l int, dx []float32, b *MoE, ad, g *Adapter, st *layerState) {
	c := &m.Config
	T, H, E, K, I := st.T, c.Hidden, c.Experts, c.ExpertsPerTok, c.MoEIntermediate
	s := st.moe
	clear(st.dxn[:T*H])
	for e := 0; e < E; e++ {
		lo, hi := int(s.off[e]), int(s.off[e+1])
		if lo == hi {
			continue
		}
		y, dy := s.y[lo*H:hi*H], s.dy[lo*H:hi*H]
		for r, slot := range s.rowSlot[lo:hi] {
			t := int(slot) / K
			dxt, dyr := dx[t*H:(t+1)*H], dy[r*H:(r+1)*H]
			s.dw[slot] = kernels.Dot(dxt, y[r*H:(r+1)*H])
			w := s.w[slot]
			for i := range dyr {
				dyr[i] = w * dxt[i]
			}
		}
		sub := s.expert(st, e, hi-lo)
		ex, la, lg := &b.Experts[e], ad.expertLoRA(l, e), g.expertLoRA(l, e)
		gate, up, h := s.gate[lo*I:hi*I], s.up[lo*I:hi*I], s.h[lo*I:hi*I]
		dgate, dup := s.dgate[lo*I:hi*I], s.dup[lo*I:hi*I]
		dh := dgate // consumed by SwiGLUBackward before dgate is written
		m.linearBackward(dh, dy, h, &ex.Down, la, lg, ModDown, false, sub)
		kernels.SwiGLUBackward(dgate, dup, dh, gate, up)
		xg, dxg := s.xg[lo*H:hi*H], s.dxg[lo*H:hi*H]
		m.linearBackward(dxg, dgate, xg, &ex.Gate, la, lg, ModGate, false, sub)
		m.linearBackward(dxg, dup, xg, &ex.Up, la, lg, ModUp, true, sub)
		for r, slot := range s.rowSlot[lo:hi] {
			t := int(slot) / K
			kernels.Add(st.dxn[t*H:(t+1)*H], dxg[r*H:(r+1)*H])
		}
	}
	// routing weights → softmax probabilities → router logits
	dp := s.dp[:T*E]
	for t := 0; t < T; t++ {
		dpt, pt := dp[t*E:(t+1)*E], s.probs[t*E:(t+1)*E]
		clear(dpt)
		if r := st.router; r != nil && r.scale != 0 {
			for e := range dpt {
				dpt[e] = float32(r.scale * r.count[e])
			}
		}
		sel, w, dw := s.sel[t*K:(t+1)*K], s.w[t*K:(t+1)*K], s.dw[t*K:(t+1)*K]
		if c.NormTopKProb {
			// w_j = p_j/S, S = Σ_i p_i:  ∂/∂p_j = (dw_j − Σ_i dw_i·w_i)/S
			var sum, dot float32
			for j, e := range sel {
				sum += pt[e]
				dot += dw[j] * w[j]
			}
			for j, e := range sel {
				dpt[e] += (dw[j] - dot) / sum
			}
		} else {
			for j, e := range sel {
				dpt[e] += dw[j]
			}
		}
		var dot float32
		for e, p := range pt {
			dot += p * dpt[e]
		}
		for e, p := range pt {
			dpt[e] = p * (dpt[e] - dot)
		}
	}
	kernels.MatMulN(st.dxn[:T*H], dp, T, b.Router, true)
	if lr := ad.router(l); lr != nil {
		st.loraBackward(st.dxn[:T*H], dp, st.xn2, *st.ru, lr, g.router(l), modRouter, kernels.ComputeF32) // float32, as the router
	}
	if st.grad != nil && st.grad.Layers[l].MoE != nil { // full finetuning
		kernels.MatMulTN(st.grad.Layers[l].MoE.Router.F32, dp, st.xn2, T, E, H, true)
	}
}

// expertLUs are the sparse layers' experts' kept LoRA inner activations,
// [layer][expert][module]; nil for a dense layer.
type expertLUs [][][NumModules][]float32

func (e expertLUs) layer(l int) [][NumModules][]float32 {
	if e == nil {
		return nil
	}
	return e[l]
}

// MoESizes lists the Qwen3-MoE shapes ConfigFor knows: "30b-a3b" is
// Qwen3-30B-A3B's (48 layers of 128 experts, 8 per token).
var MoESizes = []string{"tiny", "small", "30b-a3b"}

// qwen3MoEConfigFor is ConfigFor of Qwen3MoE. The small shapes keep
// Qwen3's odd choices: head_dim apart from hidden/heads, norm_topk_prob,
// and (small) a dense layer by mlp_only_layers and decoder_sparse_step.
func qwen3MoEConfigFor(size string) (*Config, error) {
	c := &Config{Arch: Qwen3MoE, RMSNormEps: 1e-6, MaxPositions: 40960, RopeTheta: 1e6, VocabSize: 151936,
		BOSTokenID: 151643, EOSTokenIDs: []int{151645}}
	m := &c.MoEConfig
	m.NormTopKProb, m.SparseStep, m.RouterAuxCoef = true, 1, 0.001
	switch size {
	case "tiny":
		c.Hidden, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.Intermediate = 64, 2, 4, 2, 32, 192
		m.Experts, m.ExpertsPerTok, m.MoEIntermediate = 8, 2, 48
	case "small":
		c.Hidden, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.Intermediate = 256, 4, 8, 2, 64, 704
		m.Experts, m.ExpertsPerTok, m.MoEIntermediate, m.MLPOnlyLayers = 16, 4, 128, []int{0}
	case "30b-a3b":
		c.Hidden, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.Intermediate = 2048, 48, 32, 4, 128, 6144
		m.Experts, m.ExpertsPerTok, m.MoEIntermediate = 128, 8, 768
	default:
		return nil, fmt.Errorf("model: unknown qwen3moe size %q (want one of %v)", size, MoESizes)
	}
	if m.MLPOnlyLayers == nil {
		m.MLPOnlyLayers = []int{}
	}
	c.QKNorm = true
	return c, nil
}

// marshalMoE adds Qwen3-MoE's fields to a config.json map.
func (c *Config) marshalMoE(m map[string]any) {
	m["architectures"] = []string{"Qwen3MoeForCausalLM"}
	m["model_type"] = "qwen3_moe"
	m["attention_bias"] = c.QKVBias
	m["use_sliding_window"] = false
	m["sliding_window"] = nil
	m["max_window_layers"] = c.Layers
	m["num_experts"] = c.Experts
	m["num_experts_per_tok"] = c.ExpertsPerTok
	m["moe_intermediate_size"] = c.MoEIntermediate
	m["norm_topk_prob"] = c.NormTopKProb
	m["decoder_sparse_step"] = c.SparseStep
	m["mlp_only_layers"] = c.MLPOnlyLayers
	m["router_aux_loss_coef"] = c.RouterAuxCoef
	m["output_router_logits"] = c.OutputRouterLogits
}

// ActiveLinearParams is the number of linear weights a token's forward
// multiplies with in the decoder layers: attention, and the dense MLP or
// its k experts (and the router). For benchmarks' FLOP counts.
func (c *Config) ActiveLinearParams() float64 {
	H, qw, kvw := float64(c.Hidden), float64(c.Heads*c.HeadDim), float64(c.KVHeads*c.HeadDim)
	attn := H*(qw+2*kvw) + qw*H
	sp := float64(c.SparseLayers())
	dense := float64(c.Layers) - sp
	moe := float64(c.ExpertsPerTok)*3*H*float64(c.MoEIntermediate) + float64(c.Experts)*H
	return float64(c.Layers)*attn + dense*3*H*float64(c.Intermediate) + sp*moe
}

// ActiveDownParams is the part of ActiveLinearParams in down projections
// (the training recomputation skips the dense ones).
func (c *Config) ActiveDownParams() float64 {
	return (float64(c.Layers) - float64(c.SparseLayers())) * float64(c.Hidden*c.Intermediate)
}
