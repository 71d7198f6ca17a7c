package safetensors

import (
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"sort"
	"unsafe"

	"github.com/gotrain/gotrain/internal/inputfile"
)

// File is one opened .safetensors file. Its tensors' Data slices point into
// a read-only memory map (or, on platforms without mmap, into memory read
// once), valid until Close. A File is read-only after Open, so its methods
// may be called from several goroutines at once (but not concurrently with
// Close). If the file is truncated by another process while mapped, reading
// the lost pages raises SIGBUS: replace checkpoints by rename, as Write does.
type File struct {
	path    string
	buf     []byte // the whole file: mapped, or read into memory
	mapped  bool   // buf must be unmapped by Close
	tensors []Tensor
	index   map[string]int // name -> index in tensors
	meta    map[string]string
}

// Open maps path and validates its header and tensor table.
func Open(path string) (*File, error) {
	fd, err := inputfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fd.Close() // the mapping stays valid after the descriptor closes
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("safetensors: %s: not a regular file", path)
	}
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("safetensors: %s: file is %d bytes, shorter than the 8-byte header length", path, size)
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("safetensors: %s: file of %d bytes too large to map", path, size)
	}
	// Check the header length before mapping, so garbage fails cheaply.
	var lenBuf [8]byte
	if _, err := fd.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderBytes {
		return nil, fmt.Errorf("safetensors: %s: header length %d exceeds the %d-byte limit", path, n, MaxHeaderBytes)
	}
	if n > uint64(size-8) {
		return nil, fmt.Errorf("safetensors: %s: header length %d exceeds the %d bytes after the length field", path, n, size-8)
	}
	buf, mapped, err := mapFile(fd, int(size))
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	f := &File{path: path, buf: buf, mapped: mapped}
	if err := f.parse(int64(n)); err != nil {
		f.Close()
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return f, nil
}

// parse validates the header of length n at buf[8:] and slices out tensors.
func (f *File) parse(n int64) error {
	data := f.buf[8+n:]
	tensors, offsets, meta, err := ParseHeader(f.buf[8:8+n], int64(len(data)))
	if err != nil {
		return err
	}
	f.index = make(map[string]int, len(tensors))
	for i := range tensors {
		o := offsets[i]
		tensors[i].Data = data[o[0]:o[1]:o[1]] // capped: appending cannot spill into a neighbour
		f.index[tensors[i].Name] = i
	}
	f.tensors, f.meta = tensors, meta
	return nil
}

// Close releases the mapping. Tensor data from f must not be used after.
func (f *File) Close() error {
	if f == nil || f.buf == nil {
		return nil
	}
	buf, mapped := f.buf, f.mapped
	f.buf, f.tensors, f.index = nil, nil, nil
	if mapped {
		if err := unmapFile(buf); err != nil {
			return fmt.Errorf("safetensors: %s: %w", f.path, err)
		}
	}
	return nil
}

// Evict tells the operating system that tensor name's data will not be
// read again, so its memory-mapped pages leave the process's resident set
// (they stay in the page cache, and a later read faults them back in). Pages
// it shares with neighbouring tensors go too and come back the same way. It
// does nothing for files read into memory or for an unknown name.
func (f *File) Evict(name string) { f.EvictRange(name, 0, -1) }

// EvictRange is Evict for bytes [lo, hi) of the tensor's data (hi < 0: to
// the end).
func (f *File) EvictRange(name string, lo, hi int) {
	i, ok := f.index[name]
	if !ok || !f.mapped {
		return
	}
	d := f.tensors[i].Data
	if hi < 0 || hi > len(d) {
		hi = len(d)
	}
	if lo < 0 || lo >= hi {
		return
	}
	off := int(uintptr(unsafe.Pointer(&d[0])) - uintptr(unsafe.Pointer(&f.buf[0])))
	page := os.Getpagesize()
	a, b := (off+lo)/page*page, min(len(f.buf), (off+hi+page-1)/page*page)
	dropPages(f.buf[a:b])
}

// Path returns the file name given to Open.
func (f *File) Path() string { return f.path }

// Names returns the tensor names, sorted.
func (f *File) Names() []string {
	names := make([]string, len(f.tensors))
	for i := range f.tensors {
		names[i] = f.tensors[i].Name // tensors are kept sorted by name
	}
	return names
}

// Tensor returns the named tensor (a fresh header whose Data aliases the
// file) and whether it exists.
func (f *File) Tensor(name string) (*Tensor, bool) {
	i, ok := f.index[name]
	if !ok {
		return nil, false
	}
	t := f.tensors[i]
	t.Shape = slices.Clone(t.Shape) // callers may not corrupt our copy
	return &t, true
}

// Metadata returns a copy of the header's __metadata__ strings (empty if none).
func (f *File) Metadata() map[string]string {
	m := make(map[string]string, len(f.meta))
	for k, v := range f.meta {
		m[k] = v
	}
	return m
}

// dataBytes returns the total bytes of tensor data in f.
func (f *File) dataBytes() int64 {
	var n int64
	for i := range f.tensors {
		n += int64(len(f.tensors[i].Data))
	}
	return n
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
