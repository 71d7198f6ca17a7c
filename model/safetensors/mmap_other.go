//go:build !unix

package safetensors

import (
	"io"
	"os"
)

// mapFile reads the whole file into memory on platforms without mmap.
func mapFile(fd *os.File, size int) ([]byte, bool, error) {
	b := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(fd, 0, int64(size)), b); err != nil {
		return nil, false, err
	}
	return b, false, nil
}

func unmapFile(b []byte) error { return nil }

func dropPages(b []byte) {}
