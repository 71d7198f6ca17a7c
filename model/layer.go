package model

import (
	"math"

	"github.com/gotrain/gotrain/kernels"
)

// layerState holds one decoder layer's buffers for T tokens: its forward
// activations and, in training, the backward's scratch. In inference the
// buffers alias where they can (xn2 = xn1, h = gate) and nothing is saved;
// for training every input of a backward step is kept. trainBuffers sizes
// both for training, for the allocation and for PlanMemory alike.
type layerState struct {
	train bool
	T     int
	// exact: the pass's rows must not depend on how many share it
	// (Batch.exact); padX and padY hold a few rows padded for the GEMM.
	exact      bool
	padX, padY []float32
	layerActs
	layerGrads
	lu *[NumModules][]float32 // this layer's [T × r] scaled LoRA inner activations (training), kept for all layers
	ru *[]float32             // the same for the layer's router (moe.go)
	// dropout applied to LoRA inputs (training): probability and the seed of
	// its masks, which are regenerated, not stored.
	dropout float32
	seed    uint64
	layer   int
	// recompute: the backward's recomputation. The layer's output and the
	// LoRA inner activations are kept from the forward, so the down
	// projection and the LoRA A projections (with their dropout) are skipped.
	recompute bool
	// grad receives every weight's gradient in full finetuning (full.go);
	// nil when only an adapter is trained.
	grad *Model
	// Sparse layers (moe.go): their buffers; for an expert's view of the
	// layer, 1 + the expert's index (0 otherwise); in training, the layer's
	// experts' kept LoRA inner activations and the router statistics of the
	// load-balancing loss.
	moe    *moeState
	expert int
	elu    [][NumModules][]float32
	router *routerStats
}

// layerActs are a layer's forward activations for T tokens.
type layerActs struct {
	xn1, xn2     []float32 // [T × H] normed inputs of attention and MLP
	rstd1, rstd2 []float32 // [T] (training)
	q, att       []float32 // [T × Hq·D] roped queries, attention output
	lse          []float32 // [T × Hq] (training)
	k, v         []float32 // [T × Hkv·D] this batch's keys and values (training)
	xmid         []float32 // [T × H] residual after attention (training)
	// QKNorm (training): the projections before the per-head norm and the
	// norm's rstd per head
	qpre, kpre   []float32 // [T × Hq·D], [T × Hkv·D]
	qrstd, krstd []float32 // [T × Hq], [T × Hkv]
	gate, up, h  []float32 // [T × I]
	tmp          []float32 // LoRA scratch [T × r] (inference)
}

// layerGrads are the backward's scratch for one layer of T tokens.
type layerGrads struct {
	dxn, dq, datt, dk, dv, dgate, dup []float32
	dz                                []float32 // LoRA [T × r]
}

// trainBuffers calls visit with every buffer of a training layerState and
// its length for T tokens and LoRA rank r (0: none), activations first.
func trainBuffers(c *Config, T, r int64, a *layerActs, g *layerGrads, visit func(b *[]float32, n int64)) {
	H, I := int64(c.Hidden), int64(c.Intermediate)
	qw, kvw := int64(c.Heads*c.HeadDim), int64(c.KVHeads*c.HeadDim)
	qkn := int64(0) // QKNorm's buffers are empty without it
	if c.QKNorm {
		qkn = 1
	}
	for _, b := range []struct {
		p *[]float32
		n int64
	}{
		{&a.xn1, T * H}, {&a.xn2, T * H}, {&a.xmid, T * H}, {&a.rstd1, T}, {&a.rstd2, T},
		{&a.q, T * qw}, {&a.att, T * qw}, {&a.lse, T * int64(c.Heads)}, {&a.k, T * kvw}, {&a.v, T * kvw},
		{&a.gate, T * I}, {&a.up, T * I}, {&a.h, T * I}, {&a.tmp, T * r},
		{&g.dxn, T * H}, {&g.dq, T * qw}, {&g.datt, T * qw}, {&g.dk, T * kvw}, {&g.dv, T * kvw},
		{&g.dgate, T * I}, {&g.dup, T * I}, {&g.dz, T * r},
		{&a.qpre, T * qw * qkn}, {&a.kpre, T * kvw * qkn}, {&a.qrstd, T * int64(c.Heads) * qkn}, {&a.krstd, T * int64(c.KVHeads) * qkn},
	} {
		visit(b.p, b.n)
	}
}

// trainLayerFloats is the float32 count of one training layerState
// (PlanMemory's "activations").
func trainLayerFloats(c *Config, T, r int64) int64 {
	var n int64
	count := func(_ *[]float32, k int64) { n += k }
	trainBuffers(c, T, r, &layerActs{}, &layerGrads{}, count)
	if c.SparseLayers() > 0 {
		moeBuffers(c, T, true, &moeState{}, count)
	}
	return n
}

// size (re)allocates the buffers for T tokens (r: the largest LoRA rank in
// training).
func (st *layerState) size(c *Config, T, r int) {
	st.T = T
	st.sizeMoE(c, T)
	if st.train {
		trainBuffers(c, int64(T), int64(r), &st.layerActs, &st.layerGrads, func(b *[]float32, n int64) { *b = grow(*b, int(n)) })
		return
	}
	H, I := c.Hidden, c.Intermediate
	qw := c.Heads * c.HeadDim
	st.xn1 = grow(st.xn1, T*H)
	st.q, st.att = grow(st.q, T*qw), grow(st.att, T*qw)
	st.gate, st.up = grow(st.gate, T*I), grow(st.up, T*I)
	st.xn2, st.h = st.xn1, st.gate
}

// layerForward runs decoder layer l on the residual stream x [T × H] in
// place. K and V [T × Hkv·D] receive the tokens' keys and values; kAll and
// vAll [S × Hkv·D] are every row the tokens may attend to (K and V included,
// or, when rows is set, copied to those rows of kAll and vAll).
//
// recompute marks the backward's recomputation of a training layer (see
// layerState.recompute).
func (m *Model) layerForward(l int, x []float32, pos []int32, spans []kernels.KeySpan, K, V, kAll, vAll []float32, S int, rows []int32, ad *Adapter, st *layerState, recompute bool) {
	c := &m.Config
	L := &m.Layers[l]
	T, H, D := st.T, c.Hidden, c.HeadDim
	eps := float32(c.RMSNormEps)
	la := ad.layer(l)
	st.layer, st.recompute = l, recompute
	// attention: x += O·attn(rope(Q·xn1), rope(K·xn1), V·xn1)
	kernels.RMSNorm(st.xn1, x, L.AttnNorm, T, H, eps, st.rstd1)
	q, k := st.q, K // the projections; with QKNorm in training, kept apart from their norms
	if c.QKNorm && st.train {
		q, k = st.qpre, st.kpre
	}
	m.linearGroup(st.xn1, [][]float32{q, k, V}, []*Linear{&L.Q, &L.K, &L.V}, []Module{ModQ, ModK, ModV}, la, st)
	if c.QKNorm { // Qwen3: RMSNorm of every query and key head before RoPE
		kernels.RMSNorm(st.q, q, L.QNorm, T*c.Heads, D, eps, st.qrstd)
		kernels.RMSNorm(K, k, L.KNorm, T*c.KVHeads, D, eps, st.krstd)
	}
	m.rope.Apply(st.q, T, c.Heads, D, pos)
	m.rope.Apply(K, T, c.KVHeads, D, pos)
	if rows != nil {
		kvw := c.KVHeads * D
		for t, r := range rows {
			copy(kAll[int(r)*kvw:(int(r)+1)*kvw], K[t*kvw:(t+1)*kvw])
			copy(vAll[int(r)*kvw:(int(r)+1)*kvw], V[t*kvw:(t+1)*kvw])
		}
	}
	kernels.AttentionCompute(st.att, st.lse, st.q, kAll, vAll, T, S, c.Heads, c.KVHeads, D, attnScale(D), spans, m.compute)
	m.linear(x, st.att, &L.O, la, ModO, true, st)
	if st.train {
		copy(st.xmid, x)
	}
	// MLP: x += Down·(silu(Gate·xn2) ⊙ Up·xn2)
	kernels.RMSNorm(st.xn2, x, L.MLPNorm, T, H, eps, st.rstd2)
	if L.MoE != nil {
		m.moeForward(l, x, L.MoE, ad, st)
		return
	}
	m.linearGroup(st.xn2, [][]float32{st.gate, st.up}, []*Linear{&L.Gate, &L.Up}, []Module{ModGate, ModUp}, la, st)
	kernels.SwiGLU(st.h, st.gate, st.up)
	if st.recompute {
		return
	}
	m.linear(x, st.h, &L.Down, la, ModDown, true, st)
}

// layerBackward turns dx, the gradient of layer l's output [T × H], into the
// gradient of its input xIn, adding the LoRA gradients to g. st must hold the
// layer's training forward on xIn.
func (m *Model) layerBackward(l int, dx, xIn []float32, pos []int32, spans []kernels.KeySpan, ad, g *Adapter, st *layerState) {
	c := &m.Config
	L := &m.Layers[l]
	T, H, D := st.T, c.Hidden, c.HeadDim
	la, lg := ad.layer(l), g.layer(l)
	dAttnNorm, dMLPNorm := st.normGrads() // full finetuning
	// MLP
	if L.MoE != nil {
		m.moeBackward(l, dx, L.MoE, ad, g, st)
	} else {
		dh := st.dgate // dh is consumed by SwiGLUBackward before dgate is written
		m.linearBackward(dh, dx, st.h, &L.Down, la, lg, ModDown, false, st)
		kernels.SwiGLUBackward(st.dgate, st.dup, dh, st.gate, st.up)
		m.linearBackward(st.dxn, st.dgate, st.xn2, &L.Gate, la, lg, ModGate, false, st)
		m.linearBackward(st.dxn, st.dup, st.xn2, &L.Up, la, lg, ModUp, true, st)
	}
	kernels.RMSNormBackward(dx, dMLPNorm, st.dxn, st.xmid, L.MLPNorm, st.rstd2, T, H, true)
	// attention
	m.linearBackward(st.datt, dx, st.att, &L.O, la, lg, ModO, false, st)
	clear(st.dk)
	clear(st.dv)
	kernels.AttentionBackwardCompute(st.dq, st.dk, st.dv, st.datt, st.q, st.k, st.v, st.att, st.lse, T, T, c.Heads, c.KVHeads, D, attnScale(D), spans, m.compute)
	m.rope.ApplyBackward(st.dq, T, c.Heads, D, pos)
	m.rope.ApplyBackward(st.dk, T, c.KVHeads, D, pos)
	dq, dk := st.dq, st.dk
	dQNorm, dKNorm := st.qkNormGrads() // full finetuning
	if c.QKNorm {                      // through the heads' norms, into datt (free once AttentionBackward has run)
		dq = st.datt
		kernels.RMSNormBackward(dq, dQNorm, st.dq, st.qpre, L.QNorm, st.qrstd, T*c.Heads, D, false)
	}
	m.linearBackward(st.dxn, dq, st.xn1, &L.Q, la, lg, ModQ, false, st)
	if c.QKNorm {
		dk = st.datt[:len(st.dk)]
		kernels.RMSNormBackward(dk, dKNorm, st.dk, st.kpre, L.KNorm, st.krstd, T*c.KVHeads, D, false)
	}
	m.linearBackward(st.dxn, dk, st.xn1, &L.K, la, lg, ModK, true, st)
	m.linearBackward(st.dxn, st.dv, st.xn1, &L.V, la, lg, ModV, true, st)
	kernels.RMSNormBackward(dx, dAttnNorm, st.dxn, xIn, L.AttnNorm, st.rstd1, T, H, true)
}

func attnScale(D int) float32 { return float32(1 / math.Sqrt(float64(D))) }

// layer returns the adapter's LoRA weights of layer l, nil for no adapter.
func (a *Adapter) layer(l int) *[NumModules]*LoRA {
	if a == nil {
		return nil
	}
	return &a.Layers[l]
}

// linear computes y (+)= x·Wᵀ + b + LoRA for T rows. In training it keeps
// the LoRA inner activation u = scale·A·dropout(x) for the backward.
func (m *Model) linear(y, x []float32, lin *Linear, la *[NumModules]*LoRA, mod Module, accumulate bool, st *layerState) {
	st.matMulT(y, x, lin.W, accumulate, m.compute)
	m.linearRest(y, x, lin, la, mod, st)
}

// matMulT is MatMulTCompute on the st.T rows of x. In an exact pass with
// fewer rows than kernels.MinGEMMRows, x and y are padded with zero rows to
// that many, so that every row is summed by the GEMM as in a larger batch,
// not by the GEMV.
func (st *layerState) matMulT(y, x []float32, w *kernels.Matrix, accumulate bool, c kernels.Compute) {
	T, M := st.T, kernels.MinGEMMRows
	if !st.exact || T == 0 || T >= M {
		kernels.MatMulTCompute(y, x, T, w, accumulate, c)
		return
	}
	n, k := w.Rows, w.Cols
	st.padX, st.padY = padRows(st.padX, x[:T*k], M*k), grow(st.padY, M*n)
	copy(st.padY, y[:T*n])
	kernels.MatMulTCompute(st.padY, st.padX, M, w, accumulate, c)
	copy(y[:T*n], st.padY)
}

// padRows returns x followed by zeros, n values, in buf (grown as needed).
func padRows(buf, x []float32, n int) []float32 {
	buf = grow(buf, n)
	copy(buf, x)
	clear(buf[len(x):])
	return buf
}

// linearGroup is linear (without accumulation) for layers that read the
// same input x; their base matmuls go to the kernels together, which makes
// one pool job of them when decoding.
func (m *Model) linearGroup(x []float32, ys [][]float32, lins []*Linear, mods []Module, la *[NumModules]*LoRA, st *layerState) {
	var ws [3]*kernels.Matrix
	for i, lin := range lins {
		ws[i] = lin.W
	}
	if st.exact && st.T < kernels.MinGEMMRows {
		for i, w := range ws[:len(lins)] {
			st.matMulT(ys[i], x, w, false, m.compute)
		}
	} else {
		kernels.MatMulTGroup(ys, x, st.T, ws[:len(lins)], m.compute)
	}
	for i, lin := range lins {
		m.linearRest(ys[i], x, lin, la, mods[i], st)
	}
}

// linearRest adds the bias and the LoRA term to y = x·Wᵀ.
func (m *Model) linearRest(y, x []float32, lin *Linear, la *[NumModules]*LoRA, mod Module, st *layerState) {
	T := st.T
	if lin.B != nil {
		n := len(lin.B)
		for t := 0; t < T; t++ {
			kernels.Add(y[t*n:(t+1)*n], lin.B)
		}
	}
	if la == nil || la[mod] == nil {
		return
	}
	lr := la[mod]
	u := st.loraInner(x, lr, mod, m.compute)
	c := kernels.ComputeF32 // inference: the float32 GEMV for a few rows
	if st.train {
		c = m.compute
	}
	st.matMulT(y, u, kernels.NewF32(lr.Out, lr.R, lr.B), true, c)
}

// loraInner computes the LoRA inner activation u = scale·A·dropout(x)
// [T × r] of module mod (in training, in compute mode c). In training it is kept for the backward (and the
// recomputation finds it kept); otherwise it lives in scratch.
func (st *layerState) loraInner(x []float32, lr *LoRA, mod Module, c kernels.Compute) []float32 {
	if st.train { // dropout's mask applied block by block, in cache
		kept := st.ru
		if mod != modRouter {
			kept = &st.lu[mod]
		}
		if st.recompute {
			return *kept
		}
		*kept = grow(*kept, st.T*lr.R)
		kernels.LoRADown(*kept, x, st.T, lr.A, lr.R, lr.In, lr.Scale, st.dropKey(mod), st.dropout, c)
		return *kept
	}
	st.tmp = grow(st.tmp, st.T*lr.R)
	u := st.tmp
	st.matMulT(u, x, kernels.NewF32(lr.R, lr.In, lr.A), false, kernels.ComputeF32)
	kernels.Scale(u, lr.Scale)
	return u
}

// linearBackward computes dx (+)= dy·W + LoRA's input gradient for T rows of
// a linear layer whose input was x, and adds the LoRA gradients to lg.
func (m *Model) linearBackward(dx, dy, x []float32, lin *Linear, la, lg *[NumModules]*LoRA, mod Module, accumulate bool, st *layerState) {
	T := st.T
	kernels.MatMulNCompute(dx, dy, T, lin.W, accumulate, m.compute)
	if st.grad != nil { // full finetuning
		st.weightGrad(dy, x, mod)
	}
	if la == nil || la[mod] == nil {
		return
	}
	st.loraBackward(dx, dy, x, st.lu[mod], la[mod], lg[mod], mod, m.compute)
}

// loraBackward adds the LoRA term's gradients to gr and its input gradient
// to dx, for the T rows of input x, inner activation u and output gradient
// dy, in compute mode c. With y += u·Bᵀ, u = s·A·xd, xd = dropout(x):
// dB += dyᵀ·u;  dz = s·dy·B;  dA += dzᵀ·xd;  dx += dropout(dz·A).
func (st *layerState) loraBackward(dx, dy, x, u []float32, lr, gr *LoRA, mod Module, c kernels.Compute) {
	T := st.T
	dz := st.dz[:T*lr.R]
	kernels.LoRAOutputGrad(gr.B, dz, dy, u, lr.B, T, lr.R, lr.Out, lr.Scale, c)
	kernels.LoRAInputGrad(dx[:T*lr.In], gr.A, dz, x, lr.A, T, lr.R, lr.In, st.dropKey(mod), st.dropout, c)
}

// dropKey is the key of the LoRA dropout mask of (layer, module): the
// forward, its recomputation and the backward all regenerate the same mask
// from it (kernels.Dropout).
func (st *layerState) dropKey(mod Module) uint64 {
	return st.seed ^ uint64(st.layer)<<40 ^ uint64(mod)<<32
}
