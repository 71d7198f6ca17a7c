package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/tokenize"
	"github.com/gotrain/gotrain/train"
)

func runSFT(args []string) error {
	fs := newFlags("sft", "--base DIR --data FILE --out DIR [flags]")
	base := fs.String("base", "", "base model directory")
	dataPath := fs.String("data", "", "training data: alpaca, prompt/completion or chat JSONL (.gz ok)")
	evalPath := fs.String("eval-data", "", "held-out data for a periodic eval loss")
	out := fs.String("out", "", "output directory for the adapter, checkpoints, metrics.jsonl and loss.svg")
	r := fs.Int("lora-r", 16, "LoRA rank")
	alpha := fs.Float64("lora-alpha", 32, "LoRA alpha")
	dropout := fs.Float64("lora-dropout", 0.05, "LoRA dropout")
	rslora := fs.Bool("rslora", false, "rank-stabilised LoRA scaling alpha/sqrt(r)")
	targets := fs.String("target-modules", "q,k,v,o,gate,up,down", "comma-separated modules to adapt")
	initAdapter := fs.String("init-adapter", "", "start from this PEFT adapter instead of a fresh one")
	cfg := train.DefaultConfig()
	fs.StringVar(&cfg.Optim, "optim", cfg.Optim, "optimizer: adamw or sgd")
	fs.Float64Var(&cfg.LR, "lr", cfg.LR, "peak learning rate")
	fs.Float64Var(&cfg.WeightDecay, "weight-decay", cfg.WeightDecay, "AdamW weight decay")
	fs.StringVar(&cfg.Scheduler, "lr-scheduler", cfg.Scheduler, "cosine, linear or constant (after linear warmup)")
	fs.Float64Var(&cfg.WarmupRatio, "warmup-ratio", cfg.WarmupRatio, "fraction of steps warming up")
	fs.IntVar(&cfg.BatchSize, "batch-size", cfg.BatchSize, "examples per micro-batch")
	fs.IntVar(&cfg.GradAccum, "grad-accum", cfg.GradAccum, "micro-batches per optimizer step")
	fs.Float64Var(&cfg.MaxGradNorm, "max-grad-norm", cfg.MaxGradNorm, "clip the global gradient norm (0: off)")
	fs.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "epochs (when --max-steps is 0)")
	fs.IntVar(&cfg.MaxSteps, "max-steps", 0, "optimizer steps (overrides --epochs)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of data order, adapter init and dropout")
	fs.IntVar(&cfg.SaveSteps, "save-steps", 0, "checkpoint every N steps")
	fs.IntVar(&cfg.EvalSteps, "eval-steps", 0, "eval loss every N steps (default: at the end)")
	fs.IntVar(&cfg.SaveLimit, "save-limit", cfg.SaveLimit, "checkpoints kept (0: all)")
	maxLen := fs.Int("max-len", 2048, "longest example in tokens; longer ones are bad lines")
	noChat := fs.Bool("no-chat", false, "train on plain prompt+completion text instead of the chat template")
	template := fs.String("template", "", "chat template: qwen2.5|qwen3|llama3|llama3.1 (default: detect)")
	skipBad := fs.Bool("skip-bad", false, "skip bad lines (reported with file:line) instead of failing")
	resume := fs.String("resume", "", `resume from a checkpoint directory, or "auto" for the newest in --out`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *base == "" || *dataPath == "" || *out == "" {
		return fmt.Errorf("--base, --data and --out are required")
	}
	cfg.Dropout, cfg.OutDir = float32(*dropout), *out

	m, err := model.Load(*base)
	if err != nil {
		return err
	}
	defer m.Close()
	enc, err := newEncoder(*base, *noChat, *template, *maxLen)
	if err != nil {
		return err
	}
	trainSet, err := readExamples(enc, *dataPath, *skipBad)
	if err != nil {
		return err
	}
	var evalSet []train.Example
	if *evalPath != "" {
		if evalSet, err = readExamples(enc, *evalPath, *skipBad); err != nil {
			return err
		}
	}
	var ad *model.Adapter
	if *initAdapter != "" {
		if ad, err = m.LoadAdapter(*initAdapter); err != nil {
			return err
		}
		ad.Config.LoraDropout = *dropout
	} else {
		ad, err = m.NewAdapter(model.AdapterConfig{R: *r, LoraAlpha: *alpha, LoraDropout: *dropout,
			UseRSLoRA: *rslora, TargetModules: strings.Split(*targets, ",")}, cfg.Seed)
		if err != nil {
			return err
		}
	}
	tr, err := train.New(m, ad, cfg, trainSet, evalSet)
	if err != nil {
		return err
	}
	if *resume != "" {
		dir := *resume
		if dir == "auto" {
			dir = train.LatestCheckpoint(*out)
		}
		if dir != "" {
			if err := tr.Resume(dir); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "resumed from %s at step %d\n", dir, tr.Step())
		}
	}
	fmt.Fprintf(os.Stderr, "sft: %d training examples, %d eval, %d steps of %d×%d examples, LoRA r=%d on %s\n",
		len(trainSet), len(evalSet), tr.TotalSteps(), cfg.BatchSize, cfg.GradAccum, ad.Config.R, strings.Join(ad.Config.TargetModules, ","))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	err = tr.Run(ctx, stepReporter(tr.TotalSteps(), tr.Step()))
	if errors.Is(err, train.ErrInterrupted) {
		fmt.Fprintf(os.Stderr, "%v; continue with --resume auto\n", err)
		return err
	}
	if err != nil {
		return err
	}
	return finishTraining(tr, *base, *out, time.Since(began))
}

// finishTraining writes the adapter and the loss plot and prints a summary.
func finishTraining(tr *train.Trainer, base, out string, took time.Duration) error {
	if err := tr.SaveAdapter(base); err != nil {
		return err
	}
	ms, err := train.ReadMetrics(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		return err
	}
	if err := train.PlotLoss(ms, filepath.Join(out, "loss.svg")); err != nil {
		return err
	}
	last := ms[len(ms)-1]
	tokens := 0
	for _, s := range ms {
		tokens += s.Tokens
	}
	fmt.Printf("done: %d steps in %s, first loss %.4f, last loss %.4f", last.Step, took.Round(time.Second), ms[0].Loss, last.Loss)
	if last.EvalLoss != nil {
		fmt.Printf(", eval loss %.4f", *last.EvalLoss)
	}
	fmt.Printf(", %.0f tokens/s\nadapter, metrics.jsonl and loss.svg in %s\n", float64(tokens)/took.Seconds(), out)
	return nil
}

// newEncoder loads the base's tokenizer and, unless noChat, its chat template.
func newEncoder(base string, noChat bool, template string, maxLen int) (*data.Encoder, error) {
	tok, err := tokenize.Load(base)
	if err != nil {
		return nil, err
	}
	enc := &data.Encoder{Tok: tok, MaxLen: maxLen}
	if !noChat {
		if enc.Template, err = tok.ChatTemplate(template); err != nil {
			return nil, err
		}
	}
	return enc, nil
}

// readExamples reads and encodes a data file, reporting skipped lines.
func readExamples(enc *data.Encoder, path string, skipBad bool) ([]data.Encoded, error) {
	var rep data.ReadReport
	rows, err := data.ReadSFT(path, data.ReadOptions{SkipBad: skipBad, Report: &rep})
	if err != nil {
		return nil, err
	}
	for _, e := range rep.Skipped {
		fmt.Fprintf(os.Stderr, "skipped %v\n", e)
	}
	exs, skipped, err := enc.EncodeAll(rows, skipBad)
	if err != nil {
		return nil, err
	}
	for _, e := range skipped {
		fmt.Fprintf(os.Stderr, "skipped %v\n", e)
	}
	if len(exs) == 0 {
		return nil, fmt.Errorf("%s: no usable examples", path)
	}
	return exs, nil
}
