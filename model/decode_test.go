package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gotrain/gotrain/kernels"
)

// TestDecodeMatchesForward: a decoding step (one token, the GEMVs) gives the next-token
// log-probabilities of the full forward over the same tokens (one pass,
// the GEMMs, attention in the compute mode), for a dense Qwen3 and a
// Qwen3-MoE, unquantized, int8 and nf4, in f32 and bf16, at every kernel
// level (the active one under -short): within 1e-4 in f32
// (TestCacheContinuation's bound) and 0.02 in bf16, whose prefill rounds
// the GEMMs' operands to bfloat16 and the decoding step the GEMVs' inputs
// (at most 0.0044 measured, AVX-512 nf4). The
// prompt and the steps cross a 64-key block of the attention.
func TestDecodeMatchesForward(t *testing.T) {
	moe := moeConfig(true)
	models := []struct {
		name string
		cfg  *Config
	}{{"qwen3", smallConfig(Qwen3)}, {"qwen3moe", moe}}
	old := kernels.Level()
	defer kernels.SetLevel(old)
	levels := kernels.Levels()
	if testing.Short() {
		levels = []string{old}
	}
	for _, mc := range models {
		for _, kind := range []string{"", "int8", "nf4"} {
			m := loadRandomWith(t, mc.cfg, "bf16", 11, LoadOptions{Quantize: kind, NoCache: true})
			rng := rand.New(rand.NewPCG(5, 6))
			toks := randomTokens(rng, 75, m.Config.VocabSize)
			const P = 50 // prompt; steps P..74
			for _, level := range levels {
				if err := kernels.SetLevel(level); err != nil {
					t.Fatal(err)
				}
				for _, cm := range []kernels.Compute{kernels.ComputeF32, kernels.ComputeBF16} {
					m.SetCompute(cm)
					name := fmt.Sprintf("%s %s %s %v", mc.name, kind, level, cm)
					whole := forwardLogProbs(t, m, toks)
					c := m.NewCache()
					h := promptHidden(t, m, c, toks[:P])
					tol := 1e-4
					if cm == kernels.ComputeBF16 {
						tol = 0.02
					}
					var worst float64
					for p := P; p < len(toks); p++ {
						got := m.logProbs(h, []int32{int32(toks[p])})[0]
						d := math.Abs(float64(got - whole[p-1]))
						worst = max(worst, d)
						if !(d <= tol) {
							t.Errorf("%s: token %d: decoded %v, forward %v", name, p, got, whole[p-1])
							break
						}
						var step Batch
						step.Add(toks[p], p, 0, p+1, 0, 0)
						var err error
						if h, err = m.Forward(c, &step, nil, []int{0}); err != nil {
							t.Fatal(err)
						}
					}
					t.Logf("%s: max |Δ log-prob| %.2g", name, worst)
				}
			}
		}
	}
}

// promptHidden runs prompt through the cache c and returns the last
// token's final hidden state.
func promptHidden(t *testing.T, m *Model, c *KVCache, prompt []int) []float32 {
	t.Helper()
	var b Batch
	for p, tok := range prompt {
		b.Add(tok, p, 0, p+1, 0, 0)
	}
	h, err := m.Forward(c, &b, nil, []int{len(prompt) - 1})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// forwardLogProbs is log p(toks[i+1] | toks[:i+1]) for every i, from one
// forward pass over toks.
func forwardLogProbs(t *testing.T, m *Model, toks []int) []float32 {
	t.Helper()
	var b Batch
	want := make([]int, len(toks)-1)
	for p, tok := range toks {
		b.Add(tok, p, 0, p+1, 0, 0)
		if p < len(want) {
			want[p] = p
		}
	}
	h, err := m.Forward(m.NewCache(), &b, nil, want)
	if err != nil {
		t.Fatal(err)
	}
	return m.logProbs(h, int32s(toks[1:]))
}

// TestCacheReserve: a cache reserved for a prompt and its decoding steps
// keeps its buffers through them (no growth), with the same hidden states
// as a cache that grows; Generate's tokens are a Forward's greedy ones.
func TestCacheReserve(t *testing.T) {
	m := loadRandom(t, smallConfig(Qwen3), "bf16", 3)
	rng := rand.New(rand.NewPCG(7, 8))
	toks := randomTokens(rng, 150, m.Config.VocabSize)
	run := func(c *KVCache) []float32 {
		h := promptHidden(t, m, c, toks[:40])
		out := append([]float32(nil), h...)
		for p := 40; p < len(toks); p++ {
			var s Batch
			s.Add(toks[p], p, 0, p+1, 0, 0)
			var err error
			if h, err = m.Forward(c, &s, nil, []int{0}); err != nil {
				t.Fatal(err)
			}
			out = append(out, h...)
		}
		return out
	}
	c := m.NewCache()
	c.Reserve(len(toks))
	k0 := &c.K[0][0]
	got := run(c)
	if &c.K[0][0] != k0 || c.rows != len(toks) {
		t.Errorf("reserved cache grew: %d rows", c.rows)
	}
	want := run(m.NewCache())
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("value %d: reserved %v, grown %v", i, got[i], want[i])
		}
	}
	// Generate reserves too; greedy tokens as stepped by hand
	gen, err := m.Generate(toks[:40], nil, Sampling{MaxNewTokens: 30}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c = m.NewCache()
	h := promptHidden(t, m, c, toks[:40])
	logits := make([]float32, m.Config.VocabSize)
	for i, tok := range gen {
		m.Logits(logits, h, 1)
		if a := argmax(logits); a != tok {
			t.Fatalf("generated token %d: %d, argmax %d", i, tok, a)
		}
		var s Batch
		s.Add(tok, 40+i, 0, 41+i, 0, 0)
		if h, err = m.Forward(c, &s, nil, []int{0}); err != nil {
			t.Fatal(err)
		}
	}
}
