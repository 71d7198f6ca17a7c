package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkQuantMatMulT times MatMulT on Qwen2.5-0.5B's linear shapes
// (n×k) for BF16 and the quantized formats: GFLOP/s at m = 512 (training
// and prefill), and at m = 1 (decoding) also GB/s of weight bytes read.
//
//	go test -run - -bench QuantMatMulT ./kernels/
func BenchmarkQuantMatMulT(b *testing.B) {
	shapes := [][2]int{{896, 896}, {4864, 896}, {896, 4864}}
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range shapes {
		n, k := s[0], s[1]
		f := quantRand(r, n*k)
		h := make([]uint16, n*k)
		for i, v := range f {
			h[i] = F32ToBF16(v)
		}
		bf := NewBF16(n, k, h)
		ws := map[string]*Matrix{"bf16": bf, "q8": QuantizeQ8(bf), "nf4": QuantizeNF4(bf, false), "nf4dq": QuantizeNF4(bf, true)}
		for _, m := range []int{512, 1} {
			x := quantRand(r, m*k)
			y := make([]float32, m*n)
			for _, name := range []string{"bf16", "q8", "nf4", "nf4dq"} {
				w := ws[name]
				b.Run(fmt.Sprintf("%s/m=%d/%dx%d", name, m, n, k), func(b *testing.B) {
					for b.Loop() {
						MatMulT(y, x, m, w, false)
					}
					sec := b.Elapsed().Seconds() / float64(b.N)
					b.ReportMetric(2*float64(m*n*k)/sec/1e9, "GFLOP/s")
					if m == 1 {
						b.ReportMetric(float64(weightBytes(w))/sec/1e9, "GB/s")
					}
				})
			}
		}
	}
}

// BenchmarkQuantMatMulN times the backward input gradient at m = 512.
func BenchmarkQuantMatMulN(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	n, k, m := 4864, 896, 512
	f := quantRand(r, n*k)
	h := make([]uint16, n*k)
	for i, v := range f {
		h[i] = F32ToBF16(v)
	}
	bf := NewBF16(n, k, h)
	dy := quantRand(r, m*n)
	dx := make([]float32, m*k)
	for _, w := range []*Matrix{bf, QuantizeQ8(bf), QuantizeNF4(bf, false)} {
		b.Run(fmt.Sprintf("%s/m=%d/%dx%d", w.DType, m, n, k), func(b *testing.B) {
			for b.Loop() {
				MatMulN(dx, dy, m, w, false)
			}
			b.ReportMetric(2*float64(m*n*k)/(b.Elapsed().Seconds()/float64(b.N))/1e9, "GFLOP/s")
		})
	}
}

// weightBytes is the storage a matmul reads for w.
func weightBytes(w *Matrix) int {
	switch w.DType {
	case F32:
		return 4 * len(w.F32)
	case BF16:
		return 2 * len(w.BF16)
	}
	q := w.Quant
	return len(q.Q) + 4*len(q.Scales) + len(q.QScales) + 4*len(q.DQScales)
}

// BenchmarkQuantize times quantizing a 4864×896 BF16 matrix (values/s).
func BenchmarkQuantize(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	n, k := 4864, 896
	h := make([]uint16, n*k)
	for i, v := range quantRand(r, n*k) {
		h[i] = F32ToBF16(v)
	}
	w := NewBF16(n, k, h)
	for _, f := range quantFormats {
		b.Run(f.name, func(b *testing.B) {
			for b.Loop() {
				f.q(w)
			}
			b.ReportMetric(float64(n*k*b.N)/b.Elapsed().Seconds()/1e6, "Mvalues/s")
		})
	}
}

// BenchmarkQuantCompute times an nf4 weight's forward and input gradient
// on the Qwen2.5-14B shapes (m = 256 tokens) in ComputeF32 (float32
// panels) and ComputeBF16 (bfloat16 panels, VDPBF16PS), alternated, with
// GFLOP/s per CPU second (the machine is shared).
//
//	go test -run - -bench QuantCompute ./kernels/
func BenchmarkQuantCompute(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	const m = 256
	for _, sh := range [][2]int{{5120, 5120}, {13824, 5120}, {5120, 13824}} {
		n, k := sh[0], sh[1]
		w := QuantizeNF4(NewF32(n, k, quantRand(r, n*k)), true)
		x, dy := quantRand(r, m*k), quantRand(r, m*n)
		y, dx := make([]float32, m*n), make([]float32, m*k)
		for _, c := range []Compute{ComputeF32, ComputeBF16} {
			for _, dir := range []string{"T", "N"} {
				b.Run(fmt.Sprintf("%s/%v/%dx%d", dir, c, n, k), func(b *testing.B) {
					c0 := cpuTime()
					for b.Loop() {
						if dir == "T" {
							MatMulTCompute(y, x, m, w, false, c)
						} else {
							MatMulNCompute(dx, dy, m, w, false, c)
						}
					}
					flops := 2 * float64(m*n*k) * float64(b.N)
					b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					b.ReportMetric(flops/(cpuTime()-c0).Seconds()*float64(Threads())/1e9, "cpuGFLOP/s")
				})
			}
		}
	}
}

// BenchmarkDecodeGEMV times one-row MatMulT (decoding; nf4-bf16: in
// ComputeBF16) on the Qwen3-30B-A3B
// shapes: an expert's gate/up (768×2048) and down (2048×768), and a slice
// of the LM head (32768 of its 151936 rows × 2048), in GB/s of weight bytes (per
// wall and per CPU second: the machine is shared). The expert matrices rotate through 64 copies so they are read from memory
// as in a decode step, not from cache.
//
//	go test -run - -bench DecodeGEMV -cpu 1,2 ./kernels/
func BenchmarkDecodeGEMV(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, s := range [][3]int{{768, 2048, 64}, {2048, 768, 64}, {32768, 2048, 1}} {
		n, k, copies := s[0], s[1], s[2]
		h := make([]uint16, n*k)
		for i, v := range quantRand(r, n*k) {
			h[i] = F32ToBF16(v)
		}
		bf := NewBF16(n, k, h)
		x := quantRand(r, k)
		y := make([]float32, n)
		for _, f := range []struct {
			name string
			q    func(*Matrix) *Matrix
		}{{"bf16", func(w *Matrix) *Matrix { return w }}, quantFormats[0], quantFormats[1], {"nf4-bf16", quantFormats[1].q}} {
			ws := make([]*Matrix, copies)
			for i := range ws {
				ws[i] = f.q(bf)
				if f.name == "bf16" && i > 0 {
					ws[i] = NewBF16(n, k, append([]uint16(nil), h...))
				}
			}
			b.Run(fmt.Sprintf("%s/%dx%d", f.name, n, k), func(b *testing.B) {
				i := 0
				c0 := cpuTime()
				c := ComputeF32
				if f.name == "nf4-bf16" { // dotNF4RowsBF16 on AVX512_BF16
					c = ComputeBF16
				}
				for b.Loop() {
					MatMulTCompute(y, x, 1, ws[i%copies], false, c)
					i++
				}
				gb := float64(weightBytes(ws[0])*b.N) / 1e9
				b.ReportMetric(gb/b.Elapsed().Seconds(), "GB/s")
				if c := (cpuTime() - c0).Seconds(); c > 0 {
					b.ReportMetric(gb/c, "GB/cpu-s")
				}
			})
		}
	}
}

// BenchmarkNF4RowsKernel times the NF4 row-run kernels alone, dotNF4Rows
// (f32) and dotNF4RowsBF16 (bf16), in GB/s of codes: on one thread with
// the codes in L1 (16 rows × 2048, 16 KiB) or from memory (64 copies of
// 768 × 2048, 48 MiB), and from memory on the pool's threads (mempool).
//
//	go test -run - -bench NF4RowsKernel ./kernels/
func BenchmarkNF4RowsKernel(b *testing.B) {
	l := active.Load()
	if l.quant.dotNF4Rows == nil || l.quant.dotNF4RowsBF16 == nil {
		b.Skip("the level lacks an NF4 rows kernel")
	}
	r := rand.New(rand.NewPCG(7, 8))
	const k = 2048
	nblk := k / NF4Block
	x := quantRand(r, k)
	xp, xh := permuteNF4(nil, x, k), permuteNF4BF16(nil, x, k)
	for _, sh := range []struct {
		name      string
		n, copies int
	}{{"L1", 16, 1}, {"mem", 768, 64}, {"mempool", 768, 64}} {
		n, copies := sh.n, sh.copies
		qs, ss := make([][]byte, copies), make([][]float32, copies)
		for i := range qs {
			qs[i] = make([]byte, n*k/2)
			for j := range qs[i] {
				qs[i][j] = byte(r.Uint32())
			}
			ss[i] = quantRand(r, n*nblk)
		}
		y := make([]float32, n)
		for _, v := range []string{"f32", "bf16"} {
			run := func(q []byte, s []float32, lo, hi int) {
				if v == "f32" {
					l.quant.dotNF4Rows(y[lo:hi], xp, q[lo*k/2:], s[lo*nblk:], nblk, k/2, nblk)
				} else {
					l.quant.dotNF4RowsBF16(y[lo:hi], xh, q[lo*k/2:], s[lo*nblk:], nblk, k/2, nblk)
				}
			}
			b.Run(sh.name+"/"+v, func(b *testing.B) {
				i := 0
				c0 := cpuTime()
				for b.Loop() {
					q, s := qs[i%copies], ss[i%copies]
					if sh.name == "mempool" {
						gemvParallel(n/16, func(lo, hi int) { run(q, s, 16*lo, 16*hi) })
					} else {
						run(q, s, 0, n)
					}
					i++
				}
				gb := float64(n*k/2*b.N) / 1e9
				b.ReportMetric(gb/b.Elapsed().Seconds(), "GB/s")
				b.ReportMetric(gb/(cpuTime()-c0).Seconds(), "GB/cpu-s")
			})
		}
	}
}
