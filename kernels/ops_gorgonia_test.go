// Cross-check of the fused ops' backward passes against gorgonia's autodiff
// (float64), an independent oracle, chained as in a transformer block:
// masked GQA attention, and RMSNorm → SwiGLU → weighted cross-entropy.
// gorgonia is pinned (v0.9.18, tensor v0.9.24) and go4.org/unsafe/
// assume-no-moving-gc upgraded in go.mod, without which it panics on Go 1.26.
// Note: gorgonia v0.9.18's InverseSqrt has a wrong gradient, so rstd is built
// from Inverse and Sqrt; broadcasts are written as products with ones.
package kernels_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gotrain/gotrain/kernels"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

var rng = rand.New(rand.NewPCG(42, 43))

func rnd(n int, amp float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32((rng.Float64()*2 - 1) * amp)
	}
	return x
}

func f64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

func node(g *G.ExprGraph, name string, data []float64, shape ...int) *G.Node {
	t := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), data...)))
	if len(shape) == 1 {
		return G.NewVector(g, tensor.Float64, G.WithName(name), G.WithValue(t))
	}
	return G.NewMatrix(g, tensor.Float64, G.WithName(name), G.WithValue(t))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

var worst = map[string]float64{}

func ones(n int) []float64 {
	o := make([]float64, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

// cmp reports the largest |got−want| relative to the largest |want|.
func cmp(name string, got []float32, want []float64) {
	var w, scale float64
	for i := range got {
		w = max(w, math.Abs(float64(got[i])-want[i]))
		scale = max(scale, math.Abs(want[i]))
	}
	w /= scale
	worst[name] = w
	fmt.Printf("%-28s n=%-5d max rel err %.2e\n", name, len(got), w)
}

func grads(g *G.ExprGraph, cost *G.Node, wrt ...*G.Node) [][]float64 {
	must(G.Grad(cost, wrt...))
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		panic(err)
	}
	var out [][]float64
	for _, n := range wrt {
		gv := must(n.Grad())
		out = append(out, append([]float64(nil), gv.Data().([]float64)...))
	}
	return out
}

func attention() {
	const T, Hq, Hkv, D = 7, 4, 2, 16
	// Queries 0..2 are a packed first sequence, 3..6 a prefix+continuation mix.
	spans := []kernels.KeySpan{{0, 1}, {}, {0, 2}, {}, {0, 3}, {}, {3, 4}, {}, {5, 6}, {0, 4}, {3, 5}, {}, {0, 2}, {6, 7}}
	S := T
	scale := float32(1 / math.Sqrt(D))
	q, k, v, gout := rnd(T*Hq*D, 2), rnd(S*Hkv*D, 2), rnd(S*Hkv*D, 1), rnd(T*Hq*D, 1)

	out, lse := make([]float32, len(q)), make([]float32, T*Hq)
	kernels.Attention(out, lse, q, k, v, T, S, Hq, Hkv, D, scale, spans)
	dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
	kernels.AttentionBackward(dq, dk, dv, gout, q, k, v, out, lse, T, S, Hq, Hkv, D, scale, spans)

	// gorgonia: per head, explicit masked softmax(Q Kᵀ·scale + M)·V.
	g := G.NewGraph()
	mask := make([]float64, T*S)
	for t := 0; t < T; t++ {
		for j := 0; j < S; j++ {
			mask[t*S+j] = -1e30
		}
		for _, sp := range spans[2*t : 2*t+2] {
			for j := sp.Lo; j < sp.Hi; j++ {
				mask[t*S+int(j)] = 0
			}
		}
	}
	M := node(g, "mask", mask, T, S)
	var qs, ks, vs []*G.Node
	var cost *G.Node
	head := func(x []float32, rows, H, h int) []float64 {
		r := make([]float64, 0, rows*D)
		for t := 0; t < rows; t++ {
			r = append(r, f64(x[(t*H+h)*D:(t*H+h+1)*D])...)
		}
		return r
	}
	for kh := 0; kh < Hkv; kh++ {
		ks = append(ks, node(g, fmt.Sprintf("k%d", kh), head(k, S, Hkv, kh), S, D))
		vs = append(vs, node(g, fmt.Sprintf("v%d", kh), head(v, S, Hkv, kh), S, D))
	}
	for h := 0; h < Hq; h++ {
		Q := node(g, fmt.Sprintf("q%d", h), head(q, T, Hq, h), T, D)
		qs = append(qs, Q)
		kh := h / (Hq / Hkv)
		sc := must(G.Mul(must(G.Mul(Q, must(G.Transpose(ks[kh])))), G.NewConstant(float64(scale))))
		P := must(G.SoftMax(must(G.Add(sc, M)), 1))
		O := must(G.Mul(P, vs[kh]))
		l := must(G.Sum(must(G.HadamardProd(O, node(g, fmt.Sprintf("g%d", h), head(gout, T, Hq, h), T, D)))))
		if cost == nil {
			cost = l
		} else {
			cost = must(G.Add(cost, l))
		}
	}
	wrt := append(append(append([]*G.Node{}, qs...), ks...), vs...)
	gr := grads(g, cost, wrt...)
	for h := 0; h < Hq; h++ {
		cmp(fmt.Sprintf("attention dq head %d", h), f32(head(dq, T, Hq, h)), gr[h])
	}
	for kh := 0; kh < Hkv; kh++ {
		cmp(fmt.Sprintf("attention dk head %d", kh), f32(head(dk, S, Hkv, kh)), gr[Hq+kh])
		cmp(fmt.Sprintf("attention dv head %d", kh), f32(head(dv, S, Hkv, kh)), gr[Hq+Hkv+kh])
	}
}

func f32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

// mlpHead: RMSNorm → SwiGLU(gate=xn·Wgᵀ... here simply gate = xn, up = xn·2) →
// logits → weighted cross-entropy. Checks RMSNorm, SwiGLU and
// CrossEntropyGrad backward chained together.
func mlpHead() {
	const T, H = 5, 40
	const eps = 1e-6
	x, w := rnd(T*H, 2), rnd(H, 1.5)
	up := rnd(T*H, 1.5)
	targets := []int32{3, 0, 39, 17, 8}
	wts := []float32{1, 0.5, 0, -0.25, 2}

	// gotrain forward.
	xn, rstd := make([]float32, T*H), make([]float32, T)
	kernels.RMSNorm(xn, x, w, T, H, eps, rstd)
	h := make([]float32, T*H)
	kernels.SwiGLU(h, xn, up)
	logits := append([]float32(nil), h...)
	kernels.CrossEntropyGrad(logits, T, H, targets, wts) // logits now dlogits
	dxn, dup := make([]float32, T*H), make([]float32, T*H)
	kernels.SwiGLUBackward(dxn, dup, logits, xn, up)
	dx, dw := make([]float32, T*H), make([]float32, H)
	kernels.RMSNormBackward(dx, dw, dxn, x, w, rstd, T, H, false)

	// gorgonia.
	g := G.NewGraph()
	X := node(g, "x", f64(x), T, H)
	W := node(g, "w", f64(w), H)
	U := node(g, "up", f64(up), T, H)
	ms := must(G.Mul(must(G.Sum(must(G.Square(X)), 1)), G.NewConstant(1.0/H)))
	rs := must(G.Inverse(must(G.Sqrt(must(G.Add(ms, G.NewConstant(eps)))))))
	rs2 := must(G.Reshape(rs, tensor.Shape{T, 1}))
	// Broadcasts written as outer products with ones (gorgonia's
	// BroadcastHadamardProd gradient is not trusted here).
	onesH := node(g, "onesH", ones(H), 1, H)
	onesT := node(g, "onesT", ones(T), T, 1)
	w2 := must(G.Reshape(W, tensor.Shape{1, H}))
	xnG := must(G.HadamardProd(X, must(G.Mul(rs2, onesH))))
	xnG = must(G.HadamardProd(xnG, must(G.Mul(onesT, w2))))
	hG := must(G.HadamardProd(must(G.HadamardProd(xnG, must(G.Sigmoid(xnG)))), U))
	onehot := make([]float64, T*H)
	for r, t := range targets {
		onehot[r*H+int(t)] = -float64(wts[r])
	}
	ls := must(G.LogSoftMax(hG, 1))
	cost := must(G.Sum(must(G.HadamardProd(ls, node(g, "onehot", onehot, T, H)))))
	gr := grads(g, cost, X, W, U)
	// Float64 finite differences of the same chain, as a tie-breaker.
	chain := func(x []float64) float64 {
		var loss float64
		for r := 0; r < T; r++ {
			var ss float64
			for i := 0; i < H; i++ {
				ss += x[r*H+i] * x[r*H+i]
			}
			rs := 1 / math.Sqrt(ss/H+eps)
			hr := make([]float64, H)
			m := math.Inf(-1)
			for i := 0; i < H; i++ {
				xn := x[r*H+i] * rs * float64(w[i])
				hr[i] = xn / (1 + math.Exp(-xn)) * float64(up[r*H+i])
				m = max(m, hr[i])
			}
			var se float64
			for _, v := range hr {
				se += math.Exp(v - m)
			}
			loss -= float64(wts[r]) * (hr[targets[r]] - m - math.Log(se))
		}
		return loss
	}
	xf := f64(x)
	fd := make([]float64, len(xf))
	for i := range xf {
		o := xf[i]
		xf[i] = o + 1e-6
		a := chain(xf)
		xf[i] = o - 1e-6
		b := chain(xf)
		xf[i] = o
		fd[i] = (a - b) / 2e-6
	}
	cmp("mlp+xent dx vs FD", dx, fd)
	cmp("gorgonia dx vs FD", f32(gr[0]), fd)
	cmp("mlp+xent dx", dx, gr[0])
	cmp("mlp+xent dw", dw, gr[1])
	cmp("mlp+xent dup", dup, gr[2])
}

func TestGorgoniaCrossCheck(t *testing.T) {
	old := kernels.Level()
	for _, lvl := range kernels.Levels() {
		if err := kernels.SetLevel(lvl); err != nil {
			t.Log(lvl, err)
			continue
		}
		fmt.Println("== level", lvl)
		attention()
		mlpHead()
	}
	kernels.SetLevel(old)
	for n, w := range worst {
		if w > 1e-5 {
			t.Errorf("%s: max error %.3g of the largest gradient", n, w)
		}
	}
}
