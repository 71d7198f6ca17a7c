// Package inputfile opens files that gotrain reads, refusing what is not a
// regular file before anything can block on it: a FIFO given as a model or
// data file would hang open(2) or read(2) forever, and /dev/zero would fill
// the memory.
package inputfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Open opens path for reading if it is a regular file (symlinks followed).
// The open does not block (O_NONBLOCK, which regular files ignore), and the
// check is made on the opened file, so a path swapped in between is caught.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|oNonblock, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := Regular(path, st); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Regular returns an error naming path unless st is a regular file's.
func Regular(path string, st fs.FileInfo) error {
	m := st.Mode()
	switch {
	case m.IsRegular():
		return nil
	case m.IsDir():
		return &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("is a directory, not a regular file")}
	case m&fs.ModeNamedPipe != 0:
		return &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("is a FIFO, not a regular file: write its content to a file first")}
	}
	return &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("is not a regular file (mode %v)", m)}
}

// ReadFile reads a regular file of at most limit bytes.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%d bytes, more than the %d such a file may have", st.Size(), limit)}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if int64(len(b)) > limit { // grew while read
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("more than the %d bytes such a file may have", limit)}
	}
	return b, nil
}

// Limits for ReadFile: config.json and the like are a few KB (MaxSmallFile);
// tokenizer.json is up to ~35 MB (Gemma), metrics.jsonl of a long run tens
// of MB (MaxLargeFile).
const (
	MaxSmallFile = 64 << 20
	MaxLargeFile = 512 << 20
)
