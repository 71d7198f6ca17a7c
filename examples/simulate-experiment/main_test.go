package main

import (
	"testing"

	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/tokenize"
)

// TestRun runs the example on a tiny random model.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	if _, err := model.InitCheckpoint(dir, model.InitOptions{Arch: model.Qwen2, Size: "tiny", DType: "bf16", Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if err := tokenize.WriteBundled(dir, "qwen2.5"); err != nil {
		t.Fatal(err)
	}
	if err := run(dir, "", "", 4); err != nil {
		t.Fatal(err)
	}
}
