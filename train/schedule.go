package train

import (
	"fmt"
	"math"
)

// Schedule gives the learning rate of each optimiser step, as Hugging Face's
// get_scheduler does: linear warmup from 0, then cosine, linear or constant.
type Schedule struct {
	Kind        string // "cosine", "linear" or "constant"
	LR          float64
	WarmupSteps int
	TotalSteps  int
}

// WarmupSteps is HF's ceil(total·ratio).
func WarmupSteps(total int, ratio float64) int { return int(math.Ceil(float64(total) * ratio)) }

// Validate checks the schedule's kind.
func (s Schedule) Validate() error {
	switch s.Kind {
	case "cosine", "linear", "constant":
		return nil
	}
	return fmt.Errorf("train: unknown lr scheduler %q (want cosine, linear or constant)", s.Kind)
}

// At returns the learning rate used by step (0-based).
func (s Schedule) At(step int) float64 {
	if step < s.WarmupSteps {
		return s.LR * float64(step) / float64(max(1, s.WarmupSteps))
	}
	if s.Kind == "constant" {
		return s.LR
	}
	progress := float64(step-s.WarmupSteps) / float64(max(1, s.TotalSteps-s.WarmupSteps))
	switch s.Kind {
	case "linear":
		return s.LR * max(0, 1-progress)
	default:
		return s.LR * max(0, 0.5*(1+math.Cos(math.Pi*progress)))
	}
}
