// Package atomicfile writes files so that a reader sees the old content or
// the new, never part of it, and an interrupted write leaves no partial file.
package atomicfile

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Write creates or replaces path with what fill writes: into a temporary
// file beside it (buffered), made 0644, synced and renamed over path; the
// directory is synced on a best-effort basis. On error the temporary file is
// removed and path is untouched. Mappings of an older file stay valid.
func Write(path string, fill func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err = fill(w); err != nil {
		return err
	}
	if err = w.Flush(); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil { // CreateTemp makes 0600 files
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	SyncDir(dir) // persist the rename, best effort (see Write)
	return nil
}

// SyncDir syncs a directory, so that renames and creations in it survive a
// crash. Filesystems that cannot sync a directory are not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	return nil
}

// WriteFile is Write of data.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error { _, err := w.Write(data); return err })
}

// Append adds data at the end of path (created 0644 if absent) in one
// write: with O_APPEND a record lands whole after the ones before it, so a
// log such as metrics.jsonl needs no rewrite per record. A symlink or a
// non-regular file at path is refused, so a planted link cannot redirect the
// write outside the output folder.
func Append(path string, data []byte) error {
	if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
		return &os.PathError{Op: "append", Path: path, Err: errors.New("not a regular file (a symlink?)")}
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY|oNoFollow, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
