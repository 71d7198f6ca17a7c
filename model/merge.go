package model

import (
	"fmt"
	"os"
	"path/filepath"

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
	for l, layer := range ad.Layers {
		for mod, lr := range layer {
			if lr != nil {
				adapted[fmt.Sprintf("model.layers.%d.%s.weight", l, modulePaths[mod])] = lr
			}
		}
	}
	var ts []safetensors.Tensor
	var total int64
	for _, name := range m.ckpt.Names() {
		t, _ := m.ckpt.Tensor(name)
		out := safetensors.Tensor{Name: name, DType: t.DType, Shape: t.Shape, Data: t.Data}
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
			switch t.DType {
			case safetensors.F32:
				out.Data = safetensors.BytesOfF32(w)
			case safetensors.BF16:
				u := make([]uint16, len(w))
				safetensors.BF16FromF32(u, w)
				out.Data = safetensors.BytesOfU16(u)
			case safetensors.F16:
				u := make([]uint16, len(w))
				for i, v := range w {
					u[i] = safetensors.F32ToF16(v)
				}
				out.Data = safetensors.BytesOfU16(u)
			default:
				return fmt.Errorf("model: merge: tensor %q has dtype %s", name, t.DType)
			}
			delete(adapted, name)
		}
		total += int64(len(out.Data))
		ts = append(ts, out)
	}
	for name := range adapted {
		return fmt.Errorf("model: merge: the adapter adapts %q, which the checkpoint lacks", name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	var err error
	if total > mergeShardBytes {
		err = safetensors.WriteSharded(dir, ts, mergeShardBytes)
	} else {
		err = safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"})
	}
	if err != nil {
		return fmt.Errorf("model: merge: %w", err)
	}
	for _, f := range []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
		"special_tokens_map.json", "chat_template.jinja", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json"} {
		if err := copyFile(filepath.Join(m.Dir, f), filepath.Join(dir, f)); err != nil {
			return err
		}
	}
	return nil
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
