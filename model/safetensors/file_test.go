package safetensors

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

func TestOpenBad(t *testing.T) {
	lenOnly := func(n uint64, rest int) []byte {
		b := make([]byte, 8+rest)
		binary.LittleEndian.PutUint64(b, n)
		for i := 8; i < len(b); i++ {
			b[i] = ' '
		}
		return b
	}
	cases := []struct {
		name string
		file []byte
		want []string
	}{
		{"empty", nil, []string{"shorter than the 8-byte"}},
		{"seven bytes", []byte{1, 0, 0, 0, 0, 0, 0}, []string{"shorter than the 8-byte"}},
		{"header past end", lenOnly(100, 10), []string{"header length 100 exceeds the 10 bytes"}},
		{"header huge", lenOnly(1<<62, 10), []string{"exceeds the 104857600-byte limit"}},
		{"header over limit", lenOnly(MaxHeaderBytes+1, 10), []string{"limit"}},
		{"not json", rawFile(`{"a"`, nil), []string{"invalid JSON"}},
		{"not object", rawFile(`[1,2]`, nil), []string{"want a JSON object"}},
		{"end beyond data", rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), []string{`tensor "w"`, "beyond"}},
		{"duplicate", rawFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, make([]byte, 2)),
			[]string{`duplicate entry "w"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTemp(t, "bad.safetensors", tc.file)
			f, err := Open(p)
			if err == nil {
				f.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range append(tc.want, p) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.safetensors")); err == nil {
		t.Error("Open of a missing file succeeded")
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Open of a directory: %v", err)
	}
}

// testTensors covers every convertible dtype, a scalar, an empty tensor and
// an unconvertible dtype.
func testTensors() []Tensor {
	f32 := []float32{1, -2.5, 3e-3, float32(math.Inf(1)), 0, float32(math.Copysign(0, -1)), 1e-40, 65504}
	bf := make([]uint16, len(f32))
	BF16FromF32(bf, f32)
	f16 := make([]uint16, len(f32))
	for i, x := range f32 {
		f16[i] = F32ToF16(x)
	}
	i64 := make([]byte, 16)
	binary.LittleEndian.PutUint64(i64, 7)
	binary.LittleEndian.PutUint64(i64[8:], math.MaxUint64)
	return []Tensor{
		{Name: "model.layers.0.w_f32", DType: F32, Shape: []int{2, 4}, Data: BytesOfF32(f32)},
		{Name: "model.layers.0.w_bf16", DType: BF16, Shape: []int{4, 2}, Data: BytesOfU16(bf)},
		{Name: "model.layers.0.w_f16", DType: F16, Shape: []int{8}, Data: BytesOfU16(f16)},
		{Name: "scalar", DType: F32, Shape: []int{}, Data: BytesOfF32([]float32{42})},
		{Name: "empty", DType: BF16, Shape: []int{0, 5}, Data: []byte{}},
		{Name: "odd", DType: "U8", Shape: []int{3}, Data: []byte{1, 2, 3}}, // misaligns what follows
		{Name: "ids", DType: "I64", Shape: []int{2}, Data: i64},
		{Name: "zzz.f32", DType: F32, Shape: []int{1, 1}, Data: BytesOfF32([]float32{-7})},
	}
}

func TestWriteOpenRoundTrip(t *testing.T) {
	in := testTensors()
	p := filepath.Join(t.TempDir(), "m.safetensors")
	meta := map[string]string{"format": "pt", "note": "ünïcode \"quoted\""}
	if err := Write(p, in, meta); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	n := binary.LittleEndian.Uint64(raw)
	if (8+n)%8 != 0 || raw[8] != '{' || raw[8+n-1] != ' ' && raw[8+n-1] != '}' {
		t.Errorf("header length %d not padded to 8 or malformed: %q", n, raw[8:8+n])
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !reflect.DeepEqual(f.Metadata(), meta) {
		t.Errorf("metadata %v, want %v", f.Metadata(), meta)
	}
	var wantNames []string
	for _, x := range in {
		wantNames = append(wantNames, x.Name)
	}
	if got := f.Names(); !reflect.DeepEqual(got, sortedKeys(setOf(wantNames))) {
		t.Errorf("names %v", got)
	}
	for _, want := range in {
		got, ok := f.Tensor(want.Name)
		if !ok {
			t.Fatalf("tensor %q missing", want.Name)
		}
		if got.Name != want.Name || got.DType != want.DType || !reflect.DeepEqual(got.Shape, want.Shape) ||
			string(got.Data) != string(want.Data) {
			t.Errorf("tensor %q: got %+v, want %+v", want.Name, got, want)
		}
		switch want.DType {
		case F32, BF16, F16:
			v, err := got.ToF32()
			if err != nil {
				t.Fatalf("%s: %v", want.Name, err)
			}
			if len(v) != want.NumElements() {
				t.Errorf("%s: ToF32 gave %d values, want %d", want.Name, len(v), want.NumElements())
			}
		default:
			if _, err := got.ToF32(); err == nil || !strings.Contains(err.Error(), want.Name) {
				t.Errorf("%s: ToF32 of %s: err %v", want.Name, want.DType, err)
			}
		}
	}
	w, _ := f.Tensor("model.layers.0.w_f32")
	v, err := w.F32()
	if err != nil || v[1] != -2.5 || !math.IsInf(float64(v[3]), 1) || math.Float32bits(v[5]) != 0x80000000 {
		t.Errorf("F32 view %v, %v", v, err)
	}
	if _, err := w.BF16(); err == nil {
		t.Error("BF16 view of F32 succeeded")
	}
	b, _ := f.Tensor("model.layers.0.w_bf16")
	bv, err := b.BF16()
	if err != nil || bv[0] != 0x3f80 || bv[1] != 0xc020 {
		t.Errorf("BF16 view %x, %v", bv, err)
	}
	if _, err := b.F32(); err == nil {
		t.Error("F32 view of BF16 succeeded")
	}
	h, _ := f.Tensor("model.layers.0.w_f16")
	hv, _ := h.ToF32()
	if hv[0] != 1 || hv[1] != -2.5 || hv[7] != 65504 || hv[6] != 0 {
		t.Errorf("F16 values %v", hv)
	}
	s, _ := f.Tensor("scalar")
	if sv, err := s.ToF32(); err != nil || len(sv) != 1 || sv[0] != 42 || len(s.Shape) != 0 {
		t.Errorf("scalar %v %v shape %v", sv, err, s.Shape)
	}
	if _, ok := f.Tensor("nope"); ok {
		t.Error("missing tensor found")
	}
}

func setOf(s []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return m
}

// TestF32ViewIsMapped checks that F32 data is a zero-copy view into the
// mapping: its address lies inside the mapped file.
func TestF32ViewIsMapped(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.safetensors")
	if err := Write(p, testTensors(), nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !f.mapped {
		t.Skip("no mmap on this platform")
	}
	lo := uintptr(unsafe.Pointer(&f.buf[0]))
	hi := lo + uintptr(len(f.buf))
	for _, name := range []string{"model.layers.0.w_f32", "zzz.f32"} {
		x, _ := f.Tensor(name)
		v, err := x.F32()
		if err != nil {
			t.Fatal(err)
		}
		addr := uintptr(unsafe.Pointer(&v[0]))
		if addr < lo || addr >= hi {
			t.Errorf("%s: F32 view at %#x outside the mapping [%#x, %#x)", name, addr, lo, hi)
		}
		if addr%4 != 0 {
			t.Errorf("%s: F32 data at %#x not 4-byte aligned", name, addr)
		}
	}
}

// TestF32Unaligned checks the copying fallback when data is not aligned.
func TestF32Unaligned(t *testing.T) {
	buf := make([]byte, 9)
	copy(buf[1:], BytesOfF32([]float32{1.5, -3}))
	x := Tensor{Name: "u", DType: F32, Shape: []int{2}, Data: buf[1:]}
	v, err := x.F32()
	if err != nil || v[0] != 1.5 || v[1] != -3 {
		t.Fatalf("%v %v", v, err)
	}
	x.Shape = []int{3}
	if _, err := x.F32(); err == nil || !strings.Contains(err.Error(), `"u"`) {
		t.Errorf("shape mismatch not caught: %v", err)
	}
}

func TestWriteBad(t *testing.T) {
	ok := Tensor{Name: "a", DType: F32, Shape: []int{1}, Data: make([]byte, 4)}
	cases := []struct {
		name    string
		tensors []Tensor
		want    string
	}{
		{"duplicate", []Tensor{ok, ok}, `duplicate tensor "a"`},
		{"reserved", []Tensor{{Name: "__metadata__", DType: F32, Shape: []int{}, Data: make([]byte, 4)}}, "reserved"},
		{"short data", []Tensor{{Name: "b", DType: F32, Shape: []int{2}, Data: make([]byte, 4)}}, `tensor "b": 4 data bytes`},
		{"unknown dtype", []Tensor{{Name: "c", DType: "X", Shape: []int{}, Data: nil}}, `unknown dtype "X"`},
		{"negative dim", []Tensor{{Name: "d", DType: F32, Shape: []int{-1}, Data: nil}}, `tensor "d": invalid shape`},
		{"bad utf8", []Tensor{{Name: "e\xff", DType: F32, Shape: []int{0}, Data: nil}}, "UTF-8"},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".safetensors")
			err := Write(p, tc.tensors, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v, want %q and the path", err, tc.want)
			}
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("failed Write left %s", p)
			}
		})
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("temp files left behind: %v", ents)
	}
}

// TestWriteEmpty writes a file with no tensors and no metadata.
func TestWriteEmpty(t *testing.T) {
	p := filepath.Join(t.TempDir(), "e.safetensors")
	if err := Write(p, nil, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Names()) != 0 || len(f.Metadata()) != 0 {
		t.Errorf("names %v metadata %v", f.Names(), f.Metadata())
	}
}

// TestRewriteWhileMapped overwrites a file that is open: the old mapping
// must keep its contents (temp file + rename never truncates in place).
func TestRewriteWhileMapped(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.safetensors")
	x := []Tensor{{Name: "w", DType: F32, Shape: []int{1}, Data: BytesOfF32([]float32{1})}}
	if err := Write(p, x, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x[0].Data = BytesOfF32([]float32{2})
	if err := Write(p, x, nil); err != nil {
		t.Fatal(err)
	}
	w, _ := f.Tensor("w")
	if v, _ := w.F32(); v[0] != 1 {
		t.Errorf("old mapping changed to %v", v)
	}
	g, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	w, _ = g.Tensor("w")
	if v, _ := w.F32(); v[0] != 2 {
		t.Errorf("new file reads %v", v)
	}
}

func FuzzOpen(f *testing.F) {
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(rawFile(`{"__metadata__":{"k":"v"},"a":{"dtype":"F16","shape":[],"data_offsets":[0,2]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[2,4]}}`, make([]byte, 4)))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "fuzz.safetensors")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		file, err := Open(p)
		if err != nil {
			return
		}
		defer file.Close()
		for _, name := range file.Names() {
			x, ok := file.Tensor(name)
			if !ok {
				t.Fatalf("listed tensor %q not found", name)
			}
			v, err := x.ToF32()
			if err == nil && len(v) != x.NumElements() {
				t.Fatalf("%q: %d values for %d elements", name, len(v), x.NumElements())
			}
		}
	})
}
