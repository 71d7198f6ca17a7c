package train

import (
	"fmt"
	"math"

	"github.com/gotrain/gotrain/kernels"
)

// Optimizer updates parameters in place from their gradients.
type Optimizer interface {
	// Step applies one update with learning rate lr.
	Step(params, grads [][]float32, lr float64)
	// State returns named state tensors for checkpoints; SetState restores them.
	State() map[string][]float32
	SetState(map[string][]float32) error
}

// byteStater is an optimiser with 8-bit state besides State's float32
// tensors (AdamW8bit), saved in checkpoints as U8 tensors.
type byteStater interface {
	ByteState() map[string][]uint8
	SetByteState(map[string][]uint8) error
}

// SGD is plain stochastic gradient descent: p −= lr·g.
type SGD struct{}

// Step subtracts lr·g from every parameter.
func (SGD) Step(params, grads [][]float32, lr float64) {
	for i, p := range params {
		for j, g := range grads[i] {
			p[j] -= float32(lr) * g
		}
	}
}

// State is empty: SGD keeps no state.
func (SGD) State() map[string][]float32 { return nil }

// SetState accepts the empty state.
func (SGD) SetState(map[string][]float32) error { return nil }

// AdamW is torch.optim.AdamW (decoupled weight decay), HF's default optimiser.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
	t                              int
	m, v                           [][]float32
}

// NewAdamW returns AdamW with HF's defaults (0.9, 0.999, 1e-8) and the given
// weight decay.
func NewAdamW(weightDecay float64) *AdamW {
	return &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay}
}

// Step applies one AdamW update with bias correction.
func (o *AdamW) Step(params, grads [][]float32, lr float64) {
	if o.m == nil {
		o.m, o.v = make([][]float32, len(params)), make([][]float32, len(params))
		for i, p := range params {
			o.m[i], o.v[i] = make([]float32, len(p)), make([]float32, len(p))
		}
	}
	o.t++
	u := adamUpdate(o.Beta1, o.Beta2, o.Eps, o.WeightDecay, lr, o.t)
	for i, p := range params {
		g, m, v := grads[i], o.m[i], o.v[i]
		// elementwise, so any split gives the same bits
		kernels.Parallel((len(p)+adamChunk-1)/adamChunk, func(lo, hi int) {
			j0, j1 := lo*adamChunk, min(hi*adamChunk, len(p))
			u.apply(p[j0:j1], g[j0:j1], m[j0:j1], v[j0:j1])
		})
	}
}

// adamChunk is the unit of work AdamW's update is split into: full
// finetuning updates hundreds of millions of weights a step.
const adamChunk = 1 << 16

// adamStep holds one AdamW update's constants.
type adamStep struct{ b1, b2, step, decay, sq2, eps float32 }

// adamUpdate returns the constants of step t (1-based) with bias correction.
func adamUpdate(beta1, beta2, eps, weightDecay, lr float64, t int) adamStep {
	bc1 := 1 - math.Pow(beta1, float64(t))
	bc2 := 1 - math.Pow(beta2, float64(t))
	return adamStep{b1: float32(beta1), b2: float32(beta2), step: float32(lr / bc1),
		decay: float32(1 - lr*weightDecay), sq2: float32(math.Sqrt(bc2)), eps: float32(eps)}
}

// apply updates the weights p and the moments m, v from the gradient g.
func (u adamStep) apply(p, g, m, v []float32) {
	for j, gj := range g {
		p[j] *= u.decay
		m[j] = u.b1*m[j] + (1-u.b1)*gj
		v[j] = u.b2*v[j] + (1-u.b2)*gj*gj
		p[j] -= u.step * m[j] / (float32(math.Sqrt(float64(v[j])))/u.sq2 + u.eps)
	}
}

// State returns the step count and both moment estimates (aliased, not copied).
func (o *AdamW) State() map[string][]float32 {
	s := map[string][]float32{"step": {float32(o.t)}}
	for i := range o.m {
		s[fmt.Sprintf("exp_avg.%d", i)] = o.m[i]
		s[fmt.Sprintf("exp_avg_sq.%d", i)] = o.v[i]
	}
	return s
}

// SetState restores what State returned (copying it).
func (o *AdamW) SetState(s map[string][]float32) error {
	st, ok := s["step"]
	if !ok || len(st) != 1 {
		return fmt.Errorf("optimizer state: no step")
	}
	o.t = int(st[0])
	n := (len(s) - 1) / 2
	o.m, o.v = make([][]float32, n), make([][]float32, n)
	for i := 0; i < n; i++ {
		m, okm := s[fmt.Sprintf("exp_avg.%d", i)]
		v, okv := s[fmt.Sprintf("exp_avg_sq.%d", i)]
		if !okm || !okv {
			return fmt.Errorf("optimizer state: tensor %d missing", i)
		}
		o.m[i], o.v[i] = append([]float32(nil), m...), append([]float32(nil), v...)
	}
	return nil
}

// ClipGradNorm scales grads so that their global L2 norm is at most maxNorm
// (as torch.nn.utils.clip_grad_norm_) and returns the norm before clipping.
// maxNorm ≤ 0 only measures.
func ClipGradNorm(grads [][]float32, maxNorm float64) float64 {
	// Sums of fixed chunks added in order: the same bits on any number of
	// threads.
	var ss float64
	for _, g := range grads {
		part := make([]float64, (len(g)+adamChunk-1)/adamChunk)
		kernels.Parallel(len(part), func(lo, hi int) {
			for c := lo; c < hi; c++ {
				var s float64
				for _, v := range g[c*adamChunk : min((c+1)*adamChunk, len(g))] {
					s += float64(v) * float64(v)
				}
				part[c] = s
			}
		})
		for _, s := range part {
			ss += s
		}
	}
	norm := math.Sqrt(ss)
	if maxNorm > 0 {
		if c := maxNorm / (norm + 1e-6); c < 1 {
			for _, g := range grads {
				for j := range g {
					g[j] *= float32(c)
				}
			}
		}
	}
	return norm
}
