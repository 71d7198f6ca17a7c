package main

import (
	"fmt"

	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/tokenize"
)

func runInitModel(args []string) error {
	fs := newFlags("init-model", "--out DIR [--arch qwen2|qwen3|qwen3moe|llama] [--size tiny|small|...] [--dtype bf16|f32] [--seed N]")
	arch := fs.String("arch", "qwen2", "architecture: qwen2 (Qwen2.5 tokenizer), qwen3 or qwen3moe (Qwen3 tokenizer) or llama (Llama 3 tokenizer)")
	size := fs.String("size", "tiny", "shape: tiny or small (tests); qwen2 and llama: 0.5b, 14b (Qwen2.5-0.5B's and -14B's shapes); qwen3: 0.6b, 1.7b, 4b, 8b, 14b, 32b (Qwen3's); qwen3moe: 30b-a3b (Qwen3-30B-A3B's: 61 GB in bf16)")
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
	tok := bundledTokenizer(model.ParseArch(*arch))
	if tok == "" {
		return fmt.Errorf("--arch %q: want qwen2, qwen3, qwen3moe or llama", *arch)
	}
	cfg, err := model.InitCheckpoint(*out, model.InitOptions{Arch: model.ParseArch(*arch), Size: *size, DType: *dtype, Seed: *seed})
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
