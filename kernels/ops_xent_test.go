package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// xentLossRef returns Σ_r −log softmax(logits_r)[t_r]·scale_r in float64.
func xentLossRef(logits []float64, rows, V int, targets []int32, scale []float32) float64 {
	var loss float64
	for r := 0; r < rows; r++ {
		if targets[r] < 0 || scale[r] == 0 {
			continue
		}
		p := softmaxRef(logits[r*V : (r+1)*V])
		loss -= math.Log(p[targets[r]]) * float64(scale[r])
	}
	return loss
}

func TestLogProbs(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(16, 17))
		for _, rows := range []int{1, 4, 9} {
			for _, V := range []int{1, 2, 5, 67, 600, 3001} {
				logits := randVec(rng, rows*V, 15)
				targets := make([]int32, rows)
				for r := range targets {
					targets[r] = int32(rng.IntN(V))
				}
				if rows > 1 {
					targets[1] = -100 // ignored
				}
				keep := append([]float32(nil), logits...)
				out := make([]float32, rows)
				LogProbs(out, logits, rows, V, targets)
				want := make([]float64, rows)
				for r := range want {
					if targets[r] >= 0 {
						want[r] = math.Log(softmaxRef(to64(logits[r*V : (r+1)*V]))[targets[r]])
					}
				}
				compare(t, fmt.Sprintf("rows=%d V=%d", rows, V), out, want, 2e-5, 1e-5)
				for i := range keep {
					if keep[i] != logits[i] {
						t.Fatalf("LogProbs modified logits[%d]", i)
					}
				}
			}
		}
	})
}

func TestCrossEntropyGrad(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(18, 19))
		for _, rows := range []int{1, 3, 6} {
			for _, V := range []int{1, 2, 7, 67, 700} {
				logits := randVec(rng, rows*V, 8)
				targets := make([]int32, rows)
				scale := make([]float32, rows)
				for r := range targets {
					targets[r] = int32(rng.IntN(V))
					scale[r] = float32(rng.Float64() + 0.1)
				}
				if rows > 2 {
					scale[0] = 0      // masked by scale
					targets[2] = -100 // masked by target
				}
				l64 := to64(logits)
				wantLoss := xentLossRef(l64, rows, V, targets, scale)
				var wantGrad []float64
				if V <= 67 {
					wantGrad = numGrad(func(v []float64) float64 { return xentLossRef(v, rows, V, targets, scale) }, l64, 1e-6)
				} else { // analytic for the wide case (FD on 2000 entries is slow)
					for r := 0; r < rows; r++ {
						p := softmaxRef(l64[r*V : (r+1)*V])
						for i := range p {
							if targets[r] < 0 || scale[r] == 0 {
								p[i] = 0
								continue
							}
							if int32(i) == targets[r] {
								p[i]--
							}
							p[i] *= float64(scale[r])
						}
						wantGrad = append(wantGrad, p...)
					}
				}
				name := fmt.Sprintf("rows=%d V=%d", rows, V)
				loss := CrossEntropyGrad(logits, rows, V, targets, scale)
				if !closeTo(loss, wantLoss, 1e-5, 1e-5) {
					t.Fatalf("%s: loss %.8g, want %.8g", name, loss, wantLoss)
				}
				compare(t, name+" grad", logits, wantGrad, 1e-6, 1e-4)
			}
		}
		// nil scale means 1 everywhere.
		logits := []float32{1, 2, 3, 0, 0, 0}
		want := xentLossRef(to64(logits), 2, 3, []int32{2, 0}, []float32{1, 1})
		if got := CrossEntropyGrad(logits, 2, 3, []int32{2, 0}, nil); !closeTo(got, want, 1e-6, 1e-6) {
			t.Fatalf("nil scale: loss %g, want %g", got, want)
		}
	})
}

func TestTargetOutOfRangePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("no panic")
		} else if s := fmt.Sprint(r); s != "kernels.LogProbs: targets[1]=5 out of vocabulary size 5" {
			t.Fatalf("panic message %q", s)
		}
	}()
	LogProbs(make([]float32, 2), make([]float32, 10), 2, 5, []int32{0, 5})
}

// The vocabulary-sized benchmarks: Qwen2.5 has V = 151936. The flop count is
// a nominal 5 per logit (max, subtract, exp, sum, scale), to compare runs.
const benchRows, benchV = 512, 151936

func benchXent(b *testing.B, threads int, grad bool) {
	rng := rand.New(rand.NewPCG(1, 1))
	logits := randVec(rng, benchRows*benchV, 10)
	work := make([]float32, len(logits))
	targets := make([]int32, benchRows)
	for r := range targets {
		targets[r] = int32(rng.IntN(benchV))
	}
	out := make([]float32, benchRows)
	SetThreads(threads)
	defer SetThreads(0)
	b.SetBytes(int64(len(logits) * 4))
	b.ResetTimer()
	var cpu time.Duration // CPU time of the op alone, without the copy
	for b.Loop() {
		if grad {
			b.StopTimer()
			copy(work, logits)
			b.StartTimer()
			c0 := cpuTime()
			CrossEntropyGrad(work, benchRows, benchV, targets, nil)
			cpu += cpuTime() - c0
		} else {
			c0 := cpuTime()
			LogProbs(out, logits, benchRows, benchV, targets)
			cpu += cpuTime() - c0
		}
	}
	reportFlops(b, float64(5*len(logits)), cpu)
}

func BenchmarkLogProbs1T(b *testing.B)          { benchXent(b, 1, false) }
func BenchmarkLogProbsPar(b *testing.B)         { benchXent(b, 0, false) }
func BenchmarkCrossEntropyGrad1T(b *testing.B)  { benchXent(b, 1, true) }
func BenchmarkCrossEntropyGradPar(b *testing.B) { benchXent(b, 0, true) }
