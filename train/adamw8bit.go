package train

import (
	"fmt"
	"math"
	"sort"

	"github.com/gotrain/gotrain/kernels"
)

// AdamW8bit is AdamW whose two moments are stored in 8 bits as
// bitsandbytes' AdamW8bit does (Dettmers et al., "8-bit Optimizers via
// Block-wise Quantization"): each tensor's moments are cut into blocks of
// adam8Block values, each block scaled by its largest magnitude and every
// value stored as the index of the nearest entry of a dynamic quantization
// map (signed for the first moment, unsigned for the second). A step
// dequantizes a block, updates the moments and the weights in float32,
// then requantizes. Tensors under adam8Min values keep float32 moments, as
// bitsandbytes' min_8bit_size does. The state is 2 bytes a weight plus 8
// bytes a block, against AdamW's 8 bytes a weight.
type AdamW8bit struct {
	Beta1, Beta2, Eps, WeightDecay float64
	t                              int
	m, v                           [][]uint8   // codes; nil for a small tensor
	am, av                         [][]float32 // per-block absolute maxima
	m32, v32                       [][]float32 // small tensors' float32 moments
}

const (
	// adam8Block is bitsandbytes' block size of 8-bit optimizer state
	// (Optimizer2State allocates one absmax per 2048 values).
	adam8Block = 2048
	// adam8Min is bitsandbytes' min_8bit_size: smaller tensors (norms,
	// biases) keep float32 moments.
	adam8Min = 4096
)

// NewAdamW8bit returns 8-bit AdamW with HF's defaults (0.9, 0.999, 1e-8).
func NewAdamW8bit(weightDecay float64) *AdamW8bit {
	return &AdamW8bit{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay}
}

// The quantization maps, sorted ascending: bitsandbytes'
// create_dynamic_map(signed) with 7 exponent bits.
var (
	dynamicSigned   = dynamicMap(true)
	dynamicUnsigned = dynamicMap(false)
)

// dynamicMap builds the dynamic tree quantization map of bitsandbytes'
// create_dynamic_map(signed, max_exponent_bits=7, total_bits=8): for each
// decade 10⁻⁶ … 10⁰ a linear run of fractions (more of them the larger the
// decade), mirrored when signed, plus 0 and 1, sorted.
func dynamicMap(signed bool) [256]float32 {
	const maxExp, total = 7, 8
	nonSign := total - 1
	var data []float64
	linspaceMeans := func(n int) []float64 {
		// the midpoints of torch.linspace(0.1, 1, n), in float32 as torch computes them
		b := make([]float64, n)
		for i := range b {
			b[i] = float64(float32(0.1 + (1-0.1)*float64(i)/float64(n-1)))
		}
		out := make([]float64, n-1)
		for i := range out {
			out[i] = float64(float32((b[i] + b[i+1]) / 2))
		}
		return out
	}
	i := 0
	for i = 0; i < maxExp; i++ {
		items := 1<<(i+nonSign-maxExp) + 1
		if !signed {
			items = 1<<(i+nonSign-maxExp+1) + 1
		}
		scale := math.Pow(10, float64(-(maxExp-1)+i))
		for _, m := range linspaceMeans(items) {
			data = append(data, float64(float32(scale)*float32(m)))
			if signed {
				data = append(data, float64(-float32(scale)*float32(m)))
			}
		}
	}
	if extra := 1<<(nonSign-maxExp) - 1; extra > 0 {
		scale := math.Pow(10, float64(-(maxExp-1)+i-1))
		for _, m := range linspaceMeans(extra + 1) {
			data = append(data, float64(float32(scale)*float32(m)))
			if signed {
				data = append(data, float64(-float32(scale)*float32(m)))
			}
		}
	}
	data = append(data, 0, 1)
	for len(data) < 256 {
		data = append(data, 0)
	}
	sort.Float64s(data)
	var out [256]float32
	for j, v := range data {
		out[j] = float32(v)
	}
	return out
}

// quantize returns the index of the map entry nearest to x (x within the
// map's range; ties go up).
func quantize(q *[256]float32, x float32) uint8 {
	i := sort.Search(256, func(j int) bool { return q[j] >= x })
	switch {
	case i == 0:
		return 0
	case i == 256:
		return 255
	case x-q[i-1] < q[i]-x:
		return uint8(i - 1)
	}
	return uint8(i)
}

// Step applies one update with learning rate lr.
func (o *AdamW8bit) Step(params, grads [][]float32, lr float64) {
	if o.m == nil {
		n := len(params)
		o.m, o.v, o.am, o.av = make([][]uint8, n), make([][]uint8, n), make([][]float32, n), make([][]float32, n)
		o.m32, o.v32 = make([][]float32, n), make([][]float32, n)
		for i, p := range params {
			if len(p) < adam8Min {
				o.m32[i], o.v32[i] = make([]float32, len(p)), make([]float32, len(p))
				continue
			}
			nb := (len(p) + adam8Block - 1) / adam8Block
			o.m[i], o.v[i] = make([]uint8, len(p)), make([]uint8, len(p))
			o.am[i], o.av[i] = make([]float32, nb), make([]float32, nb)
			// code of 0 in each map, so that the moments start at zero
			z1, z2 := quantize(&dynamicSigned, 0), quantize(&dynamicUnsigned, 0)
			for j := range o.m[i] {
				o.m[i][j], o.v[i][j] = z1, z2
			}
		}
	}
	o.t++
	u := adamUpdate(o.Beta1, o.Beta2, o.Eps, o.WeightDecay, lr, o.t)
	for i, p := range params {
		g := grads[i]
		if o.m[i] == nil {
			u.apply(p, g, o.m32[i], o.v32[i])
			continue
		}
		qm, qv, am, av := o.m[i], o.v[i], o.am[i], o.av[i]
		kernels.Parallel(len(am), func(lo, hi int) {
			var m, v [adam8Block]float32
			for b := lo; b < hi; b++ {
				j0, j1 := b*adam8Block, min((b+1)*adam8Block, len(p))
				n := j1 - j0
				for j := 0; j < n; j++ {
					m[j] = dynamicSigned[qm[j0+j]] * am[b]
					v[j] = dynamicUnsigned[qv[j0+j]] * av[b]
				}
				u.apply(p[j0:j1], g[j0:j1], m[:n], v[:n])
				var mx1, mx2 float32
				for j := 0; j < n; j++ {
					mx1 = max(mx1, float32(math.Abs(float64(m[j]))))
					mx2 = max(mx2, v[j])
				}
				am[b], av[b] = mx1, mx2
				for j := 0; j < n; j++ {
					qm[j0+j] = quantize(&dynamicSigned, safeDiv(m[j], mx1))
					qv[j0+j] = quantize(&dynamicUnsigned, safeDiv(v[j], mx2))
				}
			}
		})
	}
}

func safeDiv(a, b float32) float32 {
	if b == 0 {
		return 0
	}
	return a / b
}

// State returns the step count, the blocks' maxima and the small tensors'
// float32 moments; the 8-bit codes are in ByteState.
func (o *AdamW8bit) State() map[string][]float32 {
	s := map[string][]float32{"step": {float32(o.t)}}
	for i := range o.m {
		if o.m[i] == nil {
			s[fmt.Sprintf("exp_avg.%d", i)], s[fmt.Sprintf("exp_avg_sq.%d", i)] = o.m32[i], o.v32[i]
			continue
		}
		s[fmt.Sprintf("absmax1.%d", i)], s[fmt.Sprintf("absmax2.%d", i)] = o.am[i], o.av[i]
	}
	return s
}

// ByteState returns the 8-bit codes of both moments (aliased).
func (o *AdamW8bit) ByteState() map[string][]uint8 {
	s := map[string][]uint8{}
	for i := range o.m {
		if o.m[i] != nil {
			s[fmt.Sprintf("state1.%d", i)], s[fmt.Sprintf("state2.%d", i)] = o.m[i], o.v[i]
		}
	}
	return s
}

// SetState restores State and ByteState (copying them).
func (o *AdamW8bit) SetState(s map[string][]float32) error {
	st, ok := s["step"]
	if !ok || len(st) != 1 {
		return fmt.Errorf("optimizer state: no step")
	}
	o.t = int(st[0])
	n := 0 // tensors: one more than the largest index named
	for k := range s {
		n = max(n, lastIndex(k)+1)
	}
	o.m, o.v, o.am, o.av = make([][]uint8, n), make([][]uint8, n), make([][]float32, n), make([][]float32, n)
	o.m32, o.v32 = make([][]float32, n), make([][]float32, n)
	for i := 0; i < n; i++ {
		if m, ok := s[fmt.Sprintf("exp_avg.%d", i)]; ok {
			v, okv := s[fmt.Sprintf("exp_avg_sq.%d", i)]
			if !okv {
				return fmt.Errorf("optimizer state: exp_avg_sq.%d missing", i)
			}
			o.m32[i], o.v32[i] = append([]float32(nil), m...), append([]float32(nil), v...)
			continue
		}
		a1, ok1 := s[fmt.Sprintf("absmax1.%d", i)]
		a2, ok2 := s[fmt.Sprintf("absmax2.%d", i)]
		if !ok1 || !ok2 {
			return fmt.Errorf("optimizer state: tensor %d missing", i)
		}
		o.am[i], o.av[i] = append([]float32(nil), a1...), append([]float32(nil), a2...)
	}
	return nil
}

// SetByteState restores ByteState (after SetState).
func (o *AdamW8bit) SetByteState(s map[string][]uint8) error {
	for i := range o.am {
		if o.am[i] == nil {
			continue
		}
		m, ok1 := s[fmt.Sprintf("state1.%d", i)]
		v, ok2 := s[fmt.Sprintf("state2.%d", i)]
		if !ok1 || !ok2 || len(m) != len(v) || (len(m)+adam8Block-1)/adam8Block != len(o.am[i]) {
			return fmt.Errorf("optimizer state: 8-bit moments of tensor %d missing or of the wrong size", i)
		}
		o.m[i], o.v[i] = append([]uint8(nil), m...), append([]uint8(nil), v...)
	}
	return nil
}

// lastIndex parses the number after the last '.' of a state name, or -1.
func lastIndex(k string) int {
	for j := len(k) - 1; j >= 0; j-- {
		if k[j] == '.' {
			var i int
			if _, err := fmt.Sscanf(k[j+1:], "%d", &i); err == nil {
				return i
			}
			return -1
		}
	}
	return -1
}
