package model

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/gotrain/gotrain/kernels"
	"github.com/gotrain/gotrain/model/safetensors"
)

// Full is a model all of whose weights are trained (full finetuning):
// float32 master copies of every tensor (embeddings, norms, biases, linear
// layers, an untied LM head; a tied head is the embedding), bound into a
// Model so that the forward and backward passes run on them, and updated in
// place by an optimiser through Params.
type Full struct {
	Model *Model // computes with the master weights
	base  *Model // the loaded checkpoint: its dtypes, files and other tensors (Save)
	names []string
	ts    [][]float32
}

// NewFull makes float32 master copies of every weight of base, read from
// its checkpoint in the stored dtype (so a quantized load still starts from
// the original weights). base must stay open while the Full is used.
func NewFull(base *Model) (*Full, error) {
	if base.ckpt == nil {
		return nil, fmt.Errorf("model: full finetuning needs a model loaded from a checkpoint")
	}
	f := &Full{base: base}
	err := f.bind(&base.Config, base.tiedHead(), func(name string, n int) ([]float32, error) {
		t, ok := base.ckpt.Tensor(name)
		if !ok {
			return nil, fmt.Errorf("tensor %q is missing", name)
		}
		v, err := t.ToF32()
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		// The copy is what trains: the file pages read for it need not stay
		// resident (they fault back in if the base reads them).
		base.ckpt.Evict(name)
		if len(v) != n {
			return nil, fmt.Errorf("tensor %q has %d values, want %d: %w", name, len(v), n, ErrShape)
		}
		return v, nil // ToF32 copies
	})
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", base.Dir, err)
	}
	f.Model.Dir, f.Model.rope, f.Model.ropeLen = base.Dir, base.rope, base.ropeLen
	return f, nil
}

// tiedHead reports whether the LM head is the embedding: tie_word_embeddings
// and no stored lm_head.weight that differs from it (fromCheckpoint).
func (m *Model) tiedHead() bool {
	if m.ckpt == nil {
		return m.LMHead == m.Embed
	}
	return m.tied
}

// bind builds f.Model with weights from get (name, element count), listing
// each tensor once under its Hugging Face name, in checkpoint order.
func (f *Full) bind(c *Config, tied bool, get func(name string, n int) ([]float32, error)) error {
	H, D, I, V := c.Hidden, c.HeadDim, c.Intermediate, c.VocabSize
	var err error
	vec := func(name string, n int) []float32 {
		if err != nil {
			return nil
		}
		var v []float32
		if v, err = get(name, n); err == nil {
			f.names, f.ts = append(f.names, name), append(f.ts, v)
		}
		return v
	}
	mat := func(name string, rows, cols int) *kernels.Matrix {
		return kernels.NewF32(rows, cols, vec(name, rows*cols))
	}
	lin := func(p string, out, in int, bias bool) Linear {
		l := Linear{W: mat(p+".weight", out, in)}
		if bias {
			l.B = vec(p+".bias", out)
		}
		return l
	}
	m := &Model{Config: *c}
	m.Embed = mat("model.embed_tokens.weight", V, H)
	m.Layers = make([]Layer, c.Layers)
	for i := range m.Layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		L := &m.Layers[i]
		L.AttnNorm = vec(p+"input_layernorm.weight", H)
		L.Q = lin(p+"self_attn.q_proj", c.Heads*D, H, c.QKVBias)
		L.K = lin(p+"self_attn.k_proj", c.KVHeads*D, H, c.QKVBias)
		L.V = lin(p+"self_attn.v_proj", c.KVHeads*D, H, c.QKVBias)
		L.O = lin(p+"self_attn.o_proj", H, c.Heads*D, c.OBias)
		if c.QKNorm {
			L.QNorm = vec(p+"self_attn.q_norm.weight", D)
			L.KNorm = vec(p+"self_attn.k_norm.weight", D)
		}
		L.MLPNorm = vec(p+"post_attention_layernorm.weight", H)
		if c.Sparse(i) {
			L.MoE = &MoE{Router: mat(p+"mlp.gate.weight", c.Experts, H), Experts: make([]Expert, c.Experts)}
			for e := range L.MoE.Experts {
				ex, q := &L.MoE.Experts[e], fmt.Sprintf("%smlp.experts.%d.", p, e)
				ex.Gate = lin(q+"gate_proj", c.MoEIntermediate, H, false)
				ex.Up = lin(q+"up_proj", c.MoEIntermediate, H, false)
				ex.Down = lin(q+"down_proj", H, c.MoEIntermediate, false)
			}
			continue
		}
		L.Gate = lin(p+"mlp.gate_proj", I, H, c.MLPBias)
		L.Up = lin(p+"mlp.up_proj", I, H, c.MLPBias)
		L.Down = lin(p+"mlp.down_proj", H, I, c.MLPBias)
	}
	m.Norm = vec("model.norm.weight", H)
	if tied {
		m.LMHead = m.Embed
	} else {
		m.LMHead = mat("lm_head.weight", V, H)
	}
	f.Model = m
	return err
}

// Params lists every trained tensor once (a tied head is the embedding) with
// its Hugging Face name; the slices alias the weights.
func (f *Full) Params() (names []string, ts [][]float32) { return f.names, f.ts }

// ZerosLike returns a Full of the same shapes with all weights zero, to hold
// gradients.
func (f *Full) ZerosLike() *Full {
	g := &Full{base: f.base}
	g.bind(&f.Model.Config, f.Model.LMHead == f.Model.Embed, func(_ string, n int) ([]float32, error) {
		return make([]float32, n), nil
	})
	return g
}

// LossAndGrad is Model.LossAndGrad training every weight: the gradient of the
// loss with respect to each of f's tensors is added to g (see ZerosLike).
func (f *Full) LossAndGrad(b *TrainBatch, g *Full, opt TrainOptions) (float64, error) {
	return f.Backprop(b, g, opt, nil)
}

// Backprop is Model.Backprop training every weight (gradients added to g).
func (f *Full) Backprop(b *TrainBatch, g *Full, opt TrainOptions, obj Objective) (float64, error) {
	return f.Model.backprop(b, nil, nil, g.Model, opt, obj)
}

// module returns the layer's linear module mod.
func (L *Layer) module(mod Module) *Linear {
	return [NumModules]*Linear{&L.Q, &L.K, &L.V, &L.O, &L.Gate, &L.Up, &L.Down}[mod]
}

// weightGrad adds a linear layer's weight and bias gradients, dW += dyᵀ·x
// and db += Σ_t dy, to st.grad (full finetuning).
func (st *layerState) weightGrad(dy, x []float32, mod Module) {
	gl := st.grad.Layers[st.layer].module(mod)
	if st.expert > 0 {
		b := st.grad.Layers[st.layer].MoE
		if b == nil { // modules_to_save trains no expert
			return
		}
		gl = b.Experts[st.expert-1].module(mod)
	}
	if gl.W == nil { // modules_to_save trains no linear layer
		return
	}
	out, in := gl.W.Rows, gl.W.Cols
	kernels.MatMulTN(gl.W.F32, dy, x, st.T, out, in, true)
	if gl.B != nil {
		for t := 0; t < st.T; t++ {
			kernels.Add(gl.B, dy[t*out:(t+1)*out])
		}
	}
}

// normGrads returns the gradients of the layer's two norm weights in
// st.grad, or nils when only an adapter is trained.
func (st *layerState) normGrads() (attn, mlp []float32) {
	if st.grad == nil {
		return nil, nil
	}
	L := &st.grad.Layers[st.layer]
	return L.AttnNorm, L.MLPNorm
}

// qkNormGrads returns the gradients of the layer's query and key head norm
// weights in st.grad, or nils when only an adapter is trained.
func (st *layerState) qkNormGrads() (q, k []float32) {
	if st.grad == nil {
		return nil, nil
	}
	L := &st.grad.Layers[st.layer]
	return L.QNorm, L.KNorm
}

// headGrads adds the LM head's and the final norm's gradients of a chunk of
// n rows: dHead += dlogitsᵀ·xn (into the embedding when tied); the norm's
// comes with RMSNormBackward, whose dw this returns.
func (grad *Model) headGrads(dlogits, xn []float32, n int) (dNorm []float32) {
	if grad == nil {
		return nil
	}
	if grad.LMHead == nil { // modules_to_save without lm_head
		return grad.Norm
	}
	c := &grad.Config
	kernels.MatMulTN(grad.LMHead.F32, dlogits, xn, n, c.VocabSize, c.Hidden, true)
	return grad.Norm
}

// embedGrads adds the gradient of the embedding rows looked up, dx [T × H]
// (the gradient of the first layer's input), to grad's embedding.
func (grad *Model) embedGrads(tokens []int32, dx []float32) {
	if grad == nil || grad.Embed == nil {
		return
	}
	H := grad.Config.Hidden
	e := grad.Embed.F32
	for t, tok := range tokens {
		kernels.Add(e[int(tok)*H:(int(tok)+1)*H], dx[t*H:(t+1)*H])
	}
}

// Save writes f as a complete Hugging Face checkpoint in the base's dtype
// (sharded above 5 GB, with config.json, generation_config.json and the
// tokenizer files copied), loadable wherever the base is.
func (f *Full) Save(dir string) error { return f.save(dir, false) }

// SaveMaster writes the float32 master weights as a checkpoint (for a
// bitwise resume, LoadMaster); it loads as a float32 model too.
func (f *Full) SaveMaster(dir string) error { return f.save(dir, true) }

func (f *Full) save(dir string, master bool) error {
	if a, errA := os.Stat(dir); errA == nil {
		if b, errB := os.Stat(f.base.Dir); errB == nil && os.SameFile(a, b) {
			return fmt.Errorf("model: save: %s is the base checkpoint's directory, which is still mapped: write elsewhere", dir)
		}
	}
	byName := make(map[string][]float32, len(f.names))
	for i, n := range f.names {
		byName[n] = f.ts[i]
	}
	ck := f.base.ckpt
	var ts []safetensors.Tensor
	for _, name := range ck.Names() {
		t, _ := ck.Tensor(name)
		out := safetensors.Tensor{Name: name, DType: t.DType, Shape: t.Shape, Data: t.Data}
		if w, ok := byName[name]; ok {
			dt := t.DType
			if master {
				dt = safetensors.F32
			}
			data, err := encodeAs(w, dt)
			if err != nil {
				return fmt.Errorf("model: save: tensor %q: %w", name, err)
			}
			out.DType, out.Data = dt, data
			delete(byName, name)
		}
		ts = append(ts, out)
	}
	for name := range byName {
		return fmt.Errorf("model: save: tensor %q is not in the base checkpoint", name)
	}
	return writeCheckpoint(f.base.Dir, dir, ts)
}

// LoadMaster restores the weights SaveMaster wrote into dir.
func (f *Full) LoadMaster(dir string) error {
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	defer ck.Close()
	for i, name := range f.names {
		t, ok := ck.Tensor(name)
		if !ok || t.DType != safetensors.F32 || t.NumElements() != len(f.ts[i]) {
			return fmt.Errorf("model: %s: tensor %q is missing or not float32 of %d values", dir, name, len(f.ts[i]))
		}
		v, err := t.F32()
		if err != nil {
			return fmt.Errorf("model: %s: tensor %q: %w", dir, name, err)
		}
		copy(f.ts[i], v)
	}
	return nil
}

// encodeAs converts w to a weight dtype's bytes.
func encodeAs(w []float32, dt safetensors.DType) ([]byte, error) {
	switch dt {
	case safetensors.F32:
		return safetensors.BytesOfF32(w), nil
	case safetensors.BF16:
		u := make([]uint16, len(w))
		safetensors.BF16FromF32(u, w)
		return safetensors.BytesOfU16(u), nil
	case safetensors.F16:
		u := make([]uint16, len(w))
		for i, v := range w {
			u[i] = safetensors.F32ToF16(v)
		}
		return safetensors.BytesOfU16(u), nil
	}
	return nil, fmt.Errorf("dtype %s is not a weight dtype", dt)
}

// checkpointFiles are the files besides the weights a checkpoint directory
// carries over (config, generation settings, tokenizer).
var checkpointFiles = []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
	"special_tokens_map.json", "chat_template.jinja", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json"}

// writeCheckpoint writes ts into dir as model.safetensors, or shards with an
// index above 5 GB as save_pretrained does, and copies the checkpoint files
// of from beside them.
func writeCheckpoint(from, dir string, ts []safetensors.Tensor) error {
	var total int64
	for _, t := range ts {
		total += int64(len(t.Data))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	var err error
	if total > mergeShardBytes {
		err = safetensors.WriteSharded(dir, ts, mergeShardBytes)
	} else {
		err = safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"})
	}
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	for _, f := range checkpointFiles {
		if err := copyFile(filepath.Join(from, f), filepath.Join(dir, f)); err != nil {
			return err
		}
	}
	return nil
}

// FullParams is the number of weights full finetuning trains (a tied head
// counted once).
func FullParams(c *Config) int64 {
	H, I, V := int64(c.Hidden), int64(c.Intermediate), int64(c.VocabSize)
	qw, kvw := int64(c.Heads*c.HeadDim), int64(c.KVHeads*c.HeadDim)
	layer := 2*H + qw*H + 2*kvw*H + H*qw + 3*I*H
	if c.QKVBias {
		layer += qw + 2*kvw
	}
	if c.QKNorm {
		layer += 2 * int64(c.HeadDim)
	}
	if c.OBias {
		layer += H
	}
	if c.MLPBias {
		layer += 2*I + H
	}
	n := V*H + int64(c.Layers)*layer + H
	if sp := int64(c.SparseLayers()); sp > 0 { // the router and experts replace the dense MLP
		E := int64(c.Experts)
		n += sp * (E*H + 3*E*int64(c.MoEIntermediate)*H - 3*I*H)
	}
	if !c.TieEmbeddings {
		n += V * H
	}
	return n
}

// addFullParts adds full finetuning's lines to a memory plan: master
// weights, gradCopies gradients (the trainer's step sum and micro-batch
// buffers) and the optimiser's state.
func addFullParts(add func(string, float64), c *Config, optim string, gradCopies float64) {
	n := float64(FullParams(c)) // within int64 for bounded configs; the plan counts in float64
	add("master weights (F32)", 4*n)
	if optim == "" {
		return
	}
	add("gradients (F32)", gradCopies*4*n)
	switch optim {
	case "adamw":
		add("AdamW moments (F32)", 8*n)
	case "adamw8bit":
		add("AdamW moments (8-bit)", 2*n+2*4*math.Ceil(n/adam8BlockPlan))
	}
}

// adam8BlockPlan is the block size of train's 8-bit AdamW moments, for
// the memory plan (bitsandbytes' default for 8-bit optimisers).
const adam8BlockPlan = 2048

// ZerosIn is ZerosLike with the tensors laid out in flat (len: the sum of
// Params' lengths, in Params order), so a gradient is one buffer.
func (f *Full) ZerosIn(flat []float32) *Full {
	g := &Full{base: f.base}
	off := 0
	g.bind(&f.Model.Config, f.Model.LMHead == f.Model.Embed, func(_ string, n int) ([]float32, error) {
		v := flat[off : off+n : off+n]
		off += n
		return v, nil
	})
	return g
}
