package model

import (
	"fmt"
	"os"

	"github.com/gotrain/gotrain/internal/inputfile"
	"github.com/gotrain/gotrain/model/safetensors"
)

// mergeShardBytes is the shard size of merged checkpoints above it (HF's
// save_pretrained default is 5 GB).
const mergeShardBytes = 5_000_000_000

// Merge writes into dir a checkpoint whose adapted weights are W + s·B·A,
// in the base's dtype, with every other tensor copied unchanged; config.json,
// generation_config.json and the tokenizer files are copied along, so the
// result loads anywhere the base does.
func (m *Model) Merge(ad *Adapter, dir string) error {
	if m.ckpt == nil {
		return fmt.Errorf("model: merge needs a model loaded from a checkpoint")
	}
	adapted := map[string]*LoRA{}
	ad.each(func(path string, lr *LoRA) { adapted[path+".weight"] = lr })
	if _, ok := ad.Saved["model.embed_tokens.weight"]; ok && m.tiedHead() {
		return fmt.Errorf("model: merge: the adapter trains embed_tokens of a model whose LM head is tied to it; a merged checkpoint would tie them again")
	}
	saved := map[string]bool{}
	var ts []safetensors.Tensor
	for _, name := range m.ckpt.Names() {
		t, _ := m.ckpt.Tensor(name)
		out := safetensors.Tensor{Name: name, DType: t.DType, Shape: t.Shape, Data: t.Data}
		if v, ok := ad.Saved[name]; ok { // modules_to_save replace the tensor
			data, err := encodeAs(v, t.DType)
			if err != nil {
				return fmt.Errorf("model: merge: tensor %q: %w", name, err)
			}
			out.Data, saved[name] = data, true
		}
		if lr := adapted[name]; lr != nil {
			w, err := t.ToF32()
			if err != nil {
				return fmt.Errorf("model: merge: tensor %q: %w", name, err)
			}
			// W[o,i] += s·Σ_r B[o,r]·A[r,i]
			for o := 0; o < lr.Out; o++ {
				row := w[o*lr.In : (o+1)*lr.In]
				for r := 0; r < lr.R; r++ {
					b := lr.Scale * lr.B[o*lr.R+r]
					a := lr.A[r*lr.In : (r+1)*lr.In]
					for i := range row {
						row[i] += b * a[i]
					}
				}
			}
			data, err := encodeAs(w, t.DType)
			if err != nil {
				return fmt.Errorf("model: merge: tensor %q: %w", name, err)
			}
			out.Data = data
			delete(adapted, name)
		}
		ts = append(ts, out)
	}
	for name := range adapted {
		return fmt.Errorf("model: merge: the adapter adapts %q, which the checkpoint lacks", name)
	}
	for name := range ad.Saved {
		if !saved[name] {
			return fmt.Errorf("model: merge: the adapter saves %q, which the checkpoint lacks (a tied LM head)", name)
		}
	}
	return writeCheckpoint(m.Dir, dir, ts)
}

// copyFile copies src to dst through a temporary file; a missing src is not an error.
func copyFile(src, dst string) error {
	b, err := inputfile.ReadFile(src, inputfile.MaxLargeFile)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	return writeFileAtomic(dst, b)
}
