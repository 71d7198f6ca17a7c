package kernels

import "fmt"

// SwiGLU: out = silu(gate)·up elementwise over len(out) values, with
// silu(g) = g·σ(g). out may alias gate or up.
func SwiGLU(out, gate, up []float32) {
	n := len(out)
	if len(gate) < n || len(up) < n {
		panic(fmt.Sprintf("kernels.SwiGLU: len(out)=%d, len(gate)=%d, len(up)=%d", n, len(gate), len(up)))
	}
	k := opsKernels()
	parallelFor(n, 16, func(lo, hi int) { k.swiglu(out[lo:hi], gate[lo:hi], up[lo:hi]) })
}

func swigluGo(out, gate, up []float32) {
	up = up[:len(out)]
	gate = gate[:len(out)]
	for i := range out {
		g := gate[i]
		out[i] = g / (1 + expf(-g)) * up[i]
	}
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
	k := opsKernels()
	parallelFor(n, 24, func(lo, hi int) {
		k.swigluBack(dgate[lo:hi], dup[lo:hi], dout[lo:hi], gate[lo:hi], up[lo:hi])
	})
}

func swigluBackGo(dg, du, d, g, u []float32) {
	n := len(d)
	dg, du, g, u = dg[:n], du[:n], g[:n], u[:n]
	for i := range d {
		gi, ui, di := g[i], u[i], d[i]
		sig := 1 / (1 + expf(-gi))
		silu := gi * sig
		dg[i] = di * ui * sig * (1 + gi*(1-sig))
		du[i] = di * silu
	}
}
