package train

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/gotrain/gotrain/model"
)

// TestDynamicMap compares the quantization maps with bitsandbytes'
// create_dynamic_map run under torch 1.13 (values at a few indices).
func TestDynamicMap(t *testing.T) {
	for _, tc := range []struct {
		q    *[256]float32
		want map[int]float64
	}{
		{&dynamicSigned, map[int]float64{0: -0.992968738079071, 1: -0.9789062142372131, 2: -0.96484375, 100: -0.0074687497690320015,
			127: 0, 128: 5.500000384017767e-07, 129: 3.250000190746505e-06, 200: 0.23359376192092896, 254: 0.992968738079071, 255: 1}},
		{&dynamicUnsigned, map[int]float64{0: 0, 1: 3.2500003044333425e-07, 2: 7.749999895168003e-07, 100: 0.06273438036441803,
			127: 0.103515625, 128: 0.11054687201976776, 129: 0.11757812649011612, 200: 0.6167968511581421, 254: 0.9964843988418579, 255: 1}},
	} {
		for i, w := range tc.want {
			if d := math.Abs(float64(tc.q[i]) - w); d > 1e-6*math.Abs(w) {
				t.Errorf("map[%d] = %v, bitsandbytes %v", i, tc.q[i], w)
			}
		}
		for i := 1; i < 256; i++ {
			if tc.q[i] < tc.q[i-1] {
				t.Fatalf("map not sorted at %d", i)
			}
		}
		for _, x := range []float32{0, 1, tc.q[77], (tc.q[200] + tc.q[201]) / 2 * 1.0001} {
			if i := quantize(tc.q, x); math.Abs(float64(tc.q[i]-x)) > math.Abs(float64(tc.q[min(i+1, 255)]-x)) {
				t.Errorf("quantize(%v) = %d (%v): not the nearest", x, i, tc.q[i])
			}
		}
	}
}

// TestAdamW8bitTracksAdamW: full finetuning with 8-bit moments follows the
// float32 AdamW run closely (losses within 5% at every step), and a run
// interrupted and resumed from its checkpoint (8-bit codes saved as U8
// tensors) ends bitwise equal to an uninterrupted one.
func TestAdamW8bitTracksAdamW(t *testing.T) {
	m := smallModel(t)
	data := randomExamples(32, m.Config.VocabSize, 6)
	run := func(optim string, stop int, resume string, outDir string) ([]float64, *model.Full) {
		f, err := model.NewFull(m)
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.LR, cfg.MaxSteps, cfg.BatchSize, cfg.Optim, cfg.WeightDecay, cfg.SaveSteps = 3e-3, 12, 4, optim, 0.01, 4
		cfg.OutDir = outDir
		tr, err := NewFull(f, cfg, data, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resume != "" {
			if err := tr.Resume(resume); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var losses []float64
		err = tr.Run(ctx, func(s StepInfo) {
			losses = append(losses, s.Loss)
			if s.Step == stop {
				cancel()
			}
		})
		if err != nil && !errors.Is(err, ErrInterrupted) {
			t.Fatal(err)
		}
		return losses, f
	}
	ref, _ := run("adamw", 0, "", t.TempDir())
	got, whole := run("adamw8bit", 0, "", t.TempDir())
	for i := range ref {
		if math.Abs(got[i]-ref[i]) > 0.05*ref[i] {
			t.Errorf("step %d: loss %.4f with 8-bit moments, %.4f with float32", i+1, got[i], ref[i])
		}
	}
	t.Logf("losses float32 %.3f … %.3f, 8-bit %.3f … %.3f", ref[0], ref[len(ref)-1], got[0], got[len(got)-1])
	dir := t.TempDir()
	run("adamw8bit", 6, "", dir)
	_, resumed := run("adamw8bit", 0, LatestCheckpoint(dir), dir)
	sameParams(t, whole, resumed)
}
