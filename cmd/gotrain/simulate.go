package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/predict"
	"github.com/gotrain/gotrain/report"
	"github.com/gotrain/gotrain/tokenize"
)

func runSimulate(args []string) error {
	return simulate(args, os.Stdout)
}

// simulate runs `gotrain simulate`, printing the table to stdout.
func simulate(args []string, stdout io.Writer) error {
	fs := newFlags("simulate", "--base DIR --experiment spec.json [--personas participants.json|sample] [--adapter DIR] [--n 500] [--seed 1] [--bootstrap 1000] [--out results.json] [--rows rows.jsonl] [--report DIR]")
	base := fs.String("base", "", "base model: a directory, a Hugging Face repo id ORG/NAME[@REV] or an alias (qwen2.5-14b, llama3-8b, ...)")
	adapterDir := fs.String("adapter", "", "PEFT LoRA adapter directory")
	specPath := fs.String("experiment", "", `experiment spec (JSON): {"name", "conditions": [{"name", "stimulus"}...], "control", "outcome": {"question", "options"}}`)
	personasPath := fs.String("personas", "sample", `participant profiles: a participants.json file (.gz ok) or "sample" (the bundled 1,000)`)
	n := fs.Int("n", 500, "personas drawn from the pool (0: all)")
	seed := fs.Uint64("seed", 1, "seed of the persona draw and the bootstrap")
	bootstrap := fs.Int("bootstrap", 1000, "bootstrap resamples of personas for the effects' 95% CIs (0: none)")
	rowsPath := fs.String("rows", "", "also write the rows predicted (alpaca JSONL with options, condition, participant) to this file")
	outPath := fs.String("out", "", "write the full result (distributions, per-persona means, effects) as JSON")
	reportDir := fs.String("report", "", "write result.json, distributions.svg, effects.svg and index.html (one self-contained page) here")
	noChat := fs.Bool("no-chat", false, "plain prompt text instead of the chat template (as trained)")
	chat := addChatFlags(fs, tokenize.ChatTemplateNames)
	quantize := addQuantizeFlag(fs)
	compute := addComputeFlag(fs)
	pack := addPackFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *base == "" || *specPath == "" {
		return fmt.Errorf("--base and --experiment are required")
	}
	if err := resolveFlags(base, adapterDir); err != nil {
		return err
	}
	if err := checkOutputs([]flagPath{{"out", *outPath}, {"rows", *rowsPath}, {"report", *reportDir}},
		[]flagPath{{"base", *base}, {"adapter", *adapterDir}, {"experiment", *specPath}, {"personas", *personasPath}}); err != nil {
		return err
	}
	exp, err := predict.LoadExperiment(*specPath)
	if err != nil {
		return err
	}
	var pool []data.Persona
	if *personasPath == "sample" {
		pool, err = data.SamplePersonas()
	} else {
		pool, err = data.ReadPersonas(*personasPath)
	}
	if err != nil {
		return err
	}
	if len(pool) == 0 {
		return fmt.Errorf("%s: no personas", *personasPath)
	}
	if *rowsPath != "" {
		err := writeOutput(*rowsPath, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetEscapeHTML(false)
			drawn := predict.DrawPersonas(pool, *n, *seed)
			for i := range drawn {
				for c := range exp.Conditions {
					r := exp.Row(c, &drawn[i])
					if err := enc.Encode(r.Record()); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	m, ad, err := loadModel(*base, *adapterDir, *quantize, *compute, *pack)
	if err != nil {
		return err
	}
	defer m.Close()
	enc, err := newEncoder(*base, *noChat, chat, 0)
	if err != nil {
		return err
	}
	// Ctrl-C stops between chunks of personas; a second one kills at once
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	p := predict.New(m, ad, enc, predict.Sampling{})
	began := time.Now()
	last := began
	res, err := predict.Simulate(ctx, p, exp, pool, predict.SimOptions{N: *n, Seed: *seed, Bootstrap: *bootstrap,
		Progress: func(done, total int) {
			if now := time.Now(); now.Sub(last) > 10*time.Second || done == total {
				last = now
				fmt.Fprintf(os.Stderr, "simulate: %d/%d rows (%.1f rows/s)\n", done, total, float64(done)/now.Sub(began).Seconds())
			}
		}})
	if err != nil {
		return err
	}
	took := time.Since(began)
	if err := res.WriteTable(stdout); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "simulated %d personas × %d conditions in %s; prompt tokens: %d computed, %d reused from the KV cache\n",
		res.Personas, len(res.Conditions), took.Round(time.Millisecond), res.Computed, res.Reused)
	if *reportDir != "" {
		if err := report.WriteSimulation(*reportDir, exp, res); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "report in %s (open index.html in a browser)\n", *reportDir)
	}
	if *outPath == "" {
		return nil
	}
	return writeOutput(*outPath, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(res)
	})
}
