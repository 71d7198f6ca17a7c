package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/kernels"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/predict"
	"github.com/gotrain/gotrain/tokenize"
	"github.com/gotrain/gotrain/train"
)

// runBenchModel runs the whole-model benchmarks: prefill, decode and a LoRA
// training step, on a random checkpoint of a known shape (created once and
// kept in the cache directory) or on --base.
func runBenchModel(name string, args []string) error {
	fs := newFlags("bench "+name, "[--base DIR | --arch qwen2 --size 0.5b --dtype bf16] [flags]")
	base := fs.String("base", "", "model directory (default: a random checkpoint of --arch/--size/--dtype)")
	arch := fs.String("arch", "qwen2", "architecture of the random checkpoint")
	size := fs.String("size", "0.5b", "size of the random checkpoint")
	dtype := fs.String("dtype", "bf16", "weight dtype of the random checkpoint")
	tokens := fs.Int("tokens", 512, "prompt length (prefill, decode) or tokens per sequence (train)")
	batch := fs.Int("batch", 8, "sequences per training step (train)")
	steps := fs.Int("steps", 32, "tokens to decode (decode)")
	reps := fs.Int("reps", 3, "measured repetitions (median reported)")
	rank := fs.Int("lora-r", 16, "LoRA rank (train)")
	full := fs.Bool("full", false, "also time a full-finetuning step (every weight's gradient and an AdamW update) beside the LoRA step (train)")
	threads := fs.Int("threads", 0, "worker threads (0: all cores)")
	nrows := fs.Int("rows", 100, "SocSci210 sample rows (predict)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured runs here")
	compute := addComputeFlag(fs)
	quantize := addQuantizeFlag(fs)
	naive := fs.Bool("naive", true, "also time scoring every option as a separate sequence (predict; slow)")
	numericNodes := fs.Int("numeric-nodes", predict.DefaultNumericNodes, "tree nodes per row of the numeric case, all expanded (predict; 0: skip the case)")
	pack := fs.Bool("pack", false, "prepack the linear weights for the microkernel, as model.PackWeights (prefill, predict)")
	random := fs.Bool("random", false, "build random weights in memory, already in --quantize's form, instead of writing a checkpoint (implied by --arch qwen3moe --size 30b-a3b, whose BF16 checkpoint is 61 GB)")
	targets := fs.String("lora-targets", "q,k,v,o,gate,up,down", "LoRA target modules (train, dpo); gate, up and down include every expert's")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *threads > 0 {
		kernels.SetThreads(*threads)
	}
	if err := resolveFlags(base); err != nil {
		return err
	}
	dir := *base
	a := model.ParseArch(*arch)
	*random = *random || *base == "" && a == model.Qwen3MoE && *size == "30b-a3b"
	var m *model.Model
	if *random {
		cfg, err := model.ConfigFor(a, *size)
		if err != nil {
			return err
		}
		if m, err = model.NewRandom(cfg, *quantize, 1); err != nil {
			return err
		}
		dir = fmt.Sprintf("random %s %s", a, *size)
	} else {
		if dir == "" {
			var err error
			if dir, err = benchCheckpoint(a, *size, *dtype); err != nil {
				return err
			}
		}
		var err error
		if m, err = model.LoadWith(dir, model.LoadOptions{Quantize: *quantize}); err != nil {
			return err
		}
	}
	defer m.Close()
	if err := setCompute(m, *compute); err != nil {
		return err
	}
	packed := *pack && (name == "prefill" || name == "predict")
	stopProfile := func() {}
	if packed {
		m.PackWeights()
	}
	// decode profiles its steps only, after the prompt's prefill
	profile := func() error {
		stop, err := startCPUProfile(*cpuProfile)
		if err == nil {
			stopProfile = stop
		}
		return err
	}
	if name != "decode" {
		if err := profile(); err != nil {
			return err
		}
	}
	defer func() { stopProfile() }()
	rng := rand.New(rand.NewPCG(1, 2))
	prompt := make([]int, *tokens)
	for i := range prompt {
		prompt[i] = rng.IntN(m.Config.VocabSize)
	}
	result := map[string]any{"pack": packed, "compute": *compute, "quantize": *quantize, "bench": name, "model": dir, "tokens": *tokens, "threads": kernels.Threads(), "level": kernels.Level()}
	var times []float64
	var cpu float64 // CPU-seconds of the measured runs (prefill, train)
	switch name {
	case "prefill":
		c := m.NewCache()
		for r := 0; r <= *reps; r++ {
			c.Truncate(0)
			var b model.Batch
			for p, tok := range prompt {
				b.Add(tok, p, 0, p+1, 0, 0)
			}
			start, c0 := time.Now(), cpuSeconds()
			h, err := m.Forward(c, &b, nil, []int{len(prompt) - 1})
			if err != nil {
				return err
			}
			m.Logits(make([]float32, m.Config.VocabSize), h, 1)
			if r > 0 { // the first run warms up
				times = append(times, time.Since(start).Seconds())
				cpu += cpuSeconds() - c0
			}
		}
		med := median(times)
		// The layers' matmul work (attention and the one row of logits left
		// out), per CPU-second as well: comparable with bench peak's
		// cpu_gflops on a loaded machine.
		cfg := &m.Config
		flops := 2 * float64(*tokens) * cfg.ActiveLinearParams()
		cpuRun := cpu / float64(len(times)) / float64(kernels.Threads())
		result["seconds"], result["tokens_per_s"] = med, float64(*tokens)/med
		result["gflops"], result["cpu_tokens_per_s"], result["cpu_gflops"] = flops/med/1e9, float64(*tokens)/cpuRun, flops/cpuRun/1e9
		// With the causal attention's two products (Q·Kᵀ and P·V over the
		// T(T+1)/2 query-key pairs), now GEMMs too.
		pairs := float64(*tokens) * float64(*tokens+1) / 2
		attn := 4 * pairs * float64(cfg.Heads*cfg.HeadDim*cfg.Layers)
		result["cpu_gflops_with_attention"] = (flops + attn) / cpuRun / 1e9
		if *compute == "bf16" {
			reportBF16Peak(result, (flops+attn)/cpuRun)
		}
	case "decode":
		c := m.NewCache()
		c.Reserve(len(prompt) + *steps) // as Generate does
		var b model.Batch
		for p, tok := range prompt {
			b.Add(tok, p, 0, p+1, 0, 0)
		}
		if _, err := m.Forward(c, &b, nil, nil); err != nil {
			return err
		}
		logits := make([]float32, m.Config.VocabSize)
		if err := profile(); err != nil {
			return err
		}
		start, c0 := time.Now(), cpuSeconds()
		for s := 0; s < *steps; s++ {
			var b model.Batch
			p := len(prompt) + s
			b.Add(rng.IntN(m.Config.VocabSize), p, 0, p+1, 0, 0)
			h, err := m.Forward(c, &b, nil, []int{0})
			if err != nil {
				return err
			}
			m.Logits(logits, h, 1)
		}
		sec := time.Since(start).Seconds()
		result["seconds"], result["tokens_per_s"], result["context"] = sec, float64(*steps)/sec, len(prompt)
		// per CPU-second of the threads: steadier on a shared machine
		result["cpu_tokens_per_s"] = float64(*steps) / ((cpuSeconds() - c0) / float64(kernels.Threads()))
	case "train":
		ad, err := m.NewAdapter(model.AdapterConfig{R: *rank, LoraAlpha: float64(2 * *rank),
			TargetModules: strings.Split(*targets, ",")}, 1)
		if err != nil {
			return err
		}
		g := ad.ZerosLike()
		var b model.TrainBatch
		n := *batch * (*tokens - 1)
		for s := 0; s < *batch; s++ {
			toks := make([]int, *tokens)
			w := make([]float32, *tokens)
			for i := range toks {
				toks[i], w[i] = rng.IntN(m.Config.VocabSize), 1/float32(n)
			}
			b.AddSequence(toks, w)
		}
		var fullStep func() (backprop float64, err error)
		if *full {
			if fullStep, err = benchFullStep(m, &b); err != nil {
				return err
			}
		}
		var fullCPU float64
		var fullTimes, fullBack []float64
		for r := 0; r <= *reps; r++ {
			start, c0 := time.Now(), cpuSeconds()
			if _, err := m.LossAndGrad(&b, ad, g, model.TrainOptions{Dropout: 0.05, Seed: uint64(r)}); err != nil {
				return err
			}
			if r > 0 {
				times = append(times, time.Since(start).Seconds())
				cpu += cpuSeconds() - c0
			}
			if fullStep != nil { // interleaved, so both see the same machine load
				start, c0 := time.Now(), cpuSeconds()
				back, err := fullStep()
				if err != nil {
					return err
				}
				if r > 0 {
					fullTimes, fullBack = append(fullTimes, time.Since(start).Seconds()), append(fullBack, back)
					fullCPU += cpuSeconds() - c0
				}
			}
		}
		med := median(times)
		if fullStep != nil {
			fm := median(fullTimes)
			ntok := float64(*batch * *tokens)
			result["full_seconds"], result["full_tokens_per_s"], result["full_backprop_seconds"] = fm, ntok/fm, median(fullBack)
			result["full_vs_lora"] = med / fm
			// by CPU time, steadier than wall time on a shared machine
			result["full_vs_lora_cpu"] = cpu / fullCPU
		}
		ntok := float64(*batch * *tokens)
		// Matmul work of a step: the layers' forward, their recomputation
		// without the down projection, the input gradients, and the LM
		// head forward and backward (attention and LoRA left out).
		cfg := &m.Config
		head := float64(cfg.VocabSize * cfg.Hidden)
		flops := 2 * ntok * (3*cfg.ActiveLinearParams() - cfg.ActiveDownParams() + 2*head)
		cpuStep := cpu / float64(len(times)) / float64(kernels.Threads())
		result["seconds"], result["tokens_per_s"], result["batch"] = med, ntok/med, *batch
		result["gflops"], result["cpu_tokens_per_s"], result["cpu_gflops"] = flops/med/1e9, ntok/cpuStep, flops/cpuStep/1e9
		if *compute == "bf16" {
			reportBF16Peak(result, flops/cpuStep)
		}
	case "predict":
		// SocSci210 sample rows: exact option distributions with prefix
		// sharing and KV reuse, against scoring every option as a separate
		// full sequence.
		rows, err := data.SampleRows()
		if err != nil {
			return err
		}
		rows = rows[:min(*nrows, len(rows))]
		tok, err := tokenize.LoadBundled(bundledTokenizer(m.Config.Arch))
		if err != nil {
			return err
		}
		tmpl, err := tok.ChatTemplate("")
		if err != nil {
			return err
		}
		enc := &data.Encoder{Tok: tok, Template: tmpl}
		p := predict.New(m, nil, enc, predict.Sampling{MaxOptions: 101})
		start := time.Now()
		res, err := p.Rows(rows, nil)
		if err != nil {
			return err
		}
		shared := time.Since(start).Seconds()
		result["rows"], result["rows_per_s"] = len(rows), float64(len(rows))/shared
		result["reused_prompt_tokens"], result["computed_prompt_tokens"] = p.Reused, p.Computed
		if *numericNodes > 0 {
			// each row alone (its whole prompt computed) as options and as
			// an open numeric answer whose tree is expanded to the whole node
			// budget (the worst case), alternating so that both see the same
			// load; CPU seconds beside wall seconds as the machine is shared
			po := predict.New(m, nil, enc, predict.Sampling{MaxOptions: 101})
			pn := predict.New(m, nil, enc, predict.Sampling{MaxOptions: 1, NumericEps: 1e-300, NumericNodes: *numericNodes})
			var wall, cpu [2]float64
			var prompt, n int
			for i := range rows {
				for k := range 2 {
					p := [2]*predict.Predictor{po, pn}[(i+k)%2]
					w, c := time.Now(), cpuSeconds()
					res, err := p.Rows(rows[i:i+1], nil)
					if err != nil {
						return err
					}
					wall[(i+k)%2] += time.Since(w).Seconds()
					cpu[(i+k)%2] += cpuSeconds() - c
					if p == pn && res[0].Method == "numeric" {
						n++
						prompt += p.Computed
					}
				}
			}
			result["numeric_rows"], result["numeric_nodes"], result["numeric_prompt_tokens"] = n, *numericNodes, float64(prompt)/float64(n)
			result["numeric_vs_options"], result["numeric_vs_options_cpu"] = wall[1]/wall[0], cpu[1]/cpu[0]
		}
		if !*naive {
			break
		}
		start = time.Now()
		for i := range rows {
			if res[i].Probs == nil {
				continue
			}
			answers := make([]string, len(res[i].Options.Values))
			for k, v := range res[i].Options.Values {
				answers[k] = data.FormatResponse(float64(v))
			}
			prompt, conts, err := enc.Continuations(&rows[i], answers)
			if err != nil {
				return err
			}
			for _, c := range conts {
				if _, err := m.Score([]model.Sequence{{Tokens: append(append([]int{}, prompt...), c...), From: len(prompt)}}, nil); err != nil {
					return err
				}
			}
		}
		naiveSec := time.Since(start).Seconds()
		result["naive_rows_per_s"], result["speedup"] = float64(len(rows))/naiveSec, naiveSec/shared
	case "dpo":
		// a DPO step's forward and backward with the prompt computed once per
		// pair, against chosen and rejected as two separate sequences
		ad, err := m.NewAdapter(model.AdapterConfig{R: *rank, LoraAlpha: float64(2 * *rank),
			TargetModules: strings.Split(*targets, ",")}, 1)
		if err != nil {
			return err
		}
		var shared, separate model.TrainBatch
		for s := 0; s < *batch; s++ {
			prompt := make([]int, *tokens)
			for i := range prompt {
				prompt[i] = rng.IntN(m.Config.VocabSize)
			}
			chosen, rejected := []int{rng.IntN(1000), rng.IntN(1000), 2}, []int{rng.IntN(1000), rng.IntN(1000), 2}
			w := []float32{1, 1, 1}
			shared.AddShared(prompt, [][]int{chosen, rejected}, [][]float32{w, w})
			for _, c := range [][]int{chosen, rejected} {
				toks := append(append([]int{}, prompt...), c...)
				ws := make([]float32, len(toks))
				for i := len(prompt); i < len(toks); i++ {
					ws[i] = 1
				}
				separate.AddSequence(toks, ws)
			}
		}
		g := ad.ZerosLike()
		if _, err := m.LossAndGrad(&shared, ad, g, model.TrainOptions{}); err != nil { // warm-up
			return err
		}
		var secs [2]float64
		for k, b := range []*model.TrainBatch{&shared, &separate} {
			start := time.Now()
			for r := 0; r < *reps; r++ {
				if _, err := m.LossAndGrad(b, ad, g, model.TrainOptions{}); err != nil {
					return err
				}
			}
			secs[k] = time.Since(start).Seconds() / float64(*reps)
		}
		result["pairs"], result["pairs_per_s"], result["separate_pairs_per_s"] = *batch, float64(*batch)/secs[0], float64(*batch)/secs[1]
		result["speedup"] = secs[1] / secs[0]
	default:
		return fmt.Errorf("unknown benchmark %q (want gemm, peak, bandwidth, prefill, decode, train, predict or dpo)", name)
	}
	result["peak_rss_gib"] = peakRSSGiB()
	b, _ := json.Marshal(result)
	fmt.Println(string(b))
	return nil
}

// benchCheckpoint returns a cached random checkpoint, writing it on first use.
func benchCheckpoint(arch model.Arch, size, dtype string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "gotrain", fmt.Sprintf("bench-%s-%s-%s", arch, size, dtype))
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		return dir, nil
	}
	fmt.Fprintf(os.Stderr, "writing a random %s %s %s checkpoint to %s (once)\n", arch, size, dtype, dir)
	if _, err := model.InitCheckpoint(dir, model.InitOptions{Arch: arch, Size: size, DType: dtype, Seed: 1}); err != nil {
		return "", err
	}
	return dir, nil
}

// reportBF16Peak times the BF16 dot product's peak per CPU-second (as bench
// peak) right after a benchmark's runs and adds it to result with the
// fraction of it that rate (FLOP per CPU-second) reached: a ratio within one
// run, which a shared machine's load does not decide (the peak itself read
// 815-915 GFLOP/s on an idle machine within half an hour).
func reportBF16Peak(result map[string]any, rate float64) {
	if _, pcpu, ptotal, ok := bf16Peak(time.Second); ok {
		peak := perCPU(ptotal, pcpu, kernels.Threads())
		result["bf16_peak_cpu_gflops"] = peak / 1e9
		result["bf16_peak_fraction"] = rate / peak
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}

// benchFullStep prepares a full-finetuning step of m on b: every weight's
// gradient, then an AdamW update of the float32 master weights. The step
// returns the seconds of the forward and backward alone.
func benchFullStep(m *model.Model, b *model.TrainBatch) (func() (float64, error), error) {
	f, err := model.NewFull(m)
	if err != nil {
		return nil, err
	}
	g := f.ZerosLike()
	opt := train.NewAdamW(0)
	_, ps := f.Params()
	_, gs := g.Params()
	return func() (float64, error) {
		start := time.Now()
		for _, v := range gs {
			clear(v)
		}
		if _, err := f.LossAndGrad(b, g, model.TrainOptions{}); err != nil {
			return 0, err
		}
		back := time.Since(start).Seconds()
		train.ClipGradNorm(gs, 1)
		opt.Step(ps, gs, 1e-5)
		return back, nil
	}, nil
}
