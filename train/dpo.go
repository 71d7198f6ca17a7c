package train

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/dist"
	"github.com/gotrain/gotrain/model"
)

// Pair is a tokenized preference pair.
type Pair = data.EncodedPair

// DPOConfig holds the preference-loss settings (TRL's DPOConfig names).
type DPOConfig struct {
	Beta           float64 // beta: strength of the KL constraint (0.1)
	LabelSmoothing float64 // label_smoothing: conservative DPO's assumed label noise
	Loss           string  // loss_type: "sigmoid" or "ipo"
}

// dpoTask is direct preference optimisation against a frozen reference: the
// starting policy (base, or base with the initial adapter), whose sequence
// log-probabilities are computed once per pair before training.
type dpoTask struct {
	cfg               DPOConfig
	train, held       []Pair
	refTrain, refHeld [][2]float64 // reference log p(chosen), log p(rejected)
}

// NewDPO returns a trainer that optimises ad by DPO on pairs. The reference
// policy is ad as it is now (nil weights count as the base): its sequence
// log-probabilities are computed here, once, so no second copy of any weights
// is kept.
func NewDPO(m *model.Model, ad *model.Adapter, cfg Config, dcfg DPOConfig, pairs, evalPairs []Pair) (*Trainer, error) {
	switch dcfg.Loss {
	case "sigmoid", "ipo":
	case "":
		dcfg.Loss = "sigmoid"
	default:
		return nil, fmt.Errorf("train: unknown DPO loss %q (want sigmoid or ipo)", dcfg.Loss)
	}
	if dcfg.Beta <= 0 || dcfg.LabelSmoothing < 0 || dcfg.LabelSmoothing >= 0.5 {
		return nil, fmt.Errorf("train: need beta > 0 and 0 ≤ label smoothing < 0.5")
	}
	for _, set := range [][]Pair{pairs, evalPairs} {
		for _, p := range set {
			if len(p.Prompt) == 0 || len(p.Chosen) == 0 || len(p.Rejected) == 0 {
				return nil, fmt.Errorf("train: pair %s has an empty prompt or answer", p.Source)
			}
		}
	}
	k := &dpoTask{cfg: dcfg, train: pairs, held: evalPairs}
	var err error
	if k.refTrain, err = sequenceLogProbs(m, ad, pairs, cfg.Group); err != nil {
		return nil, err
	}
	if k.refHeld, err = sequenceLogProbs(m, ad, evalPairs, cfg.Group); err != nil {
		return nil, err
	}
	return newTrainer(m, ad, cfg, k)
}

// sequenceLogProbs scores each pair's chosen and rejected answers after its
// prompt, in blocks of evalBlock pairs, each block with a predictor of its
// own that reuses each prompt's shared prefix with the one before. In a
// data-parallel job (g not nil) the ranks share out the blocks.
func sequenceLogProbs(m *model.Model, ad *model.Adapter, pairs []Pair, g *dist.Group) ([][2]float64, error) {
	blocks, err := byBlocks(g, len(pairs), func(lo, hi int) ([]byte, error) {
		p := m.NewPredictor(ad)
		var b []byte
		for _, pr := range pairs[lo:hi] {
			lp, err := p.ContinuationLogProbs(pr.Prompt, [][]int{pr.Chosen, pr.Rejected})
			if err != nil {
				return nil, fmt.Errorf("train: pair %s: %w", pr.Source, err)
			}
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(lp[0]))
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(lp[1]))
		}
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([][2]float64, len(pairs))
	for i := range out {
		b := blocks[i/evalBlock][i%evalBlock*16:]
		out[i] = [2]float64{math.Float64frombits(binary.LittleEndian.Uint64(b)), math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))}
	}
	return out, nil
}

func (k *dpoTask) size() int { return len(k.train) }

// loss returns a pair's loss, its derivative with respect to the policy's
// chosen and rejected log-probs, and its implicit rewards.
func (k *dpoTask) loss(pc, pr float64, ref [2]float64) (l, dc, dr, rc, rr float64) {
	beta := k.cfg.Beta
	rc, rr = beta*(pc-ref[0]), beta*(pr-ref[1])
	logits := (pc - ref[0]) - (pr - ref[1])
	switch k.cfg.Loss {
	case "ipo":
		// (logits − 1/(2β))²
		d := logits - 1/(2*beta)
		l = d * d
		dc = 2 * d
	default:
		// −(1−ε)·log σ(β·logits) − ε·log σ(−β·logits)
		h, eps := beta*logits, k.cfg.LabelSmoothing
		l = (1-eps)*softplus(-h) + eps*softplus(h)
		dc = beta * (-(1-eps)*sigmoid(-h) + eps*sigmoid(h))
	}
	return l, dc, -dc, rc, rr
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// softplus is log(1+eˣ) = −log σ(−x), computed without overflow.
func softplus(x float64) float64 {
	if x > 30 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

func (k *dpoTask) accumulate(t *Trainer, global, idx []int, g *model.Adapter, opt model.TrainOptions) (float64, int, map[string]float64, error) {
	var b model.TrainBatch
	type seq struct{ pair, side int }
	var owner []seq // for each target row in batch order
	for _, i := range idx {
		p := &k.train[i]
		rows := b.AddShared(p.Prompt, [][]int{p.Chosen, p.Rejected},
			[][]float32{make([]float32, len(p.Chosen)), make([]float32, len(p.Rejected))})
		for side, rs := range rows {
			for range rs {
				owner = append(owner, seq{i, side})
			}
		}
	}
	n := float64(len(global))
	metrics := map[string]float64{}
	obj := func(lp []float32) (float64, []float32) {
		sums := map[seq]float64{}
		for r, v := range lp {
			sums[owner[r]] += float64(v)
		}
		var total float64
		grad := map[seq]float64{}
		for _, i := range idx {
			pc, pr := sums[seq{i, 0}], sums[seq{i, 1}]
			l, dc, dr, rc, rr := k.loss(pc, pr, k.refTrain[i])
			total += l / n
			grad[seq{i, 0}], grad[seq{i, 1}] = dc/n, dr/n
			metrics["rewards/chosen"] += rc / n
			metrics["rewards/rejected"] += rr / n
			metrics["rewards/margins"] += (rc - rr) / n
			if rc > rr {
				metrics["rewards/accuracies"] += 1 / n
			}
			metrics["logps/chosen"] += pc / n
			metrics["logps/rejected"] += pr / n
		}
		d := make([]float32, len(lp))
		for r := range lp {
			d[r] = float32(grad[owner[r]])
		}
		return total, d
	}
	loss, err := t.m.Backprop(&b, t.ad, g, opt, obj)
	return loss, b.Len(), metrics, err
}

// eval is the mean DPO loss of the held-out pairs with their reward metrics.
func (k *dpoTask) eval(t *Trainer) (float64, map[string]float64, bool, error) {
	if len(k.held) == 0 {
		return 0, nil, false, nil
	}
	lps, err := sequenceLogProbs(t.m, t.ad, k.held, t.g)
	if err != nil {
		return 0, nil, false, err
	}
	n := float64(len(k.held))
	var total float64
	ms := map[string]float64{}
	for i, lp := range lps {
		l, _, _, rc, rr := k.loss(lp[0], lp[1], k.refHeld[i])
		total += l / n
		ms["rewards/chosen"] += rc / n
		ms["rewards/rejected"] += rr / n
		ms["rewards/margins"] += (rc - rr) / n
		if rc > rr {
			ms["rewards/accuracies"] += 1 / n
		}
	}
	return total, ms, true, nil
}

func (k *dpoTask) fingerprint(w io.Writer) {
	fmt.Fprintf(w, "dpo %s %g %g %d|", k.cfg.Loss, k.cfg.Beta, k.cfg.LabelSmoothing, len(k.train))
	for i, p := range k.train {
		fmt.Fprintf(w, "%v>%v>%v>%x,%x;", p.Prompt, p.Chosen, p.Rejected, math.Float64bits(k.refTrain[i][0]), math.Float64bits(k.refTrain[i][1]))
	}
}
