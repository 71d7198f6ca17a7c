package tokenize

import (
	"os"
	"strings"
	"testing"
)

// proseText is English prose for benchmarks: the GPL-3 license text
// (testdata/prose.txt, copied from /usr/share/common-licenses/GPL-3).
func proseText(b *testing.B) string {
	data, err := os.ReadFile("testdata/prose.txt")
	if err != nil {
		b.Fatal(err)
	}
	return string(data)
}

// socsciTexts are the SocSci210 prompts and outputs of the golden fixture.
func socsciTexts(b *testing.B) []string {
	var out []string
	for _, c := range readGolden(b, "qwen2.5") {
		if strings.Contains(c.Text, "Demographics:") || strings.HasPrefix(c.Text, "Response:") {
			out = append(out, c.Text)
		}
	}
	return out
}

func benchEncode(b *testing.B, name string, texts []string, cold bool) {
	tok := bundled(b, name)
	var nbytes int
	for _, s := range texts {
		nbytes += len(s)
	}
	b.SetBytes(int64(nbytes))
	b.ResetTimer()
	tokens := 0
	for i := 0; i < b.N; i++ {
		if cold {
			tok.cache.Clear()
			tok.cached.Store(0)
		}
		for _, s := range texts {
			tokens += len(tok.Encode(s))
		}
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkEncodeProse encodes the GPL-3 text (warm word cache after the
// first iteration; Cold clears it every iteration).
func BenchmarkEncodeProse(b *testing.B) {
	texts := []string{proseText(b)}
	for _, name := range []string{"qwen2.5", "llama3"} {
		b.Run(name, func(b *testing.B) { benchEncode(b, name, texts, false) })
		b.Run(name+"-cold", func(b *testing.B) { benchEncode(b, name, texts, true) })
	}
}

// BenchmarkEncodeSocSci encodes every distinct SocSci210 dev prompt and output.
func BenchmarkEncodeSocSci(b *testing.B) {
	texts := socsciTexts(b)
	for _, name := range []string{"qwen2.5", "llama3"} {
		b.Run(name, func(b *testing.B) { benchEncode(b, name, texts, false) })
	}
}

func BenchmarkDecode(b *testing.B) {
	tok := bundled(b, "qwen2.5")
	ids := tok.Encode(proseText(b))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tok.Decode(ids)
	}
	b.ReportMetric(float64(len(ids)*b.N)/b.Elapsed().Seconds(), "tokens/s")
}
