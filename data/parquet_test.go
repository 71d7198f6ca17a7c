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
