package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Benchmarks of the GEMM shapes of Qwen2.5-0.5B and 14B; run with
// go test -run X -bench MatMul ./kernels/ (GOTRAIN_THREADS to pin threads).
func BenchmarkMatMulT(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, sh := range [][3]int{{1, 4864, 896}, {128, 896, 896}, {128, 4864, 896}, {512, 5120, 5120}} {
		for _, dt := range []DType{F32, BF16} {
			for _, c := range []Compute{ComputeF32, ComputeBF16} {
				m, n, k := sh[0], sh[1], sh[2]
				b.Run(fmt.Sprintf("%dx%dx%d/%v/%v", m, n, k, dt, c), func(b *testing.B) {
					x := randF32(r, m*k)
					w := randMatrix(r, n, k, dt)
					y := make([]float32, m*n)
					b.SetBytes(int64(2 * m * n * k)) // "MB/s" reads as MFLOP/s
					for b.Loop() {
						MatMulTCompute(y, x, m, w, false, c)
					}
				})
			}
		}
	}
}

// BenchmarkTrainGEMM times the three matmuls of a linear layer in a LoRA
// training step on the 0.5B shape (batch 8 × 256 tokens) in ComputeBF16,
// unpacked bfloat16 weights as the trainer holds them.
func BenchmarkTrainGEMM(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	const m = 2048
	for _, sh := range [][2]int{{896, 896}, {4864, 896}, {896, 4864}} {
		n, k := sh[0], sh[1]
		x, dy := randF32(r, m*k), randF32(r, m*n)
		w := randMatrix(r, n, k, BF16)
		y, dx := make([]float32, m*n), make([]float32, m*k)
		b.Run(fmt.Sprintf("T/%dx%d", n, k), func(b *testing.B) {
			b.SetBytes(int64(2 * m * n * k))
			for b.Loop() {
				MatMulTCompute(y, x, m, w, false, ComputeBF16)
			}
		})
		b.Run(fmt.Sprintf("N/%dx%d", n, k), func(b *testing.B) {
			b.SetBytes(int64(2 * m * n * k))
			for b.Loop() {
				MatMulNCompute(dx, dy, m, w, false, ComputeBF16)
			}
		})
	}
}

// BenchmarkKernel times one microkernel call on L1-resident panels (kc =
// KC), float32 and prepacked bfloat16 B: the single-core ceiling.
func BenchmarkKernel(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	l := active.Load()
	kc := l.kc
	a, bf := randF32(r, l.mr*kc), randF32(r, l.nr*kc)
	bh := randMatrix(r, 1, l.nr*kc, BF16).BF16
	c := make([]float32, l.mr*l.nr)
	flops := int64(2 * l.mr * l.nr * kc)
	b.Run("f32", func(b *testing.B) {
		b.SetBytes(flops) // "MB/s" reads as MFLOP/s
		for b.Loop() {
			l.kern(kc, a, bf, c, l.nr, false)
		}
	})
	b.Run("bf16", func(b *testing.B) {
		b.SetBytes(flops)
		for b.Loop() {
			l.kernPBF16(kc, a, bh, c, l.nr, false)
		}
	})
	if l.kernBF16 != nil {
		// ComputeBF16: kc/2 pairs, the same flops as kc float32 steps.
		b.Run("pairs", func(b *testing.B) {
			b.SetBytes(flops)
			for b.Loop() {
				l.kernBF16(kc/2, a, bf, c, l.nr, false)
			}
		})
	}
}
