package predict

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/gotrain/gotrain/data"
)

// ReadPredictions reads prediction JSONL files written by gotrain predict
// (shards in any order) into data.Predictions, skipping rows without
// probabilities (sampled rows), which it counts.
func ReadPredictions(paths []string) (preds []data.Prediction, unscored int, err error) {
	for _, path := range paths {
		rows, err := data.ReadSFT(path, data.ReadOptions{})
		if err != nil {
			return nil, 0, err
		}
		for _, r := range rows {
			raw, ok := r.Extra["probs"]
			if !ok {
				unscored++
				continue
			}
			var probs []float64
			if err := json.Unmarshal(raw, &probs); err != nil {
				return nil, 0, fmt.Errorf("%s: probs: %w", r.Where(), err)
			}
			if err := data.CheckProbs(probs); err != nil {
				return nil, 0, fmt.Errorf("%s: probs: %w", r.Where(), err)
			}
			preds = append(preds, data.Predictions([]data.Example{r}, [][]float64{probs})...)
		}
	}
	return preds, unscored, nil
}

// WriteTable prints the report: the headline metrics for the model and both
// baselines, then one line per study.
func WriteTable(w io.Writer, rep data.Report) {
	fmt.Fprintf(w, "%-28s %9s %9s %9s\n", "metric", "model", "uniform", "prior")
	line := func(name string, c data.Compare) {
		fmt.Fprintf(w, "%-28s %9.4f %9.4f %9.4f\n", name, c.Model, c.Uniform, c.Prior)
	}
	line("W1 macro (lower better)", rep.MacroW1)
	line("accuracy (higher better)", rep.Individual.Accuracy)
	line("log-likelihood (higher)", rep.Individual.LogLik)
	line("RPS (lower better)", rep.Individual.RPS)
	if rep.Demographic != "" {
		line("DPD "+rep.Demographic+" (lower)", rep.DPD)
	}
	fmt.Fprintf(w, "rows scored %d, cells %d, studies %d", rep.Rows, len(rep.Cells), len(rep.Studies))
	for reason, n := range rep.Skipped {
		fmt.Fprintf(w, "; skipped %d (%s)", n, reason)
	}
	fmt.Fprintf(w, "\n\n%-8s %5s %5s %9s %9s %9s\n", "study", "cells", "rows", "W1 model", "uniform", "prior")
	for _, s := range rep.Studies {
		fmt.Fprintf(w, "%-8s %5d %5d %9.4f %9.4f %9.4f\n", s.Study, s.Cells, s.Rows, s.W1.Model, s.W1.Uniform, s.W1.Prior)
	}
}
