package kernels

import "math"

// BF16ToF32 widens a bfloat16 (exact).
func BF16ToF32(v uint16) float32 { return math.Float32frombits(uint32(v) << 16) }

// F32ToBF16 rounds to the nearest bfloat16, ties to even; NaN stays NaN.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}
