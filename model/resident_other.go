//go:build !unix

package model

import "github.com/gotrain/gotrain/kernels"

// makeResident keeps the weights where they are on platforms without mmap
// (there they were read into memory already).
func makeResident(ws []**kernels.Matrix, evict func(i, lo, hi int)) ([]byte, error) { return nil, nil }

func unmapResident(b []byte) error { return nil }
