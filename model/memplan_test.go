package model

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// qwen14B is Qwen2.5-14B's config.json, the model this plan exists for.
func qwen14B() *Config {
	c, _ := ConfigFor(Qwen2, "0.5b")
	c.Hidden, c.Layers, c.Heads, c.KVHeads, c.Intermediate, c.HeadDim = 5120, 48, 40, 8, 13824, 128
	c.VocabSize, c.TieEmbeddings = 152064, false
	return c
}

func TestPlanMemory14B(t *testing.T) {
	c := qwen14B()
	in := PlanInput{WeightDType: "BF16", LoRARank: 16, Optimizer: "adamw", BatchTokens: 1024}
	bf := PlanMemory(c, in)
	in.Quantize = "nf4"
	nf := PlanMemory(c, in)
	in.Quantize = "int8"
	i8 := PlanMemory(c, in)
	t.Logf("Qwen2.5-14B BF16:\n%s", bf)
	t.Logf("Qwen2.5-14B nf4:\n%s", nf)
	t.Logf("Qwen2.5-14B int8: total %s", FormatBytes(i8.Total))
	// The BF16 weights alone are 29.5 GB (27.5 GiB).
	if bf.Total < 27<<30 || bf.Total > 34<<30 {
		t.Errorf("BF16 14B plan %s, want 27-34 GiB", FormatBytes(bf.Total))
	}
	if nf.Total > 16<<30 || nf.Total >= i8.Total || i8.Total >= bf.Total {
		t.Errorf("plans not ordered nf4 %s < int8 %s < bf16 %s (nf4 < 16 GiB)", FormatBytes(nf.Total), FormatBytes(i8.Total), FormatBytes(bf.Total))
	}
	var sum int64
	for _, p := range nf.Parts {
		sum += p.Bytes
	}
	if sum != nf.Total || !strings.Contains(nf.String(), "total") {
		t.Errorf("parts sum %d, total %d", sum, nf.Total)
	}
}

func TestParseMemAvailable(t *testing.T) {
	in := "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   12345 kB\n"
	if got := parseMemAvailable(strings.NewReader(in)); got != 12345*1024 {
		t.Fatalf("got %d", got)
	}
	if got := parseMemAvailable(strings.NewReader("nothing\n")); got != -1 {
		t.Fatalf("got %d for no MemAvailable", got)
	}
	if runtime.GOOS == "linux" && Available() <= 0 {
		t.Fatal("Available() on Linux should be positive")
	}
}

// procStatus returns a field of /proc/self/status in bytes.
func procStatus(t *testing.T, field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field+":" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v * 1024
		}
	}
	t.Skipf("no %s in /proc/self/status", field)
	return 0
}

// TestPlanMemoryMeasured compares the plan with the measured peak RSS of
// three activation-dominated training steps (the "small" shape, a 1024-token
// vocabulary, 2048 tokens, LoRA r=8 on all modules). The peak is VmHWM after
// resetting it through /proc/self/clear_refs, minus the RSS before loading.
// Measured: 85 MiB (bf16) and 86 MiB (nf4, cache mapped) against plans of
// 82.1 and 79.6 MiB (−4%, −8%); Backprop keeps its buffers between steps, so
// the loop adds little garbage.
func TestPlanMemoryMeasured(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a step of a small model")
	}
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
	for _, tc := range []struct {
		arch   Arch
		quant  string
		vocab  int
		untied bool
	}{
		{Qwen2, "", 1024, false}, {Qwen2, "nf4", 1024, false}, {Qwen3, "", 1024, false},
		// a vocabulary whose embedding counts: tied, the lookups read the
		// resident copy of the head; untied, the mapped table
		{Qwen3, "", 32768, false}, {Qwen3, "", 32768, true},
	} {
		quant := tc.quant
		c, err := ConfigFor(tc.arch, "small")
		if err != nil {
			t.Fatal(err)
		}
		c.VocabSize, c.TieEmbeddings = tc.vocab, !tc.untied
		dir := t.TempDir()
		if err := WriteRandom(dir, c, "bf16", 3); err != nil {
			t.Fatal(err)
		}
		if quant != "" { // quantize once and cache: the measured load maps the cache
			m0, err := LoadWith(dir, LoadOptions{Quantize: quant, CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			m0.Close()
		}
		runtime.GC()
		debug.FreeOSMemory()
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		base := procStatus(t, "VmRSS")
		m, err := LoadWith(dir, LoadOptions{Quantize: quant, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		ad, err := m.NewAdapter(AdapterConfig{R: 8, LoraAlpha: 16, TargetModules: []string{"q", "k", "v", "o", "gate", "up", "down"}}, 1)
		if err != nil {
			t.Fatal(err)
		}
		g := ad.ZerosLike()
		mom1, mom2 := ad.ZerosLike(), ad.ZerosLike() // AdamW's moments
		rng := rand.New(rand.NewPCG(1, 1))
		var seqs [][2][]int
		for range 8 {
			seqs = append(seqs, [2][]int{randomTokens(rng, 128, c.VocabSize), randomTokens(rng, 128, c.VocabSize)})
		}
		for range 3 { // steady state: later steps allocate beside the last one's garbage
			if _, err := m.LossAndGrad(completionBatch(seqs), ad, g, TrainOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		peak := procStatus(t, "VmHWM") - base
		runtime.KeepAlive(mom1)
		runtime.KeepAlive(mom2)
		m.Close()
		p := PlanMemory(&m.Config, PlanInput{WeightDType: "BF16", Quantize: quant, LoRARank: 8, Optimizer: "adamw", BatchTokens: 2048, Threads: runtime.GOMAXPROCS(0)})
		est := p.Total - runtimeBytes // base already holds the runtime
		rel := float64(est-peak) / float64(peak)
		var buf bytes.Buffer
		buf.WriteString(p.String())
		t.Logf("%s vocab %d untied=%v quantize=%q: measured peak %s, plan %s (without runtime), error %+.1f%%\n%s", tc.arch, tc.vocab, tc.untied, quant, FormatBytes(peak), FormatBytes(est), 100*rel, buf.String())
		// ±15%: the peak holds whatever garbage the collector has not yet
		// reclaimed, which depends on CPU time: the qwen3 32k case measured
		// 165 MiB alone on an idle machine and 183 MiB (+11%) inside a
		// parallel `go test ./...` at load 3, against a plan of 162.
		if rel < -0.15 || rel > 0.15 {
			t.Errorf("%s vocab %d untied=%v quantize=%q: plan %s vs measured %s (%+.0f%%)", tc.arch, tc.vocab, tc.untied, quant, FormatBytes(est), FormatBytes(peak), 100*rel)
		}
	}
}

func TestPlanCheckTypedError(t *testing.T) {
	p := Plan{Total: 10 << 30}
	if p.Check(-1) != nil || p.Check(20<<30) != nil {
		t.Error("a fitting or unknown-memory plan was refused")
	}
	err := p.Check(4 << 30)
	var me *MemoryError
	if !errors.Is(err, ErrOutOfMemory) || !errors.As(err, &me) || me.Available != 4<<30 {
		t.Errorf("refusal is not a *MemoryError wrapping ErrOutOfMemory: %v", err)
	}
}

// TestPlanModulesToSave: an adapter's modules_to_save are float32 copies
// trained like its tensors: with AdamW, the copy, two gradients and two
// moments of V·H values for embed_tokens and H for norm.
func TestPlanModulesToSave(t *testing.T) {
	c := qwen14B()
	in := PlanInput{WeightDType: "BF16", LoRARank: 16, Optimizer: "adamw", BatchTokens: 1024}
	lora := PlanMemory(c, in)
	in.ModulesToSave = []string{"embed_tokens", " norm"}
	saved := PlanMemory(c, in)
	n := int64(c.VocabSize*c.Hidden + c.Hidden)
	if got, want := saved.Total-lora.Total, 5*4*n; got < want-64 || got > want+64 {
		t.Errorf("modules_to_save add %s, want %s:\n%s", FormatBytes(got), FormatBytes(want), saved)
	}
}
