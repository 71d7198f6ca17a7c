package train

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/dist"
	"github.com/gotrain/gotrain/model"
)

// ErrInterrupted is returned by Run when its context was cancelled; a
// checkpoint of the last finished step has been saved.
var ErrInterrupted = errors.New("train: interrupted")

// Example is one tokenized training sequence.
type Example = data.Encoded

// Config holds the training hyper-parameters (HF Trainer names in comments).
type Config struct {
	LR          float64 // learning_rate
	Scheduler   string  // lr_scheduler_type: cosine, linear, constant
	WarmupRatio float64 // warmup_ratio
	BatchSize   int     // per_device_train_batch_size: examples per micro-batch
	GradAccum   int     // gradient_accumulation_steps
	Epochs      int     // num_train_epochs (used when MaxSteps is 0)
	MaxSteps    int     // max_steps
	MaxGradNorm float64 // max_grad_norm; 0 disables clipping
	Optim       string  // adamw, adamw8bit (bitsandbytes' 8-bit moments) or sgd
	WeightDecay float64
	Dropout     float32 // lora_dropout
	// RouterAuxCoef weighs a mixture-of-experts model's router
	// load-balancing loss in the loss (router_aux_loss_coef); negative:
	// config.json's, when its output_router_logits is set, as in
	// transformers (model.Config.DefaultRouterAuxCoef).
	RouterAuxCoef float64
	Seed          uint64
	SaveSteps     int // checkpoint every N steps (0: only when interrupted)
	EvalSteps     int // eval loss every N steps (0: only at the end)
	SaveLimit     int // checkpoints kept (0: all)
	OutDir        string
	// Group is the data-parallel job this process is a rank of (nil: one
	// process). Every rank runs the same Trainer on the same data; each
	// computes its share of every step's micro-batches, and rank 0 alone
	// writes OutDir.
	Group *dist.Group `json:"-"`
}

// routerAuxCoef is the weight of a mixture-of-experts router's
// load-balancing loss (Config.RouterAuxCoef).
func (t *Trainer) routerAuxCoef() float64 {
	if t.cfg.RouterAuxCoef < 0 {
		return t.m.Config.DefaultRouterAuxCoef()
	}
	return t.cfg.RouterAuxCoef
}

// DefaultConfig returns gotrain's defaults (those of the paper's LLaMA-Factory setup).
func DefaultConfig() Config {
	return Config{LR: 1e-4, Scheduler: "cosine", BatchSize: 4, GradAccum: 1, Epochs: 1, MaxGradNorm: 1,
		Optim: "adamw", Dropout: 0.05, RouterAuxCoef: -1, Seed: 42, SaveLimit: 3}
}

// StepInfo reports one finished optimiser step.
type StepInfo struct {
	Step         int      `json:"step"` // 1-based count of finished steps
	TotalSteps   int      `json:"total_steps"`
	Epoch        float64  `json:"epoch"`
	Loss         float64  `json:"loss"`
	LR           float64  `json:"lr"`
	GradNorm     float64  `json:"grad_norm"`
	Tokens       int      `json:"tokens"`
	TokensPerSec float64  `json:"tokens_per_s"`
	EvalLoss     *float64 `json:"eval_loss,omitempty"`
	// Metrics holds a task's own numbers under TRL's names (DPO:
	// "rewards/chosen", "rewards/accuracies", ...; "eval_" prefixed on eval).
	Metrics map[string]float64 `json:"-"`
}

// Trainer finetunes a LoRA adapter on a frozen base model, or every weight
// of a model (NewFull).
type Trainer struct {
	weights
	cfg          Config
	task         task
	opt          Optimizer
	sched        Schedule
	step         int // finished steps
	stepsPerEpoc int
	g            *dist.Group
	grads        grads // the step's gradient; its tensors are parts of flat
	flat         []float32
	micro        []gradBuffer // micro-batch gradients in flight
}

// gradBuffer is one micro-batch's gradient: tensors shaped as the trained
// weights that are parts of flat, in Params order.
type gradBuffer struct {
	g    grads
	flat []float32
}

// newGradBuffer returns a zero gradient shaped like w as one flat vector,
// so that the collectives see the trainable gradients as one buffer.
func newGradBuffer(w weights) gradBuffer {
	_, ts := w.Params()
	n := 0
	for _, t := range ts {
		n += len(t)
	}
	flat := make([]float32, n)
	if w.full != nil {
		return gradBuffer{grads{full: w.full.ZerosIn(flat)}, flat}
	}
	return gradBuffer{grads{ad: w.ad.ZerosIn(flat)}, flat}
}

// task is what a Trainer optimises: SFT examples or DPO pairs.
type task interface {
	// size is the number of training items.
	size() int
	// accumulate runs the items idx (one micro-batch) of a step whose whole
	// batch is global forward and backward, adding the gradient of the
	// step's loss to g; it returns the micro-batch's share of the loss, the
	// tokens it processed, and metrics to sum over the step.
	accumulate(t *Trainer, global, idx []int, g grads, opt model.TrainOptions) (loss float64, tokens int, metrics map[string]float64, err error)
	// eval returns the held-out loss and metrics, or ok false without an eval set.
	eval(t *Trainer) (loss float64, metrics map[string]float64, ok bool, err error)
	// fingerprint writes what the data order and the losses depend on.
	fingerprint(w io.Writer)
}

// New checks the configuration and data and returns a trainer that will
// update ad in place.
func New(m *model.Model, ad *model.Adapter, cfg Config, trainSet, evalSet []Example) (*Trainer, error) {
	return newSFT(weights{m: m, ad: ad}, cfg, trainSet, evalSet)
}

func newSFT(w weights, cfg Config, trainSet, evalSet []Example) (*Trainer, error) {
	for _, set := range [][]Example{trainSet, evalSet} {
		for i := range set {
			e := &set[i]
			if len(e.Tokens) != len(e.Mask) || len(e.Tokens) < 2 || e.Targets() == 0 {
				return nil, fmt.Errorf("train: example %s has no completion token to learn", e.Source)
			}
			if len(e.Tokens) > w.m.MaxPositions() {
				return nil, fmt.Errorf("train: example %s: %d tokens, more than the %d positions the model supports", e.Source, len(e.Tokens), w.m.MaxPositions())
			}
		}
	}
	return newTrainer(w, cfg, &sftTask{train: trainSet, held: evalSet})
}

func newTrainer(w weights, cfg Config, tk task) (*Trainer, error) {
	if tk.size() == 0 {
		return nil, fmt.Errorf("train: no training examples")
	}
	if cfg.BatchSize <= 0 || cfg.GradAccum <= 0 {
		return nil, fmt.Errorf("train: batch size %d and gradient accumulation %d must be positive", cfg.BatchSize, cfg.GradAccum)
	}
	// Negated, so that NaN fails too.
	if !(cfg.LR >= 0 && cfg.LR <= math.MaxFloat32) || !(cfg.Dropout >= 0 && cfg.Dropout < 1) || !(cfg.WarmupRatio >= 0 && cfg.WarmupRatio <= 1) {
		return nil, fmt.Errorf("train: need lr ≥ 0, 0 ≤ dropout < 1 and 0 ≤ warmup ratio ≤ 1")
	}
	t := &Trainer{weights: w, cfg: cfg, task: tk, g: cfg.Group}
	if t.g == nil {
		t.g = dist.Local()
	}
	switch cfg.Optim {
	case "adamw", "":
		t.opt = NewAdamW(cfg.WeightDecay)
	case "adamw8bit":
		t.opt = NewAdamW8bit(cfg.WeightDecay)
	case "sgd":
		t.opt = SGD{}
	default:
		return nil, fmt.Errorf("train: unknown optimizer %q (want adamw, adamw8bit or sgd)", cfg.Optim)
	}
	global := cfg.BatchSize * t.accum()
	t.stepsPerEpoc = (tk.size() + global - 1) / global
	total := cfg.MaxSteps
	if total <= 0 {
		total = max(1, cfg.Epochs) * t.stepsPerEpoc
	}
	t.sched = Schedule{Kind: cfg.Scheduler, LR: cfg.LR, TotalSteps: total, WarmupSteps: WarmupSteps(total, cfg.WarmupRatio)}
	if err := t.sched.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// accum is the number of micro-batches in a step over all ranks: a job of W
// ranks with --grad-accum A steps like one process with A·W.
func (t *Trainer) accum() int { return t.cfg.GradAccum * t.g.Size() }

// TotalSteps is the number of optimiser steps Run will make.
func (t *Trainer) TotalSteps() int { return t.sched.TotalSteps }

// Step is the number of finished steps (after Resume, the checkpoint's).
func (t *Trainer) Step() int { return t.step }

// batch returns the example indices of step s: epoch by epoch, each epoch a
// permutation seeded by (seed, epoch), so any step's data is known from s alone.
func (t *Trainer) batch(s int) []int {
	epoch, i := s/t.stepsPerEpoc, s%t.stepsPerEpoc
	perm := make([]int, t.task.size())
	for j := range perm {
		perm[j] = j
	}
	rng := rand.New(rand.NewPCG(t.cfg.Seed, uint64(epoch)))
	rng.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
	g := t.cfg.BatchSize * t.accum()
	return perm[i*g : min((i+1)*g, len(perm))]
}

// microResult is what one micro-batch reports, exchanged between ranks.
type microResult struct {
	J       int                `json:"j"` // index in the step
	Loss    float64            `json:"loss"`
	Tokens  int                `json:"tokens"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// runStep makes optimiser step s and reports it.
//
// The step's gradient is the sum of its micro-batches' gradients, each
// computed from zero and added in micro-batch order (accumulating straight
// into the running sum would round differently: the GEMM adds a K-block's
// product to its output, so the sum a micro-batch lands on changes the last
// bits). With W ranks, rank r
// computes micro-batches r, r+W, r+2W, …; after each round the ranks' new
// gradients are added, in rank order and so in micro-batch order, into the
// step's sum (dist.Group.ReduceAsync, which runs while the next round
// computes). The sum, the clipping and the update are thus those of one
// process with the same global batch, bit for bit.
func (t *Trainer) runStep(s int) (StepInfo, error) {
	start := time.Now()
	idx := t.batch(s)
	B, W, r := t.cfg.BatchSize, t.g.Size(), t.g.Rank()
	micro := (len(idx) + B - 1) / B
	clear(t.flat)
	var mine []microResult
	pending := make([]*dist.Pending, len(t.micro))
	wait := func() error {
		var first error
		for i, p := range pending {
			if p != nil {
				if err := p.Wait(); err != nil && first == nil {
					first = err
				}
				pending[i] = nil
			}
		}
		return first
	}
	for k := 0; k*W < micro; k++ {
		slot := k % len(t.micro)
		if p := pending[slot]; p != nil {
			if err := p.Wait(); err != nil {
				return StepInfo{}, err
			}
		}
		var part []float32
		if j := k*W + r; j < micro {
			buf := t.micro[slot]
			clear(buf.flat)
			opt := model.TrainOptions{Dropout: t.cfg.Dropout, Seed: mix(t.cfg.Seed, uint64(s), uint64(j))}
			sub := idx[j*B : min((j+1)*B, len(idx))]
			// A micro-batch's router loss counts by its share of the step's
			// examples, as transformers' per-forward aux loss averaged over
			// gradient accumulation.
			var aux float64
			share := float64(len(sub)) / float64(len(idx))
			sparse := t.m.Config.SparseLayers() > 0
			if sparse {
				opt.RouterAuxCoef, opt.RouterAux = t.routerAuxCoef()*share, &aux
			}
			l, n, ms, err := t.task.accumulate(t, idx, sub, buf.g, opt)
			if err != nil {
				wait()
				return StepInfo{}, err
			}
			if sparse {
				if ms == nil {
					ms = map[string]float64{}
				}
				ms["aux_loss"] += aux * share
			}
			mine = append(mine, microResult{J: j, Loss: l, Tokens: n, Metrics: ms})
			part = buf.flat
		}
		pending[slot] = t.g.ReduceAsync(t.flat, part, min(W, micro-k*W))
	}
	if err := wait(); err != nil {
		return StepInfo{}, err
	}
	if err := t.g.AllGatherAsync(t.flat).Wait(); err != nil {
		return StepInfo{}, err
	}
	// every rank's micro-batch numbers, summed in micro-batch order
	all, err := t.gather(mine)
	if err != nil {
		return StepInfo{}, err
	}
	var loss float64
	tokens := 0
	metrics := map[string]float64{}
	for _, m := range all {
		loss += m.Loss
		tokens += m.Tokens
		for k, v := range m.Metrics {
			metrics[k] += v
		}
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return StepInfo{}, fmt.Errorf("train: step %d: loss is %v", s+1, loss)
	}
	_, gs := t.grads.Params()
	norm := ClipGradNorm(gs, t.cfg.MaxGradNorm)
	lr := t.sched.At(s)
	_, ps := t.Params()
	t.opt.Step(ps, gs, lr)
	t.step = s + 1
	el := time.Since(start).Seconds()
	info := StepInfo{Step: s + 1, TotalSteps: t.sched.TotalSteps, Epoch: float64(s+1) / float64(t.stepsPerEpoc),
		Loss: loss, LR: lr, GradNorm: norm, Tokens: tokens, TokensPerSec: float64(tokens) / el}
	if len(metrics) > 0 {
		info.Metrics = metrics
	}
	return info, nil
}

// gather returns every rank's micro-batch results in micro-batch order.
func (t *Trainer) gather(mine []microResult) ([]microResult, error) {
	if t.g.Size() == 1 {
		return mine, nil
	}
	b, err := json.Marshal(mine) // float64s round-trip exactly
	if err != nil {
		return nil, err
	}
	bs, err := t.g.AllGather(b)
	if err != nil {
		return nil, err
	}
	var all []microResult
	for r, b := range bs {
		var part []microResult
		if err := json.Unmarshal(b, &part); err != nil {
			return nil, fmt.Errorf("train: rank %d's micro-batch results: %w", r, err)
		}
		all = append(all, part...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a].J < all[b].J })
	return all, nil
}

// agree tells every rank whether this one wants to stop and returns whether
// any does, so that all stop after the same step; on the first call it also
// checks that every rank trains on the same data with the same settings.
func (t *Trainer) agree(stop, first bool) (bool, error) {
	if t.g.Size() == 1 {
		return stop, nil
	}
	msg := []byte{0}
	if stop {
		msg[0] = 1
	}
	if first {
		msg = append(msg, t.fingerprint()...)
	}
	bs, err := t.g.AllGather(msg)
	if err != nil {
		return false, err
	}
	any := false
	for r, b := range bs {
		if len(b) == 0 {
			return false, fmt.Errorf("train: rank %d sent nothing", r)
		}
		any = any || b[0] == 1
		if first && string(b[1:]) != string(msg[1:]) {
			return false, fmt.Errorf("train: rank %d (%s) has other data or settings than rank %d: every rank must be started with the same arguments and files",
				r, t.g.Host(r), t.g.Rank())
		}
	}
	return any, nil
}

// mix derives a seed from several numbers.
func mix(v ...uint64) uint64 {
	h := uint64(0x243f6a8885a308d3)
	for _, x := range v {
		h = (h ^ x) * 0x9e3779b97f4a7c15
		h ^= h >> 29
	}
	return h
}

// MeanLoss is the mean token cross-entropy over the loss tokens of examples.
func MeanLoss(m *model.Model, ad *model.Adapter, examples []Example) (float64, error) {
	seqs := make([]model.Sequence, len(examples))
	for i, e := range examples {
		seqs[i] = model.Sequence{Tokens: e.Tokens, From: 1, Mask: e.Mask}
	}
	lps, err := m.Score(seqs, ad)
	if err != nil {
		return 0, err
	}
	var sum float64
	n := 0
	for _, lp := range lps {
		for _, v := range lp {
			sum -= float64(v)
			n++
		}
	}
	if n == 0 {
		return math.NaN(), nil
	}
	return sum / float64(n), nil
}

// Run trains until the last step, calling onStep after each one (may be nil).
// Checkpoints go to cfg.OutDir every SaveSteps; when ctx is cancelled the
// current step finishes, a checkpoint is saved and ErrInterrupted returned.
//
// In a data-parallel job every rank runs Run and evaluates its share of the
// held-out set; rank 0 alone writes OutDir. An error on one rank fails every
// rank, naming it.
func (t *Trainer) Run(ctx context.Context, onStep func(StepInfo)) (err error) {
	if t.g.Size() > 1 {
		defer func() {
			if err != nil && !errors.Is(err, ErrInterrupted) {
				t.g.Abort(err)
			}
		}()
	}
	writer := t.g.Rank() == 0 && t.cfg.OutDir != ""
	if writer {
		unlock, err := lockDir(t.cfg.OutDir)
		if err != nil {
			return err
		}
		defer unlock()
	}
	gb := newGradBuffer(t.weights)
	t.grads, t.flat = gb.g, gb.flat
	// one micro-batch buffer, two when rounds overlap with communication
	t.micro = []gradBuffer{newGradBuffer(t.weights)}
	if t.g.Size() > 1 {
		t.micro = append(t.micro, newGradBuffer(t.weights))
	}
	defer func() { t.grads, t.flat, t.micro = grads{}, nil, nil }()
	for s, first := t.step, true; s < t.sched.TotalSteps; s, first = s+1, false {
		stop, err := t.agree(ctx.Err() != nil, first)
		if err != nil {
			return err
		}
		if stop {
			if err := t.SaveCheckpoint(); err != nil {
				return err
			}
			return fmt.Errorf("%w at step %d: checkpoint saved in %s", ErrInterrupted, t.step, t.cfg.OutDir)
		}
		info, err := t.runStep(s)
		if err != nil {
			return err
		}
		last := info.Step == t.sched.TotalSteps
		if last || t.cfg.EvalSteps > 0 && info.Step%t.cfg.EvalSteps == 0 {
			el, ms, ok, err := t.task.eval(t)
			if err != nil {
				return err
			}
			if ok {
				info.EvalLoss = &el
				for k, v := range ms {
					if info.Metrics == nil {
						info.Metrics = map[string]float64{}
					}
					info.Metrics["eval_"+k] = v
				}
			}
		}
		if writer {
			if err := appendMetrics(t.cfg.OutDir, info); err != nil {
				return err
			}
			if t.cfg.SaveSteps > 0 && info.Step%t.cfg.SaveSteps == 0 && !last {
				if err := t.SaveCheckpoint(); err != nil {
					return err
				}
			}
		}
		if onStep != nil {
			onStep(info)
		}
	}
	return nil
}

// sftTask is supervised finetuning: the mean token cross-entropy over the
// completion tokens of each step's whole batch.
type sftTask struct {
	train, held []Example
}

func (k *sftTask) size() int { return len(k.train) }

func (k *sftTask) accumulate(t *Trainer, global, idx []int, g grads, opt model.TrainOptions) (float64, int, map[string]float64, error) {
	n := 0
	for _, i := range global {
		n += k.train[i].Targets()
	}
	var b model.TrainBatch
	for _, i := range idx {
		e := &k.train[i]
		w := make([]float32, len(e.Tokens))
		for p := 1; p < len(w); p++ {
			if e.Mask[p] {
				w[p] = 1 / float32(n)
			}
		}
		b.AddSequence(e.Tokens, w)
	}
	loss, err := t.backprop(&b, g, opt, nil)
	return loss, b.Len(), nil, err
}

func (k *sftTask) eval(t *Trainer) (float64, map[string]float64, bool, error) {
	if len(k.held) == 0 {
		return 0, nil, false, nil
	}
	// each example's token log-probs, scored in blocks shared out by rank
	blocks, err := byBlocks(t.g, len(k.held), func(lo, hi int) ([]byte, error) {
		seqs := make([]model.Sequence, hi-lo)
		for i, e := range k.held[lo:hi] {
			seqs[i] = model.Sequence{Tokens: e.Tokens, From: 1, Mask: e.Mask}
		}
		lps, err := t.m.Score(seqs, t.ad)
		if err != nil {
			return nil, err
		}
		var b []byte
		for _, lp := range lps {
			for _, v := range lp {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
			}
		}
		return b, nil
	})
	if err != nil {
		return 0, nil, false, err
	}
	var sum float64
	n := 0
	for _, b := range blocks {
		for ; len(b) >= 4; b = b[4:] {
			sum -= float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
			n++
		}
	}
	return sum / float64(max(n, 1)), nil, true, nil
}

// evalBlock is how many held-out items (or DPO pairs to score) one call
// takes: the numbers depend in their last bits on which items are computed
// together, so the blocks are fixed, whatever the number of ranks, and a
// data-parallel job shares out whole blocks and gets one process's numbers
// bit for bit.
const evalBlock = 32

// byBlocks runs f on the blocks of evalBlock of n items that this rank
// owns (block b on rank b mod W) and returns every block's bytes, in
// block order, from all ranks. An error on one rank fails all.
func byBlocks(g *dist.Group, n int, f func(lo, hi int) ([]byte, error)) ([][]byte, error) {
	r, W := 0, 1
	if g != nil {
		r, W = g.Rank(), g.Size()
	}
	nb := (n + evalBlock - 1) / evalBlock
	out := make([][]byte, nb)
	var mine []byte
	for b := r; b < nb; b += W {
		v, err := f(b*evalBlock, min((b+1)*evalBlock, n))
		if err != nil {
			if W > 1 {
				g.Abort(err)
			}
			return nil, err
		}
		out[b] = v
		mine = binary.LittleEndian.AppendUint32(mine, uint32(len(v)))
		mine = append(mine, v...)
	}
	if W == 1 {
		return out, nil
	}
	all, err := g.AllGather(mine)
	if err != nil {
		return nil, err
	}
	for q, m := range all {
		for b := q; b < nb; b += W {
			if len(m) < 4 || uint64(len(m)-4) < uint64(binary.LittleEndian.Uint32(m)) {
				return nil, fmt.Errorf("train: rank %d sent a short block", q)
			}
			l := binary.LittleEndian.Uint32(m)
			out[b], m = m[4:4+l], m[4+l:]
		}
	}
	return out, nil
}

func (k *sftTask) fingerprint(w io.Writer) {
	fmt.Fprintf(w, "sft %d|", len(k.train))
	for _, e := range k.train {
		for p, tok := range e.Tokens {
			m := 0
			if e.Mask[p] {
				m = 1
			}
			fmt.Fprintf(w, "%d.%d,", tok, m)
		}
		w.Write([]byte{';'})
	}
}

// MarshalJSON writes the step's fields and its Metrics flat, under their names.
func (s StepInfo) MarshalJSON() ([]byte, error) {
	type plain StepInfo
	b, err := json.Marshal(plain(s))
	if err != nil || len(s.Metrics) == 0 {
		return b, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range s.Metrics {
		m[k] = v
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads what MarshalJSON writes; unknown numeric fields go to Metrics.
func (s *StepInfo) UnmarshalJSON(b []byte) error {
	type plain StepInfo
	if err := json.Unmarshal(b, (*plain)(s)); err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	known := map[string]bool{"step": true, "total_steps": true, "epoch": true, "loss": true, "lr": true,
		"grad_norm": true, "tokens": true, "tokens_per_s": true, "eval_loss": true}
	for k, v := range m {
		if f, ok := v.(float64); ok && !known[k] {
			if s.Metrics == nil {
				s.Metrics = map[string]float64{}
			}
			s.Metrics[k] = f
		}
	}
	return nil
}
