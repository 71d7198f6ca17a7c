package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gotrain/gotrain/internal/inputfile"
)

// File names of a Hugging Face checkpoint directory.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// Checkpoint is every tensor of a model directory: model.safetensors, or
// the shards listed by model.safetensors.index.json. Like File it is safe
// for concurrent reads until Close.
type Checkpoint struct {
	dir     string
	files   []*File
	tensors map[string]*File // name -> the file holding it
	names   []string         // sorted
}

// OpenDir opens the checkpoint in dir. Like Hugging Face transformers it
// prefers model.safetensors and otherwise reads model.safetensors.index.json.
// Every weight_map entry must name an existing shard (a plain file name in
// dir) that holds the tensor, and no tensor may appear in two shards.
// Tensors a shard holds but the index does not list are included too (as
// transformers loads them); the index's metadata.total_size is not checked.
func OpenDir(dir string) (*Checkpoint, error) {
	single := filepath.Join(dir, SingleFileName)
	if _, err := os.Stat(single); err == nil {
		f, err := Open(single)
		if err != nil {
			return nil, err
		}
		c := &Checkpoint{dir: dir, files: []*File{f}, tensors: map[string]*File{}}
		for _, name := range f.Names() {
			c.tensors[name] = f
		}
		c.names = f.Names()
		return c, nil
	}
	indexPath := filepath.Join(dir, IndexFileName)
	raw, err := inputfile.ReadFile(indexPath, inputfile.MaxLargeFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("safetensors: %s: neither %s nor %s found", dir, SingleFileName, IndexFileName)
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	weightMap, err := parseIndex(raw)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", indexPath, err)
	}
	c := &Checkpoint{dir: dir, tensors: map[string]*File{}}
	shards := map[string]*File{}
	for _, name := range sortedKeys(weightMap) {
		shard := weightMap[name]
		f, ok := shards[shard]
		if !ok {
			f, err = Open(filepath.Join(dir, shard))
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("safetensors: %s: tensor %q: shard %q: %w", indexPath, name, shard, err)
			}
			shards[shard] = f
			c.files = append(c.files, f)
			// Register everything the shard holds, so a tensor stored in
			// two shards is caught whatever the index says.
			for _, tn := range f.Names() {
				if other, dup := c.tensors[tn]; dup {
					c.Close()
					return nil, fmt.Errorf("safetensors: %s: tensor %q is in both %s and %s",
						indexPath, tn, filepath.Base(other.Path()), shard)
				}
				c.tensors[tn] = f
			}
		}
		if c.tensors[name] != f {
			c.Close()
			return nil, fmt.Errorf("safetensors: %s: tensor %q: shard %s does not contain it", indexPath, name, shard)
		}
	}
	c.names = sortedKeys(c.tensors)
	return c, nil
}

// parseIndex validates an index file and returns its weight_map. Duplicate
// tensor names in weight_map are errors (a map decode would hide them).
func parseIndex(raw []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var weightMap map[string]string
	err := scanObject(dec, "index", func(key string) error {
		if key != "weight_map" {
			var skip json.RawMessage // "metadata" and anything else: informational
			return dec.Decode(&skip)
		}
		if weightMap != nil {
			return errors.New(`duplicate "weight_map"`)
		}
		weightMap = map[string]string{}
		return scanObject(dec, "weight_map", func(name string) error {
			if _, dup := weightMap[name]; dup {
				return fmt.Errorf("weight_map: tensor %q listed twice", name)
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return fmt.Errorf("weight_map: tensor %q: %w", name, err)
			}
			var shard string
			if raw[0] != '"' || json.Unmarshal(raw, &shard) != nil {
				return fmt.Errorf("weight_map: tensor %q: shard must be a string", name)
			}
			if shard == "" || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) || filepath.Base(shard) != shard {
				return fmt.Errorf("weight_map: tensor %q: shard %q is not a plain file name", name, shard)
			}
			weightMap[name] = shard
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the index object")
	}
	if weightMap == nil {
		return nil, errors.New(`missing "weight_map"`)
	}
	return weightMap, nil
}

// Evict releases tensor name's mapped pages from the resident set: see
// File.Evict.
func (c *Checkpoint) Evict(name string) { c.EvictRange(name, 0, -1) }

// EvictRange releases bytes [lo, hi) of tensor name's data: see
// File.EvictRange.
func (c *Checkpoint) EvictRange(name string, lo, hi int) {
	if f, ok := c.tensors[name]; ok {
		f.EvictRange(name, lo, hi)
	}
}

// Close unmaps every file of the checkpoint.
func (c *Checkpoint) Close() error {
	var first error
	for _, f := range c.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.files, c.tensors, c.names = nil, nil, nil
	return first
}

// Names returns all tensor names, sorted.
func (c *Checkpoint) Names() []string { return append([]string(nil), c.names...) }

// Tensor returns the named tensor and whether it exists.
func (c *Checkpoint) Tensor(name string) (*Tensor, bool) {
	f, ok := c.tensors[name]
	if !ok {
		return nil, false
	}
	return f.Tensor(name)
}

// TotalBytes returns the total size of all tensor data (the index's
// total_size for a checkpoint this package wrote).
func (c *Checkpoint) TotalBytes() int64 {
	var n int64
	for _, f := range c.files {
		n += f.dataBytes()
	}
	return n
}
