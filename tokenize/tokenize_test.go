package tokenize

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"unicode/utf8"
)

// sharedDir holds the real tokenizer files on the development machines; tests
// that need more than the bundled copies skip without it.
const sharedDir = "/work/shared/tokenizers"

var bundledCache sync.Map // name -> *Tokenizer

// bundled returns the bundled tokenizer name, loaded once per test binary.
func bundled(tb testing.TB, name string) *Tokenizer {
	tb.Helper()
	if v, ok := bundledCache.Load(name); ok {
		return v.(*Tokenizer)
	}
	tok, err := LoadBundled(name)
	if err != nil {
		tb.Fatal(err)
	}
	bundledCache.Store(name, tok)
	return tok
}

type goldenCase struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

// openGz opens testdata/name, a gzip file, closed when the test ends.
func openGz(tb testing.TB, name string) io.Reader {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	return zr
}

// readGolden reads testdata/<name>.jsonl.gz written by
// scripts/tokenizer/golden.mjs from transformers.js.
func readGolden(tb testing.TB, name string) []goldenCase {
	tb.Helper()
	var out []goldenCase
	sc := bufio.NewScanner(openGz(tb, name+".jsonl.gz"))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var c goldenCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			tb.Fatalf("%s line %d: %v", name, len(out)+1, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// checkGolden compares tok's ids with the golden ids and checks round-trip.
func checkGolden(t *testing.T, tok *Tokenizer, cases []goldenCase) {
	t.Helper()
	bad := 0
	for _, c := range cases {
		got := tok.Encode(c.Text)
		if !slices.Equal(got, c.IDs) {
			bad++
			if bad <= 10 {
				t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
			}
		}
		if dec := tok.Decode(got); dec != c.Text && utf8.ValidString(c.Text) && isNFC(c.Text, tok) {
			t.Errorf("Decode(Encode(%q)) = %q", c.Text, dec)
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d texts differ", bad, len(cases))
	}
}

// isNFC reports whether tok's normalizer leaves text unchanged, so decoding
// must give back text exactly.
func isNFC(text string, tok *Tokenizer) bool {
	for _, f := range tok.norms {
		if !f.IsNormalString(text) {
			return false
		}
	}
	return true
}

func TestGolden(t *testing.T) {
	for _, name := range []string{"qwen2.5", "qwen3", "llama3"} {
		t.Run(name, func(t *testing.T) {
			cases := readGolden(t, name)
			if len(cases) < 2000 {
				t.Fatalf("only %d golden cases", len(cases))
			}
			checkGolden(t, bundled(t, name), cases)
		})
	}
}
