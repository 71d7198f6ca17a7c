package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/gotrain/gotrain/internal/atomicfile"
)

// Write writes tensors and metadata to path as one .safetensors file. Like
// Hugging Face's writer it lays tensors out by element size, largest first,
// then by name, and pads the header with spaces to a multiple of 8 bytes:
// with power-of-two element sizes every tensor then starts aligned to its
// element size when mapped (so F32 and BF16 views need no copy), without
// gaps between tensors. The file is written
// to a temporary name, synced and renamed, so readers never see half a file
// (and mappings of an older file at path stay valid).
//
// Hugging Face transformers expects metadata {"format": "pt"} on model
// weights; WriteSharded adds it, callers of Write should pass it.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	header, order, err := buildHeader(tensors, metadata)
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	err = atomicfile.Write(path, func(w io.Writer) error {
		var lenBuf [8]byte
		binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
		w.Write(lenBuf[:])
		w.Write(header)
		for _, i := range order {
			if _, err := w.Write(tensors[i].Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return nil
}

// buildHeader validates tensors and returns the padded JSON header and the
// tensor indices in write order (element size descending, then name).
func buildHeader(tensors []Tensor, metadata map[string]string) ([]byte, []int, error) {
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return tensors[order[a]].Name < tensors[order[b]].Name })
	for k, i := range order {
		t := &tensors[i]
		if t.Name == metadataKey {
			return nil, nil, fmt.Errorf("tensor name %q is reserved", metadataKey)
		}
		if k > 0 && tensors[order[k-1]].Name == t.Name {
			return nil, nil, fmt.Errorf("duplicate tensor %q", t.Name)
		}
		if !utf8.ValidString(t.Name) {
			return nil, nil, fmt.Errorf("tensor %q: name is not valid UTF-8", t.Name)
		}
		if err := t.check(); err != nil {
			return nil, nil, err
		}
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, fmt.Errorf("metadata %q: not valid UTF-8", k)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { // stable: names stay sorted within a size
		return tensors[order[a]].DType.bits() > tensors[order[b]].DType.bits()
	})
	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata) // keys sorted
		if err != nil {
			return nil, nil, fmt.Errorf("metadata: %w", err)
		}
		b.WriteString(`"` + metadataKey + `":`)
		b.Write(m)
	}
	var off int64
	for k, i := range order {
		t := &tensors[i]
		if k > 0 || len(metadata) > 0 {
			b.WriteByte(',')
		}
		name, err := json.Marshal(t.Name)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		b.Write(name)
		b.WriteString(`:{"dtype":`)
		b.WriteString(strconv.Quote(string(t.DType))) // known dtype names are plain ASCII
		b.WriteString(`,"shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		end := off + int64(len(t.Data))
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeaderBytes {
		return nil, nil, fmt.Errorf("header of %d bytes exceeds the %d-byte limit", b.Len(), MaxHeaderBytes)
	}
	return b.Bytes(), order, nil
}

// WriteSharded writes tensors to dir (created if needed) as a Hugging Face
// sharded checkpoint:
// model-00001-of-0000N.safetensors ... plus model.safetensors.index.json.
// Tensors are taken in name order and a new shard is started when the next
// tensor would push the current one past maxShardBytes (a tensor larger
// than that gets a shard of its own). Each shard carries metadata
// {"format": "pt"}. The index is written last, so an interrupted save never
// leaves an index naming missing shards. One shard still gets an index;
// note that OpenDir prefers a model.safetensors if dir also has one.
func WriteSharded(dir string, tensors []Tensor, maxShardBytes int64) error {
	if maxShardBytes <= 0 {
		return fmt.Errorf("safetensors: %s: maxShardBytes %d must be positive", dir, maxShardBytes)
	}
	if _, _, err := buildHeader(tensors, nil); err != nil { // validate all up front
		return fmt.Errorf("safetensors: %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	sorted := append([]Tensor(nil), tensors...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].Name < sorted[b].Name })
	var shards [][]Tensor
	var cur []Tensor
	var curBytes, total int64
	for _, t := range sorted {
		n := int64(len(t.Data))
		if len(cur) > 0 && curBytes+n > maxShardBytes {
			shards = append(shards, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, t)
		curBytes += n
		total += n
	}
	if len(cur) > 0 || len(shards) == 0 {
		shards = append(shards, cur)
	}
	weightMap := map[string]string{}
	for i, shard := range shards {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		if err := Write(filepath.Join(dir, name), shard, map[string]string{"format": "pt"}); err != nil {
			return err
		}
		for _, t := range shard {
			weightMap[t.Name] = name
		}
	}
	index := struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{map[string]int64{"total_size": total}, weightMap}
	js, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", dir, err)
	}
	js = append(js, '\n')
	path := filepath.Join(dir, IndexFileName)
	if err := atomicfile.Write(path, func(w io.Writer) error { _, err := w.Write(js); return err }); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return nil
}
