package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// Tensor is one named tensor. Data holds its raw little-endian bytes in
// row-major order; for tensors from a File it is a read-only slice of the
// memory map.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// NumElements returns the product of Shape (1 for a scalar, shape []).
// It returns -1 if a dimension is negative or the product overflows.
func (t *Tensor) NumElements() int {
	n, ok := numElements(t.Shape)
	if !ok {
		return -1
	}
	return int(n)
}

// numElements multiplies dims, reporting false on a negative dim or on
// overflow of int64 / int.
func numElements(shape []int) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > math.MaxInt64/int64(d) {
			return 0, false
		}
		n *= int64(d)
	}
	if int64(int(n)) != n {
		return 0, false
	}
	return n, true
}

// check verifies that t has a known dtype, a valid shape and exactly the
// number of data bytes the shape needs.
func (t *Tensor) check() error {
	if !t.DType.known() {
		return fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
	}
	n, ok := numElements(t.Shape)
	if !ok {
		return fmt.Errorf("tensor %q: invalid shape %v (negative or overflowing)", t.Name, t.Shape)
	}
	want, ok := byteLen(n, t.DType)
	if !ok {
		return fmt.Errorf("tensor %q: shape %v of %s does not fill whole bytes or overflows", t.Name, t.Shape, t.DType)
	}
	if int64(len(t.Data)) != want {
		return fmt.Errorf("tensor %q: %d data bytes, shape %v of %s needs %d", t.Name, len(t.Data), t.Shape, t.DType, want)
	}
	return nil
}

// byteLen returns the bytes n elements of d occupy; false on overflow or
// when packed sub-byte elements do not fill a whole number of bytes.
func byteLen(n int64, d DType) (int64, bool) {
	b := d.bits()
	if b == 0 || n > math.MaxInt64/b {
		return 0, false
	}
	if n*b%8 != 0 {
		return 0, false
	}
	return n * b / 8, true
}

// sizeOK checks that Data holds exactly NumElements elements of size sz.
func (t *Tensor) sizeOK(sz int) error {
	n := t.NumElements()
	if n < 0 || len(t.Data) != n*sz {
		return fmt.Errorf("safetensors: tensor %q: %d data bytes do not match shape %v of %s", t.Name, len(t.Data), t.Shape, t.DType)
	}
	return nil
}

// F32 returns the data of an F32 tensor as []float32. It is a zero-copy view
// of Data (read-only for mapped files) when the machine is little-endian and
// Data is 4-byte aligned (always true for files this package writes and for
// Hugging Face files); otherwise it is a copy.
func (t *Tensor) F32() ([]float32, error) {
	if t.DType != F32 {
		return nil, fmt.Errorf("safetensors: tensor %q: F32 view of %s data", t.Name, t.DType)
	}
	if err := t.sizeOK(4); err != nil {
		return nil, err
	}
	n := len(t.Data) / 4
	if n == 0 {
		return []float32{}, nil
	}
	if littleEndian && uintptr(unsafe.Pointer(&t.Data[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&t.Data[0])), n), nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out, nil
}

// BF16 returns the data of a BF16 tensor as bfloat16 bit patterns. Like F32
// it is a zero-copy view when possible, otherwise a copy.
func (t *Tensor) BF16() ([]uint16, error) {
	if t.DType != BF16 {
		return nil, fmt.Errorf("safetensors: tensor %q: BF16 view of %s data", t.Name, t.DType)
	}
	return t.u16()
}

// u16 views or copies 2-byte element data as []uint16.
func (t *Tensor) u16() ([]uint16, error) {
	if err := t.sizeOK(2); err != nil {
		return nil, err
	}
	n := len(t.Data) / 2
	if n == 0 {
		return []uint16{}, nil
	}
	if littleEndian && uintptr(unsafe.Pointer(&t.Data[0]))%2 == 0 {
		return unsafe.Slice((*uint16)(unsafe.Pointer(&t.Data[0])), n), nil
	}
	out := make([]uint16, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(t.Data[2*i:])
	}
	return out, nil
}

// ToF32 returns a new float32 copy of an F32, F16 or BF16 tensor's data.
func (t *Tensor) ToF32() ([]float32, error) {
	switch t.DType {
	case F32:
		v, err := t.F32()
		if err != nil {
			return nil, err
		}
		out := make([]float32, len(v))
		copy(out, v)
		return out, nil
	case BF16:
		v, err := t.u16()
		if err != nil {
			return nil, err
		}
		out := make([]float32, len(v))
		F32FromBF16(out, v)
		return out, nil
	case F16:
		v, err := t.u16()
		if err != nil {
			return nil, err
		}
		out := make([]float32, len(v))
		for i, h := range v {
			out[i] = F16ToF32(h)
		}
		return out, nil
	}
	return nil, fmt.Errorf("safetensors: tensor %q: cannot convert %s to F32", t.Name, t.DType)
}
