//go:build unix

package model

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gotrain/gotrain/kernels"
)

// makeResident moves the BF16 matrices *ws[i] out of the checkpoint's file
// mapping into one anonymous mapping advised for transparent huge pages,
// releasing the file pages as they are copied (evict(i, lo, hi) for bytes
// [lo, hi) of matrix i, 64 MiB at a time, so the copy adds little to the
// peak). Decoding streams
// every weight once per token, and with 4 KiB file pages a page-table walk
// per page cost about a tenth of it. The copy lives outside the Go heap (the
// collector neither scans it nor paces by it) and is unmapped by Close.
// On failure nothing is moved.
func makeResident(ws []**kernels.Matrix, evict func(i, lo, hi int)) ([]byte, error) {
	n := 0
	for _, w := range ws {
		n += len((*w).BF16)
	}
	if n == 0 {
		return nil, nil
	}
	buf, err := unix.Mmap(-1, 0, 2*n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return nil, err
	}
	_ = unix.Madvise(buf, unix.MADV_HUGEPAGE) // advice only: no huge pages is fine
	all := unsafe.Slice((*uint16)(unsafe.Pointer(&buf[0])), n)
	off := 0
	for i, w := range ws {
		src := (*w).BF16
		dst := all[off : off+len(src) : off+len(src)]
		const step = 32 << 20 // elements
		for a := 0; a < len(src); a += step {
			b := min(len(src), a+step)
			copy(dst[a:b], src[a:b])
			evict(i, 2*a, 2*b)
		}
		*w = kernels.NewBF16((*w).Rows, (*w).Cols, dst)
		off += len(src)
	}
	return buf, nil
}

func unmapResident(b []byte) error {
	if b == nil {
		return nil
	}
	return unix.Munmap(b)
}
