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
