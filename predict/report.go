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
// (shards in any order) into data.Predictions, every row with its method:
// "options" rows with "probs", "numeric" rows with "numeric" ([{"value",
// "prob"}, ...]), "sampled" rows with "samples" (an empirical
// distribution), "none" rows with a "reason". A row without "method" is an
// options row when it has "probs" (files of older versions). unscored
// counts the rows without a prediction.
func ReadPredictions(paths []string) (preds []data.Prediction, unscored int, err error) {
	for _, path := range paths {
		rows, err := data.ReadSFT(path, data.ReadOptions{})
		if err != nil {
			return nil, 0, err
		}
		for _, r := range rows {
			p, err := readPrediction(r)
			if err != nil {
				return nil, 0, fmt.Errorf("%s: %w", r.Where(), err)
			}
			if p.Method == "none" {
				unscored++
			}
			preds = append(preds, p)
		}
	}
	return preds, unscored, nil
}

func readPrediction(r data.Example) (data.Prediction, error) {
	p := data.Predictions([]data.Example{r}, nil)[0]
	field := func(name string, v any) (bool, error) {
		raw, ok := r.Extra[name]
		if !ok || string(raw) == "null" {
			return false, nil
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return false, fmt.Errorf("field %q: %w", name, err)
		}
		return true, nil
	}
	if _, err := field("method", &p.Method); err != nil {
		return p, err
	}
	if _, err := field("reason", &p.Reason); err != nil {
		return p, err
	}
	hasProbs, err := field("probs", &p.Probs)
	if err != nil {
		return p, err
	}
	switch p.Method {
	case "":
		p.Method = "options"
		if !hasProbs {
			p.Method, p.Reason = "none", "no probabilities in the prediction file"
		}
	case "options", "none":
	case "numeric":
		if _, err := field("numeric", &p.Numeric); err != nil {
			return p, err
		}
	case "sampled":
		var samples []float64
		if _, err := field("samples", &samples); err != nil {
			return p, err
		}
		for _, v := range samples {
			p.Numeric = append(p.Numeric, data.ValueProb{Value: v, Prob: 1 / float64(len(samples))})
		}
	default:
		return p, fmt.Errorf("field \"method\": %q is not one of %q", p.Method, data.Methods)
	}
	return p, nil
}

// WriteTable prints the report: the headline metrics for the model and both
// baselines, then one line per study.
func WriteTable(w io.Writer, rep data.Report) {
	fmt.Fprintf(w, "%-28s %9s %9s %9s\n", "metric", "model", "uniform", "prior")
	line := func(name string, c data.Compare) {
		fmt.Fprintf(w, "%-28s %9.4f %9.4f %9.4f\n", name, c.Model, c.Uniform, c.Prior)
	}
	line("W1 macro (lower better)", rep.MacroW1)
	if rep.NumericRows > 0 {
		line("  option cells only", rep.MacroW1Options)
		line("  numeric cells only", rep.MacroW1Numeric)
	}
	line("accuracy (higher better)", rep.Individual.Accuracy)
	line("log-likelihood (higher)", rep.Individual.LogLik)
	line("RPS (lower better)", rep.Individual.RPS)
	if rep.Demographic != "" {
		line("DPD "+rep.Demographic+" (lower)", rep.DPD)
	}
	fmt.Fprintf(w, "rows scored %d (%d option, %d numeric), cells %d, studies %d", rep.Rows, rep.OptionRows, rep.NumericRows, len(rep.Cells), len(rep.Studies))
	for _, reason := range sortedKeys(rep.Skipped) {
		fmt.Fprintf(w, "; skipped %d (%s)", rep.Skipped[reason], reason)
	}
	total := 0
	for _, n := range rep.Coverage {
		total += n
	}
	fmt.Fprintf(w, "\ncoverage of %d rows by method:", total)
	for _, m := range data.Methods {
		fmt.Fprintf(w, " %s %d (%.1f%%)", m, rep.Coverage[m], 100*float64(rep.Coverage[m])/float64(max(total, 1)))
	}
	for _, reason := range sortedKeys(rep.NoneReasons) {
		fmt.Fprintf(w, "\n  none: %d %s", rep.NoneReasons[reason], reason)
	}
	fmt.Fprintf(w, "\n\n%-8s %5s %5s %9s %9s %9s\n", "study", "cells", "rows", "W1 model", "uniform", "prior")
	for _, s := range rep.Studies {
		fmt.Fprintf(w, "%-8s %5d %5d %9.4f %9.4f %9.4f\n", s.Study, s.Cells, s.Rows, s.W1.Model, s.W1.Uniform, s.W1.Prior)
	}
	if len(rep.OutOfOptions) > 0 {
		fmt.Fprintf(w, "\nrows whose truth lies outside the parsed options (all of a question's rows outside: the parser misread it; a few: answers off the scale in the data):\n")
		for _, o := range rep.OutOfOptions {
			fmt.Fprintf(w, "%-8s %d of %d rows outside %s (form %s), truths %v, e.g. %s\n  question: %.100q\n  format:   %.160q\n",
				o.Study, o.Outside, o.Rows, o.Options, o.Form, o.Truths, o.Where[0], o.Question, o.Format)
		}
	}
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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
