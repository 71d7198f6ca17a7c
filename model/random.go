package model

import (
	"fmt"
	"math"
	"slices"

	"github.com/gotrain/gotrain/kernels"
)

// NewRandom builds a model of config c with random weights directly in
// memory, its linear weights (experts included) already in the quantized
// form kind ("" keeps them BF16): a benchmark of a shape whose BF16
// checkpoint would not fit on the disk (Qwen3-30B-A3B: 61 GB) or in memory.
// Quantized weights are random codes with scales of N(0, 0.02²) weights'
// block maxima, not quantized Gaussians: the kernels' work and the memory
// are those of a real checkpoint, the values are not. It is not for
// training anything but timings (NewFull needs a checkpoint).
func NewRandom(c *Config, kind string, seed uint64) (*Model, error) {
	if kind != "" && !slices.Contains(QuantizeKinds, kind) {
		return nil, fmt.Errorf("--quantize %q: want one of %v", kind, QuantizeKinds)
	}
	m := &Model{Config: *c}
	c = &m.Config
	var n uint64 // a counter that makes every tensor's stream differ
	next := func() uint64 { n++; return seed*0x9e3779b97f4a7c15 + n<<32 }
	embStd := max(0.02, 1/math.Sqrt(float64(c.Hidden)))
	bf16 := func(rows, cols int, std float64) *kernels.Matrix {
		return kernels.NewBF16(rows, cols, randomBF16(rows*cols, std, next()))
	}
	lin := func(out, in int) Linear {
		if kind == "" {
			return Linear{W: bf16(out, in, 0.02)}
		}
		return Linear{W: randomQuantized(out, in, kind, next())}
	}
	ones := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	H, D := c.Hidden, c.HeadDim
	m.Embed = bf16(c.VocabSize, H, embStd)
	m.LMHead = m.Embed
	if !c.TieEmbeddings {
		m.LMHead = bf16(c.VocabSize, H, embStd)
		if kind != "" { // as quantize does (HeadQuantize)
			m.LMHead = quantizeMatrix(m.LMHead, HeadQuantize)
		}
	}
	m.Norm = ones(H)
	m.Layers = make([]Layer, c.Layers)
	for i := range m.Layers {
		L := &m.Layers[i]
		L.AttnNorm, L.MLPNorm = ones(H), ones(H)
		L.Q, L.K, L.V, L.O = lin(c.Heads*D, H), lin(c.KVHeads*D, H), lin(c.KVHeads*D, H), lin(H, c.Heads*D)
		if c.QKNorm {
			L.QNorm, L.KNorm = ones(D), ones(D)
		}
		if !c.Sparse(i) {
			L.Gate, L.Up, L.Down = lin(c.Intermediate, H), lin(c.Intermediate, H), lin(H, c.Intermediate)
			continue
		}
		L.MoE = &MoE{Router: bf16(c.Experts, H, 0.02), Experts: make([]Expert, c.Experts)}
		for e := range L.MoE.Experts {
			I := c.MoEIntermediate
			L.MoE.Experts[e] = Expert{Gate: lin(I, H), Up: lin(I, H), Down: lin(H, I)}
		}
	}
	m.ropeLen = min(c.MaxPositions, maxRopePositions)
	m.rope = kernels.NewRoPETable(c.InvFreq(), m.ropeLen)
	return m, nil
}

// randomBF16 is n values ~ U(−√3σ, √3σ) (standard deviation σ) from a
// counter hash, generated on all cores.
func randomBF16(n int, std float64, seed uint64) []uint16 {
	v := make([]uint16, n)
	a := float32(std * math.Sqrt(3))
	kernels.Parallel((n+1023)/1024, func(lo, hi int) {
		for i := lo * 1024; i < min(hi*1024, n); i++ {
			u := float32(kernels.SplitMix64(seed+uint64(i))>>40) / (1 << 24) // [0, 1)
			v[i] = kernels.F32ToBF16((2*u - 1) * a)
		}
	})
	return v
}

// randomQuantized is a [rows × cols] matrix of kind with random codes and
// the block scales of N(0, 0.02²) weights (about 2.5σ, the expected maximum
// of 64 normals, for NF4; for int8 that over 127).
func randomQuantized(rows, cols int, kind string, seed uint64) *kernels.Matrix {
	dt, scale := kernels.NF4, float32(0.05)
	if kind == "int8" {
		dt, scale = kernels.Q8, 0.05/127
	}
	q := &kernels.QuantData{Q: make([]byte, rows*kernels.QuantRowBytes(dt, cols)),
		Scales: make([]float32, rows*kernels.QuantBlocks(dt, cols))}
	kernels.Parallel((len(q.Q)+4095)/4096, func(lo, hi int) {
		for i := lo * 512; i < min(hi*512, (len(q.Q)+7)/8); i++ {
			h := kernels.SplitMix64(seed + uint64(i))
			for j := 0; j < 8 && 8*i+j < len(q.Q); j++ {
				q.Q[8*i+j] = byte(h >> (8 * j))
			}
		}
	})
	if dt == kernels.Q8 {
		for i, b := range q.Q {
			if int8(b) == -128 { // outside QuantizeQ8's [−127, 127]
				q.Q[i] = byte(0x81)
			}
		}
	}
	for i := range q.Scales {
		q.Scales[i] = scale
	}
	w := &kernels.Matrix{Rows: rows, Cols: cols, DType: dt, Quant: q}
	if kind == "nf4-dq" {
		// the same layout as QuantizeNF4's double quantization
		return kernels.QuantizeNF4(w, true)
	}
	return w
}
