package main

import (
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/gotrain/gotrain/train"
)

// stepReporter shows training progress: a progress bar on a terminal, plain
// log lines (at most one every 10 s, plus eval results and the last step)
// otherwise, because a bar's \r frames make a mess of log files. Tokens/s
// are the whole job's, over ranks processes.
func stepReporter(name string, total, start, ranks int) func(train.StepInfo) {
	if ranks > 1 {
		name = fmt.Sprintf("%s ×%d ranks", name, ranks)
	}
	if term.IsTerminal(int(os.Stderr.Fd())) {
		bar := progressbar.NewOptions(total,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription(name),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish())
		bar.Set(start)
		return func(s train.StepInfo) {
			bar.Describe(fmt.Sprintf("loss %.4f lr %.2e %.0f tok/s", s.Loss, s.LR, s.TokensPerSec))
			bar.Set(s.Step)
			if s.EvalLoss != nil {
				bar.Clear()
				fmt.Fprintf(os.Stderr, "step %d: eval loss %.4f\n", s.Step, *s.EvalLoss)
			}
		}
	}
	began, last := time.Now(), time.Time{}
	return func(s train.StepInfo) {
		if s.EvalLoss == nil && s.Step != total && time.Since(last) < 10*time.Second {
			return
		}
		last = time.Now()
		done := float64(s.Step-start) / float64(max(1, total-start))
		eta := time.Duration(float64(time.Since(began)) * (1 - done) / max(done, 1e-9)).Round(time.Second)
		line := fmt.Sprintf("%s step %d/%d  loss %.4f  lr %.3e  grad_norm %.3f  %.0f tok/s  eta %s",
			name, s.Step, total, s.Loss, s.LR, s.GradNorm, s.TokensPerSec, eta)
		if s.EvalLoss != nil {
			line += fmt.Sprintf("  eval_loss %.4f", *s.EvalLoss)
		}
		for _, k := range []string{"rewards/accuracies", "rewards/margins", "eval_rewards/accuracies"} {
			if v, ok := s.Metrics[k]; ok {
				line += fmt.Sprintf("  %s %.3f", k, v)
			}
		}
		fmt.Fprintln(os.Stderr, line)
	}
}
