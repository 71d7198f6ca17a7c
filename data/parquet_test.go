package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
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

// pqDemo and pqRow are the native SocSci210 layout for parquet-go's writer:
// the json tags read socsci_sample.expect.jsonl, the parquet tags choose
// codecs and encodings the JS fixtures lack (ZSTD, LZ4, DELTA, INT32,
// FLOAT).
type pqDemo struct {
	Age        *int64  `json:"age" parquet:"age,optional"`
	Sex        *string `json:"sex" parquet:"sex,optional"`
	Education  *string `json:"education" parquet:"education,optional,dict"`
	Employment *string `json:"employment" parquet:"employment,optional"`
	Income     *string `json:"income" parquet:"income,optional,lz4"`
	PartyID    *string `json:"party_id" parquet:"party_id,optional"`
	Ideology   *string `json:"ideology" parquet:"ideology,optional"`
}

type pqRow struct {
	SampleID     string  `json:"sample_id" parquet:"sample_id,delta"`
	Participant  int64   `json:"participant" parquet:"participant"`
	Demographic  *pqDemo `json:"demographic" parquet:"demographic,optional"`
	Stimuli      string  `json:"stimuli" parquet:"stimuli,dict,zstd"`
	Prompt       *string `json:"prompt" parquet:"prompt,optional,zstd"`
	Reasoning    *string `json:"reasoning" parquet:"reasoning,optional"`
	Response     int32   `json:"response" parquet:"response"`
	ConditionNum int64   `json:"condition_num" parquet:"condition_num,delta"`
	TaskNum      int64   `json:"task_num" parquet:"task_num"`
	StudyID      string  `json:"study_id" parquet:"study_id,dict"`
	Score        float32 `json:"-" parquet:"score"`
}

// TestReadSocSciParquetGoWriter reads the fixture rows written by
// parquet-go itself with codecs and encodings the JS writers lack, plus an
// extra FLOAT column whose NaN must come out as null.
func TestReadSocSciParquetGoWriter(t *testing.T) {
	want, err := ReadSocSci("testdata/socsci_sample.expect.jsonl", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/socsci_sample.expect.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var rows []pqRow
	for i, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var r pqRow
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		r.Score = float32(i) / 2
		if i%7 == 3 {
			r.Score = float32(math.NaN())
		}
		rows = append(rows, r)
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[pqRow](&buf, parquet.MaxRowsPerRowGroup(7), parquet.DataPageVersion(1))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSocSciParquetBytes(buf.Bytes(), "go.parquet", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		score := strconv.FormatFloat(float64(i)/2, 'f', -1, 64)
		if i%7 == 3 {
			score = "null"
		}
		if string(g.Extra["score"]) != score {
			t.Errorf("row %d: score %s, want %s", i+1, g.Extra["score"], score)
		}
		if g.Line != i+1 {
			t.Errorf("row %d: line %d", i+1, g.Line)
		}
		g.File, g.Line, w.File, w.Line, g.Extra = "", 0, "", 0, nil
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("row %d\n got %+v\nwant %+v", i+1, g, w)
		}
	}
}

// TestParquetUnsupported: lists never occur in SocSci210 and are a clear
// error naming the file and the column.
func TestParquetUnsupported(t *testing.T) {
	type listRow struct {
		SampleID string   `parquet:"sample_id"`
		Tags     []string `parquet:"tags,list"`
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, []listRow{{"s0", []string{"a"}}}); err != nil {
		t.Fatal(err)
	}
	_, err := ReadSocSciParquetBytes(buf.Bytes(), "list.parquet", ReadOptions{})
	if err == nil || !strings.Contains(err.Error(), "list.parquet") || !strings.Contains(err.Error(), `"tags.list" is repeated`) {
		t.Errorf("list column: %v", err)
	}
}
