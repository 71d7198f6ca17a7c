package model

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/kernels"
)

// smallConfig is a checkpoint small enough to write in every test.
func smallConfig(arch Arch) *Config {
	c, _ := ConfigFor(arch, "tiny")
	c.VocabSize, c.Hidden, c.Heads, c.KVHeads, c.HeadDim, c.Intermediate, c.Layers = 300, 32, 4, 2, 8, 48, 2
	if arch == Qwen3 {
		c.HeadDim = 12 // ≠ hidden/heads, as Qwen3's
	}
	return c
}

func writeSmall(t *testing.T, arch Arch, dtype string) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteRandom(dir, smallConfig(arch), dtype, 7); err != nil {
		t.Fatal(err)
	}
	return dir
}

// randomAdapter is a LoRA adapter with A and B both nonzero.
func randomAdapter(t *testing.T, m *Model, targets ...string) *Adapter {
	t.Helper()
	ad, err := m.NewAdapter(AdapterConfig{R: 4, LoraAlpha: 8, TargetModules: targets}, 3)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, layer := range ad.Layers {
		for _, l := range layer {
			if l != nil {
				for i := range l.B {
					l.B[i] = float32(rng.NormFloat64() * 0.1)
				}
			}
		}
	}
	return ad
}

func randomTokens(rng *rand.Rand, n, vocab int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = rng.IntN(vocab)
	}
	return s
}

func TestWriteLoadRoundTrip(t *testing.T) {
	for _, arch := range []Arch{Qwen2, Llama, Qwen3} {
		for _, dt := range []string{"bf16", "f32"} {
			dir := writeSmall(t, arch, dt)
			m, err := Load(dir)
			if err != nil {
				t.Fatalf("%s %s: %v", arch, dt, err)
			}
			want := smallConfig(arch)
			want.TorchDType = m.Config.TorchDType
			if m.Config.Hidden != want.Hidden || m.Config.Arch != arch || m.Config.TieEmbeddings != want.TieEmbeddings || (want.RopeScaling == nil) != (m.Config.RopeScaling == nil) {
				t.Errorf("%s %s: config after round trip %+v, want %+v", arch, dt, m.Config, *want)
			}
			m.Close()
		}
	}
}

// TestCacheContinuation checks that a prompt run once and continued through
// the KV cache (also after truncating back to the prompt) gives the same
// log-probabilities as the whole sequence at once, including sequences longer
// than one chunk.
func TestCacheContinuation(t *testing.T) {
	m, err := Load(writeSmall(t, Llama, "f32"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ad := randomAdapter(t, m, "q", "v", "down")
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{2, 17, maxChunk + 90} {
		toks := randomTokens(rng, n, m.Config.VocabSize)
		whole, err := m.Score([]Sequence{{Tokens: toks, From: 1}}, ad)
		if err != nil {
			t.Fatal(err)
		}
		// prompt = first half, then the continuation one token at a time,
		// after a detour through another continuation that is truncated away.
		P := n / 2
		c := m.NewCache()
		var b Batch
		for p := 0; p < P; p++ {
			b.Add(toks[p], p, 0, p+1, 0, 0)
		}
		if _, err := m.Forward(c, &b, ad, nil); err != nil {
			t.Fatal(err)
		}
		detour := Batch{}
		detour.Add(toks[0], P, 0, P+1, 0, 0)
		if _, err := m.Forward(c, &detour, ad, nil); err != nil {
			t.Fatal(err)
		}
		c.Truncate(P)
		// log-probs of tokens 1..P-1 come from a prompt pass that keeps every position
		want := make([]int, P)
		for i := range want {
			want[i] = i
		}
		hp, err := m.Forward(m.NewCache(), &b, ad, want)
		if err != nil {
			t.Fatal(err)
		}
		got := m.logProbs(hp[:(P-1)*m.Config.Hidden], int32s(toks[1:P]))
		last := hp[(P-1)*m.Config.Hidden:]
		for p := P; p < n; p++ {
			got = append(got, m.logProbs(last, []int32{int32(toks[p])})...)
			step := Batch{}
			step.Add(toks[p], p, 0, p+1, 0, 0)
			if last, err = m.Forward(c, &step, ad, []int{0}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range got {
			if d := math.Abs(float64(got[i] - whole[0][i])); d > 1e-4 {
				t.Fatalf("n=%d token %d: cached %v, whole %v", n, i+1, got[i], whole[0][i])
			}
		}
	}
}

func int32s(v []int) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// TestLoRAZeroBIsBase checks a fresh adapter (B = 0) leaves the model unchanged
// and a saved adapter loads back identical.
func TestAdapterSaveLoad(t *testing.T) {
	m, err := Load(writeSmall(t, Qwen2, "bf16"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	toks := randomTokens(rand.New(rand.NewPCG(3, 4)), 12, m.Config.VocabSize)
	seq := []Sequence{{Tokens: toks, From: 1}}
	base, _ := m.Score(seq, nil)
	fresh, err := m.NewAdapter(AdapterConfig{R: 8, LoraAlpha: 16, TargetModules: []string{"q", "k", "v", "o", "gate", "up", "down"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	same, _ := m.Score(seq, fresh)
	for i := range base[0] {
		if base[0][i] != same[0][i] {
			t.Fatalf("fresh adapter changed token %d: %v vs %v", i, same[0][i], base[0][i])
		}
	}
	ad := randomAdapter(t, m, "q_proj", "o_proj", "up_proj")
	dir := t.TempDir()
	if err := ad.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := m.LoadAdapter(dir)
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := m.Score(seq, ad)
	a2, _ := m.Score(seq, back)
	changed := false
	for i := range a1[0] {
		if a1[0][i] != a2[0][i] {
			t.Fatalf("reloaded adapter differs at token %d", i)
		}
		changed = changed || a1[0][i] != base[0][i]
	}
	if !changed {
		t.Error("a nonzero adapter did not change the log-probabilities")
	}
}

// TestLoadRejects checks each kind of bad checkpoint gives a clear error.
func TestLoadRejects(t *testing.T) {
	corrupt := func(t *testing.T, edit func(dir string)) error {
		dir := writeSmall(t, Qwen2, "f32")
		edit(dir)
		m, err := Load(dir)
		if err == nil {
			m.Close()
		}
		return err
	}
	rewriteConfig := func(old, new string) func(string) {
		return func(dir string) {
			p := filepath.Join(dir, "config.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644)
		}
	}
	for _, tc := range []struct {
		name string
		edit func(string)
		want string
	}{
		{"no config", func(d string) { os.Remove(filepath.Join(d, "config.json")) }, "config.json"},
		{"broken config", func(d string) { os.WriteFile(filepath.Join(d, "config.json"), []byte("{"), 0o644) }, "invalid JSON"},
		{"wrong shape", rewriteConfig(`"intermediate_size": 48`, `"intermediate_size": 50`), "mlp.gate_proj.weight"},
		{"missing tensor", rewriteConfig(`"num_hidden_layers": 2`, `"num_hidden_layers": 3`), `model.layers.2.input_layernorm.weight" is missing`},
		{"untied without lm_head", rewriteConfig(`"tie_word_embeddings": true`, `"tie_word_embeddings": false`), `lm_head.weight`},
		{"truncated weights", func(d string) {
			p := filepath.Join(d, "model.safetensors")
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()-10)
		}, "model.safetensors"},
		{"no weights", func(d string) { os.Remove(filepath.Join(d, "model.safetensors")) }, "safetensors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := corrupt(t, tc.edit)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestAdapterRejects checks adapters that do not fit the model are refused.
func TestAdapterRejects(t *testing.T) {
	m, err := Load(writeSmall(t, Qwen2, "f32"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	other := *smallConfig(Qwen2)
	other.Hidden, other.Heads, other.HeadDim = 48, 6, 8
	otherDir := t.TempDir()
	if err := WriteRandom(otherDir, &other, "f32", 1); err != nil {
		t.Fatal(err)
	}
	om, err := Load(otherDir)
	if err != nil {
		t.Fatal(err)
	}
	defer om.Close()
	foreign := t.TempDir()
	if err := randomAdapter(t, om, "q").Save(foreign); err != nil {
		t.Fatal(err)
	}
	if _, err := m.LoadAdapter(foreign); err == nil || !strings.Contains(err.Error(), "do not fit") {
		t.Errorf("adapter of another shape: %v", err)
	}
	good := t.TempDir()
	randomAdapter(t, m, "q").Save(good)
	cfgPath := filepath.Join(good, "adapter_config.json")
	b, _ := os.ReadFile(cfgPath)
	for _, tc := range []struct{ old, new, want string }{
		{`"use_dora": false`, `"use_dora": true`, "use_dora"},
		{`"r": 4`, `"r": 0`, "r = 0"},
		{`"q_proj"`, `"v_proj"`, "not in target_modules"},
		{`{`, `[`, "invalid JSON"},
		{`"r": 4`, `"r": 8`, "r = 8, but tensor"},                                      // PEFT refuses a rank mismatch
		{`"rank_pattern": null`, `"rank_pattern": {"q_proj": 2}`, "r = 2, but tensor"}, // a pattern gives the module's rank
		{`"rank_pattern": null`, `"rank_pattern": {"(": 2}`, "rank_pattern key"},
	} {
		os.WriteFile(cfgPath, []byte(strings.Replace(string(b), tc.old, tc.new, 1)), 0o644)
		if _, err := m.LoadAdapter(good); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s → %s: error %v, want mention of %q", tc.old, tc.new, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), good) {
			t.Errorf("error %v does not name the adapter", err)
		}
	}
	// A rank_pattern that agrees with the tensors is accepted.
	agree := strings.Replace(strings.Replace(string(b), `"rank_pattern": null`, `"rank_pattern": {"self_attn.q_proj": 4}`, 1), `"r": 4`, `"r": 8`, 1)
	os.WriteFile(cfgPath, []byte(agree), 0o644)
	if _, err := m.LoadAdapter(good); err != nil {
		t.Errorf("matching rank_pattern: %v", err)
	}
}

// TestPredictorMatchesScore: continuation log-probs with prefix reuse and
// packed continuations equal teacher-forced scores of the full sequences.
func TestPredictorMatchesScore(t *testing.T) {
	m, err := Load(writeSmall(t, Qwen2, "f32"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ad := randomAdapter(t, m, "q", "k", "v", "o", "gate", "up", "down")
	rng := rand.New(rand.NewPCG(7, 7))
	shared := randomTokens(rng, 20, m.Config.VocabSize)
	p := m.NewPredictor(ad)
	for row := 0; row < 4; row++ {
		prompt := append(append([]int{}, shared[:10+row]...), randomTokens(rng, 5, m.Config.VocabSize)...)
		if row == 3 {
			prompt = prompt[:len(prompt)-2] // a prompt that is a prefix of cached tokens
		}
		conts := [][]int{randomTokens(rng, 1, m.Config.VocabSize), randomTokens(rng, 3, m.Config.VocabSize), randomTokens(rng, 2, m.Config.VocabSize)}
		got, err := p.ContinuationLogProbs(prompt, conts)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range conts {
			s, err := m.Score([]Sequence{{Tokens: append(append([]int{}, prompt...), c...), From: len(prompt)}}, ad)
			if err != nil {
				t.Fatal(err)
			}
			var want float64
			for _, v := range s[0] {
				want += float64(v)
			}
			if math.Abs(got[i]-want) > 1e-4 {
				t.Errorf("row %d continuation %d: %v, scored %v", row, i, got[i], want)
			}
		}
	}
	if p.Reused == 0 {
		t.Error("no prompt tokens were reused from the cache")
	}
}

// TestMerge: a merged checkpoint scores like base + adapter (exactly up to
// float32 rounding for F32 weights, within BF16 rounding for BF16).
func TestMerge(t *testing.T) {
	for _, tc := range []struct {
		dtype string
		tol   float64
	}{{"f32", 1e-4}, {"bf16", 5e-2}} {
		m, err := Load(writeSmall(t, Llama, tc.dtype))
		if err != nil {
			t.Fatal(err)
		}
		ad := randomAdapter(t, m, "q", "v", "gate", "down")
		dir := t.TempDir()
		if err := m.Merge(ad, dir); err != nil {
			t.Fatal(err)
		}
		mm, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		toks := randomTokens(rand.New(rand.NewPCG(1, 1)), 20, m.Config.VocabSize)
		seq := []Sequence{{Tokens: toks, From: 1}}
		want, _ := m.Score(seq, ad)
		got, _ := mm.Score(seq, nil)
		for i := range want[0] {
			if d := math.Abs(float64(got[0][i] - want[0][i])); d > tc.tol {
				t.Errorf("%s: token %d: merged %v, adapter %v", tc.dtype, i, got[0][i], want[0][i])
			}
		}
		mm.Close()
		m.Close()
	}
}

// TestWriteRandomSharded: a checkpoint written shard by shard loads through
// its index and computes exactly what the single-file one does.
func TestWriteRandomSharded(t *testing.T) {
	single, sharded := t.TempDir(), t.TempDir()
	if err := WriteRandom(single, smallConfig(Llama), "bf16", 3); err != nil {
		t.Fatal(err)
	}
	old := randomShardBytes
	randomShardBytes = 20 << 10
	err := WriteRandom(sharded, smallConfig(Llama), "bf16", 3)
	randomShardBytes = old
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sharded, "model.safetensors.index.json")); err != nil {
		t.Fatal("no index written")
	}
	toks := randomTokens(rand.New(rand.NewPCG(2, 2)), 10, 300)
	var got [2][]float32
	for i, dir := range []string{single, sharded} {
		m, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		lp, err := m.Score([]Sequence{{Tokens: toks, From: 1}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got[i] = lp[0]
		m.Close()
	}
	if !slices.Equal(got[0], got[1]) {
		t.Errorf("sharded checkpoint scores %v, single file %v", got[1], got[0])
	}
}

// PackWeights changes the layout of the weights, not one bit of the result.
func TestPackWeightsSameScores(t *testing.T) {
	for _, tc := range []struct {
		dtype   string
		compute kernels.Compute
	}{{"bf16", kernels.ComputeF32}, {"f32", kernels.ComputeF32}, {"bf16", kernels.ComputeBF16}} {
		dtype := tc.dtype
		if tc.compute == kernels.ComputeBF16 && !kernels.HasBF16Compute() {
			continue // emulated: nothing to pack
		}
		m, err := Load(writeSmall(t, Qwen2, dtype))
		if err != nil {
			t.Fatal(err)
		}
		m.SetCompute(tc.compute)
		ad := randomAdapter(t, m, "q", "v", "down")
		rng := rand.New(rand.NewPCG(3, 4))
		seqs := []Sequence{{Tokens: randomTokens(rng, 70, m.Config.VocabSize), From: 1}, {Tokens: randomTokens(rng, 9, m.Config.VocabSize), From: 4}}
		want, err := m.Score(seqs, ad)
		if err != nil {
			t.Fatal(err)
		}
		if m.PackBytes() <= 0 {
			t.Fatalf("%s: PackBytes %d", dtype, m.PackBytes())
		}
		m.PackWeights()
		if !m.Layers[1].Down.W.Packed(m.compute) {
			t.Fatalf("%s: down_proj not packed", dtype)
		}
		got, err := m.Score(seqs, ad)
		if err != nil {
			t.Fatal(err)
		}
		for s := range want {
			if !slices.Equal(got[s], want[s]) {
				t.Fatalf("%s: sequence %d: packed %v, unpacked %v", dtype, s, got[s], want[s])
			}
		}
		m.Close()
	}
}
