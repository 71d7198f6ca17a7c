package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.txt")
	if err := WriteFile(p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := Write(p, func(w io.Writer) error { w.Write([]byte("partial")); return boom }); err != boom {
		t.Fatalf("error %v, want boom", err)
	}
	b, _ := os.ReadFile(p)
	st, _ := os.Stat(p)
	ents, _ := os.ReadDir(dir)
	if string(b) != "old" || st.Mode().Perm() != 0o644 || len(ents) != 1 {
		t.Errorf("after a failed write: content %q, mode %v, %d files", b, st.Mode().Perm(), len(ents))
	}
}

func TestAppendRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(outside, []byte("keep\n"), 0o644)
	link := filepath.Join(dir, "metrics.jsonl")
	if err := os.Symlink(outside, link); err != nil {
		t.Skip(err)
	}
	if err := Append(link, []byte("x\n")); err == nil {
		t.Error("appended through a symlink")
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep\n" {
		t.Errorf("target changed: %q", b)
	}
	p := filepath.Join(dir, "log")
	for range 2 {
		if err := Append(p, []byte("a\n")); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(p); string(b) != "a\na\n" {
		t.Errorf("log %q", b)
	}
}
