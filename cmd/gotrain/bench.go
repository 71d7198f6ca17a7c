package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"sort"
	"time"

	"github.com/gotrain/gotrain/kernels"
)

// runBench dispatches `gotrain bench <name>`: the kernel benchmarks live
// here, model benchmarks (prefill, ...) in runBenchModel.
func runBench(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: gotrain bench gemm|peak|bandwidth|allreduce|serve|<model benchmark> [flags]")
	}
	switch args[0] {
	case "gemm":
		return benchGEMM(args[1:])
	case "peak":
		return benchPeak(args[1:])
	case "bandwidth":
		return benchBandwidth(args[1:])
	case "allreduce":
		return benchAllReduce(args[1:])
	case "serve":
		return benchServe(args[1:])
	}
	return runBenchModel(args[0], args[1:])
}

// startCPUProfile starts a CPU profile written to path (none when path is
// empty); stop ends it.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// printJSON writes v as one JSON line on stdout.
func printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(b))
	return err
}

// setKernels applies the --threads and --level flags.
func setKernels(threads int, level string) error {
	if threads > 0 {
		kernels.SetThreads(threads)
	}
	if level != "" {
		return kernels.SetLevel(level)
	}
	return nil
}

// timeRuns calls f until minTime has passed (at least 3 times, after one
// warm-up) and returns the sorted per-call wall times in seconds and the
// mean process CPU time per call. On a shared machine the CPU time tells
// what the code does when it has the cores: rate·threads/cpu.
func timeRuns(minTime time.Duration, f func()) (ts []float64, cpu float64) {
	f()
	start := time.Now()
	c0 := cpuSeconds()
	for len(ts) < 3 || time.Since(start) < minTime {
		t0 := time.Now()
		f()
		ts = append(ts, time.Since(t0).Seconds())
	}
	cpu = (cpuSeconds() - c0) / float64(len(ts))
	sort.Float64s(ts)
	return ts, cpu
}

// perCPU returns work/(cpu/threads): the rate with every thread on a core.
func perCPU(work, cpu float64, threads int) float64 {
	if cpu <= 0 {
		return 0
	}
	return work / (cpu / float64(threads))
}

func benchGEMM(args []string) error {
	fs := newFlags("bench gemm", "--m M --n N --k K [--weights f32|bf16] [--packed] [--compute f32|bf16] [--op t|n|tn] [--threads T]")
	m := fs.Int("m", 128, "rows of the activations (tokens)")
	n := fs.Int("n", 896, "output features (rows of the weight)")
	k := fs.Int("k", 896, "input features (columns of the weight)")
	weights := fs.String("weights", "f32", "weight dtype: f32 or bf16")
	compute := fs.String("compute", "f32", "compute mode: f32, or bf16 (operands rounded to bf16, float32 accumulation; ops t and n)")
	op := fs.String("op", "t", "t: y=x·wᵀ (forward), n: dx=dy·w (input grad), tn: dw=dyᵀ·x (weight grad, f32 only)")
	packed := fs.Bool("packed", false, "prepack the weight once for the compute mode, as model.PackWeights does (op t)")
	threads := fs.Int("threads", 0, "worker threads (0: GOTRAIN_THREADS or all CPUs)")
	level := fs.String("level", "", "force a kernel level: avx512, avx2 or generic")
	minTime := fs.Duration("time", time.Second, "minimum measuring time")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := setKernels(*threads, *level); err != nil {
		return fmt.Errorf("bench gemm: %w", err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(size int) []float32 {
		s := make([]float32, size)
		for i := range s {
			s[i] = float32(r.NormFloat64())
		}
		return s
	}
	var w *kernels.Matrix
	switch *weights {
	case "f32":
		w = kernels.NewF32(*n, *k, rnd(*n**k))
	case "bf16":
		f := rnd(*n * *k)
		h := make([]uint16, len(f))
		for i, v := range f {
			h[i] = kernels.F32ToBF16(v)
		}
		w = kernels.NewBF16(*n, *k, h)
	default:
		return fmt.Errorf("bench gemm: --weights %q: want f32 or bf16", *weights)
	}
	var cm kernels.Compute
	switch *compute {
	case "f32":
		cm = kernels.ComputeF32
	case "bf16":
		cm = kernels.ComputeBF16
		if *op == "tn" {
			return fmt.Errorf("bench gemm: --compute bf16 is implemented for --op t and n only")
		}
	default:
		return fmt.Errorf("bench gemm: --compute %q: want f32 or bf16", *compute)
	}
	if *packed {
		if *op != "t" {
			return fmt.Errorf("bench gemm: --packed is implemented for --op t only")
		}
		w.Pack(cm)
	}
	var f func()
	switch *op {
	case "t":
		x, y := rnd(*m**k), make([]float32, *m**n)
		f = func() { kernels.MatMulTCompute(y, x, *m, w, false, cm) }
	case "n":
		dy, dx := rnd(*m**n), make([]float32, *m**k)
		f = func() { kernels.MatMulNCompute(dx, dy, *m, w, false, cm) }
	case "tn":
		if *weights != "f32" {
			return fmt.Errorf("bench gemm: --op tn takes float32 operands only (--weights f32)")
		}
		dy, x, dw := rnd(*m**n), rnd(*m**k), make([]float32, *n**k)
		f = func() { kernels.MatMulTN(dw, dy, x, *m, *n, *k, false) }
	default:
		return fmt.Errorf("bench gemm: --op %q: want t, n or tn", *op)
	}
	ts, cpu := timeRuns(*minTime, f)
	flops := 2 * float64(*m) * float64(*n) * float64(*k)
	wbytes := float64(*n) * float64(*k) * 4
	if *weights == "bf16" {
		wbytes /= 2
	}
	return printJSON(map[string]any{
		"bench": "gemm", "op": *op, "m": *m, "n": *n, "k": *k,
		"weights": *weights, "compute": *compute, "packed": *packed,
		"threads": kernels.Threads(), "level": kernels.Level(),
		"seconds":        ts[0],
		"gflops":         flops / ts[0] / 1e9,
		"median_gflops":  flops / ts[len(ts)/2] / 1e9,
		"cpu_gflops":     perCPU(flops, cpu, kernels.Threads()) / 1e9,
		"weight_gbps":    wbytes / ts[0] / 1e9,
		"reps":           len(ts),
		"implementation": "gotrain",
	})
}

func benchPeak(args []string) error {
	fs := newFlags("bench peak", "[--threads T] [--level L]")
	threads := fs.Int("threads", 0, "worker threads (0: GOTRAIN_THREADS or all CPUs)")
	level := fs.String("level", "", "force a kernel level: avx512, avx2 or generic")
	minTime := fs.Duration("time", time.Second, "minimum measuring time")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := setKernels(*threads, *level); err != nil {
		return fmt.Errorf("bench peak: %w", err)
	}
	t := kernels.Threads()
	const calls = 20
	var flops int
	ts, cpu := timeRuns(*minTime, func() {
		kernels.Parallel(t, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				for c := 0; c < calls; c++ {
					flops = kernels.FMALoop()
				}
			}
		})
	})
	total := float64(flops) * calls * float64(t)
	result := map[string]any{
		"bench": "peak", "threads": t, "level": kernels.Level(),
		"gflops": total / ts[0] / 1e9, "median_gflops": total / ts[len(ts)/2] / 1e9,
		"cpu_gflops": perCPU(total, cpu, t) / 1e9,
		"seconds":    ts[0], "reps": len(ts),
	}
	// The BF16 dot product's peak (VDPBF16PS), measured right after the
	// float32 one so that the two compare under the same load.
	if ts, cpu, total, ok := bf16Peak(*minTime); ok {
		result["bf16_gflops"], result["bf16_median_gflops"] = total/ts[0]/1e9, total/ts[len(ts)/2]/1e9
		result["bf16_cpu_gflops"] = perCPU(total, cpu, t) / 1e9
	}
	return printJSON(result)
}

// bf16Peak times the BF16 dot product's register-only loop on every thread
// (ok false without AVX512_BF16): sorted times, CPU-seconds per run and the
// floating-point operations of one run.
func bf16Peak(minTime time.Duration) (ts []float64, cpu, total float64, ok bool) {
	if _, ok := kernels.FMALoopBF16(); !ok {
		return nil, 0, 0, false
	}
	const calls = 20
	t := kernels.Threads()
	var flops int
	ts, cpu = timeRuns(minTime, func() {
		kernels.Parallel(t, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				for c := 0; c < calls; c++ {
					flops, _ = kernels.FMALoopBF16()
				}
			}
		})
	})
	return ts, cpu, float64(flops) * calls * float64(t), true
}

func benchBandwidth(args []string) error {
	fs := newFlags("bench bandwidth", "[--mib N] [--threads T]")
	mib := fs.Int("mib", 512, "buffer size in MiB (well above the caches)")
	threads := fs.Int("threads", 0, "worker threads (0: GOTRAIN_THREADS or all CPUs)")
	level := fs.String("level", "", "force a kernel level: avx512, avx2 or generic")
	minTime := fs.Duration("time", time.Second, "minimum measuring time")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := setKernels(*threads, *level); err != nil {
		return fmt.Errorf("bench bandwidth: %w", err)
	}
	buf := make([]float32, *mib<<20/4)
	for i := range buf {
		buf[i] = 1
	}
	t := kernels.Threads()
	var sums = make([]float32, t)
	ts, cpu := timeRuns(*minTime, func() {
		kernels.Parallel(t, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				a, b := len(buf)*i/t, len(buf)*(i+1)/t
				sums[i] = kernels.ReadSum(buf[a:b])
			}
		})
	})
	if sums[0] <= 0 {
		fmt.Fprintln(os.Stderr, "bench bandwidth: unexpected sum")
	}
	bytes := float64(len(buf)) * 4
	return printJSON(map[string]any{
		"bench": "bandwidth", "threads": t, "level": kernels.Level(), "mib": *mib,
		"gbps": bytes / ts[0] / 1e9, "median_gbps": bytes / ts[len(ts)/2] / 1e9,
		"cpu_gbps": perCPU(bytes, cpu, t) / 1e9,
		"seconds":  ts[0], "reps": len(ts),
	})
}
