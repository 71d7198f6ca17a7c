package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/predict"
	"github.com/gotrain/gotrain/report"
)

func runEval(args []string) error {
	fs := newFlags("eval", "--pred FILE[,FILE...] [--train FILE] [--demographic FIELD] [--report DIR]")
	predPaths := fs.String("pred", "", "prediction JSONL from gotrain predict; comma-separated shards are merged")
	trainPath := fs.String("train", "", "training data, for the training-prior baseline")
	demographic := fs.String("demographic", "", `demographic field for the parity difference (e.g. "Gender", "Political affiliation")`)
	reportDir := fs.String("report", "", "write metrics.json, table.txt, SVG charts and index.html (one self-contained page) here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *predPaths == "" {
		return fmt.Errorf("--pred is required")
	}
	preds, unscored, err := predict.ReadPredictions(strings.Split(*predPaths, ","))
	if err != nil {
		return err
	}
	var prior data.Prior
	if *trainPath != "" {
		rows, err := data.ReadSFT(*trainPath, data.ReadOptions{})
		if err != nil {
			return err
		}
		prior = data.NewPrior(rows)
	} else {
		prior = data.NewPrior(nil)
	}
	rep := data.Evaluate(preds, prior, *demographic)
	predict.WriteTable(os.Stdout, rep)
	if *reportDir != "" {
		in := report.EvalInput{Report: rep, Preds: preds, Unscored: unscored, Sources: strings.Split(*predPaths, ",")}
		if err := report.WriteEval(*reportDir, in); err != nil {
			return err
		}
		fmt.Printf("report in %s (open index.html in a browser)\n", *reportDir)
	}
	return nil
}
