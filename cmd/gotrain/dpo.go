package main

import (
	"fmt"
	"os"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/train"
)

func runDPO(args []string) (err error) {
	fs := newFlags("dpo", "--base DIR [--init-adapter SFT_ADAPTER] --data FILE --out DIR [--pairs file|contrastive] [flags]")
	f := addTrainFlags(fs, 5e-6)
	pairsFrom := fs.String("pairs", "file", `"file": --data holds {"prompt","chosen","rejected"} pairs; "contrastive": build the paper's pairs from SocSci210 rows`)
	perExample := fs.Int("pairs-per-example", 1, "contrastive pairs built per row")
	beta := fs.Float64("beta", 0.1, "DPO beta")
	smoothing := fs.Float64("label-smoothing", 0, "conservative DPO label smoothing")
	lossType := fs.String("loss", "sigmoid", "sigmoid (DPO) or ipo")
	if err := fs.Parse(args); err != nil {
		return err
	}
	enc, err := f.setup()
	if err != nil {
		return err
	}
	defer f.done(&err)
	load := func(path string) ([]train.Pair, error) {
		var pairs []data.Pair
		switch *pairsFrom {
		case "file":
			if pairs, err = data.ReadPairs(path, data.ReadOptions{SkipBad: *f.skipBad}); err != nil {
				return nil, err
			}
		case "contrastive":
			rows, err := data.ReadSFT(path, data.ReadOptions{SkipBad: *f.skipBad})
			if err != nil {
				return nil, err
			}
			var st data.PairStats
			pairs, st = data.ContrastivePairs(rows, *perExample, f.cfg.Seed)
			fmt.Fprintf(os.Stderr, "%s: %d contrastive pairs from %d rows in %d cells; %d rows without an answer, %d one-row cells and %d cells where everyone answered the same gave none\n",
				path, st.Pairs, st.Rows, st.Cells, st.NoResponse, st.SingletonCell, st.UniformCells)
		default:
			return nil, fmt.Errorf("--pairs %q: want file or contrastive", *pairsFrom)
		}
		var out []train.Pair
		for i := range pairs {
			p, err := enc.EncodePair(&pairs[i])
			if err != nil {
				if !*f.skipBad {
					return nil, err
				}
				fmt.Fprintf(os.Stderr, "skipped %v\n", err)
				continue
			}
			out = append(out, p)
		}
		return out, nil
	}
	pairs, err := load(*f.dataPath)
	if err != nil {
		return err
	}
	var evalPairs []train.Pair
	if *f.evalPath != "" {
		if evalPairs, err = load(*f.evalPath); err != nil {
			return err
		}
	}
	longest := 0 // a pair's prompt, chosen and rejected answers are one packed sequence
	for _, p := range pairs {
		longest = max(longest, len(p.Prompt)+len(p.Chosen)+len(p.Rejected))
	}
	m, ad, err := f.load(longest)
	if err != nil {
		return err
	}
	defer m.Close()
	if f.rank() == 0 {
		fmt.Fprintf(os.Stderr, "dpo: computing reference log-probabilities of %d pairs once\n", len(pairs)+len(evalPairs))
	}
	tr, err := train.NewDPO(m, ad, f.cfg, train.DPOConfig{Beta: *beta, LabelSmoothing: *smoothing, Loss: *lossType}, pairs, evalPairs)
	if err != nil {
		return err
	}
	if f.rank() == 0 {
		fmt.Fprintf(os.Stderr, "dpo: %d pairs, %d eval, %d steps of %s pairs, beta %g, %s loss\n",
			len(pairs), len(evalPairs), tr.TotalSteps(), f.batchShape(), *beta, *lossType)
	}
	return f.run(tr, "dpo")
}
