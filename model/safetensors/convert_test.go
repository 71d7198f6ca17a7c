package safetensors

import (
	"math"
	"testing"
)

// TestF16RoundTripExhaustive checks every half bit pattern: widening is
// exact against a float64 formula and narrowing gives the same bits back.
func TestF16RoundTripExhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		exp, man := int(h>>10)&0x1f, float64(h&0x3ff)
		var want float64
		switch {
		case exp == 0x1f && man == 0:
			want = math.Inf(1)
		case exp == 0x1f:
			want = math.NaN()
		case exp == 0:
			want = man * math.Pow(2, -24)
		default:
			want = (1 + man/1024) * math.Pow(2, float64(exp-15))
		}
		if h&0x8000 != 0 {
			want = -want
		}
		if math.IsNaN(want) != math.IsNaN(float64(f)) || !math.IsNaN(want) && float64(f) != want ||
			math.Signbit(float64(f)) != (h&0x8000 != 0) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, f, want)
		}
		if back := F32ToF16(f); back != h {
			if !(math.IsNaN(want) && back&0x7e00 == 0x7e00) { // NaNs come back quiet
				t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, back)
			}
		}
	}
}

func TestBF16Rounding(t *testing.T) {
	cases := []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81}, // above tie
		{0x7f7fffff, 0x7f80}, // max float rounds to Inf
		{0xff800000, 0xff80}, // -Inf
		{0x7fc00000, 0x7fc0}, // NaN
		{0x7f800001, 0x7fc0}, // signalling NaN with low payload stays NaN
		{0x80000000, 0x8000}, // -0
		{0x00000001, 0x0000}, // tiny subnormal
	}
	for _, c := range cases {
		var got [1]uint16
		BF16FromF32(got[:], []float32{math.Float32frombits(c.in)})
		if got[0] != c.want {
			t.Errorf("BF16FromF32(%#08x) = %#04x, want %#04x", c.in, got[0], c.want)
		}
	}
	back := make([]float32, 1)
	F32FromBF16(back, []uint16{0xc020})
	if back[0] != -2.5 {
		t.Errorf("F32FromBF16(0xc020) = %v", back[0])
	}
}

// TestGolden reads testdata/golden.safetensors, written by gen_golden.py
// with numpy/torch (an independent writer and independent conversions).
func TestGolden(t *testing.T) {
	f, err := Open("testdata/golden.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata()["format"] != "pt" {
		t.Errorf("metadata %v", f.Metadata())
	}
	get := func(name string) *Tensor {
		x, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("tensor %q missing", name)
		}
		return x
	}
	in, err := get("f32_in").F32()
	if err != nil {
		t.Fatal(err)
	}
	f16, err := get("f16_numpy").u16()
	if err != nil {
		t.Fatal(err)
	}
	bf16, err := get("bf16_torch").BF16()
	if err != nil {
		t.Fatal(err)
	}
	mine := make([]uint16, len(in))
	BF16FromF32(mine, in)
	for i, x := range in {
		nan := x != x
		if h := F32ToF16(x); h != f16[i] && !(nan && f16[i]&0x7c00 == 0x7c00 && f16[i]&0x3ff != 0 && h&0x7e00 == 0x7e00) {
			t.Errorf("F32ToF16(%#08x) = %#04x, numpy %#04x", math.Float32bits(x), h, f16[i])
		}
		if mine[i] != bf16[i] && !(nan && bf16[i]&0x7f80 == 0x7f80 && bf16[i]&0x7f != 0 && mine[i]&0x7fc0 == 0x7fc0) {
			t.Errorf("BF16FromF32(%#08x) = %#04x, torch %#04x", math.Float32bits(x), mine[i], bf16[i])
		}
	}
	hb, _ := get("h_bits").u16()
	hf, _ := get("h_as_f16_to_f32").F32()
	bff, _ := get("h_as_bf16_to_f32").F32()
	wide := make([]float32, len(hb))
	F32FromBF16(wide, hb)
	for i, h := range hb {
		if g := F16ToF32(h); math.Float32bits(g) != math.Float32bits(hf[i]) && !(g != g && hf[i] != hf[i]) {
			t.Errorf("F16ToF32(%#04x) = %v, numpy %v", h, g, hf[i])
		}
		if math.Float32bits(wide[i]) != math.Float32bits(bff[i]) && !(wide[i] != wide[i] && bff[i] != bff[i]) {
			t.Errorf("F32FromBF16(%#04x) = %v, torch %v", h, wide[i], bff[i])
		}
	}
	m := get("matrix_f32")
	mv, _ := m.ToF32()
	if len(m.Shape) != 2 || m.Shape[0] != 2 || m.Shape[1] != 3 || mv[0] != -2.5 || mv[5] != 2.5 {
		t.Errorf("matrix_f32 shape %v values %v", m.Shape, mv)
	}
	s := get("scalar_bf16")
	if sv, err := s.ToF32(); err != nil || len(s.Shape) != 0 || len(sv) != 1 || sv[0] != 3.140625 {
		t.Errorf("scalar_bf16 shape %v values %v err %v", s.Shape, sv, err)
	}
	if ids := get("ids_i64"); ids.DType != "I64" || ids.NumElements() != 4 || ids.Data[8] != 0xfe {
		t.Errorf("ids_i64 %+v", ids)
	}
}

func BenchmarkBF16FromF32(b *testing.B) {
	src := make([]float32, 1<<16)
	for i := range src {
		src[i] = float32(i) * 0.37
	}
	dst := make([]uint16, len(src))
	b.SetBytes(int64(4 * len(src)))
	for b.Loop() {
		BF16FromF32(dst, src)
	}
}

// TestPortableCopyPaths exercises the big-endian / copying branches on any
// machine by pretending the host is big-endian.
func TestPortableCopyPaths(t *testing.T) {
	saved := littleEndian
	littleEndian = false
	defer func() { littleEndian = saved }()
	b := BytesOfF32([]float32{1.5})
	if len(b) != 4 || b[3] != 0x3f || b[2] != 0xc0 {
		t.Errorf("BytesOfF32 = %x", b)
	}
	u := BytesOfU16([]uint16{0x1234})
	if len(u) != 2 || u[0] != 0x34 || u[1] != 0x12 {
		t.Errorf("BytesOfU16 = %x", u)
	}
	x := Tensor{Name: "x", DType: F32, Shape: []int{1}, Data: b}
	if v, err := x.F32(); err != nil || v[0] != 1.5 || &v[0] == (*float32)(nil) {
		t.Errorf("F32 = %v, %v", v, err)
	}
	y := Tensor{Name: "y", DType: BF16, Shape: []int{1}, Data: u}
	if v, err := y.BF16(); err != nil || v[0] != 0x1234 {
		t.Errorf("BF16 = %x, %v", v, err)
	}
}
