package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// realPath is p made absolute with the symlinks of its existing part
// resolved, so that two names of one place compare equal.
func realPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	rest := ""
	for dir := abs; ; {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return abs
		}
		rest = filepath.Join(filepath.Base(dir), rest)
		dir = parent
	}
}

// within reports whether p is dir or lies inside it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// flagPath is a path given by a flag.
type flagPath struct{ flag, path string }

// checkOutputs refuses an output that is, or lies inside, an input (merge
// --out equal to --base would overwrite the base in place; sft --out inside
// the base's folder would mix adapter files into it), and two outputs that
// are one file. Empty paths are skipped.
func checkOutputs(outs, ins []flagPath) error {
	for i, o := range outs {
		if o.path == "" {
			continue
		}
		ro := realPath(o.path)
		for _, in := range ins {
			if in.path == "" {
				continue
			}
			ri := realPath(in.path)
			if ro == ri || sameFile(o.path, in.path) {
				return fmt.Errorf("--%s %s is the input --%s: it would be overwritten; choose another output", o.flag, o.path, in.flag)
			}
			if st, err := os.Stat(in.path); err == nil && st.IsDir() && within(ro, ri) {
				return fmt.Errorf("--%s %s lies inside the input --%s %s: choose an output outside it", o.flag, o.path, in.flag, in.path)
			}
		}
		for _, o2 := range outs[i+1:] {
			if o2.path != "" && (realPath(o2.path) == ro || sameFile(o.path, o2.path)) {
				return fmt.Errorf("--%s and --%s are the same file %s", o.flag, o2.flag, o.path)
			}
		}
	}
	return nil
}

// sameFile reports whether a and b exist and are one file (hard links too).
func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// checkReplace refuses to write a model or adapter over one already in dir
// unless overwrite is set: what marks one is any of the names given.
func checkReplace(flag, dir string, overwrite bool, what string, marks ...string) error {
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return fmt.Errorf("--%s %s is a file, not a directory", flag, dir)
	}
	if overwrite {
		return nil
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		for _, m := range marks {
			if ok, _ := filepath.Match(m, e.Name()); ok {
				return fmt.Errorf("--%s %s already holds a %s (%s): add --overwrite to replace it, or choose another directory",
					flag, dir, what, e.Name())
			}
		}
	}
	return nil
}

// modelMarks are the files that make a directory hold a model.
var modelMarks = []string{"config.json", "*.safetensors", "model.safetensors.index.json"}
