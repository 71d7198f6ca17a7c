// Package kernels holds the engine's numeric hot path: matrix multiplies in the
// three forms training needs and the fused per-row ops of the transformer, with
// AVX-512 and AVX2+FMA assembly, a pure-Go twin of every routine, run-time
// dispatch and a persistent worker pool.
//
// Layout conventions: all matrices are row-major []float32. A weight matrix W
// of a linear layer y = x·Wᵀ has shape [out × in] exactly as PyTorch stores it.
package kernels
