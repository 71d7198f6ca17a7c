package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestTreeMatchesContinuations: every node of a tree grown on the KV cache,
// with nodes of different depths and parents in one call and a prompt
// shared with the previous call, gives the log-probabilities that scoring
// its whole path as a continuation of the prompt gives.
func TestTreeMatchesContinuations(t *testing.T) {
	for _, arch := range []Arch{Qwen2, Llama, Qwen3} {
		m, err := Load(writeSmall(t, arch, "f32"))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var ad *Adapter
		if arch == Llama {
			ad = randomAdapter(t, m, "q", "k", "v", "down")
		}
		rng := rand.New(rand.NewPCG(3, 4))
		V := m.Config.VocabSize
		want := []int{0, 7, 42, V - 1}
		p := m.NewPredictor(ad)
		ref := m.NewPredictor(ad)
		prompt := randomTokens(rng, 70, V)
		worst := 0.0
		for round := 0; round < 2; round++ {
			prompt = append(prompt[:60:60], randomTokens(rng, 10, V)...)
			root, err := p.BeginTree(prompt, want)
			if err != nil {
				t.Fatal(err)
			}
			paths := [][]int{nil}
			lps := [][]float64{root}
			for level := 0; level < 4; level++ {
				var parents, toks []int
				for k := 0; k < 1+rng.IntN(6); k++ {
					parents = append(parents, rng.IntN(len(paths)))
					toks = append(toks, rng.IntN(V))
				}
				ids, lp, err := p.GrowTree(parents, toks, want)
				if err != nil {
					t.Fatal(err)
				}
				for i, id := range ids {
					if id != len(paths) {
						t.Fatalf("node id %d, want %d", id, len(paths))
					}
					paths = append(paths, append(append([]int{}, paths[parents[i]]...), toks[i]))
					lps = append(lps, lp[i])
				}
			}
			for n, path := range paths {
				conts := make([][]int, len(want))
				for j, w := range want {
					conts[j] = append(append([]int{}, path...), w)
				}
				got, err := ref.ContinuationLogProbs(prompt, conts)
				if err != nil {
					t.Fatal(err)
				}
				prefix := 0.0
				if len(path) > 0 {
					// the reference scores the whole path: subtract the path's own log-prob
					pp, err := ref.ContinuationLogProbs(prompt, [][]int{path})
					if err != nil {
						t.Fatal(err)
					}
					prefix = pp[0]
				}
				for j := range want {
					d := math.Abs(lps[n][j] - (got[j] - prefix))
					worst = max(worst, d)
					if d > 1e-4 {
						t.Errorf("%s round %d node %d (path %v) token %d: tree %v, reference %v", arch, round, n, path, want[j], lps[n][j], got[j]-prefix)
					}
				}
			}
		}
		t.Logf("%s: largest difference %.3g", arch, worst)
	}
}
