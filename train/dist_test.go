package train

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gotrain/gotrain/dist"
	"github.com/gotrain/gotrain/model"
)

// joinRanks starts a job of n ranks inside this process on loopback.
func joinRanks(t *testing.T, n int) []*dist.Group {
	t.Helper()
	gs, err := dist.LoopbackJob(n, []byte(t.Name()), dist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, g := range gs {
			g.Close()
		}
	})
	return gs
}

// eachRank runs f(r) for every rank concurrently and waits.
func eachRank(n int, f func(r int)) {
	var wg sync.WaitGroup
	for r := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(r)
		}()
	}
	wg.Wait()
}

// runRanks runs a job of W ranks in this process: rank r trains with cfg
// given its group and the shared output folder out, through the trainer
// newRank makes; it returns each rank's steps.
func runRanks(t *testing.T, W int, cfg Config, out string, newRank func(r int, c Config) (*Trainer, error)) [][]StepInfo {
	t.Helper()
	gs := joinRanks(t, W)
	steps := make([][]StepInfo, W)
	errs := make([]error, W)
	eachRank(W, func(r int) {
		c := cfg
		c.Group, c.OutDir = gs[r], out
		tr, err := newRank(r, c)
		if err != nil {
			errs[r] = err
			gs[r].Abort(err)
			return
		}
		errs[r] = tr.Run(context.Background(), func(s StepInfo) { steps[r] = append(steps[r], s) })
	})
	for r, err := range errs {
		if err != nil {
			t.Fatalf("%d ranks: rank %d: %v", W, r, err)
		}
	}
	return steps
}

// TestDataParallelBitwise: 2 and 4 ranks with --grad-accum 2 end with the
// very adapter, losses and metrics of one process with grad-accum 2×W, for
// SFT and DPO, with dropout and a last global batch that is partial (some
// ranks then have no micro-batch in a round).
func TestDataParallelBitwise(t *testing.T) {
	m := smallModel(t)
	sft := randomExamples(13, m.Config.VocabSize, 5)
	held := randomExamples(2*evalBlock+1, m.Config.VocabSize, 7) // three blocks of eval scoring
	var pairs []Pair
	for i, e := range randomExamples(2*evalBlock+5, m.Config.VocabSize, 6) { // three blocks of reference scoring
		pairs = append(pairs, Pair{Prompt: e.Tokens[:len(e.Tokens)-1], Chosen: []int{11, 12}, Rejected: []int{13, 14 + i%3}})
	}
	fresh := func() *model.Adapter {
		ad, _ := m.NewAdapter(model.AdapterConfig{R: 4, LoraAlpha: 8, TargetModules: []string{"q", "v", "gate", "down"}}, 3)
		return ad
	}
	newTrainer := func(task string, ad *model.Adapter, cfg Config) (*Trainer, error) {
		if task == "dpo" {
			return NewDPO(m, ad, cfg, DPOConfig{Beta: 0.1, LabelSmoothing: 0.1}, pairs, pairs[:evalBlock+3])
		}
		return New(m, ad, cfg, sft, held)
	}
	for _, task := range []string{"sft", "dpo"} {
		for _, W := range []int{2, 4} {
			cfg := DefaultConfig()
			cfg.LR, cfg.Epochs, cfg.BatchSize, cfg.Dropout, cfg.WarmupRatio = 1e-2, 2, 2, 0.1, 0.1
			if task == "dpo" {
				cfg.MaxSteps = 3
			}
			// one process with the same global batch
			one := cfg
			one.GradAccum, one.OutDir = 2*W, t.TempDir()
			want := fresh()
			tr, err := newTrainer(task, want, one)
			if err != nil {
				t.Fatal(err)
			}
			var wantSteps []StepInfo
			if err := tr.Run(context.Background(), func(s StepInfo) { wantSteps = append(wantSteps, s) }); err != nil {
				t.Fatal(err)
			}
			// W ranks
			got := make([]*model.Adapter, W)
			out := t.TempDir()
			ranks := cfg
			ranks.GradAccum = 2
			steps := runRanks(t, W, ranks, out, func(r int, c Config) (*Trainer, error) {
				got[r] = fresh()
				return newTrainer(task, got[r], c)
			})
			_, a := want.Params()
			for r := range W {
				_, b := got[r].Params()
				for i := range a {
					for j := range a[i] {
						if a[i][j] != b[i][j] {
							t.Fatalf("%s, %d ranks: rank %d tensor %d[%d] = %v, one process %v", task, W, r, i, j, b[i][j], a[i][j])
						}
					}
				}
				if len(steps[r]) != len(wantSteps) {
					t.Fatalf("%s, %d ranks: rank %d made %d steps, want %d", task, W, r, len(steps[r]), len(wantSteps))
				}
				for i, s := range steps[r] {
					w := wantSteps[i]
					if s.Loss != w.Loss || s.GradNorm != w.GradNorm || s.Tokens != w.Tokens || len(s.Metrics) < len(w.Metrics)-4 {
						t.Fatalf("%s, %d ranks: rank %d step %d: %+v, one process %+v", task, W, r, i+1, s, w)
					}
					for k, v := range s.Metrics {
						if w.Metrics[k] != v {
							t.Fatalf("%s, %d ranks: rank %d step %d: %s %v, one process %v", task, W, r, i+1, k, v, w.Metrics[k])
						}
					}
				}
			}
			// rank 0 alone wrote the metrics, with the eval numbers
			ms, err := ReadMetrics(filepath.Join(out, metricsFile))
			if err != nil || len(ms) != len(wantSteps) || ms[len(ms)-1].EvalLoss == nil || *ms[len(ms)-1].EvalLoss != *wantSteps[len(wantSteps)-1].EvalLoss {
				t.Fatalf("%s, %d ranks: metrics.jsonl: %d lines, %v", task, W, len(ms), err)
			}
		}
	}
}

// TestDataParallelResume: a 2-rank job whose rank 1 alone is interrupted
// stops with every rank at the same step, rank 0 saves the checkpoint, and
// a 4-rank job with the same global batch resumes it to the very adapter of
// one uninterrupted process.
func TestDataParallelResume(t *testing.T) {
	m := smallModel(t)
	sft := randomExamples(13, m.Config.VocabSize, 5)
	fresh := func() *model.Adapter {
		ad, _ := m.NewAdapter(model.AdapterConfig{R: 4, LoraAlpha: 8, TargetModules: []string{"q", "down"}}, 3)
		return ad
	}
	cfg := DefaultConfig()
	cfg.LR, cfg.MaxSteps, cfg.BatchSize, cfg.Dropout = 1e-2, 5, 2, 0.1
	one := cfg
	one.GradAccum = 4
	want := fresh()
	tr, err := New(m, want, one, sft, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	run := func(W, accum int, resume bool, interruptRank int) ([]*model.Adapter, []error) {
		gs := joinRanks(t, W)
		ads := make([]*model.Adapter, W)
		errs := make([]error, W)
		eachRank(W, func(r int) {
			c := cfg
			c.GradAccum, c.Group, c.OutDir = accum, gs[r], out
			ads[r] = fresh()
			tr, err := New(m, ads[r], c, sft, nil)
			if err == nil && resume {
				err = tr.Resume(LatestCheckpoint(out))
			}
			if err != nil {
				errs[r] = err
				gs[r].Abort(err)
				return
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errs[r] = tr.Run(ctx, func(s StepInfo) {
				if r == interruptRank && s.Step == 2 {
					cancel()
				}
			})
		})
		return ads, errs
	}
	_, errs := run(2, 2, false, 1)
	for r, err := range errs {
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("rank %d: %v, want ErrInterrupted", r, err)
		}
	}
	if ck := LatestCheckpoint(out); filepath.Base(ck) != "checkpoint-2" {
		t.Fatalf("latest checkpoint %q", ck)
	}
	ads, errs := run(4, 1, true, -1)
	_, a := want.Params()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
		_, b := ads[r].Params()
		for i := range a {
			for j := range a[i] {
				if a[i][j] != b[i][j] {
					t.Fatalf("resumed rank %d: tensor %d[%d] = %v, one process %v", r, i, j, b[i][j], a[i][j])
				}
			}
		}
	}
	if ms, err := ReadMetrics(filepath.Join(out, metricsFile)); err != nil || len(ms) != 5 {
		t.Fatalf("metrics.jsonl: %d lines, %v", len(ms), err)
	}
}

// TestDataParallelFull: full finetuning (every weight, AdamW) on 2 ranks
// ends with the very weights, losses and gradient norms of one process with
// the same global batch, for SFT and DPO.
func TestDataParallelFull(t *testing.T) {
	m := smallModel(t)
	sft := randomExamples(9, m.Config.VocabSize, 5)
	var pairs []Pair
	for i, e := range randomExamples(7, m.Config.VocabSize, 6) {
		pairs = append(pairs, Pair{Prompt: e.Tokens[:len(e.Tokens)-1], Chosen: []int{11, 12}, Rejected: []int{13, 14 + i%3}})
	}
	fresh := func() *model.Full {
		f, err := model.NewFull(m)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	newTrainer := func(task string, f *model.Full, cfg Config) (*Trainer, error) {
		if task == "dpo" {
			return NewFullDPO(f, cfg, DPOConfig{Beta: 0.1}, pairs, nil)
		}
		return NewFull(f, cfg, sft, nil)
	}
	const W = 2
	for _, task := range []string{"sft", "dpo"} {
		cfg := DefaultConfig()
		cfg.LR, cfg.Epochs, cfg.BatchSize, cfg.WarmupRatio, cfg.MaxSteps = 1e-3, 1, 2, 0, 2
		one := cfg
		one.GradAccum, one.OutDir = W, t.TempDir()
		want := fresh()
		tr, err := newTrainer(task, want, one)
		if err != nil {
			t.Fatal(err)
		}
		var wantSteps []StepInfo
		if err := tr.Run(context.Background(), func(s StepInfo) { wantSteps = append(wantSteps, s) }); err != nil {
			t.Fatal(err)
		}
		got := make([]*model.Full, W)
		ranks := cfg
		ranks.GradAccum = 1
		steps := runRanks(t, W, ranks, t.TempDir(), func(r int, c Config) (*Trainer, error) {
			got[r] = fresh()
			return newTrainer(task, got[r], c)
		})
		names, a := want.Params()
		for r := range W {
			_, b := got[r].Params()
			for i := range a {
				for j := range a[i] {
					if a[i][j] != b[i][j] {
						t.Fatalf("%s full, rank %d: %s[%d] = %v, one process %v", task, r, names[i], j, b[i][j], a[i][j])
					}
				}
			}
			if len(steps[r]) != len(wantSteps) {
				t.Fatalf("%s full, rank %d made %d steps, want %d", task, r, len(steps[r]), len(wantSteps))
			}
			for i, s := range steps[r] {
				if w := wantSteps[i]; s.Loss != w.Loss || s.GradNorm != w.GradNorm {
					t.Fatalf("%s full, rank %d step %d: loss %v norm %v, one process %v %v", task, r, i+1, s.Loss, s.GradNorm, w.Loss, w.GradNorm)
				}
			}
		}
	}
}
