package model

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gotrain/gotrain/kernels"
)

// TestContinuationBatchInvariant: a job's log-probabilities are
// bit-identical whatever else shares its ContinuationBatch, in which order,
// and whether its prompt prefix comes from the prefix cache (cold or warm):
// in f32 and bf16, at every kernel level, with and without an adapter. The
// jobs share prefixes (a system text of 70 tokens and a study of 130),
// cross the 64-key blocks and the 512-token chunks, and score a 0–100
// scale (a trie of 101 continuations) or a few single tokens; the
// vocabulary spans three of the LM head's blocks. Also for a mixture of
// experts and int8 and nf4 bases. The Predictor (what
// `gotrain predict` runs, one prompt at a time, its continuations unshared)
// gives the same bits.
func TestContinuationBatchInvariant(t *testing.T) {
	cfg := smallConfig(Qwen2)
	cfg.VocabSize = 2*headBlock + 300
	t.Run("qwen2", func(t *testing.T) { testInvariant(t, loadRandom(t, cfg, "bf16", 7)) })
	// a mixture of experts, its experts' and router's matrices wider than
	// the GEMV's limit: the rows an expert gets depend on the batch
	moe := moeConfig(true)
	moe.VocabSize, moe.Experts, moe.MoEIntermediate = 300, 40, 48
	t.Run("qwen3moe", func(t *testing.T) { testInvariant(t, loadRandom(t, moe, "bf16", 7)) })
	if testing.Short() {
		return
	}
	for _, kind := range []string{"int8", "nf4"} {
		t.Run(kind, func(t *testing.T) { testInvariant(t, bf16ModelQuant(t, kind)) })
	}
}

func testInvariant(t *testing.T, m *Model) {
	var err error
	rng := rand.New(rand.NewPCG(19, 19))
	V := m.Config.VocabSize
	system, study := randomTokens(rng, 70, V), randomTokens(rng, 130, V)
	digits, end := randomTokens(rng, 10, V), randomTokens(rng, 1, V)[0]
	var scale [][]int // "0".."100", then an end token
	for n := 0; n <= 100; n++ {
		var c []int
		for _, d := range fmt.Sprint(n) {
			c = append(c, digits[d-'0'])
		}
		scale = append(scale, append(c, end))
	}
	cat := func(parts ...[]int) []int {
		var p []int
		for _, x := range parts {
			p = append(p, x...)
		}
		return p
	}
	jobs := []ContinuationJob{
		{Prompt: cat(system, study, randomTokens(rng, 5, V)), Conts: scale},
		{Prompt: cat(system, study, randomTokens(rng, 61, V)), Conts: [][]int{{digits[1]}, {digits[2]}, {digits[3]}}},
		{Prompt: cat(system, randomTokens(rng, 3, V)), Conts: scale},
		{Prompt: randomTokens(rng, 2, V), Conts: [][]int{{digits[0]}, {digits[1], end}}},
		{Prompt: cat(system, study, randomTokens(rng, 400, V)), Conts: scale}, // 600 tokens: two chunks
		{Prompt: randomTokens(rng, 64, V), Conts: [][]int{{end}, randomTokens(rng, 70, V)}},
		{Prompt: cat(system, study, randomTokens(rng, 5, V)), Conts: [][]int{{digits[9]}}},
	}
	batchings := [][]int{{0, 1, 2, 3, 4, 5, 6}, {6, 5, 4, 3, 2, 1, 0}, {3, 0}, {1, 6, 2}, {4, 5}}
	old := kernels.Level()
	defer kernels.SetLevel(old)
	levels := kernels.Levels()
	if testing.Short() { // the active level only (the full run covers every level)
		levels = []string{old}
	}
	for _, level := range levels {
		if err := kernels.SetLevel(level); err != nil {
			t.Fatal(err)
		}
		for _, cm := range []kernels.Compute{kernels.ComputeF32, kernels.ComputeBF16} {
			m.SetCompute(cm)
			for _, ad := range []*Adapter{nil, randomAdapter(t, m, "q", "v", "down")} {
				name := fmt.Sprintf("%s %v adapter=%v", level, cm, ad != nil)
				c := m.NewCache()
				alone := make([][][]float64, len(jobs))
				for i := range jobs {
					if alone[i], _, err = m.ContinuationBatch(c, nil, ad, jobs[i:i+1]); err != nil {
						t.Fatal(err)
					}
					p, err := m.NewPredictor(ad).ContinuationLogProbs(jobs[i].Prompt, jobs[i].Conts)
					if err != nil {
						t.Fatal(err)
					}
					for k := range p {
						if p[k] != alone[i][0][k] {
							t.Errorf("%s: job %d option %d: predictor %v, batch %v", name, i, k, p[k], alone[i][0][k])
						}
					}
				}
				pc := NewPrefixCache(64 << 20)
				for pass, cache := range []*PrefixCache{nil, pc, pc} {
					for _, order := range batchings {
						var sub []ContinuationJob
						for _, i := range order {
							sub = append(sub, jobs[i])
						}
						got, _, err := m.ContinuationBatch(c, cache, ad, sub)
						if err != nil {
							t.Fatal(err)
						}
						for j, i := range order {
							for k, x := range got[j] {
								if y := alone[i][0][k]; x != y {
									t.Errorf("%s pass %d batch %v: job %d option %d: %v, alone %v (%.3g)", name, pass, order, i, k, x, y, x-y)
								}
							}
						}
					}
				}
				// each job alone from the warm prefix cache
				for i := range jobs {
					got, _, err := m.ContinuationBatch(c, pc, ad, jobs[i:i+1])
					if err != nil {
						t.Fatal(err)
					}
					for k, x := range got[0] {
						if y := alone[i][0][k]; x != y {
							t.Errorf("%s warm alone: job %d option %d: %v, cold %v", name, i, k, x, y)
						}
					}
				}
			}
		}
	}
}
