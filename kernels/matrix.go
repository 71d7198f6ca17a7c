package kernels

import "fmt"

// DType is the element type a weight matrix is stored in.
type DType uint8

const (
	F32  DType = iota // float32
	BF16              // bfloat16, the upper 16 bits of a float32
	Q8                // int8 in blocks of 32 along Cols, one float32 scale each (quant.go)
	NF4               // 4-bit NormalFloat in blocks of 64 along Cols (quant.go)
)

// String names the dtype as safetensors does.
func (d DType) String() string {
	switch d {
	case F32:
		return "F32"
	case BF16:
		return "BF16"
	case Q8:
		return "Q8"
	case NF4:
		return "NF4"
	}
	return fmt.Sprintf("DType(%d)", d)
}

// Matrix is a frozen weight matrix [Rows × Cols] kept in its stored dtype.
// Exactly one of F32 and BF16 is set, with len Rows*Cols.
type Matrix struct {
	Rows, Cols int
	DType      DType
	F32        []float32
	BF16       []uint16
	// Quantized storage (DType Q8 or NF4), see quant.go.
	Quant *QuantData
	// packed is a copy laid out for MatMulT's microkernel (Pack).
	packed *packedB
}

// NewF32 wraps a float32 slice as a Matrix without copying.
func NewF32(rows, cols int, data []float32) *Matrix {
	return &Matrix{Rows: rows, Cols: cols, DType: F32, F32: data}
}

// NewBF16 wraps a bfloat16 slice as a Matrix without copying.
func NewBF16(rows, cols int, data []uint16) *Matrix {
	return &Matrix{Rows: rows, Cols: cols, DType: BF16, BF16: data}
}

// RowRange is rows [lo,hi) of a float32 or bfloat16 matrix, sharing its
// storage (not its packed copy).
func (w *Matrix) RowRange(lo, hi int) *Matrix {
	switch w.DType {
	case F32:
		return NewF32(hi-lo, w.Cols, w.F32[lo*w.Cols:hi*w.Cols])
	case BF16:
		return NewBF16(hi-lo, w.Cols, w.BF16[lo*w.Cols:hi*w.Cols])
	}
	panic("kernels: RowRange of a quantized matrix")
}

// Row widens row i into dst (len Cols).
func (w *Matrix) Row(dst []float32, i int) {
	switch w.DType {
	case F32:
		copy(dst, w.F32[i*w.Cols:(i+1)*w.Cols])
	case BF16:
		src := w.BF16[i*w.Cols : (i+1)*w.Cols]
		for j, v := range src {
			dst[j] = BF16ToF32(v)
		}
	case Q8, NF4:
		w.Quant.dequantRange(dst[:w.Cols], w.DType, w.Cols, i, 0, w.Cols)
	}
}
