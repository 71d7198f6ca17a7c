package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/gotrain/gotrain/data"
)

func runSplit(args []string) error {
	fs := newFlags("split", "--data FILE --train OUT --eval OUT [--by study|condition|outcome|participant|row] [--eval-frac F] [--seed N]")
	dataPath := fs.String("data", "", `rows to split (JSONL, .gz ok); "sample" for the bundled SocSci210 sample`)
	trainOut := fs.String("train", "", "output JSONL of the training side")
	evalOut := fs.String("eval", "", "output JSONL of the held-out side")
	by := fs.String("by", "study", "unit kept whole on one side: study, condition, outcome, participant or row")
	frac := fs.Float64("eval-frac", 0.2, "fraction of units held out")
	seed := fs.Uint64("seed", 1, "split seed")
	maxLine := addMaxLineFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dataPath == "" || *trainOut == "" || *evalOut == "" {
		return fmt.Errorf("--data, --train and --eval are required")
	}
	if err := checkOutputs([]flagPath{{"train", *trainOut}, {"eval", *evalOut}}, []flagPath{{"data", *dataPath}}); err != nil {
		return err
	}
	unit, err := data.ParseSplitBy(*by)
	if err != nil {
		return err
	}
	var rows []data.Example
	if *dataPath == "sample" {
		rows, err = data.SampleRows()
	} else {
		rows, err = data.ReadSFT(*dataPath, data.ReadOptions{MaxLineBytes: *maxLine})
	}
	if err != nil {
		return err
	}
	tr, ev := data.Split(rows, unit, *frac, *seed)
	for _, side := range []struct {
		path string
		rows []data.Example
	}{{*trainOut, tr}, {*evalOut, ev}} {
		if err := writeRecords(side.path, side.rows); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "split %d rows by %s: %d train, %d eval\n", len(rows), *by, len(tr), len(ev))
	return nil
}

// writeRecords writes rows as JSONL in their own layout.
func writeRecords(path string, rows []data.Example) error {
	return writeOutput(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for i := range rows {
			if err := enc.Encode(rows[i].Record()); err != nil {
				return err
			}
		}
		return nil
	})
}
