package train

import (
	"fmt"
	"math"
)

// Optimizer updates parameters in place from their gradients.
type Optimizer interface {
	// Step applies one update with learning rate lr.
	Step(params, grads [][]float32, lr float64)
	// State returns named state tensors for checkpoints; SetState restores them.
	State() map[string][]float32
	SetState(map[string][]float32) error
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
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	bc1 := 1 - math.Pow(o.Beta1, float64(o.t))
	bc2 := 1 - math.Pow(o.Beta2, float64(o.t))
	step := float32(lr / bc1)
	decay := float32(1 - lr*o.WeightDecay)
	sq2 := float32(math.Sqrt(bc2))
	eps := float32(o.Eps)
	for i, p := range params {
		m, v := o.m[i], o.v[i]
		for j, g := range grads[i] {
			p[j] *= decay
			m[j] = b1*m[j] + (1-b1)*g
			v[j] = b2*v[j] + (1-b2)*g*g
			p[j] -= step * m[j] / (float32(math.Sqrt(float64(v[j])))/sq2 + eps)
		}
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
	var ss float64
	for _, g := range grads {
		for _, v := range g {
			ss += float64(v) * float64(v)
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
