//go:build unix

package safetensors

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps the first size bytes of fd read-only and shared, so pages
// come straight from the page cache and are loaded on first touch.
func mapFile(fd *os.File, size int) ([]byte, bool, error) {
	b, err := unix.Mmap(int(fd.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

func unmapFile(b []byte) error { return unix.Munmap(b) }

// dropPages releases the page-aligned mapped range b from the resident set
// (MADV_DONTNEED on a shared file mapping keeps the data in the page cache).
func dropPages(b []byte) { _ = unix.Madvise(b, unix.MADV_DONTNEED) }
