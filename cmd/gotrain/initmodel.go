package main

import (
	"fmt"

	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/tokenize"
)

func runInitModel(args []string) error {
	fs := newFlags("init-model", "--out DIR [--arch qwen2|llama] [--size tiny|small|0.5b] [--dtype bf16|f32] [--seed N]")
	arch := fs.String("arch", "qwen2", "architecture: qwen2 (Qwen2.5 tokenizer) or llama (Llama 3 tokenizer)")
	size := fs.String("size", "tiny", "shape: tiny, small, 0.5b or 14b (Qwen2.5-0.5B's and Qwen2.5-14B's shapes)")
	dtype := fs.String("dtype", "bf16", "weight dtype: bf16 or f32")
	seed := fs.Uint64("seed", 1, "random seed")
	out := fs.String("out", "", "output directory (required)")
	overwrite := fs.Bool("overwrite", false, "replace a model already in --out")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	if err := checkReplace("out", *out, *overwrite, "model", modelMarks...); err != nil {
		return err
	}
	tok := map[model.Arch]string{model.Qwen2: "qwen2.5", model.Llama: "llama3"}[model.Arch(*arch)]
	if tok == "" {
		return fmt.Errorf("--arch %q: want qwen2 or llama", *arch)
	}
	cfg, err := model.InitCheckpoint(*out, model.InitOptions{Arch: model.Arch(*arch), Size: *size, DType: *dtype, Seed: *seed})
	if err != nil {
		return err
	}
	if err := tokenize.WriteBundled(*out, tok); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %s %s, %d layers, hidden %d, vocab %d, %s weights, %s tokenizer\n",
		*out, *arch, *size, cfg.Layers, cfg.Hidden, cfg.VocabSize, *dtype, tok)
	return nil
}
