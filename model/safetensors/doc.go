// Package safetensors reads and writes Hugging Face .safetensors files and
// sharded checkpoint directories.
//
// A .safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON describing each tensor (dtype, shape, [begin, end) byte offsets into
// the data section), then the data section. Files are memory-mapped
// read-only, so opening even a multi-gigabyte checkpoint is instant and
// tensor data is never copied unless converted. Every header is validated
// (ParseHeader) before any tensor is handed out: bad input returns an error
// naming the file and tensor, never a panic.
//
// Tensor data obtained from a File or Checkpoint aliases the memory map:
// it is read-only (writing to it faults) and must not be used after Close.
package safetensors
