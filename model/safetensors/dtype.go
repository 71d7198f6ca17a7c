package safetensors

// DType is a safetensors element type name as it appears in the header.
// Only F32, F16 and BF16 tensors can be converted to float32; the other
// recognised names can be listed, validated and copied as raw bytes.
type DType string

// Element types that this package can convert.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
)

// dtypeBits is the element width in bits of every dtype name the reference
// implementation recognises. Sub-byte types (F4, F6_*) are packed.
var dtypeBits = map[DType]int64{
	"BOOL":    8,
	"U8":      8,
	"I8":      8,
	"F8_E5M2": 8,
	"F8_E4M3": 8,
	"F8_E8M0": 8,
	"I16":     16,
	"U16":     16,
	"F16":     16,
	"BF16":    16,
	"I32":     32,
	"U32":     32,
	"F32":     32,
	"F64":     64,
	"I64":     64,
	"U64":     64,
	"C64":     64,
	"F4":      4,
	"F6_E2M3": 6,
	"F6_E3M2": 6,
}

// Size returns the bytes per element, or 0 for an unknown dtype or a
// packed sub-byte dtype (F4, F6_*).
func (d DType) Size() int {
	b := dtypeBits[d]
	if b%8 != 0 {
		return 0
	}
	return int(b / 8)
}

// bits returns the element width in bits, or 0 for an unknown dtype.
func (d DType) bits() int64 { return dtypeBits[d] }

// known reports whether d is a recognised dtype name.
func (d DType) known() bool { return dtypeBits[d] != 0 }
