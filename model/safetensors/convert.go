package safetensors

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// littleEndian is true on little-endian machines, where tensor bytes can be
// viewed in place as []float32 / []uint16. It is set once and never changed.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// BF16FromF32 converts src to bfloat16 bit patterns in dst, rounding to
// nearest even; NaNs stay (quiet) NaNs. dst must be at least len(src) long.
func BF16FromF32(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = bf16FromF32(f)
	}
}

func bf16FromF32(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: truncating could turn it into Inf
		return uint16(b>>16) | 0x0040
	}
	// Round to nearest even: add 0x7fff plus the lowest kept bit.
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F32FromBF16 widens bfloat16 bit patterns in src to float32 in dst (exact).
// dst must be at least len(src) long.
func F32FromBF16(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = math.Float32frombits(uint32(h) << 16)
	}
}

// F16ToF32 widens an IEEE 754 half-precision bit pattern to float32 (exact).
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN; keep the payload
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0: // signed zero
		return math.Float32frombits(sign)
	}
	// Subnormal half: value = man * 2^-24, exactly representable in float32.
	f := float32(man) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// F32ToF16 narrows a float32 to an IEEE 754 half-precision bit pattern,
// rounding to nearest even; overflow gives ±Inf and NaNs stay (quiet) NaNs.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(man>>13) // quiet NaN, keep top payload bits
	}
	e := exp - 127 + 15 // half exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal or zero half. Value = (man|implicit) * 2^(exp-150); the
		// half unit is 2^-24, so shift right by 126-exp (>= 14 here).
		if e < -10 { // below half the smallest subnormal (also float32 zeros/subnormals)
			return sign
		}
		m := man | 0x800000
		shift := uint32(126 - exp)
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++ // may carry into the smallest normal: still the right bits
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is correct, up to and including Inf
	}
	return sign | uint16(h)
}

// BytesOfF32 returns the little-endian bytes of v, for building a Tensor to
// write. On little-endian machines the result aliases v (no copy).
func BytesOfF32(v []float32) []byte {
	if len(v) == 0 {
		return []byte{}
	}
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
	}
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// BytesOfU16 returns the little-endian bytes of v (for BF16/F16 bit
// patterns). On little-endian machines the result aliases v (no copy).
func BytesOfU16(v []uint16) []byte {
	if len(v) == 0 {
		return []byte{}
	}
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 2*len(v))
	}
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}
