package safetensors_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/gotrain/gotrain/model/safetensors"
)

// Example writes a small sharded checkpoint and reads it back.
func Example() {
	dir, err := os.MkdirTemp("", "ckpt")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	w := []float32{1, 2, 3, 4, 5, 6}
	bf := make([]uint16, len(w))
	safetensors.BF16FromF32(bf, w)
	tensors := []safetensors.Tensor{
		{Name: "model.embed_tokens.weight", DType: safetensors.BF16, Shape: []int{2, 3}, Data: safetensors.BytesOfU16(bf)},
		{Name: "model.norm.weight", DType: safetensors.F32, Shape: []int{3}, Data: safetensors.BytesOfF32(w[:3])},
	}
	if err := safetensors.WriteSharded(dir, tensors, 8); err != nil {
		log.Fatal(err)
	}
	shards, _ := filepath.Glob(filepath.Join(dir, "model-*.safetensors"))

	c, err := safetensors.OpenDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	t, _ := c.Tensor("model.embed_tokens.weight")
	v, err := t.ToF32()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(shards), "shards,", c.TotalBytes(), "bytes")
	fmt.Println(c.Names())
	fmt.Println(t.DType, t.Shape, v)
	// Output:
	// 2 shards, 24 bytes
	// [model.embed_tokens.weight model.norm.weight]
	// BF16 [2 3] [1 2 3 4 5 6]
}
