package kernels

import "math"

// Dropout writes src ⊙ mask/(1−p) into dst (acc: adds it to dst), where the
// mask drops each element with probability p. The mask is a function of key
// and the element's index alone, so it is the same for any thread count and
// chunking, and a caller regenerates it (for a recomputation or a backward)
// instead of storing it: element j is dropped when dropHash(j) >> 8 < thr,
// thr = round(p·2²⁴), so p is applied in steps of 2⁻²⁴. The hash is 32-bit
// (two lowbias32 rounds keyed by a SplitMix64 of key and j's upper 32 bits)
// so AVX-512 and AVX2 compute it 16 and 8 lanes at a time: the scalar 64-bit
// hash it replaces was 7% of a bf16 LoRA step. dst and src may be equal.
func Dropout(dst, src []float32, key uint64, p float32, acc bool) {
	n := len(src)
	checkLen("Dropout dst", dst, n)
	thr, scale := dropParams(p)
	ops := opsKernels()
	const block = 1 << 12 // elements per pool chunk: a multiple of 16
	Parallel((n+block-1)/block, func(lo, hi int) {
		a, b := lo*block, min(hi*block, n)
		dropSpan(ops, dst[a:b], src[a:b], key, uint64(a), thr, scale, acc)
	})
}

// dropParams are Dropout's threshold and the kept values' scale for p.
func dropParams(p float32) (thr uint32, scale float32) {
	if !(p >= 0 && p < 1) {
		panic("kernels: dropout probability outside [0, 1)")
	}
	return uint32(math.Round(float64(p) * (1 << 24))), 1 / (1 - p)
}

// dropSpan is Dropout on elements [j0, j0+len(src)) of the mask.
func dropSpan(ops *opsKern, dst, src []float32, key, j0 uint64, thr uint32, scale float32, acc bool) {
	for a := 0; a < len(src); {
		j := j0 + uint64(a)
		b := len(src)
		if end := (j>>32 + 1) << 32; j0+uint64(b) > end { // one 2³² span per key pair
			b = int(end - j0)
		}
		k1, k2 := dropKeys(key, j>>32)
		ops.dropout(dst[a:b], src[a:b], uint32(j), k1, k2, thr, scale, acc)
		a = b
	}
}

// dropKeys are the two 32-bit keys of the 2³² elements from hi·2³² on.
func dropKeys(key, hi uint64) (k1, k2 uint32) {
	h := SplitMix64(key + hi*0x9e3779b97f4a7c15)
	return uint32(h), uint32(h >> 32)
}

// SplitMix64 is SplitMix64's output function: a fast, well-mixed 64-bit hash.
func SplitMix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// lowbias32 is C. Wellons' 32-bit integer hash (hash-prospector).
func lowbias32(x uint32) uint32 {
	x ^= x >> 16
	x *= 0x21f0aaad
	x ^= x >> 15
	x *= 0x735a2d97
	return x ^ x>>15
}

// dropHash is the hash of element idx under keys k1, k2.
func dropHash(idx, k1, k2 uint32) uint32 { return lowbias32(lowbias32(idx^k1) ^ k2) }

// dropoutGo is the pure-Go twin: element i of the chunk is element idx0+i of
// the mask. A dropped element contributes +0 (not src·0: no NaN from ±Inf).
func dropoutGo(dst, src []float32, idx0, k1, k2, thr uint32, scale float32, acc bool) {
	dst = dst[:len(src)]
	for i, x := range src {
		v := float32(0)
		if dropHash(idx0+uint32(i), k1, k2)>>8 >= thr {
			v = float32(x * scale) // rounded before any add, never fused
		}
		if acc {
			v += dst[i]
		}
		dst[i] = v
	}
}
