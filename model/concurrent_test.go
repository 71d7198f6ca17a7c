package model

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// TestConcurrentUse: one loaded model serves several goroutines scoring,
// predicting and computing gradients at once (weights shared, per-call state
// separate), with results identical to sequential calls. Run with -race.
func TestConcurrentUse(t *testing.T) {
	m, err := Load(writeSmall(t, Qwen2, "bf16"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ad := randomAdapter(t, m, "q", "k", "v", "o", "gate", "up", "down")
	rng := rand.New(rand.NewPCG(4, 4))
	const workers = 4
	seqs := make([][]Sequence, workers)
	want := make([][][]float32, workers)
	for w := range seqs {
		seqs[w] = []Sequence{{Tokens: randomTokens(rng, 30+w, m.Config.VocabSize), From: 5}}
		if want[w], err = m.Score(seqs[w], ad); err != nil {
			t.Fatal(err)
		}
	}
	prompt := randomTokens(rng, 12, m.Config.VocabSize)
	conts := [][]int{{1, 2}, {3}, {4, 5, 6}}
	wantOpt, _ := m.NewPredictor(ad).ContinuationLogProbs(prompt, conts)
	var b TrainBatch
	b.AddSequence(seqs[0][0].Tokens, ones(len(seqs[0][0].Tokens)))
	g0 := ad.ZerosLike()
	wantLoss, _ := m.LossAndGrad(&b, ad, g0, TrainOptions{})

	var wg sync.WaitGroup
	errs := make(chan string, 3*workers)
	for w := 0; w < workers; w++ {
		wg.Add(3)
		go func() {
			defer wg.Done()
			got, err := m.Score(seqs[w], ad)
			if err != nil || !slices.Equal(got[0], want[w][0]) {
				errs <- "concurrent Score differs"
			}
		}()
		go func() {
			defer wg.Done()
			got, err := m.NewPredictor(ad).ContinuationLogProbs(prompt, conts)
			if err != nil || len(got) != len(wantOpt) || got[0] != wantOpt[0] || got[2] != wantOpt[2] {
				errs <- "concurrent ContinuationLogProbs differs"
			}
		}()
		go func() {
			defer wg.Done()
			g := ad.ZerosLike()
			l, err := m.LossAndGrad(&b, ad, g, TrainOptions{})
			_, gp := g.Params()
			_, wp := g0.Params()
			if err != nil || l != wantLoss || !slices.Equal(gp[0], wp[0]) {
				errs <- "concurrent LossAndGrad differs"
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func ones(n int) []float32 {
	w := make([]float32, n)
	for i := range w {
		w[i] = 1
	}
	return w
}
