package predict

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

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
