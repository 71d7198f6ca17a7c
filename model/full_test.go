package model

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotrain/gotrain/model/safetensors"
)

// TestFullGradFiniteDifference checks every kind of full-finetuning gradient
// (embedding, norms, biases, each linear, the final norm, tied and untied
// heads) against central differences of the loss, on the entry of each
// tensor with the largest gradient and two random ones.
func TestFullGradFiniteDifference(t *testing.T) {
	for _, tc := range []struct {
		arch Arch
		bias bool
	}{{Qwen2, false}, {Llama, true}, {Qwen3, false}} {
		t.Run(string(tc.arch), func(t *testing.T) {
			c := smallConfig(tc.arch)
			if tc.bias { // Llama: untied head, attention and MLP biases
				c.TieEmbeddings, c.QKVBias, c.OBias, c.MLPBias = false, true, true, true
			}
			dir := t.TempDir()
			if err := WriteRandom(dir, c, "f32", 7); err != nil {
				t.Fatal(err)
			}
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			f, err := NewFull(m)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(9, 9))
			V := m.Config.VocabSize
			b := completionBatch([][2][]int{
				{randomTokens(rng, 5, V), randomTokens(rng, 4, V)},
				{randomTokens(rng, 3, V), randomTokens(rng, 6, V)},
			})
			g := f.ZerosLike()
			if _, err := f.LossAndGrad(b, g, TrainOptions{}); err != nil {
				t.Fatal(err)
			}
			lossAt := func() float64 {
				l, err := f.LossAndGrad(b, f.ZerosLike(), TrainOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			names, ws := f.Params()
			_, gs := g.Params()
			if len(gs) != len(ws) {
				t.Fatalf("%d gradients for %d tensors", len(gs), len(ws))
			}
			for k, w := range ws {
				gk := gs[k]
				big := 0
				for i, v := range gk {
					if math.Abs(float64(v)) > math.Abs(float64(gk[big])) {
						big = i
					}
				}
				scale := math.Abs(float64(gk[big]))
				if scale == 0 {
					t.Errorf("%s: gradient all zero", names[k])
					continue
				}
				for _, i := range []int{big, rng.IntN(len(w)), rng.IntN(len(w))} {
					fd := centralDiff(w, i, 1e-2, lossAt)
					if d := math.Abs(fd - float64(gk[i])); d > 1e-2*scale+1e-4 {
						t.Errorf("%s [%d]: gradient %v, finite difference %v", names[k], i, gk[i], fd)
					}
				}
			}
		})
	}
}

// TestFullSaveLoad: a Full saved in the base's dtype loads as a model equal
// to it, and the float32 master weights round-trip exactly.
func TestFullSaveLoad(t *testing.T) {
	m, err := Load(writeSmall(t, Qwen2, "bf16"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f, err := NewFull(m)
	if err != nil {
		t.Fatal(err)
	}
	_, ws := f.Params()
	for _, w := range ws {
		for i := range w {
			w[i] += 0.125 // moves every weight
		}
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := f.Save(out); err != nil {
		t.Fatal(err)
	}
	m2, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if m2.Embed.DType != m.Embed.DType || !m2.tiedHead() {
		t.Errorf("saved model: embedding dtype %v (base %v), tied %v", m2.Embed.DType, m.Embed.DType, m2.tiedHead())
	}
	f2, err := NewFull(m2)
	if err != nil {
		t.Fatal(err)
	}
	_, ws2 := f2.Params()
	for k := range ws {
		for i, v := range ws[k] {
			if d := math.Abs(float64(v - ws2[k][i])); d > 1e-2*max(1, math.Abs(float64(v))) {
				t.Fatalf("tensor %d [%d]: saved %v, reloaded %v", k, i, v, ws2[k][i])
			}
		}
	}
	master := filepath.Join(t.TempDir(), "master")
	if err := f.SaveMaster(master); err != nil {
		t.Fatal(err)
	}
	if err := f2.LoadMaster(master); err != nil {
		t.Fatal(err)
	}
	for k := range ws {
		for i, v := range ws[k] {
			if v != ws2[k][i] {
				t.Fatalf("master tensor %d [%d]: %v, reloaded %v", k, i, v, ws2[k][i])
			}
		}
	}
}

// fullBatch reads a full-batch.json fixture (make_full_fixture.py).
func fullBatch(t *testing.T, dir string) (*TrainBatch, float64) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "full-batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gb gradBatch
	if err := json.Unmarshal(raw, &gb); err != nil {
		t.Fatal(err)
	}
	var seqs [][2][]int
	for _, s := range gb.Sequences {
		seqs = append(seqs, [2][]int{s.PromptIDs, s.CompletionIDs})
	}
	return completionBatch(seqs), gb.Loss
}

// TestFullGoldenGradients compares the loss and the gradient of every stored
// tensor with the PyTorch reference (scripts/reference/make_full_fixture.py)
// on a tied BF16 Qwen2, an odd-shaped untied Llama with biases everywhere
// and two Qwen3 (their q_norm and k_norm weights included).
func TestFullGoldenGradients(t *testing.T) {
	for _, name := range []string{"tiny-qwen2-bf16", "tiny-odd-llama", "tiny-qwen3-f32", "tiny-qwen3-bf16", "tiny-qwen3moe-f32", "tiny-qwen3moe-bf16"} {
		t.Run(name, func(t *testing.T) {
			m, dir := loadFixture(t, name)
			f, err := NewFull(m)
			if err != nil {
				t.Fatal(err)
			}
			b, want := fullBatch(t, dir)
			g := f.ZerosLike()
			loss, err := f.LossAndGrad(b, g, TrainOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(loss - want); d > 1e-5*want {
				t.Errorf("loss %v, reference %v", loss, want)
			}
			ref, err := safetensors.Open(filepath.Join(dir, "full-grad.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			names, gs := g.Params()
			if len(names) != len(ref.Names()) {
				t.Errorf("%d gradients, the reference has %d", len(names), len(ref.Names()))
			}
			worst := 0.0
			for k, name := range names {
				tn, ok := ref.Tensor(name)
				if !ok {
					t.Fatalf("reference has no %s", name)
				}
				rg, err := tn.ToF32()
				if err != nil {
					t.Fatal(err)
				}
				rel := relErr(gs[k], rg)
				worst = max(worst, rel)
				if rel > 1e-4 {
					t.Errorf("%s: relative error %.2e", name, rel)
				}
			}
			t.Logf("loss %.6f (reference %.6f), worst relative gradient error %.2e over %d tensors", loss, want, worst, len(names))
		})
	}
}

// relErr is ‖got − want‖ / ‖want‖.
func relErr(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i] - want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num / max(den, 1e-30))
}

// TestPlanFull: FullParams counts exactly the tensors a Full trains; full
// finetuning of the 0.5B shape with AdamW at 2048 tokens a step fits in
// 24 GiB, and 8-bit moments take a quarter of the room.
func TestPlanFull(t *testing.T) {
	for _, tied := range []bool{true, false} {
		c := smallConfig(Llama)
		c.TieEmbeddings, c.QKVBias, c.OBias, c.MLPBias = tied, true, true, !tied
		dir := t.TempDir()
		if err := WriteRandom(dir, c, "bf16", 1); err != nil {
			t.Fatal(err)
		}
		m, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		f, err := NewFull(m)
		if err != nil {
			t.Fatal(err)
		}
		_, ts := f.Params()
		var n int64
		for _, w := range ts {
			n += int64(len(w))
		}
		if FullParams(&m.Config) != n {
			t.Errorf("tied %v: FullParams %d, a Full trains %d", tied, FullParams(&m.Config), n)
		}
		m.Close()
	}
	c, _ := ConfigFor(Qwen2, "0.5b")
	if n := FullParams(c); n < 490e6 || n > 500e6 {
		t.Errorf("0.5B shape: %d parameters, want about 494M", n)
	}
	in := PlanInput{WeightDType: "BF16", Full: true, Optimizer: "adamw", BatchTokens: 2048}
	p := PlanMemory(c, in)
	t.Logf("0.5B full finetuning, AdamW, 2048 tokens:\n%s", p)
	if p.Total > 24<<30 || p.Total < 8<<30 {
		t.Errorf("0.5B full AdamW plan %s, want 8-24 GiB", FormatBytes(p.Total))
	}
	in.Optimizer = "adamw8bit"
	p8 := PlanMemory(c, in)
	if d := p.Total - p8.Total; d < 5*FullParams(c) || d > 6*FullParams(c) {
		t.Errorf("8-bit moments save %s, want about 6 bytes a weight", FormatBytes(d))
	}
}

// TestFullSaveRefusesBaseDir: saving over the mapped base checkpoint is
// refused, not a corrupted read.
func TestFullSaveRefusesBaseDir(t *testing.T) {
	dir := writeSmall(t, Qwen2, "f32")
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f, err := NewFull(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Save(dir); err == nil {
		t.Error("saved over the base checkpoint")
	}
}
