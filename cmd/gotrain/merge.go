package main

import "fmt"

func runMerge(args []string) error {
	fs := newFlags("merge", "--base DIR --adapter DIR --out DIR")
	base := fs.String("base", "", "base model directory")
	adapterDir := fs.String("adapter", "", "PEFT LoRA adapter directory")
	out := fs.String("out", "", "directory for the merged checkpoint (the base's dtype)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *base == "" || *adapterDir == "" || *out == "" {
		return fmt.Errorf("--base, --adapter and --out are required")
	}
	m, ad, err := loadModel(*base, *adapterDir)
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
