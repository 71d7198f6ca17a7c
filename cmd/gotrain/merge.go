package main

import "fmt"

func runMerge(args []string) error {
	fs := newFlags("merge", "--base DIR --adapter DIR --out DIR")
	base := fs.String("base", "", "base model: a directory, a Hugging Face repo id ORG/NAME[@REV] or an alias (qwen2.5-14b, llama3-8b, ...)")
	adapterDir := fs.String("adapter", "", "PEFT LoRA adapter directory")
	out := fs.String("out", "", "directory for the merged checkpoint (the base's dtype)")
	overwrite := fs.Bool("overwrite", false, "replace a model already in --out")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *base == "" || *adapterDir == "" || *out == "" {
		return fmt.Errorf("--base, --adapter and --out are required")
	}
	if err := resolveFlags(base, adapterDir); err != nil {
		return err
	}
	if err := checkOutputs([]flagPath{{"out", *out}}, []flagPath{{"base", *base}, {"adapter", *adapterDir}}); err != nil {
		return err
	}
	if err := checkReplace("out", *out, *overwrite, "model", modelMarks...); err != nil {
		return err
	}
	m, ad, err := loadModel(*base, *adapterDir, "", "f32", false) // merging needs the stored weights
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Merge(ad, *out); err != nil {
		return err
	}
	fmt.Printf("merged %s into %s: %s\n", *adapterDir, *base, *out)
	return nil
}
