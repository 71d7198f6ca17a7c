package model

import (
	"math/rand/v2"
	"testing"
)

// benchModel is a Qwen2-shaped model small enough to write in a benchmark
// but with realistic proportions (hidden 512, 4 layers, vocab 32000).
func benchModel(b *testing.B) *Model {
	b.Helper()
	c, _ := ConfigFor(Qwen2, "small")
	c.VocabSize, c.Hidden, c.Heads, c.KVHeads, c.HeadDim, c.Intermediate, c.Layers = 32000, 512, 8, 2, 64, 2752, 4
	dir := b.TempDir()
	if err := WriteRandom(dir, c, "bf16", 1); err != nil {
		b.Fatal(err)
	}
	m, err := Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

func BenchmarkPrefill(b *testing.B) {
	m := benchModel(b)
	toks := randomTokens(rand.New(rand.NewPCG(1, 1)), 256, m.Config.VocabSize)
	c := m.NewCache()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Truncate(0)
		var bt Batch
		for p, t := range toks {
			bt.Add(t, p, 0, p+1, 0, 0)
		}
		if _, err := m.Forward(c, &bt, nil, []int{len(toks) - 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(toks))/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkTrainStep(b *testing.B) {
	m := benchModel(b)
	ad, _ := m.NewAdapter(AdapterConfig{R: 16, LoraAlpha: 32, TargetModules: []string{"q", "k", "v", "o", "gate", "up", "down"}}, 1)
	g := ad.ZerosLike()
	rng := rand.New(rand.NewPCG(1, 1))
	var bt TrainBatch
	for s := 0; s < 4; s++ {
		bt.AddSequence(randomTokens(rng, 128, m.Config.VocabSize), ones(128))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.LossAndGrad(&bt, ad, g, TrainOptions{Dropout: 0.05, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*bt.Len())/b.Elapsed().Seconds(), "tokens/s")
}
