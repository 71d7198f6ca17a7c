package safetensors

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// modelTensors makes n F32 tensors of 16 bytes each plus one BF16 tensor.
func modelTensors(n int) []Tensor {
	var ts []Tensor
	for i := 0; i < n; i++ {
		v := []float32{float32(i), 1, 2, 3}
		ts = append(ts, Tensor{Name: fmt.Sprintf("model.layers.%d.weight", i), DType: F32, Shape: []int{2, 2}, Data: BytesOfF32(v)})
	}
	return append(ts, Tensor{Name: "lm_head.weight", DType: BF16, Shape: []int{3}, Data: BytesOfU16([]uint16{0x3f80, 0x4000, 0x4040})})
}

func TestShardedRoundTrip(t *testing.T) {
	in := modelTensors(5) // 5×16 + 6 bytes
	for _, tc := range []struct {
		max    int64
		shards int
	}{{1 << 30, 1}, {32, 3}, {1, 6}} {
		t.Run(fmt.Sprint(tc.max), func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteSharded(dir, in, tc.max); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(dir, IndexFileName))
			if err != nil {
				t.Fatal(err)
			}
			var idx struct {
				Metadata struct {
					TotalSize int64 `json:"total_size"`
				}
				WeightMap map[string]string `json:"weight_map"`
			}
			if err := json.Unmarshal(raw, &idx); err != nil {
				t.Fatal(err)
			}
			if idx.Metadata.TotalSize != 86 || len(idx.WeightMap) != 6 {
				t.Errorf("index %s", raw)
			}
			files, _ := filepath.Glob(filepath.Join(dir, "model-*-of-*.safetensors"))
			if len(files) != tc.shards {
				t.Errorf("%d shard files, want %d: %v", len(files), tc.shards, files)
			}
			if last := fmt.Sprintf("model-%05d-of-%05d.safetensors", tc.shards, tc.shards); idx.WeightMap["model.layers.4.weight"] != last {
				t.Errorf("last tensor in %q, want %q", idx.WeightMap["model.layers.4.weight"], last)
			}
			c, err := OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.TotalBytes() != 86 {
				t.Errorf("TotalBytes %d", c.TotalBytes())
			}
			var want []string
			for _, x := range in {
				want = append(want, x.Name)
			}
			if !reflect.DeepEqual(c.Names(), sortedKeys(setOf(want))) {
				t.Errorf("names %v", c.Names())
			}
			for _, x := range in {
				got, ok := c.Tensor(x.Name)
				if !ok || string(got.Data) != string(x.Data) || !reflect.DeepEqual(got.Shape, x.Shape) {
					t.Errorf("tensor %q: %+v", x.Name, got)
				}
			}
			if _, ok := c.Tensor("missing"); ok {
				t.Error("missing tensor found")
			}
		})
	}
}

func TestOpenDirSingle(t *testing.T) {
	dir := t.TempDir()
	in := modelTensors(2)
	if err := Write(filepath.Join(dir, SingleFileName), in, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Names()) != 3 || c.TotalBytes() != 38 {
		t.Errorf("names %v total %d", c.Names(), c.TotalBytes())
	}
	x, ok := c.Tensor("model.layers.1.weight")
	if v, _ := x.F32(); !ok || v[0] != 1 {
		t.Errorf("tensor %+v", x)
	}
}

func TestOpenDirBad(t *testing.T) {
	shard := func(dir, name string, ts []Tensor) {
		if err := Write(filepath.Join(dir, name), ts, nil); err != nil {
			t.Fatal(err)
		}
	}
	a := Tensor{Name: "a", DType: F32, Shape: []int{1}, Data: BytesOfF32([]float32{1})}
	b := Tensor{Name: "b", DType: F32, Shape: []int{1}, Data: BytesOfF32([]float32{2})}
	cases := []struct {
		name  string
		index string // "" means no index file
		setup func(dir string)
		want  []string
	}{
		{"empty dir", "", func(string) {}, []string{"neither model.safetensors nor model.safetensors.index.json"}},
		{"index not json", `{"weight_map":`, func(string) {}, []string{IndexFileName, "invalid JSON"}},
		{"index not object", `[]`, func(string) {}, []string{IndexFileName, "want a JSON object"}},
		{"no weight_map", `{"metadata":{"total_size":4}}`, func(string) {}, []string{`missing "weight_map"`}},
		{"weight_map number", `{"weight_map":{"a":5}}`, func(string) {}, []string{`tensor "a"`, "must be a string"}},
		{"shard path escapes", `{"weight_map":{"a":"../x.safetensors"}}`, func(string) {}, []string{`tensor "a"`, "not a plain file name"}},
		{"missing shard", `{"weight_map":{"a":"s1.safetensors"}}`, func(string) {}, []string{`tensor "a"`, "s1.safetensors", "no such file"}},
		{"shard lacks tensor", `{"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}}`,
			func(d string) { shard(d, "s1.safetensors", []Tensor{a}) }, []string{`tensor "b"`, "does not contain it"}},
		{"listed twice", `{"weight_map":{"a":"s1.safetensors","a":"s2.safetensors"}}`,
			func(d string) { shard(d, "s1.safetensors", []Tensor{a}) }, []string{`tensor "a" listed twice`}},
		{"tensor in two shards", `{"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}}`,
			func(d string) { shard(d, "s1.safetensors", []Tensor{a}); shard(d, "s2.safetensors", []Tensor{a, b}) },
			[]string{`tensor "a" is in both s1.safetensors and s2.safetensors`}},
		{"bad shard", `{"weight_map":{"a":"s1.safetensors"}}`,
			func(d string) { os.WriteFile(filepath.Join(d, "s1.safetensors"), []byte("junk"), 0o644) },
			[]string{`tensor "a"`, "shorter than the 8-byte"}},
		{"trailing junk", `{"weight_map":{}} x`, func(string) {}, []string{"after the index"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(dir)
			if tc.index != "" {
				if err := os.WriteFile(filepath.Join(dir, IndexFileName), []byte(tc.index), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c, err := OpenDir(dir)
			if err == nil {
				c.Close()
				t.Fatal("OpenDir succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestWriteShardedBad(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSharded(dir, modelTensors(1), 0); err == nil {
		t.Error("maxShardBytes 0 accepted")
	}
	bad := []Tensor{{Name: "x", DType: F32, Shape: []int{2}, Data: make([]byte, 3)}}
	if err := WriteSharded(dir, bad, 100); err == nil || !strings.Contains(err.Error(), `tensor "x"`) {
		t.Errorf("err = %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed WriteSharded left files: %v", ents)
	}
}

// BenchmarkOpenDir opens a one-tensor checkpoint of 1 MiB and of 1 GiB
// (sparse on disk): with mmap the cost must not depend on the size.
func BenchmarkOpenDir(b *testing.B) {
	for _, rows := range []int{1 << 4, 1 << 14} {
		const cols = 1 << 14 // rows × cols F32: 1 MiB or 1 GiB
		size := int64(4 * rows * cols)
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			dir := b.TempDir()
			header := fmt.Sprintf(`{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[%d,%d],"data_offsets":[0,%d]}}`, rows, cols, size)
			for len(header)%8 != 0 {
				header += " "
			}
			p := filepath.Join(dir, SingleFileName)
			if err := os.WriteFile(p, rawFile(header, nil), 0o644); err != nil {
				b.Fatal(err)
			}
			if err := os.Truncate(p, int64(8+len(header))+size); err != nil { // sparse: no disk used
				b.Fatal(err)
			}
			for b.Loop() {
				c, err := OpenDir(dir)
				if err != nil {
					b.Fatal(err)
				}
				if c.TotalBytes() != size {
					b.Fatalf("TotalBytes %d", c.TotalBytes())
				}
				c.Close()
			}
		})
	}
}
