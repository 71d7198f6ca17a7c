package model

import (
	"fmt"

	"github.com/gotrain/gotrain/kernels"
)

// TrainBatch is a packed micro-batch for a forward and backward pass: several
// sequences in one stream, each attending only to itself, with the loss
// weight of every next-token prediction.
type TrainBatch struct {
	Batch
	Targets []int32   // [T] the token predicted at each position; -1 for none
	Weights []float32 // [T] loss weight of each prediction; 0 where Targets is -1
}

// AddSequence appends one sequence. weights[p] is the loss weight of
// predicting tokens[p] from tokens[:p] (weights[0] is ignored); len(weights)
// must equal len(tokens).
func (b *TrainBatch) AddSequence(tokens []int, weights []float32) {
	start := b.Len()
	for p, tok := range tokens {
		b.Add(tok, p, start, start+p+1, 0, 0)
		if p+1 < len(tokens) && weights[p+1] != 0 {
			b.Targets = append(b.Targets, int32(tokens[p+1]))
			b.Weights = append(b.Weights, weights[p+1])
		} else {
			b.Targets = append(b.Targets, -1)
			b.Weights = append(b.Weights, 0)
		}
	}
}

// AddShared appends a prompt shared by several continuations, computing the
// prompt once: its tokens but the last go in once; each continuation becomes a
// branch made of the last prompt token and the continuation's tokens, which
// attends to the shared rows and to its own earlier tokens. weights[k][j] is
// the loss weight of predicting conts[k][j]. It returns, per continuation, the
// batch positions whose targets are its tokens.
func (b *TrainBatch) AddShared(prompt []int, conts [][]int, weights [][]float32) [][]int {
	P := len(prompt)
	start := b.Len()
	for p, tok := range prompt[:P-1] {
		b.Add(tok, p, start, start+p+1, 0, 0)
		b.Targets = append(b.Targets, -1)
		b.Weights = append(b.Weights, 0)
	}
	shared := b.Len()
	rows := make([][]int, len(conts))
	for k, c := range conts {
		branch := b.Len()
		toks := append([]int{prompt[P-1]}, c[:len(c)-1]...)
		for j, tok := range toks {
			b.Add(tok, P-1+j, start, shared, branch, branch+j+1)
			b.Targets = append(b.Targets, int32(c[j]))
			b.Weights = append(b.Weights, weights[k][j])
			rows[k] = append(rows[k], b.Len()-1)
		}
	}
	return rows
}

// Objective turns the log-probabilities of a batch's targets (in batch
// order, one per position with a target) into a loss and its gradient with
// respect to each of them. It lets a loss depend on whole-sequence
// log-probabilities, as DPO's does.
type Objective func(logp []float32) (loss float64, dlogp []float32)

// TrainOptions are the per-step settings of LossAndGrad.
type TrainOptions struct {
	Dropout float32 // LoRA dropout probability
	Seed    uint64  // seed of this step's dropout masks
	// RouterAuxCoef weighs the router's load-balancing loss (moe.go) in
	// the returned loss and its gradient: loss += coef × aux, as
	// transformers adds router_aux_loss_coef × aux_loss.
	RouterAuxCoef float64
	// RouterAux, when set, receives the batch's load-balancing loss
	// (unweighted; 0 for a dense model), for the training metrics.
	RouterAux *float64
}

// ZerosLike returns an adapter of the same shapes with all weights zero, to
// hold gradients.
func (a *Adapter) ZerosLike() *Adapter {
	g := &Adapter{Config: a.Config, Layers: make([][NumModules]*LoRA, len(a.Layers))}
	for n, v := range a.Saved { // modules_to_save (saved.go)
		g.addSaved(n, make([]float32, len(v)), a.savedShape[n])
	}
	zero := func(lr *LoRA) *LoRA {
		if lr == nil {
			return nil
		}
		return &LoRA{R: lr.R, In: lr.In, Out: lr.Out, Scale: lr.Scale, A: make([]float32, len(lr.A)), B: make([]float32, len(lr.B))}
	}
	for l, layer := range a.Layers {
		for mod, lr := range layer {
			g.Layers[l][mod] = zero(lr)
		}
	}
	for l, lr := range a.Routers {
		if lr != nil {
			g.routerSlot(l)
			g.Routers[l] = zero(lr)
		}
	}
	for l, ex := range a.Experts {
		for e := range ex {
			for mod, lr := range ex[e] {
				if lr != nil {
					g.expertLayer(l, len(ex))[e][mod] = zero(lr)
				}
			}
		}
	}
	return g
}

// LossAndGrad runs the batch forward and backward and returns the weighted
// loss Σ weight·(−log p(target)). The gradient of that loss with respect to
// every LoRA weight of ad is added to g (same shapes, see ZerosLike); the base
// stays frozen. Activations are checkpointed per layer: only each layer's
// input is kept, and the layer is recomputed during the backward pass.
func (m *Model) LossAndGrad(b *TrainBatch, ad, g *Adapter, opt TrainOptions) (float64, error) {
	return m.Backprop(b, ad, g, opt, nil)
}

// Backprop is LossAndGrad with the loss given by obj over the log-probs of
// the batch's targets (the positions with Targets ≥ 0); with obj nil the loss
// is the weighted cross-entropy of LossAndGrad. It returns the loss.
func (m *Model) Backprop(b *TrainBatch, ad, g *Adapter, opt TrainOptions, obj Objective) (float64, error) {
	return m.backprop(b, ad, g, nil, opt, obj)
}

// backprop is Backprop; with grad non-nil (full finetuning, full.go) the
// gradient of every weight of m is also added to grad's (same shapes).
func (m *Model) backprop(b *TrainBatch, ad, g *Adapter, grad *Model, opt TrainOptions, obj Objective) (float64, error) {
	if ad != nil && len(ad.Saved) > 0 { // modules_to_save (saved.go)
		m, grad = m.with(ad), g.savedGrads(&m.Config)
	}
	c := &m.Config
	T, H, V := b.Len(), c.Hidden, c.VocabSize
	if len(b.Targets) != T || len(b.Weights) != T {
		return 0, fmt.Errorf("model: train batch of %d tokens has %d targets and %d weights", T, len(b.Targets), len(b.Weights))
	}
	if err := m.checkBatch(&KVCache{}, &b.Batch); err != nil {
		return 0, err
	}
	var rows []int // positions with a loss
	for t, tg := range b.Targets {
		if tg >= 0 && (obj != nil || b.Weights[t] != 0) {
			if int(tg) >= V {
				return 0, fmt.Errorf("model: target token id %d outside the vocabulary [0,%d)", tg, V)
			}
			rows = append(rows, t)
		}
	}
	sc := m.scratch.Swap(nil) // concurrent calls each get their own
	if sc == nil {
		sc = &trainScratch{xs: make([][]float32, c.Layers+1), lu: make([][NumModules][]float32, c.Layers), ru: make([][]float32, c.Layers)}
		sc.st.train = true
		if c.SparseLayers() > 0 {
			sc.elu = make([][][NumModules][]float32, c.Layers)
			for l := range sc.elu {
				if c.Sparse(l) {
					sc.elu[l] = make([][NumModules][]float32, c.Experts)
				}
			}
			sc.st.router = &routerStats{}
		}
	}
	if r := sc.st.router; r != nil {
		r.reset(c.Experts)
	}
	defer m.scratch.Store(sc)
	st := &sc.st
	st.dropout, st.seed = opt.Dropout, opt.Seed
	st.grad = grad // full finetuning
	st.size(c, T, ad.maxRank())
	pos, spans := b.Pos, b.Spans
	// forward, keeping each layer's input
	xs := sc.xs
	xs[0] = grow(xs[0], T*H)
	for t, tok := range b.Tokens {
		m.Embed.Row(xs[0][t*H:(t+1)*H], int(tok))
	}
	for l := range m.Layers {
		xs[l+1] = grow(xs[l+1], T*H)
		copy(xs[l+1], xs[l])
		st.lu, st.ru, st.elu = &sc.lu[l], &sc.ru[l], sc.elu.layer(l)
		m.layerForward(l, xs[l+1], pos, spans, st.k, st.v, st.k, st.v, T, nil, ad, st, false)
	}
	var aux float64 // the router's load-balancing loss
	if r := st.router; r != nil {
		aux = r.loss()
		if opt.RouterAuxCoef != 0 && r.rows > 0 {
			r.scale = opt.RouterAuxCoef * float64(c.Experts) / (float64(r.rows) * float64(r.rows))
		}
	}
	if opt.RouterAux != nil {
		*opt.RouterAux = aux
	}
	// head: final norm, logits and cross-entropy a few rows at a time
	x := xs[c.Layers]
	sc.dx = grow(sc.dx, T*H)
	dx := sc.dx
	clear(dx) // the head writes the target rows only
	loss, err := m.headBackward(x, dx, rows, b, obj, &sc.head, grad)
	if err != nil {
		return 0, err
	}
	// backward through the layers, recomputing each one's activations (st
	// still holds the last layer's from the forward pass)
	sc.xw = grow(sc.xw, T*H)
	xw := sc.xw
	for l := c.Layers - 1; l >= 0; l-- {
		if l < c.Layers-1 {
			copy(xw, xs[l])
			st.lu, st.ru, st.elu = &sc.lu[l], &sc.ru[l], sc.elu.layer(l)
			m.layerForward(l, xw, pos, spans, st.k, st.v, st.k, st.v, T, nil, ad, st, true)
		}
		m.layerBackward(l, dx, xs[l], pos, spans, ad, g, st)
	}
	grad.embedGrads(b.Tokens, dx) // full finetuning
	return loss + opt.RouterAuxCoef*aux, nil
}

// headRows is how many rows of logits the training head makes at once: the
// LM head's weights are packed for the GEMM once per chunk, and 64 rows
// did not pay for it.
const headRows = 256

// trainKeptFloats is the float32 count of what Backprop keeps across
// layers for T tokens: every layer's input and the last one's output, dx
// and the recomputation's copy [T × H], and every layer's LoRA inner
// activations [7 × T × r] (PlanMemory's "activations", with one layer's
// trainLayerFloats).
func trainKeptFloats(c *Config, T, r int64) int64 {
	L, H := int64(c.Layers), int64(c.Hidden)
	// a sparse layer's experts keep [rows × r] for gate, up and down over
	// their T·k rows
	// their T·k rows; its router [T × r] when adapted
	experts := int64(c.SparseLayers()) * (3*T*int64(c.ExpertsPerTok) + T) * r
	return (L+3)*T*H + L*T*int64(NumModules)*r + experts
}

// trainScratch holds Backprop's buffers between calls.
type trainScratch struct {
	st     layerState
	xs     [][]float32             // each layer's input [T × H], and the last one's output
	lu     [][NumModules][]float32 // each layer's LoRA inner activations [T × r]
	ru     [][]float32             // each sparse layer's router LoRA inner activations [T × r]
	elu    expertLUs               // sparse layers' experts' LoRA inner activations
	dx, xw []float32               // [T × H]
	head   headScratch
}

// headScratch holds headBackward's buffers.
type headScratch struct {
	xr, xn, dxn, dxr, rstd, logits, scale []float32
}

// headBackward computes the loss of the target rows from the residual stream
// x [T × H] through the final norm and the LM head, and writes the loss's
// gradient with respect to those rows of x into dx (and, with grad, the head's
// and final norm's weight gradients into grad). Logits are made a few rows at
// a time; with an objective they are made twice, once for the log-probs it
// needs and once for the gradient.
func (m *Model) headBackward(x, dx []float32, rows []int, b *TrainBatch, obj Objective, hs *headScratch, grad *Model) (float64, error) {
	c := &m.Config
	H, V := c.Hidden, c.VocabSize
	hs.xr, hs.xn = grow(hs.xr, headRows*H), grow(hs.xn, headRows*H)
	hs.dxn, hs.dxr = grow(hs.dxn, headRows*H), grow(hs.dxr, headRows*H)
	hs.rstd, hs.logits = grow(hs.rstd, headRows), grow(hs.logits, headRows*V)
	hs.scale = grow(hs.scale, len(rows))
	xr, xn, dxn, dxr, rstd, logits, scale := hs.xr, hs.xn, hs.dxn, hs.dxr, hs.rstd, hs.logits, hs.scale
	targets := make([]int32, headRows)
	chunk := func(r0, n int) {
		for i, t := range rows[r0 : r0+n] {
			copy(xr[i*H:(i+1)*H], x[t*H:(t+1)*H])
			targets[i] = b.Targets[t]
		}
		kernels.RMSNorm(xn[:n*H], xr[:n*H], m.Norm, n, H, float32(c.RMSNormEps), rstd[:n])
		// In the compute mode, as the backward's dlogits·LMHead below (Logits,
		// for inference, stays float32).
		kernels.MatMulTCompute(logits[:n*V], xn[:n*H], n, m.LMHead, false, m.compute)
	}
	var loss float64
	if obj == nil {
		for i, t := range rows {
			scale[i] = b.Weights[t]
		}
	} else {
		lp := make([]float32, len(rows))
		for r0 := 0; r0 < len(rows); r0 += headRows {
			n := min(headRows, len(rows)-r0)
			chunk(r0, n)
			kernels.LogProbs(lp[r0:r0+n], logits[:n*V], n, V, targets[:n])
		}
		var dlp []float32
		loss, dlp = obj(lp)
		if len(dlp) != len(rows) {
			return 0, fmt.Errorf("model: objective returned %d gradients for %d targets", len(dlp), len(rows))
		}
		for i, d := range dlp {
			scale[i] = -d // CrossEntropyGrad differentiates −log p
		}
	}
	for r0 := 0; r0 < len(rows); r0 += headRows {
		n := min(headRows, len(rows)-r0)
		chunk(r0, n)
		l := kernels.CrossEntropyGrad(logits[:n*V], n, V, targets[:n], scale[r0:r0+n])
		if obj == nil {
			loss += l
		}
		kernels.MatMulNCompute(dxn[:n*H], logits[:n*V], n, m.LMHead, false, m.compute)
		dNorm := grad.headGrads(logits[:n*V], xn[:n*H], n) // full finetuning
		kernels.RMSNormBackward(dxr[:n*H], dNorm, dxn[:n*H], xr[:n*H], m.Norm, rstd[:n], n, H, false)
		for i, t := range rows[r0 : r0+n] {
			copy(dx[t*H:(t+1)*H], dxr[i*H:(i+1)*H])
		}
	}
	return loss, nil
}
