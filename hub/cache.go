package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/internal/inputfile"
)

// repoFolder is huggingface_hub's folder name for a model repo:
// "Qwen/Qwen2.5-0.5B-Instruct" → "models--Qwen--Qwen2.5-0.5B-Instruct".
func repoFolder(repo string) string {
	return "models--" + strings.ReplaceAll(repo, "/", "--")
}

// isCommit reports whether rev is a full 40-hex git commit hash.
func isCommit(rev string) bool {
	if len(rev) != 40 {
		return false
	}
	for _, c := range rev {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// cachedSnapshot returns the snapshot directory of rev in repoDir if it holds
// a complete model, else an error saying what is missing.
func cachedSnapshot(repoDir, rev string) (string, error) {
	commit := rev
	if !isCommit(rev) {
		b, err := inputfile.ReadFile(filepath.Join(repoDir, "refs", filepath.FromSlash(rev)), inputfile.MaxSmallFile)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("no cached ref %q", rev)
		}
		if err != nil {
			return "", err
		}
		commit = strings.TrimSpace(string(b))
		if !isCommit(commit) {
			return "", fmt.Errorf("%s: ref %q holds %q, not a commit hash", repoDir, rev, commit)
		}
	}
	dir := filepath.Join(repoDir, "snapshots", commit)
	if err := CheckSnapshot(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// CheckSnapshot reports whether dir holds a loadable model or adapter:
// config.json with the weight files model.safetensors.index.json lists (or at
// least one *.safetensors file when there is no index), or adapter_config.json
// with adapter_model.safetensors. The error wraps ErrIncomplete and names the
// first missing files.
func CheckSnapshot(dir string) error {
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name)) // follows symlinks: a dangling link is missing
		return err == nil
	}
	switch {
	case exists("config.json"):
		idx := filepath.Join(dir, "model.safetensors.index.json")
		if b, err := inputfile.ReadFile(idx, inputfile.MaxLargeFile); err == nil {
			files, err := indexFiles(b)
			if err != nil {
				return fmt.Errorf("%s: %w", idx, err)
			}
			var missing []string
			for _, f := range files {
				if !exists(f) {
					missing = append(missing, f)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%s: %w: lacks %d of %d weight files its index lists (%s)",
					dir, ErrIncomplete, len(missing), len(files), strings.Join(firstN(missing, 3), ", "))
			}
			return nil
		}
		if m, _ := filepath.Glob(filepath.Join(dir, "*.safetensors")); len(m) > 0 {
			for _, f := range m {
				if _, err := os.Stat(f); err != nil {
					return fmt.Errorf("%s: %w: %s is a dangling link", dir, ErrIncomplete, filepath.Base(f))
				}
			}
			return nil
		}
		return fmt.Errorf("%s: %w: config.json but no *.safetensors weights", dir, ErrIncomplete)
	case exists("adapter_config.json"):
		if exists("adapter_model.safetensors") {
			return nil
		}
		return fmt.Errorf("%s: %w: adapter_config.json but no adapter_model.safetensors", dir, ErrIncomplete)
	}
	return fmt.Errorf("%s: %w: no config.json or adapter_config.json", dir, ErrIncomplete)
}

// indexFiles returns the distinct weight files of a model.safetensors.index.json, sorted.
func indexFiles(b []byte) ([]string, error) {
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("bad index JSON: %w", err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("index has an empty weight_map")
	}
	seen := map[string]bool{}
	var files []string
	for _, f := range idx.WeightMap {
		if err := checkRepoFile(f); err != nil {
			return nil, fmt.Errorf("weight_map: %w", err)
		}
		if !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	sort.Strings(files)
	return files, nil
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "...")
	}
	return s
}

// linkPointer makes snapshots/<commit>/<file> a relative symlink to blob, the
// way huggingface_hub does (os.path.relpath from the link's directory), replacing
// whatever was there atomically. Where symlinks fail it falls back to a hard link.
func linkPointer(blob, pointer string) error {
	if err := os.MkdirAll(filepath.Dir(pointer), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	rel, err := filepath.Rel(filepath.Dir(pointer), blob)
	if err != nil {
		return fmt.Errorf("hub: link %s: %w", pointer, err)
	}
	// A unique temporary name: other goroutines or processes may link the same file.
	tmp := fmt.Sprintf("%s.tmp-%d-%x", pointer, os.Getpid(), rand.Uint64())
	if err := os.Symlink(rel, tmp); err != nil {
		if err := os.Link(blob, tmp); err != nil {
			return fmt.Errorf("hub: link %s → %s: %w", pointer, blob, err)
		}
	}
	if err := os.Rename(tmp, pointer); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hub: link %s: %w", pointer, err)
	}
	return nil
}

// writeRef records that branch or tag rev points at commit (refs/<rev>, no
// trailing newline, as huggingface_hub writes it). Commit hashes get no ref.
func writeRef(repoDir, rev, commit string) error {
	if rev == commit {
		return nil
	}
	path := filepath.Join(repoDir, "refs", filepath.FromSlash(rev))
	if b, err := inputfile.ReadFile(path, inputfile.MaxSmallFile); err == nil && strings.TrimSpace(string(b)) == commit {
		return nil
	}
	return writeFileAtomic(path, []byte(commit))
}

// writeFileAtomic writes data to a temporary file next to path and renames it.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("hub: write %s: %w", path, err)
	}
	return nil
}
