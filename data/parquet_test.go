package data

import (
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestReadSocSciParquet reads fixtures written by an independent Parquet
// writer (testdata/gen_parquet.mjs: hyparquet-writer, v2 pages, dictionary
// and plain values, SNAPPY and UNCOMPRESSED, 3 row groups) and compares
// every row with the same rows read back by hyparquet and saved as JSONL.
func TestReadSocSciParquet(t *testing.T) {
	want, err := ReadSocSci("testdata/socsci_sample.expect.jsonl", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dev := loadSample(t)
	for _, file := range []string{"testdata/socsci_sample.parquet", "testdata/socsci_sample_plain.parquet"} {
		var rep ReadReport
		got, err := ReadSocSciParquet(file, ReadOptions{Report: &rep})
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(got) != len(want) || rep.Records != 60 {
			t.Fatalf("%s: %d rows, want %d", file, len(got), len(want))
		}
		for i := range got {
			if got[i].File != file || got[i].Line != i+1 {
				t.Errorf("%s: row %d at %s", file, i, got[i].Where())
			}
			g, w := got[i], want[i]
			g.File, g.Line, w.File, w.Line = "", 0, "", 0
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("%s: row %d\n got %+v\nwant %+v", file, i+1, g, w)
			}
			// Rows without a prompt rebuild it from persona and stimuli:
			// it must equal the original dev row's input exactly.
			if i%3 == 0 && i%11 != 5 && got[i].Input != dev[i].Input {
				t.Errorf("row %d: rebuilt prompt\n%q\nwant\n%q", i+1, got[i].Input, dev[i].Input)
			}
			if got[i].Response != dev[i].Response || got[i].StudyID != dev[i].StudyID {
				t.Errorf("row %d: response %v study %s", i+1, got[i].Response, got[i].StudyID)
			}
		}
		if got[5].Persona != nil || got[0].Persona == nil || got[0].Persona.Age != 76 {
			t.Errorf("%s: demographic nulls not kept", file)
		}
	}
}

// TestReadSocSciParquetV1 reads the fixture of a second writer
// (testdata/gen_parquet_v1.cjs: parquetjs-lite, v1 pages, PLAIN values,
// GZIP/SNAPPY/UNCOMPRESSED columns, extra DOUBLE and BOOLEAN columns).
func TestReadSocSciParquetV1(t *testing.T) {
	want, err := ReadSocSci("testdata/socsci_sample.expect.jsonl", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadSFT("testdata/socsci_sample_v1.parquet", ReadOptions{}) // by extension
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		wantWeight := "null"
		if i%5 != 2 {
			wantWeight = strconv.FormatFloat(float64(i)/4, 'f', -1, 64)
		}
		if string(g.Extra["weight"]) != wantWeight || string(g.Extra["flag"]) != strconv.FormatBool(i%3 == 1) {
			t.Errorf("row %d: extra %s %s", i+1, g.Extra["weight"], g.Extra["flag"])
		}
		g.File, g.Line, w.File, w.Line, g.Extra = "", 0, "", 0, nil
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("row %d\n got %+v\nwant %+v", i+1, g, w)
		}
	}
}

func TestParquetErrors(t *testing.T) {
	good, err := os.ReadFile("testdata/socsci_sample.parquet")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "PAR1"},
		{"text", []byte("hello world, not parquet"), "PAR1"},
		{"footer-len", append(append([]byte("PAR1"), make([]byte, 8)...), []byte("\xff\xff\xff\x7fPAR1")...), "footer length"},
		{"truncated", append([]byte("PAR1"), good[len(good)-200:]...), "data: x.parquet"},
	}
	for _, tt := range tests {
		_, err := ReadSocSciParquetBytes(tt.b, "x.parquet", ReadOptions{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
	// Corrupt bytes all over the file (a stride keeps it fast): errors,
	// never panics. FuzzParquet goes further.
	for i := 4; i < len(good)-8; i += 101 {
		b := append([]byte(nil), good...)
		b[i] ^= 0x5a
		ReadSocSciParquetBytes(b, "x.parquet", ReadOptions{SkipBad: true})
	}
	// A row that fails the SocSci210 checks is a LineError naming the row.
	_, err = ReadSocSciParquetBytes(good, "x.parquet", ReadOptions{Format: FormatChat})
	var le *LineError
	if !errors.As(err, &le) || le.Line != 1 {
		t.Errorf("forced chat format: %v", err)
	}
}

func FuzzParquet(f *testing.F) {
	good, err := os.ReadFile("testdata/socsci_sample_plain.parquet")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ReadSocSciParquetBytes(b, "fuzz", ReadOptions{SkipBad: true})
	})
}

func TestSnappy(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{[]byte{5, 4 << 2, 'h', 'e', 'l', 'l', 'o'}, "hello"},
		// "abcabcabcabc": literal "abc" then a 1-byte-offset copy of 9 (4+5) at offset 3.
		{[]byte{12, 2 << 2, 'a', 'b', 'c', 1 | 5<<2, 3}, "abcabcabcabc"},
		// 2-byte offset copy of length 3.
		{[]byte{6, 2 << 2, 'x', 'y', 'z', 2 | 2<<2, 3, 0}, "xyzxyz"},
	}
	for _, tt := range tests {
		got, err := snappyDecode(tt.in)
		if err != nil || string(got) != tt.want {
			t.Errorf("snappy %v: %q %v", tt.in, got, err)
		}
	}
	for _, bad := range [][]byte{{}, {5, 4 << 2, 'h'}, {4, 1 | 0<<2, 9}, {3, 0, 'a'}} {
		if _, err := snappyDecode(bad); err == nil {
			t.Errorf("snappy accepted %v", bad)
		}
	}
}

func TestHybrid(t *testing.T) {
	// RLE run of 5 threes (width 2), then one bit-packed group of 8 values
	// 0..7 (width 3): bytes 0b10001000, 0b11000110, 0b11111010.
	b := []byte{5 << 1, 3, 1<<1 | 1, 0x88, 0xc6, 0xfa}
	out := make([]int, 5)
	if err := hybrid(b[:2], 2, out); err != nil || !reflect.DeepEqual(out, []int{3, 3, 3, 3, 3}) {
		t.Errorf("rle %v %v", out, err)
	}
	out = make([]int, 8)
	if err := hybrid(b[2:], 3, out); err != nil || !reflect.DeepEqual(out, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("bit-packed %v %v", out, err)
	}
}
