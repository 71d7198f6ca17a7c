package safetensors

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseHeaderValid(t *testing.T) {
	h := `{"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},` +
		`"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":[1]},"s":{"dtype":"F32","shape":[],"data_offsets":[12,16]},` +
		`"z":{"dtype":"I64","shape":[0,3],"data_offsets":[16,16]},"q":{"dtype":"F4","shape":[4],"data_offsets":[16,18]}}   `
	ts, offs, meta, err := ParseHeader([]byte(h), 18)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range ts {
		names = append(names, x.Name)
	}
	if want := []string{"a", "b", "q", "s", "z"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	if want := [][2]int64{{0, 8}, {8, 12}, {16, 18}, {12, 16}, {16, 16}}; !reflect.DeepEqual(offs, want) {
		t.Errorf("offsets %v, want %v", offs, want)
	}
	if meta["format"] != "pt" || len(meta) != 1 {
		t.Errorf("metadata %v", meta)
	}
	if ts[3].Shape == nil || len(ts[3].Shape) != 0 || ts[3].NumElements() != 1 {
		t.Errorf("scalar shape %#v numel %d", ts[3].Shape, ts[3].NumElements())
	}
	if ts[0].Data != nil {
		t.Error("ParseHeader must leave Data nil")
	}
}

// badHeaders are header/dataLen pairs that must be rejected, each with a
// fragment the error must contain (the tensor's name where there is one).
var badHeaders = []struct {
	name, header string
	dataLen      int64
	want         []string
}{
	{"not json", `{"a":`, 0, []string{"invalid JSON"}},
	{"empty", ``, 0, []string{"invalid JSON"}},
	{"array", `[]`, 0, []string{"want a JSON object"}},
	{"string", `"x"`, 0, []string{"want a JSON object"}},
	{"null", `null`, 0, []string{"want a JSON object"}},
	{"trailing data", `{} {}`, 0, []string{"after header"}},
	{"entry not object", `{"w":5}`, 0, []string{`tensor "w"`, "want a JSON object"}},
	{"missing dtype", `{"w":{"shape":[1],"data_offsets":[0,4]}}`, 4, []string{`tensor "w"`, "missing dtype"}},
	{"missing shape", `{"w":{"dtype":"F32","data_offsets":[0,4]}}`, 4, []string{`tensor "w"`, "missing shape"}},
	{"missing offsets", `{"w":{"dtype":"F32","shape":[1]}}`, 4, []string{`tensor "w"`, "missing data_offsets"}},
	{"dtype number", `{"w":{"dtype":5,"shape":[1],"data_offsets":[0,4]}}`, 4, []string{`tensor "w"`, "dtype must be a string"}},
	{"dtype unknown", `{"w":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}}`, 4, []string{`tensor "w"`, "unknown dtype"}},
	{"shape string", `{"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}`, 4, []string{`tensor "w"`, "shape"}},
	{"shape null", `{"w":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}`, 4, []string{`tensor "w"`, "shape"}},
	{"shape float", `{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, 4, []string{`tensor "w"`, "not an int64"}},
	{"shape float int", `{"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}`, 4, []string{`tensor "w"`, "not an int64"}},
	{"shape quoted", `{"w":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}`, 4, []string{`tensor "w"`, "want an integer"}},
	{"shape nested", `{"w":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}}`, 4, []string{`tensor "w"`, "want an integer"}},
	{"shape huge", `{"w":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}`, 4, []string{`tensor "w"`, "not an int64"}},
	{"negative dim", `{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4, []string{`tensor "w"`, "negative dimension"}},
	{"overflow product", `{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}`, 4, []string{`tensor "w"`, "overflows"}},
	{"overflow bytes", `{"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}}`, 4, []string{`tensor "w"`, "overflows"}},
	{"overflow wraps to zero", `{"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 4, []string{`tensor "w"`, "overflows"}},
	{"offsets short", `{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 4, []string{`tensor "w"`, "want [begin, end]"}},
	{"offsets long", `{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, 8, []string{`tensor "w"`, "want [begin, end]"}},
	{"offsets object", `{"w":{"dtype":"F32","shape":[1],"data_offsets":{"a":0}}}`, 4, []string{`tensor "w"`, "data_offsets"}},
	{"negative offset", `{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, 4, []string{`tensor "w"`, "negative data_offsets"}},
	{"begin after end", `{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}`, 8, []string{`tensor "w"`, "begin 8 > end 4"}},
	{"end beyond data", `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4, []string{`tensor "w"`, "beyond the 4-byte data section"}},
	{"size mismatch", `{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}`, 16, []string{`tensor "w"`, "needs 16"}},
	{"size mismatch bf16", `{"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}}`, 16, []string{`tensor "w"`, "needs 6"}},
	{"packed not whole bytes", `{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, 16, []string{`tensor "w"`, "not whole bytes"}},
	{"overlap", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12,
		[]string{`tensor "b"`, `tensor "a"`, "overlap"}},
	{"same range", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8,
		[]string{"overlap"}},
	{"duplicate tensor", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8,
		[]string{`duplicate entry "a"`}},
	{"duplicate field", `{"a":{"dtype":"F32","shape":[1],"dtype":"F16","data_offsets":[0,4]}}`, 4, []string{`tensor "a"`, `duplicate field "dtype"`}},
	{"metadata not object", `{"__metadata__":[1]}`, 0, []string{"__metadata__", "want a JSON object"}},
	{"metadata number", `{"__metadata__":{"format":1}}`, 0, []string{"__metadata__", `key "format"`, "must be a string"}},
	{"metadata duplicate key", `{"__metadata__":{"k":"a","k":"b"}}`, 0, []string{"__metadata__", `duplicate key "k"`}},
	{"metadata twice", `{"__metadata__":{},"__metadata__":{}}`, 0, []string{`duplicate entry "__metadata__"`}},
	{"negative data length", `{}`, -1, []string{"negative data length"}},
}

func TestParseHeaderBad(t *testing.T) {
	for _, tc := range badHeaders {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := ParseHeader([]byte(tc.header), tc.dataLen)
			if err == nil {
				t.Fatalf("ParseHeader(%s) succeeded", tc.header)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestParseHeaderTooLarge(t *testing.T) {
	h := make([]byte, MaxHeaderBytes+1)
	if _, _, _, err := ParseHeader(h, 0); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte(`{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`), int64(8))
	f.Add([]byte(`{"a":{"dtype":"F4","shape":[4],"data_offsets":[0,2]},"b":{"dtype":"BF16","shape":[],"data_offsets":[2,4]}}  `), int64(4))
	f.Add([]byte(`{}`), int64(0))
	// In-range extremes: the largest sizes whose byte counts still fit an int64.
	f.Add([]byte(`{"a":{"dtype":"F32","shape":[1073741824,2147483647],"data_offsets":[0,9223372028264841216]}}`), int64(9223372028264841216))
	f.Add([]byte(`{"a":{"dtype":"U8","shape":[0,9223372036854775807],"data_offsets":[0,0]}}`), int64(0))
	f.Add([]byte(`{"a":{"dtype":"F64","shape":[1152921504606846975],"data_offsets":[0,9223372036854775800]}}`), int64(9223372036854775807))
	for _, tc := range badHeaders {
		f.Add([]byte(tc.header), tc.dataLen)
	}
	f.Fuzz(func(t *testing.T, header []byte, dataLen int64) {
		ts, offs, _, err := ParseHeader(header, dataLen)
		if err != nil {
			return
		}
		// Whatever is accepted must be self-consistent.
		if len(ts) != len(offs) {
			t.Fatalf("%d tensors, %d offsets", len(ts), len(offs))
		}
		for i, x := range ts {
			o := offs[i]
			if o[0] < 0 || o[0] > o[1] || o[1] > dataLen {
				t.Fatalf("tensor %q: bad offsets %v for %d bytes", x.Name, o, dataLen)
			}
			if i > 0 && ts[i-1].Name >= x.Name {
				t.Fatalf("names not sorted and unique: %q, %q", ts[i-1].Name, x.Name)
			}
			n, ok := numElements(x.Shape)
			want, ok2 := byteLen(n, x.DType)
			if !ok || !ok2 || want != o[1]-o[0] {
				t.Fatalf("tensor %q: shape %v of %s accepted for %d bytes", x.Name, x.Shape, x.DType, o[1]-o[0])
			}
		}
	})
}
