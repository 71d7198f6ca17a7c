package model

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/model/safetensors"
)

// TestTiedWithStoredHead: a checkpoint whose config says
// tie_word_embeddings but which also stores lm_head.weight loads as
// transformers 5's from_pretrained does (PreTrainedModel.tie_weights): a
// stored head equal to the embedding is tied to it (one matrix, one
// parameter in full finetuning), one that differs is used as the head, as
// if the config said untied.
func TestTiedWithStoredHead(t *testing.T) {
	c := smallConfig(Qwen3)
	if !c.TieEmbeddings {
		t.Fatal("want a tied test shape")
	}
	base := t.TempDir()
	if err := WriteRandom(base, c, "f32", 7); err != nil {
		t.Fatal(err)
	}
	// withHead copies base, adding lm_head.weight (the embedding's values,
	// or random ones) and optionally untying the config.
	withHead := func(equal, untie bool) string {
		dir := t.TempDir()
		ck, err := safetensors.OpenDir(base)
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		var ts []safetensors.Tensor
		for _, n := range ck.Names() {
			x, _ := ck.Tensor(n)
			ts = append(ts, safetensors.Tensor{Name: n, DType: x.DType, Shape: x.Shape, Data: slices.Clone(x.Data)})
		}
		emb, _ := ck.Tensor("model.embed_tokens.weight")
		head := slices.Clone(emb.Data)
		if !equal {
			rng := rand.New(rand.NewPCG(3, 3))
			for i := range head {
				head[i] = byte(rng.IntN(256))
			}
			// keep the floats finite: clear each float32's top exponent bit
			for i := 3; i < len(head); i += 4 {
				head[i] &= 0x3f
			}
		}
		ts = append(ts, safetensors.Tensor{Name: "lm_head.weight", DType: emb.DType, Shape: emb.Shape, Data: head})
		if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
			t.Fatal(err)
		}
		cfg, err := os.ReadFile(filepath.Join(base, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if untie {
			cfg = []byte(strings.Replace(string(cfg), `"tie_word_embeddings": true`, `"tie_word_embeddings": false`, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	seqs := []Sequence{{Tokens: []int{5, 17, 250, 3, 99, 41}, From: 2}}
	score := func(dir string) ([]float32, *Model) {
		m, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		lp, err := m.Score(seqs, nil)
		if err != nil {
			t.Fatal(err)
		}
		return lp[0], m
	}
	want, _ := score(base)
	got, m := score(withHead(true, false))
	if !slices.Equal(got, want) || !m.tiedHead() {
		t.Errorf("equal stored head: tied %v, logprobs %v, want %v (tied)", m.tiedHead(), got, want)
	}
	f, err := NewFull(m)
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := f.Params(); slices.Contains(names, "lm_head.weight") {
		t.Errorf("equal stored head: full finetuning trains lm_head.weight apart: %v", names)
	}
	got, m = score(withHead(false, false))
	untied, _ := score(withHead(false, true))
	if !slices.Equal(got, untied) || m.tiedHead() || slices.Equal(got, want) {
		t.Errorf("different stored head: tied %v, logprobs %v, want %v (the untied model's)", m.tiedHead(), got, untied)
	}
}
