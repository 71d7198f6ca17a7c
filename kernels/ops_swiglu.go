package kernels

import "fmt"

// SwiGLU: out = silu(gate)·up elementwise over len(out) values, with
// silu(g) = g·σ(g). out may alias gate or up.
func SwiGLU(out, gate, up []float32) {
	n := len(out)
	if len(gate) < n || len(up) < n {
		panic(fmt.Sprintf("kernels.SwiGLU: len(out)=%d, len(gate)=%d, len(up)=%d", n, len(gate), len(up)))
	}
	parallelFor(n, 16, func(lo, hi int) {
		o, g, u := out[lo:hi], gate[lo:hi], up[lo:hi]
		for i := range o {
			gi := g[i]
			o[i] = gi / (1 + expf(-gi)) * u[i]
		}
	})
}

// SwiGLUBackward overwrites dgate and dup [len(dout)] with the gradients of
// out = silu(gate)·up given dout:
// dup = dout·silu(g), dgate = dout·up·σ(g)·(1 + g·(1−σ(g))).
// Each element is read before it is written, so dgate may alias gate and dup
// may alias up (dout may alias either).
func SwiGLUBackward(dgate, dup, dout, gate, up []float32) {
	n := len(dout)
	if len(dgate) < n || len(dup) < n || len(gate) < n || len(up) < n {
		panic(fmt.Sprintf("kernels.SwiGLUBackward: len(dout)=%d, len(dgate)=%d, len(dup)=%d, len(gate)=%d, len(up)=%d",
			n, len(dgate), len(dup), len(gate), len(up)))
	}
	parallelFor(n, 24, func(lo, hi int) {
		dg, du, d, g, u := dgate[lo:hi], dup[lo:hi], dout[lo:hi], gate[lo:hi], up[lo:hi]
		for i := range d {
			gi, ui, di := g[i], u[i], d[i]
			sig := 1 / (1 + expf(-gi))
			silu := gi * sig
			dg[i] = di * ui * sig * (1 + gi*(1-sig))
			du[i] = di * silu
		}
	})
}
