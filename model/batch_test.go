package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gotrain/gotrain/kernels"
)

// TestContinuationBatch: rows of several prompts (some sharing study-like
// prefixes, some not) batched in one pass give the log-probabilities that
// ContinuationLogProbs gives one prompt at a time, with and without the
// prefix cache, and a second batch reuses the cached prefixes.
func TestContinuationBatch(t *testing.T) {
	m, err := Load(writeSmall(t, Qwen2, "bf16"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ad := randomAdapter(t, m, "q", "v")
	rng := rand.New(rand.NewPCG(7, 7))
	V := m.Config.VocabSize
	studyA, studyB := randomTokens(rng, 70, V), randomTokens(rng, 30, V)
	var jobs []ContinuationJob
	for i := 0; i < 7; i++ {
		var prompt []int
		switch i % 3 {
		case 0:
			prompt = append(append([]int{}, studyA...), randomTokens(rng, 3+i, V)...)
		case 1:
			prompt = append(append([]int{}, studyB...), randomTokens(rng, 1+i, V)...)
		default:
			prompt = randomTokens(rng, 1+i, V)
		}
		conts := [][]int{randomTokens(rng, 1, V), randomTokens(rng, 2, V), randomTokens(rng, 3, V)}
		if i == 2 {
			// answers sharing leading tokens, as numbers of a 0–100 scale
			// do: 90 of them, more rows of logits than one block holds
			d := randomTokens(rng, 10, V)
			end := randomTokens(rng, 1, V)[0]
			conts = nil
			for n := 0; n < 90; n++ {
				c := []int{d[n%10], end}
				if n >= 10 {
					c = []int{d[n/10], d[n%10], end}
				}
				conts = append(conts, c)
			}
		}
		jobs = append(jobs, ContinuationJob{Prompt: prompt, Conts: conts})
	}
	jobs = append(jobs, jobs[0]) // the same prompt twice
	want := make([][]float64, len(jobs))
	for i, j := range jobs {
		if want[i], err = m.NewPredictor(ad).ContinuationLogProbs(j.Prompt, j.Conts); err != nil {
			t.Fatal(err)
		}
	}
	pc := NewPrefixCache(64 << 20)
	c := m.NewCache()
	var first [][]float64
	for pass, p := range []*PrefixCache{nil, pc, pc} {
		got, st, err := m.ContinuationBatch(c, p, ad, jobs)
		if err != nil {
			t.Fatal(err)
		}
		if pass == 0 {
			first = got
		}
		for i := range jobs {
			for k := range want[i] {
				if d := math.Abs(got[i][k] - want[i][k]); d > 2e-5 {
					t.Errorf("pass %d job %d cont %d: %v, want %v", pass, i, k, got[i][k], want[i][k])
				}
			}
		}
		if pass == 2 && st.Reused == 0 {
			t.Errorf("pass 2 reused no cached prefix: %+v", st)
		}
		t.Logf("pass %d: %+v", pass, st)
	}
	// the cache holds the study prefixes, the whole prompt but its last
	// token for a prompt alone in its group; nil holds nothing
	if n := pc.Shared(jobs[0].Prompt); n < len(studyA) || n >= len(jobs[0].Prompt) {
		t.Errorf("Shared: %d tokens of a %d-token prompt whose %d-token study prefix was cached", n, len(jobs[0].Prompt), len(studyA))
	}
	if n := (*PrefixCache)(nil).Shared(jobs[0].Prompt); n != 0 {
		t.Errorf("a nil cache shares %d tokens", n)
	}
	// with the weights and the LM head prepacked (the head read a block of
	// the vocabulary at a time from its packed copy): the same bits
	m.PackWeights()
	if !m.LMHead.Packed(kernels.ComputeF32) && m.LMHead.PackBytes(kernels.ComputeF32) > 0 {
		t.Fatal("PackWeights left the LM head unpacked")
	}
	got, _, err := m.ContinuationBatch(c, nil, ad, jobs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range jobs {
		for k := range got[i] {
			if got[i][k] != first[i][k] {
				t.Errorf("packed: job %d cont %d: %v, unpacked %v", i, k, got[i][k], first[i][k])
			}
		}
	}
	// a job asking for the logits after its prompt, beside the others
	logits := make([]float32, V)
	var ref []float32
	if _, err := m.GenerateSteps(jobs[1].Prompt, ad, Sampling{MaxNewTokens: 1}, rng, func(_ int, l []float32) bool {
		ref = append(ref, l...)
		return false
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.ContinuationBatch(c, pc, ad, append(jobs[:3:3], ContinuationJob{Prompt: jobs[1].Prompt, Logits: logits})); err != nil {
		t.Fatal(err)
	}
	for v := range ref {
		if d := math.Abs(float64(logits[v] - ref[v])); d > 1e-4 {
			t.Fatalf("logits[%d] %v, want %v", v, logits[v], ref[v])
		}
	}
	if _, _, err := m.ContinuationBatch(c, pc, ad, []ContinuationJob{{Prompt: []int{1}, Conts: [][]int{{V}}}}); err == nil {
		t.Error("token outside the vocabulary: no error")
	}
	// a tiny bound evicts everything but stays consistent
	small := NewPrefixCache(1)
	if _, _, err := m.ContinuationBatch(c, small, ad, jobs); err != nil {
		t.Fatal(err)
	}
	if _, _, _, b := small.Stats(); b != 0 {
		t.Errorf("a 1-byte cache holds %d bytes", b)
	}
}
