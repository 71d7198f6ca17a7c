package model

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gotrain/gotrain/kernels"
	"github.com/gotrain/gotrain/model/safetensors"
)

var tinyModels = []string{"tiny-qwen2-bf16", "tiny-llama-f32", "tiny-qwen3-f32", "tiny-qwen3moe-f32"}

// copyTiny copies a testdata checkpoint to a temp dir, so quantized caches
// are never written into testdata.
func copyTiny(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join("testdata", name, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadQ(t *testing.T, dir string, opt LoadOptions) *Model {
	t.Helper()
	m, err := LoadWith(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func quantSeqs(m *Model) []Sequence {
	rng := rand.New(rand.NewPCG(11, 12))
	var seqs []Sequence
	for _, n := range []int{12, 20, 7} {
		seqs = append(seqs, Sequence{Tokens: randomTokens(rng, n, m.Config.VocabSize), From: 1})
	}
	return seqs
}

// meanAbsDelta is the mean |a−b| over all scored tokens.
func meanAbsDelta(a, b [][]float32) float64 {
	var s float64
	n := 0
	for i := range a {
		for j := range a[i] {
			s += math.Abs(float64(a[i][j] - b[i][j]))
			n++
		}
	}
	return s / float64(n)
}

// TestQuantLogprobs reports the mean |Δ logprob| of the quantized tiny models
// against the unquantized ones (go test -v shows them). Measured on 36
// random tokens (the untied ones' heads in Q8, HeadQuantize): qwen2-bf16
// int8 0.032, nf4 0.41, nf4-dq 0.41; qwen3-f32 int8 0.016, nf4 0.24, nf4-dq
// 0.24; llama-f32 int8 0.038, nf4 0.51, nf4-dq 0.50; qwen3moe-f32 int8
// 0.027, nf4 0.50, nf4-dq 0.50 (mean logprob ≈ −9: these random tiny
// models have sharp, arbitrary logits that amplify weight noise). The
// bounds are about 3× and 2× that.
func TestQuantLogprobs(t *testing.T) {
	bound := map[string]float64{"int8": 0.1, "nf4": 1, "nf4-dq": 1}
	for _, name := range tinyModels {
		dir := copyTiny(t, name)
		base := loadQ(t, dir, LoadOptions{})
		seqs := quantSeqs(base)
		ref, err := base.Score(seqs, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range QuantizeKinds {
			m := loadQ(t, dir, LoadOptions{Quantize: kind, NoCache: true})
			if m.Layers[0].Q.W.DType == base.Layers[0].Q.W.DType || m.Embed != base.Embed && m.Embed.DType != base.Embed.DType {
				t.Fatalf("%s: weights not quantized as expected", kind)
			}
			got, err := m.Score(seqs, nil)
			if err != nil {
				t.Fatal(err)
			}
			// BF16 compute dequantizes into bf16 panels where the CPU has
			// AVX512_BF16 (measured 0.012–0.019, a few percent of the
			// quantization's own error), else it multiplies in float32.
			m.SetCompute(kernels.ComputeBF16)
			got2, err := m.Score(seqs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := meanAbsDelta(got, got2); kernels.HasBF16Compute() && (d > 0.05 || d == 0) || !kernels.HasBF16Compute() && d > 1e-6 {
				t.Errorf("%s %s: BF16 compute changed the quantized model's logprobs by %g", name, kind, d)
			}
			d := meanAbsDelta(got, ref)
			t.Logf("%s %s: mean |Δ logprob| %.5f", name, kind, d)
			if d > bound[kind] || d == 0 {
				t.Errorf("%s %s: mean |Δ logprob| %.5f, want (0, %g]", name, kind, d, bound[kind])
			}
		}
	}
}

// TestQuantHeadLogprobs measures what the Q8 LM head (HeadQuantize) alone
// moves log-probabilities (go test -v shows them) against the model's own
// head, on the untied tiny models and a random checkpoint of the Llama
// "small" shape (hidden 256, the real 128,256-row vocabulary), and checks
// that one row of logits (decoding: dotted from the Q8 bytes) equals the
// same row among many (prefill: dequantized panels) to float32 rounding.
// Measured mean |Δ logprob|: tiny-llama-f32 0.0124, tiny-qwen3-f32 0.0072,
// tiny-qwen3moe-f32 0.0069 (all layers int8: 0.016–0.038, NF4: 0.24–0.51),
// llama small 0.0030 (its random logits are near uniform). Bound: 2.5×.
func TestQuantHeadLogprobs(t *testing.T) {
	small, err := ConfigFor(Llama, "small")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tiny-llama-f32", "tiny-qwen3-f32", "tiny-qwen3moe-f32", "llama-small"} {
		var dir string
		if name == "llama-small" {
			dir = t.TempDir()
			if err := WriteRandom(dir, small, "bf16", 3); err != nil {
				t.Fatal(err)
			}
		} else {
			dir = copyTiny(t, name)
		}
		base := loadQ(t, dir, LoadOptions{})
		seqs := quantSeqs(base)
		ref, err := base.Score(seqs, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := loadQ(t, dir, LoadOptions{})
		m.LMHead = quantizeMatrix(m.LMHead, HeadQuantize)
		got, err := m.Score(seqs, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := meanAbsDelta(got, ref)
		t.Logf("%s: Q8 head alone, mean |Δ logprob| %.5f", name, d)
		if d > 0.03 || d == 0 {
			t.Errorf("%s: Q8 head moved log-probabilities by %.5f, want (0, 0.03]", name, d)
		}
		// decoding's one row against prefill's many
		H, V, n := m.Config.Hidden, m.Config.VocabSize, 12
		var b Batch
		for p, tok := range seqs[0].Tokens[:n] {
			b.Add(tok, p, 0, p+1, 0, 0)
		}
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		h, err := m.Forward(m.NewCache(), &b, nil, want)
		if err != nil {
			t.Fatal(err)
		}
		many, one := make([]float32, n*V), make([]float32, V)
		m.Logits(many, h, n)
		for r := 0; r < n; r++ {
			m.Logits(one, h[r*H:(r+1)*H], 1)
			for v := range one {
				if e := math.Abs(float64(one[v] - many[r*V+v])); e > 1e-4*(1+math.Abs(float64(one[v]))) {
					t.Fatalf("%s: row %d logit %d: decoding %g, prefill %g", name, r, v, one[v], many[r*V+v])
				}
			}
		}
	}
}

// TestQuantCache checks that the cache is written beside the checkpoint,
// then used (mapped) with identical results, rebuilt when the checkpoint
// changes, and written under CacheDir when the checkpoint dir cannot take it.
func TestQuantCache(t *testing.T) {
	dir := copyTiny(t, "tiny-qwen2-bf16")
	for _, kind := range QuantizeKinds {
		m1 := loadQ(t, dir, LoadOptions{Quantize: kind, CacheDir: t.TempDir(), NoCache: true})
		if m1.qcache != nil {
			t.Fatalf("%s: NoCache load claims a cache", kind)
		}
		if _, err := os.Stat(QCachePath(dir, kind)); err == nil {
			t.Fatalf("%s: NoCache load wrote a cache", kind)
		}
		m0 := loadQ(t, dir, LoadOptions{Quantize: kind, CacheDir: t.TempDir()})
		if m0.qcache == nil {
			t.Fatalf("%s: first load did not switch to the written cache", kind)
		}
		p := QCachePath(dir, kind)
		st1, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: cache not written: %v", kind, err)
		}
		m2 := loadQ(t, dir, LoadOptions{Quantize: kind})
		if m2.qcache == nil {
			t.Fatalf("%s: second load did not use the cache", kind)
		}
		seqs := quantSeqs(m1)
		a, _ := m1.Score(seqs, nil)
		b, _ := m2.Score(seqs, nil)
		if d := meanAbsDelta(a, b); d != 0 {
			t.Fatalf("%s: cached model differs by %g", kind, d)
		}
		// A changed checkpoint (new mtime) is re-quantized.
		later := st1.ModTime().Add(time.Hour)
		if err := os.Chtimes(filepath.Join(dir, "model.safetensors"), later, later); err != nil {
			t.Fatal(err)
		}
		st3, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		loadQ(t, dir, LoadOptions{Quantize: kind})
		if st4, err := os.Stat(p); err != nil || os.SameFile(st3, st4) {
			t.Fatalf("%s: stale cache not rewritten after the checkpoint changed (%v)", kind, err)
		}
		if m4 := loadQ(t, dir, LoadOptions{Quantize: kind}); m4.qcache == nil {
			t.Fatalf("%s: rebuilt cache not used", kind)
		}
	}
	// Unwritable beside the checkpoint (a directory in the way, since root
	// ignores permissions): the cache goes to CacheDir.
	dir2 := copyTiny(t, "tiny-llama-f32")
	cache := t.TempDir()
	if err := os.Mkdir(QCachePath(dir2, "nf4"), 0o755); err != nil {
		t.Fatal(err)
	}
	loadQ(t, dir2, LoadOptions{Quantize: "nf4", CacheDir: cache})
	if ents, _ := os.ReadDir(cache); len(ents) != 1 {
		t.Fatalf("fallback cache dir holds %d files, want 1", len(ents))
	}
	if m := loadQ(t, dir2, LoadOptions{Quantize: "nf4", CacheDir: cache}); m.qcache == nil {
		t.Fatal("fallback cache not used")
	}
	// A damaged cache (truncated) is rebuilt, not an error.
	p := QCachePath(dir, "int8")
	if err := os.Truncate(p, 100); err != nil {
		t.Fatal(err)
	}
	loadQ(t, dir, LoadOptions{Quantize: "int8"})
	if m := loadQ(t, dir, LoadOptions{Quantize: "int8"}); m.qcache == nil {
		t.Fatal("damaged cache not rebuilt")
	}
	if _, err := LoadWith(dir2, LoadOptions{Quantize: "int4"}); err == nil {
		t.Fatal("unknown --quantize accepted")
	}
}

// writeDequantized writes m's checkpoint with every quantized weight
// replaced by its float32 dequantization.
func writeDequantized(t *testing.T, m *Model, src string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	names, ws := m.quantizable()
	deq := map[string]*kernels.Matrix{}
	for i, n := range names {
		deq[n] = (*ws[i]).Dequantize()
	}
	var ts []safetensors.Tensor
	for _, n := range m.ckpt.Names() {
		tn, _ := m.ckpt.Tensor(n)
		if d, ok := deq[n]; ok {
			tn = &safetensors.Tensor{Name: n, DType: safetensors.F32, Shape: []int{d.Rows, d.Cols}, Data: safetensors.BytesOfF32(d.F32)}
		}
		ts = append(ts, *tn)
	}
	if err := safetensors.Write(filepath.Join(dir, safetensors.SingleFileName), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestQuantLossAndGrad: LoRA training on a quantized base must match, to
// 1e-4 relative, training on a float32 model holding the dequantized
// weights — the quantized kernels add no error beyond the quantization.
func TestQuantLossAndGrad(t *testing.T) {
	for _, name := range tinyModels {
		for _, kind := range QuantizeKinds {
			dir := copyTiny(t, name)
			q := loadQ(t, dir, LoadOptions{Quantize: kind, NoCache: true})
			ref := loadQ(t, writeDequantized(t, q, dir), LoadOptions{})
			rng := rand.New(rand.NewPCG(13, 14))
			V := q.Config.VocabSize
			b := completionBatch([][2][]int{
				{randomTokens(rng, 6, V), randomTokens(rng, 5, V)},
				{randomTokens(rng, 4, V), randomTokens(rng, 7, V)},
			})
			ad := randomAdapter(t, q, "q", "k", "v", "o", "gate", "up", "down")
			gq, gr := ad.ZerosLike(), ad.ZerosLike()
			lq, err := q.LossAndGrad(b, ad, gq, TrainOptions{})
			if err != nil {
				t.Fatal(err)
			}
			lr, err := ref.LossAndGrad(b, ad, gr, TrainOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(lq - lr); d > 1e-4*math.Abs(lr) {
				t.Errorf("%s %s: loss %v vs dequantized reference %v", name, kind, lq, lr)
			}
			_, a := gq.Params()
			_, r := gr.Params()
			var num, den float64
			for i := range a {
				for j := range a[i] {
					d := float64(a[i][j] - r[i][j])
					num += d * d
					den += float64(r[i][j]) * float64(r[i][j])
				}
			}
			rel := math.Sqrt(num / max(den, 1e-30))
			t.Logf("%s %s: loss %.6f (ref %.6f), gradient relative error %.2e", name, kind, lq, lr, rel)
			if rel > 1e-4 {
				t.Errorf("%s %s: gradient relative error %.2e", name, kind, rel)
			}
		}
	}
}

// TestQuantBF16DecodeMatchesForward: under ComputeBF16, decoding an NF4
// model token by token (one row: the GEMV, dotNF4RowsBF16 on AVX512_BF16,
// and moeDecode's one job for the experts) multiplies the weights the full
// forward's bf16 GEMM does (its dequantized panels), so log-probabilities
// agree to float32 summation order until that order flips the bf16
// rounding of an activation, which moves them (and, through the cache,
// later tokens) a little: seeds 1–6 and 13, max |Δ| 1e-6–2.7e-3, where
// decoding in float32 on the unrounded weights (before) moved them by
// 6.2e-3–2.8e-2. Shapes with odd block counts and short last blocks
// (hidden 200, expert width 72, dense 136), plain and double-quantized
// scales.
func TestQuantBF16DecodeMatchesForward(t *testing.T) {
	c := moeConfig(true)
	c.Hidden, c.HeadDim, c.Intermediate, c.MoEIntermediate = 200, 32, 136, 72
	for _, kind := range []string{"nf4", "nf4-dq"} {
		m := loadRandomWith(t, c, "bf16", 13, LoadOptions{Quantize: kind, NoCache: true})
		m.SetCompute(kernels.ComputeBF16)
		toks := randomTokens(rand.New(rand.NewPCG(3, 4)), 30, c.VocabSize)
		whole, err := m.Score([]Sequence{{Tokens: toks, From: 1}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var worst float64
		for p, v := range decodeLogProbs(t, m, toks, nil) {
			worst = max(worst, math.Abs(float64(v-whole[0][p])))
		}
		t.Logf("%s: max |Δ logprob| decode vs forward %.3g", kind, worst)
		if worst > 5e-3 {
			t.Errorf("%s: decoding differs from the forward by up to %.3g", kind, worst)
		}
	}
}
