package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gotrain/gotrain/model"
)

// addQuantizeFlag registers --quantize, the frozen base's weight format.
func addQuantizeFlag(fs *flag.FlagSet) *string {
	return fs.String("quantize", "", "quantize the frozen base's linear weights at load: "+
		strings.Join(model.QuantizeKinds, ", ")+
		" (QLoRA-style; the result is cached beside the checkpoint as gotrain-<kind>.qcache.safetensors)")
}

// addPackFlag registers --pack-weights (see model.PackWeights).
func addPackFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("pack-weights", false, "prepack the base's linear weights and LM head for the matmul kernel: faster prompts "+
		"(a few %, more at 100–300 tokens) for as much memory again as those weights")
}

// planRun builds the memory plan of a run on the checkpoint in dir from its
// config.json alone (before loading): LoRA rank and comma-separated targets
// (rank 0: inference), optimizer ("" for inference), tokens per
// LossAndGrad call (batch size × max length; twice that for DPO's pairs),
// and KV cache tokens.
func planRun(dir, quantize string, rank int, targets, optim string, batchTokens, kvTokens int) (model.Plan, error) {
	cfg, err := model.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return model.Plan{}, err
	}
	var ts []string
	for _, t := range strings.Split(targets, ",") {
		if t = strings.TrimSpace(t); t != "" {
			ts = append(ts, t)
		}
	}
	return model.PlanMemory(cfg, model.PlanInput{
		Quantize: quantize, LoRARank: rank, LoRATargets: ts, Optimizer: optim,
		BatchTokens: batchTokens, KVTokens: kvTokens,
	}), nil
}

// checkMemory refuses a run whose estimated resident memory exceeds what
// the machine has available, suggesting what would fit. It passes when the
// available memory is unknown or GOTRAIN_NO_MEMCHECK=1.
func checkMemory(plan model.Plan) error {
	if memCheckOff() {
		return nil
	}
	return checkMemoryAvail(plan, model.Available())
}

// memCheckOff reports whether GOTRAIN_NO_MEMCHECK=1 turns memory checks off.
func memCheckOff() bool { return os.Getenv("GOTRAIN_NO_MEMCHECK") == "1" }

// checkMemoryAvail is checkMemory against avail bytes (-1: unknown).
func checkMemoryAvail(plan model.Plan, avail int64) error {
	refused := plan.Check(avail)
	if refused == nil {
		return nil
	}
	var tips []string
	in := plan.Input
	if in.Full {
		if in.Optimizer == "adamw" {
			alt := in
			alt.Optimizer = "adamw8bit"
			tips = append(tips, fmt.Sprintf("--optim adamw8bit (needs %s)", model.FormatBytes(plan.Replan(alt).Total)))
		}
		alt := in
		alt.Full, alt.LoRARank = false, 16
		tips = append(tips, fmt.Sprintf("LoRA instead of --full (r 16 needs %s)", model.FormatBytes(plan.Replan(alt).Total)))
	} else if !strings.HasPrefix(in.Quantize, "nf4") {
		alt := in
		alt.Quantize = "nf4"
		p := plan.Replan(alt)
		tips = append(tips, fmt.Sprintf("--quantize nf4 (needs %s)", model.FormatBytes(p.Total)))
	}
	if in.BatchTokens > 1 && in.Optimizer != "" {
		alt := in
		alt.BatchTokens /= 2
		p := plan.Replan(alt)
		tips = append(tips, fmt.Sprintf("a smaller --batch-size or --max-len (half the tokens needs %s)", model.FormatBytes(p.Total)))
	}
	if in.KVTokens > 0 {
		tips = append(tips, "fewer cached tokens (a shorter context)")
	}
	msg := fmt.Sprintf(":\n%s", plan)
	if len(tips) > 0 {
		msg += "try " + strings.Join(tips, ", or ") + "; "
	}
	msg += "set GOTRAIN_NO_MEMCHECK=1 to run anyway"
	return fmt.Errorf("%w%s", refused, msg)
}
