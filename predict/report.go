package predict

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

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

// WriteReport writes metrics.json, table.txt, w1_by_study.svg and
// histograms of the largest cells (cell_*.svg) into dir.
func WriteReport(dir string, rep data.Report, preds []data.Prediction) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "metrics.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "table.txt"))
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	WriteTable(f, rep)
	if err := f.Close(); err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	if err := plotStudies(filepath.Join(dir, "w1_by_study.svg"), rep); err != nil {
		return err
	}
	return plotCells(dir, rep, preds, 4)
}

func plotStudies(path string, rep data.Report) error {
	if len(rep.Studies) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = "Wasserstein-1 per study (lower is better)"
	p.Y.Label.Text = "mean cell W1"
	names := make([]string, len(rep.Studies))
	series := [3]plotter.Values{}
	for i, s := range rep.Studies {
		names[i] = s.Study
		series[0] = append(series[0], s.W1.Model)
		series[1] = append(series[1], s.W1.Uniform)
		series[2] = append(series[2], s.W1.Prior)
	}
	w := vg.Points(6)
	for k, label := range []string{"model", "uniform", "prior"} {
		bars, err := plotter.NewBarChart(series[k], w)
		if err != nil {
			return fmt.Errorf("predict: plot: %w", err)
		}
		bars.Color = plotColors[k]
		bars.Offset = vg.Length(k-1) * w
		p.Add(bars)
		p.Legend.Add(label, bars)
	}
	p.Legend.Top = true
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 1.2
	p.X.Tick.Label.XAlign = -1
	if err := p.Save(vg.Length(max(6, len(names)/2))*vg.Inch, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("predict: plot %s: %w", path, err)
	}
	return nil
}

// plotCells draws predicted (mean of the rows' distributions) against human
// answer histograms for the n largest cells.
func plotCells(dir string, rep data.Report, preds []data.Prediction, n int) error {
	byCell := map[data.CellKey][]data.Prediction{}
	for _, p := range preds {
		byCell[p.Cell()] = append(byCell[p.Cell()], p)
	}
	keys := make([]data.CellKey, 0, len(byCell))
	for k := range byCell {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		if la, lb := len(byCell[keys[a]]), len(byCell[keys[b]]); la != lb {
			return la > lb
		}
		return keys[a].String() < keys[b].String()
	})
	for i, k := range keys[:min(n, len(keys))] {
		ps := byCell[k]
		opts := ps[0].Options
		if len(opts.Values) == 0 {
			continue
		}
		pred, human := make(plotter.Values, len(opts.Values)), make(plotter.Values, len(opts.Values))
		for _, p := range ps {
			for j := range opts.Values {
				if j < len(p.Probs) {
					pred[j] += p.Probs[j] / float64(len(ps))
				}
			}
			if j := opts.Index(p.Truth); j >= 0 {
				human[j] += 1 / float64(len(ps))
			}
		}
		pl := plot.New()
		pl.Title.Text = fmt.Sprintf("%s condition %d (%d rows)", k.Study, k.Condition, len(ps))
		pl.Y.Label.Text = "share of answers"
		w := vg.Points(10)
		for s, vals := range []plotter.Values{pred, human} {
			bars, err := plotter.NewBarChart(vals, w)
			if err != nil {
				return fmt.Errorf("predict: plot: %w", err)
			}
			bars.Color = plotColors[s]
			bars.Offset = vg.Length(2*s-1) * w / 2
			pl.Add(bars)
			pl.Legend.Add([]string{"predicted", "human"}[s], bars)
		}
		labels := make([]string, len(opts.Values))
		for j, v := range opts.Values {
			labels[j] = fmt.Sprint(v)
		}
		pl.NominalX(labels...)
		pl.Legend.Top = true
		if err := pl.Save(5*vg.Inch, 3.5*vg.Inch, filepath.Join(dir, fmt.Sprintf("cell_%d.svg", i+1))); err != nil {
			return fmt.Errorf("predict: plot: %w", err)
		}
	}
	return nil
}
