package model

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unsafe"

	"github.com/gotrain/gotrain/kernels"
	"github.com/gotrain/gotrain/model/safetensors"
)

// LoadOptions are the options of LoadWith. The zero value is Load.
type LoadOptions struct {
	// Quantize is "" (keep the stored dtype), "int8" (Q8, blocks of 32),
	// "nf4" (QLoRA NormalFloat4, blocks of 64) or "nf4-dq" (NF4 with double
	// quantization of the block scales). The seven linear weights of each
	// layer (and every expert's) are quantized to it, an untied LM head to
	// Q8 (HeadQuantize); embedding, norms and router stay as stored.
	Quantize string
	// CacheDir overrides where the quantized cache is looked for and
	// written when the checkpoint directory is read-only (default
	// os.UserCacheDir()/gotrain). Tests set it.
	CacheDir string
	// NoCache skips reading and writing the quantized cache.
	NoCache bool
}

// QuantizeKinds lists the accepted LoadOptions.Quantize values.
var QuantizeKinds = []string{"int8", "nf4", "nf4-dq"}

// qcacheFormat marks a gotrain quantized cache in its metadata. v2 added
// the Q8 LM head: a v1 cache is stale and rebuilt.
const qcacheFormat = "gotrain-qcache-v2"

// HeadQuantize is what an untied LM head is quantized to under any
// LoadOptions.Quantize. Decoding reads the whole head for every token: in
// BF16 it was 0.62 of the 2.2 GB a Qwen3-30B-A3B NF4 token reads, in Q8
// (as llama.cpp keeps output.weight at Q8_0/Q6_K under its 4-bit types;
// bitsandbytes' QLoRA leaves lm_head in 16 bits) 0.35 GB. One head serves
// prefill (dequantized panels) and decoding (dotted from its bytes), so
// both compute the same logits; the LM head moves log-probabilities by
// a small fraction of NF4's own error (TestQuantLogprobs measures both).
// A tied head is the embedding table, looked up by rows, and stays as
// stored.
const HeadQuantize = "int8"

// quantizeMatrix quantizes w to kind.
func quantizeMatrix(w *kernels.Matrix, kind string) *kernels.Matrix {
	switch kind {
	case "int8":
		return kernels.QuantizeQ8(w)
	case "nf4":
		return kernels.QuantizeNF4(w, false)
	default: // "nf4-dq"
		return kernels.QuantizeNF4(w, true)
	}
}

// linears returns pointers to every quantizable weight with its tensor name.
func (m *Model) linears() ([]string, []**kernels.Matrix) {
	var names []string
	var ws []**kernels.Matrix
	for i := range m.Layers {
		L := &m.Layers[i]
		p := fmt.Sprintf("model.layers.%d.", i)
		for _, e := range []struct {
			n string
			w **kernels.Matrix
		}{
			{"self_attn.q_proj", &L.Q.W}, {"self_attn.k_proj", &L.K.W}, {"self_attn.v_proj", &L.V.W},
			{"self_attn.o_proj", &L.O.W}, {"mlp.gate_proj", &L.Gate.W}, {"mlp.up_proj", &L.Up.W},
			{"mlp.down_proj", &L.Down.W},
		} {
			if *e.w == nil { // a sparse layer's dense MLP
				continue
			}
			names = append(names, p+e.n+".weight")
			ws = append(ws, e.w)
		}
		if L.MoE == nil {
			continue
		}
		// The experts are quantized like the other linear weights; the router
		// (E × H, a fraction of a percent of a layer) stays as stored, since
		// its rounding would move tokens between experts.
		for e := range L.MoE.Experts {
			ex := &L.MoE.Experts[e]
			for _, mod := range []Module{ModGate, ModUp, ModDown} {
				names = append(names, expertPath(i, e, mod)+".weight")
				ws = append(ws, &ex.module(mod).W)
			}
		}
	}
	return names, ws
}

// quantizable returns linears() and, when untied, the LM head, which is
// quantized to HeadQuantize whatever the layers' kind.
func (m *Model) quantizable() ([]string, []**kernels.Matrix) {
	names, ws := m.linears()
	if m.LMHead != nil && m.LMHead != m.Embed {
		names, ws = append(names, headName), append(ws, &m.LMHead)
	}
	return names, ws
}

// headName is the LM head's tensor name.
const headName = "lm_head.weight"

// kindOf is what the tensor name is quantized to under kind.
func kindOf(name, kind string) string {
	if name == headName {
		return HeadQuantize
	}
	return kind
}

// quantize applies opt.Quantize to the loaded model: from the cache when a
// valid one exists, else by converting and then writing the cache.
func (m *Model) quantize(opt LoadOptions) error {
	kind := opt.Quantize
	if kind == "" {
		return nil
	}
	if !slices.Contains(QuantizeKinds, kind) {
		return fmt.Errorf("--quantize %q: want one of %s", kind, strings.Join(QuantizeKinds, ", "))
	}
	names, ws := m.quantizable()
	if opt.NoCache || m.Dir == "" {
		m.quantizeAll(names, ws, kind)
		return nil
	}
	key, err := checkpointKey(m.Dir)
	if err != nil {
		return err
	}
	paths := qcachePaths(m.Dir, kind, opt.CacheDir)
	for _, p := range paths {
		if f, err := openQCache(p, key, kind); err == nil {
			if err := m.useQCache(f, names, ws); err != nil {
				f.Close() // a damaged cache: quantize again and overwrite it
				continue
			}
			m.qcache = f
			return nil
		}
	}
	m.quantizeAll(names, ws, kind)
	tensors := qcacheTensors(names, ws)
	meta := map[string]string{"format": qcacheFormat, "kind": kind, "key": key}
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			continue
		}
		if err := safetensors.Write(p, tensors, meta); err == nil {
			// Switch to the mapped file, so the first run holds the same
			// (file-backed, reclaimable) pages as later ones and the heap
			// copies can go.
			if f, err := openQCache(p, key, kind); err == nil {
				if m.useQCache(f, names, ws) == nil {
					m.qcache = f
				} else {
					f.Close()
				}
			}
			return nil
		}
	}
	// No writable place: the quantized weights still work, only uncached.
	return nil
}

// quantizeAll quantizes every linear weight, releasing each one's mapped
// BF16 pages as soon as it is converted: the first run of a 14B model would
// otherwise hold all 29.5 GB it read in its resident set beside the result.
func (m *Model) quantizeAll(names []string, ws []**kernels.Matrix, kind string) {
	for i, w := range ws {
		*w = quantizeMatrix(*w, kindOf(names[i], kind))
		if m.ckpt != nil {
			m.ckpt.Evict(names[i])
		}
	}
}

// QCachePath returns where the quantized cache of dir is written first
// (beside the checkpoint).
func QCachePath(dir, kind string) string {
	return filepath.Join(dir, "gotrain-"+kind+".qcache.safetensors")
}

// qcachePaths lists the cache locations in order: beside the checkpoint,
// then under the user cache directory (named by the checkpoint's absolute
// path, for read-only checkpoint directories).
func qcachePaths(dir, kind, cacheDir string) []string {
	paths := []string{QCachePath(dir, kind)}
	if cacheDir == "" {
		if c, err := os.UserCacheDir(); err == nil {
			cacheDir = filepath.Join(c, "gotrain")
		}
	}
	if cacheDir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			abs = dir
		}
		h := sha256.Sum256([]byte(abs))
		paths = append(paths, filepath.Join(cacheDir, hex.EncodeToString(h[:8])+"-gotrain-"+kind+".qcache.safetensors"))
	}
	return paths
}

// checkpointKey identifies the checkpoint's contents by the names, sizes and
// modification times of its weight and config files: a changed checkpoint
// gets a new key and is re-quantized.
func checkpointKey(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, e := range ents { // ReadDir sorts by name
		n := e.Name()
		if strings.HasSuffix(n, ".qcache.safetensors") || strings.HasPrefix(n, ".") {
			continue
		}
		if !strings.HasSuffix(n, ".safetensors") && n != safetensors.IndexFileName && n != "config.json" {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\n", n, fi.Size(), fi.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// openQCache opens path if it is a cache of kind with the given key.
func openQCache(path, key, kind string) (*safetensors.File, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	md := f.Metadata()
	if md["format"] != qcacheFormat || md["kind"] != kind || md["key"] != key {
		f.Close()
		return nil, errors.New("stale quantized cache")
	}
	return f, nil
}

// qcacheTensors lays out the quantized matrices as safetensors tensors:
// <name>.q (U8 [Rows × row bytes]), then <name>.scales (F32 [Rows × blocks])
// or, double-quantized, <name>.qscales (I8), <name>.dqscales (F32) and
// <name>.dqmean (F32 [1]).
func qcacheTensors(names []string, ws []**kernels.Matrix) []safetensors.Tensor {
	var ts []safetensors.Tensor
	for i, n := range names {
		w := *ws[i]
		q := w.Quant
		nb := kernels.QuantBlocks(w.DType, w.Cols)
		ts = append(ts, safetensors.Tensor{Name: n + ".q", DType: "U8", Shape: []int{w.Rows, kernels.QuantRowBytes(w.DType, w.Cols)}, Data: q.Q})
		if q.Scales != nil {
			ts = append(ts, safetensors.Tensor{Name: n + ".scales", DType: safetensors.F32, Shape: []int{w.Rows, nb}, Data: safetensors.BytesOfF32(q.Scales)})
			continue
		}
		ts = append(ts,
			safetensors.Tensor{Name: n + ".qscales", DType: "I8", Shape: []int{len(q.QScales)}, Data: unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(q.QScales))), len(q.QScales))},
			safetensors.Tensor{Name: n + ".dqscales", DType: safetensors.F32, Shape: []int{len(q.DQScales)}, Data: safetensors.BytesOfF32(q.DQScales)},
			safetensors.Tensor{Name: n + ".dqmean", DType: safetensors.F32, Shape: []int{1}, Data: safetensors.BytesOfF32([]float32{q.DQMean})})
	}
	return ts
}

// useQCache points the quantized weights at the mapped cache f, checking every
// tensor's shape against the model's.
func (m *Model) useQCache(f *safetensors.File, names []string, ws []**kernels.Matrix) error {
	kind := f.Metadata()["kind"]
	out := make([]*kernels.Matrix, len(ws))
	for i, n := range names {
		dt := kernels.NF4
		if kindOf(n, kind) == "int8" {
			dt = kernels.Q8
		}
		rows, cols := (*ws[i]).Rows, (*ws[i]).Cols
		q := &kernels.QuantData{}
		t, ok := f.Tensor(n + ".q")
		if !ok || t.DType != "U8" {
			return fmt.Errorf("tensor %q missing or not U8", n+".q")
		}
		q.Q = t.Data
		if t, ok := f.Tensor(n + ".scales"); ok {
			v, err := t.F32()
			if err != nil {
				return err
			}
			q.Scales = v
		} else {
			qs, ok1 := f.Tensor(n + ".qscales")
			dq, ok2 := f.Tensor(n + ".dqscales")
			mean, ok3 := f.Tensor(n + ".dqmean")
			if !ok1 || !ok2 || !ok3 || qs.DType != "I8" {
				return fmt.Errorf("tensor %q: scales missing", n)
			}
			var err error
			if q.DQScales, err = dq.F32(); err != nil {
				return err
			}
			mv, err := mean.ToF32()
			if err != nil || len(mv) != 1 {
				return fmt.Errorf("tensor %q: bad dqmean", n+".dqmean")
			}
			q.DQMean = mv[0]
			q.QScales = unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(qs.Data))), len(qs.Data))
		}
		w := &kernels.Matrix{Rows: rows, Cols: cols, DType: dt, Quant: q}
		if err := w.Validate(); err != nil {
			return fmt.Errorf("tensor %q: %w", n, err)
		}
		out[i] = w
	}
	for i, w := range out {
		*ws[i] = w
	}
	return nil
}
