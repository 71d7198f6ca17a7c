package kernels

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkLoRA is one LoRA module's training work on the 0.5B shape (2048
// tokens, r 16, an 896 → 4864 projection, dropout 0.05): the blocked
// LoRADown, LoRAOutputGrad and LoRAInputGrad ("blocks") against the
// separate passes they replaced ("passes"), in float32 and bf16.
func BenchmarkLoRA(b *testing.B) {
	const T, r, in, out = 2048, 16, 896, 4864
	rng := rand.New(rand.NewPCG(1, 2))
	x, A, B := randVec(rng, T*in, 1), randVec(rng, r*in, 1), randVec(rng, out*r, 1)
	dy, u, dz, dx := randVec(rng, T*out, 1), make([]float32, T*r), make([]float32, T*r), make([]float32, T*in)
	dA, dB, xd, dxd := make([]float32, r*in), make([]float32, out*r), make([]float32, T*in), make([]float32, T*in)
	for _, c := range []Compute{ComputeF32, ComputeBF16} {
		b.Run("blocks/"+c.String(), func(b *testing.B) {
			for range b.N {
				LoRADown(u, x, T, A, r, in, 2, 7, 0.05, c)
				LoRAOutputGrad(dB, dz, dy, u, B, T, r, out, 2, c)
				LoRAInputGrad(dx, dA, dz, x, A, T, r, in, 7, 0.05, c)
			}
		})
	}
	b.Run("passes/f32", func(b *testing.B) {
		for range b.N {
			Dropout(xd, x, 7, 0.05, false)
			MatMulT(u, xd, T, NewF32(r, in, A), false)
			Scale(u, 2)
			MatMulTN(dB, dy, u, T, out, r, true)
			MatMulN(dz, dy, T, NewF32(out, r, B), false)
			Scale(dz, 2)
			Dropout(xd, x, 7, 0.05, false)
			MatMulTN(dA, dz, xd, T, r, in, true)
			MatMulN(dxd, dz, T, NewF32(r, in, A), false)
			Dropout(dx, dxd, 7, 0.05, true)
		}
	})
}
