//go:build !purego

package kernels

var avx2Ops = goOps
