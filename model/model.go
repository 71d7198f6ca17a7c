package model

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"

	"github.com/gotrain/gotrain/kernels"
	"github.com/gotrain/gotrain/model/safetensors"
)

// maxRopePositions caps the precomputed RoPE table (16 MiB at head_dim 128);
// longer contexts than this are refused rather than silently wrapped.
const maxRopePositions = 32768

// ErrShape marks a tensor whose shape or dtype does not fit the config.
var ErrShape = errors.New("shape mismatch")

// Linear is a frozen linear layer y = x·Wᵀ + b; W is [out × in] in its stored
// dtype, b is nil or [out].
type Linear struct {
	W *kernels.Matrix
	B []float32
}

// Layer is one decoder block's frozen weights.
type Layer struct {
	AttnNorm, MLPNorm []float32 // [Hidden]
	QNorm, KNorm      []float32 // [HeadDim] per-head query and key norms (Config.QKNorm), else nil
	Q, K, V, O        Linear
	Gate, Up, Down    Linear // a dense MLP; unset where MoE is
	MoE               *MoE   // a sparse layer's experts (moe.go), or nil
}

// Model is a loaded, immutable base model. It is safe for concurrent use:
// every call keeps its own state in a KVCache and its own buffers.
type Model struct {
	Config   Config
	Dir      string
	Embed    *kernels.Matrix // [Vocab × Hidden]
	Layers   []Layer
	Norm     []float32       // [Hidden]
	LMHead   *kernels.Matrix // [Vocab × Hidden]; when tied, the Embed weights (copied by moveResident)
	compute  kernels.Compute // matmul precision of the forward pass, see SetCompute
	rope     *kernels.RoPETable
	ropeLen  int // positions the RoPE table covers
	ckpt     *safetensors.Checkpoint
	tied     bool                         // loaded with LMHead the embedding (see fromCheckpoint)
	qcache   *safetensors.File            // the mapped quantized-weight cache (quant.go), or nil
	resident []byte                       // anonymous mapping holding the BF16 weights (resident_unix.go), or nil
	scratch  atomic.Pointer[trainScratch] // Backprop's buffers, kept so that steps leave no garbage
}

// Load opens the checkpoint in dir (config.json plus model.safetensors or a
// sharded index). Weights stay memory-mapped in their stored dtype; F16
// tensors are widened to float32 copies because the kernels read F32 and BF16.
func Load(dir string) (*Model, error) {
	return LoadWith(dir, LoadOptions{})
}

// LoadWith is Load with options; opt.Quantize quantizes the frozen linear
// weights (quant.go).
func LoadWith(dir string, opt LoadOptions) (*Model, error) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m, err := fromCheckpoint(*cfg, ck)
	if err != nil {
		ck.Close()
		return nil, fmt.Errorf("model: %s: %w", dir, err)
	}
	m.Dir = dir
	if err := m.quantize(opt); err != nil {
		m.Close()
		return nil, fmt.Errorf("model: %s: %w", dir, err)
	}
	m.moveResident()
	return m, nil
}

// moveResident copies the BF16 weights the matmuls stream (linear layers
// not quantized, and the LM head) out of the file mapping: see makeResident.
// An untied embedding stays mapped (it is read a row at a time). If the copy
// cannot be made, the weights stay where they are.
func (m *Model) moveResident() {
	names, ws := m.linears()
	var keepNames []string
	var keep []**kernels.Matrix
	for i, w := range ws {
		if (*w).DType == kernels.BF16 && !(*w).IsQuantized() {
			keepNames, keep = append(keepNames, names[i]), append(keep, w)
		}
	}
	if m.LMHead.DType == kernels.BF16 && m.LMHead != m.Embed {
		keepNames, keep = append(keepNames, "lm_head.weight"), append(keep, &m.LMHead)
	} else if m.LMHead.DType == kernels.BF16 {
		// Tied: the embedding looks its rows up in the copy too. Left on the
		// mapping, its lookups faulted the file back in with readahead (the
		// whole 297 MiB table of the Qwen3-0.6B shape after one 1024-token
		// step): the table was resident twice.
		keepNames, keep = append(keepNames, "model.embed_tokens.weight"), append(keep, &m.LMHead)
	}
	tied := m.LMHead == m.Embed
	buf, err := makeResident(keep, func(i, lo, hi int) {
		if m.ckpt != nil {
			m.ckpt.EvictRange(keepNames[i], lo, hi)
		}
	})
	if err == nil {
		m.resident = buf
	}
	if tied {
		m.Embed = m.LMHead
	}
}

// MaxPositions is the longest sequence the model runs: max_position_embeddings,
// capped by the precomputed RoPE table.
func (m *Model) MaxPositions() int { return m.ropeLen }

// SetCompute chooses the precision of the base weights' matrix multiplies
// (the layers' forward, the training recomputation, the backward's input
// gradients and the training head; inference logits stay float32):
// kernels.ComputeF32 (the default, exact) or kernels.ComputeBF16,
// which rounds their operands to bfloat16 and accumulates in float32 as
// PyTorch autocast does, about twice as fast on CPUs with AVX512_BF16. LoRA
// weights and their gradients, norms, softmax, the loss and every reduction
// stay float32. Call it before the model is used, not concurrently with use.
func (m *Model) SetCompute(c kernels.Compute) { m.compute = c }

// Compute reports the compute mode SetCompute chose.
func (m *Model) Compute() kernels.Compute { return m.compute }

// Close releases the memory-mapped weights. The model must not be used after.
func (m *Model) Close() error {
	if m.qcache != nil {
		m.qcache.Close()
	}
	if m.resident != nil {
		unmapResident(m.resident)
		m.resident = nil
	}
	if m.ckpt == nil {
		return nil
	}
	return m.ckpt.Close()
}

// tensorSource is what fromCheckpoint needs of a checkpoint.
type tensorSource interface {
	Tensor(name string) (*safetensors.Tensor, bool)
}

func fromCheckpoint(cfg Config, ck *safetensors.Checkpoint) (*Model, error) {
	m := &Model{Config: cfg, ckpt: ck}
	c := &m.Config
	l := loader{src: ck}
	H, D, I := c.Hidden, c.HeadDim, c.Intermediate
	m.Embed = l.matrix("model.embed_tokens.weight", c.VocabSize, H)
	m.Norm = l.vector("model.norm.weight", H)
	if c.TieEmbeddings {
		// transformers 5's tie_weights (from_pretrained): a stored
		// lm_head.weight equal to the embedding is tied to it (one matrix,
		// trained as one); one that differs is kept apart, with a warning
		// to set tie_word_embeddings false. (transformers 4 tied it
		// regardless, discarding the stored head.)
		if head, ok := ck.Tensor("lm_head.weight"); ok && !sameTensor(head, ck, "model.embed_tokens.weight") {
			m.LMHead = l.matrix("lm_head.weight", c.VocabSize, H)
		} else {
			m.LMHead, m.tied = m.Embed, true
		}
	} else {
		m.LMHead = l.matrix("lm_head.weight", c.VocabSize, H)
	}
	m.Layers = make([]Layer, c.Layers)
	for i := range m.Layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		L := &m.Layers[i]
		L.AttnNorm = l.vector(p+"input_layernorm.weight", H)
		L.MLPNorm = l.vector(p+"post_attention_layernorm.weight", H)
		L.Q = l.linear(p+"self_attn.q_proj", c.Heads*D, H, c.QKVBias)
		L.K = l.linear(p+"self_attn.k_proj", c.KVHeads*D, H, c.QKVBias)
		L.V = l.linear(p+"self_attn.v_proj", c.KVHeads*D, H, c.QKVBias)
		L.O = l.linear(p+"self_attn.o_proj", H, c.Heads*D, c.OBias)
		if c.QKNorm {
			L.QNorm = l.vector(p+"self_attn.q_norm.weight", D)
			L.KNorm = l.vector(p+"self_attn.k_norm.weight", D)
		}
		if c.Sparse(i) {
			L.MoE = l.moe(p, c)
			continue
		}
		L.Gate = l.linear(p+"mlp.gate_proj", I, H, c.MLPBias)
		L.Up = l.linear(p+"mlp.up_proj", I, H, c.MLPBias)
		L.Down = l.linear(p+"mlp.down_proj", H, I, c.MLPBias)
	}
	if l.err != nil {
		return nil, l.err
	}
	m.ropeLen = min(c.MaxPositions, maxRopePositions)
	m.rope = kernels.NewRoPETable(c.InvFreq(), m.ropeLen)
	return m, nil
}

// loader reads tensors by name and keeps the first error.
type loader struct {
	src tensorSource
	err error
}

func (l *loader) get(name string, shape ...int) *safetensors.Tensor {
	if l.err != nil {
		return nil
	}
	t, ok := l.src.Tensor(name)
	if !ok {
		l.err = fmt.Errorf("tensor %q is missing", name)
		return nil
	}
	if !slices.Equal(t.Shape, shape) {
		l.err = fmt.Errorf("tensor %q has shape %v, the config needs %v: %w", name, t.Shape, shape, ErrShape)
		return nil
	}
	return t
}

func (l *loader) matrix(name string, rows, cols int) *kernels.Matrix {
	t := l.get(name, rows, cols)
	if t == nil {
		return nil
	}
	var err error
	var w *kernels.Matrix
	switch t.DType {
	case safetensors.F32:
		var v []float32
		if v, err = t.F32(); err == nil {
			w = kernels.NewF32(rows, cols, v)
		}
	case safetensors.BF16:
		var v []uint16
		if v, err = t.BF16(); err == nil {
			w = kernels.NewBF16(rows, cols, v)
		}
	case safetensors.F16:
		var v []float32
		if v, err = t.ToF32(); err == nil {
			w = kernels.NewF32(rows, cols, v)
		}
	default:
		err = fmt.Errorf("dtype %s is not a weight dtype (F32, BF16, F16): %w", t.DType, ErrShape)
	}
	if err != nil {
		l.err = fmt.Errorf("tensor %q: %w", name, err)
	}
	return w
}

func (l *loader) vector(name string, n int) []float32 {
	t := l.get(name, n)
	if t == nil {
		return nil
	}
	v, err := t.ToF32()
	if err != nil {
		l.err = fmt.Errorf("tensor %q: %w", name, err)
	}
	return v
}

func (l *loader) linear(prefix string, out, in int, bias bool) Linear {
	lin := Linear{W: l.matrix(prefix+".weight", out, in)}
	if bias {
		lin.B = l.vector(prefix+".bias", out)
	}
	return lin
}

// PackWeights gives every linear weight that is not quantized a second
// copy laid out for the matmul microkernel in the model's compute mode
// (kernels.Matrix.Pack; call SetCompute first), so that forward passes over
// many tokens (prompts, scoring) skip repacking them on every call; and the
// LM head one in its mode (headPack), which scoring many answer rows at
// once (ContinuationBatch: a batch's rows of logits, a 0–100 scale 101 of
// them) otherwise repacks on every call: 8–10% of a server's CPU with the
// small test shape (hidden 256). One-token decoding reads the
// original layout. It costs PackBytes more memory, and serves the kernel
// level active when it is called. Call it after loading, before use, not
// concurrently with use.
func (m *Model) PackWeights() {
	_, ws := m.linears()
	for _, w := range ws {
		(*w).Pack(m.compute)
	}
	m.LMHead.Pack(m.headPack())
}

// headPack is the mode the LM head is packed for: headCompute's, or float32
// where ComputeBF16 is emulated (MatMulTRows then runs the float32 path).
func (m *Model) headPack() kernels.Compute {
	if !kernels.HasBF16Compute() {
		return kernels.ComputeF32
	}
	return m.headCompute()
}

// PackBytes is the memory PackWeights adds: the linear weights that are
// not quantized and the LM head, rounded up to whole micro-panels.
func (m *Model) PackBytes() int64 {
	_, ws := m.linears()
	var n int64
	for _, w := range ws {
		n += (*w).PackBytes(m.compute)
	}
	return n + m.LMHead.PackBytes(m.headPack())
}

// sameTensor reports whether t holds the same values as ck's tensor name
// (torch.equal: same shape, equal values; bit-equal storage is the fast path).
func sameTensor(t *safetensors.Tensor, ck tensorSource, name string) bool {
	u, ok := ck.Tensor(name)
	if !ok || !slices.Equal(t.Shape, u.Shape) {
		return false
	}
	if t.DType == u.DType {
		return bytes.Equal(t.Data, u.Data)
	}
	a, err1 := t.ToF32()
	b, err2 := u.ToF32()
	return err1 == nil && err2 == nil && slices.Equal(a, b)
}
