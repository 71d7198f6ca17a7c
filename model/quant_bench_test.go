package model

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkQuantTrainStep times one LossAndGrad of 512 tokens (LoRA r=8 on
// all modules) on the "small" shape with a 4096-token vocabulary, per base
// weight format.
//
//	go test -run - -bench QuantTrainStep ./model/
func BenchmarkQuantTrainStep(b *testing.B) {
	c, _ := ConfigFor(Qwen2, "small")
	c.VocabSize = 4096
	dir := b.TempDir()
	if err := WriteRandom(dir, c, "bf16", 3); err != nil {
		b.Fatal(err)
	}
	for _, kind := range []string{"", "int8", "nf4", "nf4-dq"} {
		name := kind
		if name == "" {
			name = "bf16"
		}
		b.Run(name, func(b *testing.B) {
			m, err := LoadWith(dir, LoadOptions{Quantize: kind, NoCache: true})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			ad, err := m.NewAdapter(AdapterConfig{R: 8, LoraAlpha: 16, TargetModules: []string{"q", "k", "v", "o", "gate", "up", "down"}}, 1)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 1))
			var seqs [][2][]int
			for range 4 {
				seqs = append(seqs, [2][]int{randomTokens(rng, 64, c.VocabSize), randomTokens(rng, 64, c.VocabSize)})
			}
			batch := completionBatch(seqs)
			g := ad.ZerosLike()
			for b.Loop() {
				if _, err := m.LossAndGrad(batch, ad, g, TrainOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(512*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
