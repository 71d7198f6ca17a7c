package train

import (
	"fmt"

	"github.com/gotrain/gotrain/model"
)

// weights are what a Trainer trains: a LoRA adapter on a frozen base (ad),
// or every weight of a model (full, whose Model is m).
type weights struct {
	m    *model.Model   // computes the forward and backward passes
	ad   *model.Adapter // LoRA: the adapter trained; nil in full finetuning
	full *model.Full    // full finetuning: the master weights; nil for LoRA
}

// grads holds one step's gradients, shaped as the trained weights.
type grads struct {
	ad   *model.Adapter
	full *model.Full
}

// Params lists the gradient tensors with the names of the weights they
// belong to (PEFT names for LoRA, Hugging Face names in full finetuning),
// in the order of the trained weights' Params: what a distributed run
// all-reduces.
func (g grads) Params() ([]string, [][]float32) {
	if g.full != nil {
		return g.full.Params()
	}
	return g.ad.Params()
}

// Params lists the trained tensors with their names; the slices alias the
// weights.
func (w weights) Params() ([]string, [][]float32) {
	if w.full != nil {
		return w.full.Params()
	}
	return w.ad.Params()
}

// zeros returns gradients of the trained tensors' shapes, all zero.
func (w weights) zeros() grads {
	if w.full != nil {
		return grads{full: w.full.ZerosLike()}
	}
	return grads{ad: w.ad.ZerosLike()}
}

// backprop runs a batch forward and backward, adding the gradients to g.
func (w weights) backprop(b *model.TrainBatch, g grads, opt model.TrainOptions, obj model.Objective) (float64, error) {
	if w.full != nil {
		return w.full.Backprop(b, g.full, opt, obj)
	}
	return w.m.Backprop(b, w.ad, g.ad, opt, obj)
}

// saveCheckpoint writes the trained weights for a bitwise resume: the
// adapter, or the float32 master weights as a loadable checkpoint.
func (w weights) saveCheckpoint(dir string) error {
	if w.full != nil {
		return w.full.SaveMaster(dir)
	}
	return w.ad.Save(dir)
}

// restore reads back what saveCheckpoint wrote.
func (w weights) restore(dir string) error {
	if w.full != nil {
		return w.full.LoadMaster(dir)
	}
	saved, err := w.m.LoadAdapter(dir)
	if err != nil {
		return err
	}
	_, dst := w.ad.Params()
	_, src := saved.Params()
	if len(dst) != len(src) {
		return fmt.Errorf("%s adapts other modules than this run", dir)
	}
	for i := range dst {
		if len(dst[i]) != len(src[i]) {
			return fmt.Errorf("%s has another LoRA rank than this run", dir)
		}
		copy(dst[i], src[i])
	}
	return nil
}

// NewFull is New for full finetuning: every weight of f is trained in place.
func NewFull(f *model.Full, cfg Config, trainSet, evalSet []Example) (*Trainer, error) {
	return newSFT(weights{m: f.Model, full: f}, cfg, trainSet, evalSet)
}

// NewFullDPO is NewDPO for full finetuning; the reference policy is f as it
// is now.
func NewFullDPO(f *model.Full, cfg Config, dcfg DPOConfig, pairs, evalPairs []Pair) (*Trainer, error) {
	return newDPO(weights{m: f.Model, full: f}, cfg, dcfg, pairs, evalPairs)
}

// OutputKind names what SaveOutput writes, for messages.
func (t *Trainer) OutputKind() string {
	if t.full != nil {
		return "model checkpoint"
	}
	return "adapter"
}
