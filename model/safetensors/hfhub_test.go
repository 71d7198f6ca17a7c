package safetensors

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestHFHubParser cross-checks files written by Write and WriteSharded
// against Hugging Face's own JavaScript header parser. It runs only when
// GOTRAIN_HFHUB_DIR names a directory holding
// node_modules/@huggingface/hub (npm install --ignore-scripts @huggingface/hub@2).
func TestHFHubParser(t *testing.T) {
	hub := os.Getenv("GOTRAIN_HFHUB_DIR")
	if hub == "" {
		t.Skip("GOTRAIN_HFHUB_DIR not set")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	script, _ := filepath.Abs("testdata/hfhub_check.mjs")
	ts := append(testTensors(), Tensor{Name: `weird "name" <&> ü`, DType: BF16, Shape: []int{1}, Data: []byte{0, 0}})
	root := t.TempDir()
	single, sharded := filepath.Join(root, "single"), filepath.Join(root, "sharded")
	if err := os.Mkdir(single, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(single, SingleFileName), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteSharded(sharded, ts, 40); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, file string }{{single, SingleFileName}, {sharded, IndexFileName}} {
		out, err := exec.Command(node, script, hub, c.dir, c.file).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.dir, err, out)
		}
		got := strings.Split(strings.TrimSpace(string(out)), "\n")
		sort.Strings(got)
		want := goListing(t, c.dir)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\nhuggingface/hub:\n%s\ngo:\n%s", c.dir, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		t.Logf("%s: %d header entries agree", c.file, len(got))
	}
}

// goListing renders every .safetensors file in dir like hfhub_check.mjs.
func goListing(t *testing.T, dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	var lines []string
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		n := binary.LittleEndian.Uint64(raw)
		tensors, offs, meta, err := ParseHeader(raw[8:8+n], int64(len(raw))-8-int64(n))
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(p)
		if meta != nil {
			lines = append(lines, fmt.Sprintf("%s\t__metadata__\t{\"format\":%q}", base, meta["format"]))
		}
		for i, x := range tensors {
			shape := strings.ReplaceAll(fmt.Sprint(x.Shape), " ", ",")
			lines = append(lines, fmt.Sprintf("%s\t%s\t%s\t%s\t[%d,%d]", base, x.Name, x.DType, shape, offs[i][0], offs[i][1]))
		}
	}
	sort.Strings(lines)
	return lines
}
