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
