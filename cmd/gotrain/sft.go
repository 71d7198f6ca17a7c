package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/dist"
	"github.com/gotrain/gotrain/kernels"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/tokenize"
	"github.com/gotrain/gotrain/train"
)

// trainFlags are the flags sft and dpo share.
type trainFlags struct {
	base, dataPath, evalPath, out *string
	r                             *int
	alpha, dropout                *float64
	rslora                        *bool
	targets, initAdapter, toSave  *string
	maxLen                        *int
	noChat, skipBad, full         *bool
	overwrite                     *bool
	maxLine                       *int
	resume, quantize              *string
	chat                          chatFlags
	compute, distMode             *string
	auxCoef                       optionalFloat
	cfg                           train.Config
	baseName                      string      // what the adapter records as its base: the repo id or the directory given
	group                         *dist.Group // the data-parallel job, or nil
	localRanks                    int         // the job's processes on this machine
}

func addTrainFlags(fs *flag.FlagSet, lr float64) *trainFlags {
	f := &trainFlags{cfg: train.DefaultConfig()}
	f.cfg.LR = lr
	f.base = fs.String("base", "", "base model: a directory, a Hugging Face repo id ORG/NAME[@REV] or an alias (qwen2.5-14b, llama3-8b, ...)")
	f.dataPath = fs.String("data", "", "training data file (.gz ok)")
	f.evalPath = fs.String("eval-data", "", "held-out data for periodic eval metrics")
	f.out = fs.String("out", "", "output directory for the adapter, checkpoints, metrics.jsonl and loss.svg")
	f.r = fs.Int("lora-r", 16, "LoRA rank")
	f.alpha = fs.Float64("lora-alpha", 32, "LoRA alpha")
	f.dropout = fs.Float64("lora-dropout", 0.05, "LoRA dropout")
	f.rslora = fs.Bool("rslora", false, "rank-stabilised LoRA scaling alpha/sqrt(r)")
	f.targets = fs.String("target-modules", "q,k,v,o,gate,up,down", "comma-separated modules to adapt (gate, up, down: every expert's too; router: Qwen3-MoE's mlp.gate)")
	f.initAdapter = fs.String("init-adapter", "", "start from this PEFT adapter instead of a fresh one")
	f.toSave = fs.String("modules-to-save", "", "PEFT modules_to_save: whole modules trained beside the LoRA weights and saved in the adapter (embed_tokens, lm_head, norm, input_layernorm, post_attention_layernorm; Qwen3: q_norm, k_norm)")
	f.full = fs.Bool("full", false, "full finetuning: train every weight (float32 master copies) instead of a LoRA adapter; --out receives a complete checkpoint in the base's dtype")
	cfg := &f.cfg
	fs.StringVar(&cfg.Optim, "optim", cfg.Optim, "optimizer: adamw, adamw8bit (8-bit moments) or sgd")
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
	fs.Var(&f.auxCoef, "router-aux-loss-coef",
		"mixture-of-experts models: weight of the router's load-balancing loss in the loss (default: config.json's router_aux_loss_coef when its output_router_logits is true, else 0, as transformers); reported as aux_loss either way")
	fs.IntVar(&cfg.SaveSteps, "save-steps", 0, "checkpoint every N steps")
	fs.IntVar(&cfg.EvalSteps, "eval-steps", 0, "eval every N steps (default: at the end)")
	fs.IntVar(&cfg.SaveLimit, "save-limit", cfg.SaveLimit, "checkpoints kept (0: all)")
	f.maxLen = fs.Int("max-len", 2048, "longest example in tokens; longer ones are bad lines")
	f.noChat = fs.Bool("no-chat", false, "plain prompt+completion text instead of the chat template")
	f.chat = addChatFlags(fs, tokenize.ChatTemplateNames)
	f.skipBad = fs.Bool("skip-bad", false, "skip bad lines (reported with file:line) instead of failing")
	f.maxLine = addMaxLineFlag(fs)
	f.quantize = addQuantizeFlag(fs)
	f.compute = addTrainComputeFlag(fs)
	f.resume = fs.String("resume", "", `resume from a checkpoint directory, or "auto" for the newest in --out`)
	f.overwrite = fs.Bool("overwrite", false, "train afresh into an --out that already holds an adapter or checkpoints (they are replaced as the run writes)")
	f.distMode = fs.String("dist", "auto", "data-parallel training: auto joins the job a launcher (torchrun, Slurm srun, JobSet) describes in the environment; off trains alone")
	return f
}

// readOptions are the data reading flags.
func (f *trainFlags) readOptions() data.ReadOptions {
	return data.ReadOptions{SkipBad: *f.skipBad, MaxLineBytes: *f.maxLine}
}

// checkOut refuses an --out that is or lies inside an input, and one that
// already holds a trained adapter unless --overwrite or --resume is given.
func (f *trainFlags) checkOut() error {
	if err := checkOutputs([]flagPath{{"out", *f.out}}, []flagPath{{"base", *f.base}, {"init-adapter", *f.initAdapter},
		{"data", *f.dataPath}, {"eval-data", *f.evalPath}, {"resume", strings.TrimPrefix(*f.resume, "auto")}}); err != nil {
		return err
	}
	if *f.resume == "" {
		if err := checkReplace("out", *f.out, *f.overwrite, "trained adapter", "adapter_model.safetensors", "checkpoint-*"); err != nil {
			return fmt.Errorf("%w (or --resume auto to continue its run)", err)
		}
	}
	return nil
}

// setup checks the required flags, joins the data-parallel job if there
// is one, resolves the model references and returns the encoder of the
// base's tokenizer; the model is loaded later by load, once the data says
// how large a batch gets. done must be called with the command's result.
func (f *trainFlags) setup() (*data.Encoder, error) {
	if *f.base == "" || *f.dataPath == "" || *f.out == "" {
		return nil, fmt.Errorf("--base, --data and --out are required")
	}
	if c := *f.compute; c != "f32" && c != "bf16" && c != "auto" {
		return nil, fmt.Errorf("--compute %q: want f32, bf16 or auto", c)
	}
	g, local, err := joinJob(*f.distMode, os.Args[1:])
	if err != nil {
		return nil, err
	}
	f.localRanks = local
	f.group, f.cfg.Group = g, g
	f.cfg.Dropout, f.cfg.OutDir = float32(*f.dropout), *f.out
	if f.auxCoef.set {
		f.cfg.RouterAuxCoef = f.auxCoef.v
	}
	f.baseName = baseModelName(*f.base)
	err = resolveFlags(f.base, f.initAdapter)
	if err == nil {
		err = f.checkOut()
	}
	var enc *data.Encoder
	if err == nil {
		enc, err = newEncoder(*f.base, *f.noChat, f.chat, *f.maxLen)
	}
	if err != nil {
		f.done(&err)
	}
	return enc, err
}

// load checks the memory plan for micro-batches of the given longest
// sequence length and loads the model and what to train: with --full the
// float32 master weights, else the adapter (fresh, or --init-adapter). A run
// that cannot fit is refused before anything is loaded.
func (f *trainFlags) load(longest int) (*model.Model, *model.Adapter, *model.Full, error) {
	if *f.full && (*f.quantize != "" || *f.initAdapter != "") {
		return nil, nil, nil, fmt.Errorf("--full trains every weight in float32: it takes neither --quantize nor --init-adapter")
	}
	plan, err := planRun(*f.base, *f.quantize, *f.r, *f.targets, f.cfg.Optim, f.cfg.BatchSize*longest, 0)
	if err != nil {
		return nil, nil, nil, err
	}
	if *f.full || *f.toSave != "" {
		in := plan.Input
		in.Full = *f.full
		if *f.toSave != "" && !*f.full {
			in.ModulesToSave = strings.Split(*f.toSave, ",")
		}
		plan = plan.Replan(in)
	}
	if plan, err = f.checkPlan(plan); err != nil {
		return nil, nil, nil, err
	}
	if f.rank() == 0 {
		each := ""
		if f.ranks() > 1 {
			each = fmt.Sprintf(" of each of %d ranks, %d on this machine", f.ranks(), max(1, f.localRanks))
		}
		fmt.Fprintf(os.Stderr, "memory plan%s (available %s):\n%s", each, model.FormatBytes(model.Available()), plan)
	}
	m, err := model.LoadWith(*f.base, model.LoadOptions{Quantize: *f.quantize})
	if err != nil {
		return nil, nil, nil, err
	}
	if *f.full {
		// Full finetuning's weight gradients are float32 GEMMs on float32
		// master weights; bf16 compute is not wired through them yet.
		if *f.compute == "bf16" {
			m.Close()
			return nil, nil, nil, fmt.Errorf("--compute bf16 is not supported with --full yet: use --compute f32 (or auto)")
		}
		fmt.Fprintf(os.Stderr, "compute: f32 matmuls (--full trains float32 master weights)\n")
		fl, err := model.NewFull(m)
		if err != nil {
			m.Close()
			return nil, nil, nil, err
		}
		return m, nil, fl, nil
	}
	if err := setCompute(m, *f.compute); err != nil {
		m.Close()
		return nil, nil, nil, err
	}
	fmt.Fprintf(os.Stderr, "compute: %s matmuls (--compute %s; native BF16 dot product: %v)\n", m.Compute(), *f.compute, kernels.HasBF16Compute())
	var ad *model.Adapter
	if *f.initAdapter != "" {
		if ad, err = m.LoadAdapter(*f.initAdapter); err == nil {
			ad.Config.LoraDropout = *f.dropout
		}
	} else {
		var toSave []string
		if *f.toSave != "" {
			toSave = strings.Split(*f.toSave, ",")
		}
		ad, err = m.NewAdapter(model.AdapterConfig{R: *f.r, LoraAlpha: *f.alpha, LoraDropout: *f.dropout,
			UseRSLoRA: *f.rslora, TargetModules: strings.Split(*f.targets, ","), ModulesToSave: toSave}, f.cfg.Seed)
	}
	if err != nil {
		m.Close()
		return nil, nil, nil, err
	}
	return m, ad, nil, nil
}

// what describes what a run trains, for its first line.
func (f *trainFlags) what(ad *model.Adapter, fl *model.Full) string {
	if fl != nil {
		return fmt.Sprintf("full finetuning of %d weights (float32 master copies)", model.FullParams(&fl.Model.Config))
	}
	// PEFT names the MoE router "gate", which --target-modules calls router
	// (its "gate" is gate_proj)
	mods := slices.Clone(ad.Config.TargetModules)
	for i, m := range mods {
		if m == "gate" {
			mods[i] = "gate (the router)"
		}
	}
	s := fmt.Sprintf("LoRA r=%d on %s", ad.Config.R, strings.Join(mods, ","))
	if len(ad.Saved) > 0 {
		s += fmt.Sprintf(", %d whole tensors of modules_to_save %s", len(ad.Saved), strings.Join(ad.Config.ModulesToSave, ","))
	}
	return s
}

// run resumes if asked, trains with a progress display, Ctrl-C handling and
// checkpoints, and writes the adapter, loss plot and summary.
func (f *trainFlags) run(tr *train.Trainer, name string) error {
	if *f.resume != "" {
		dir := *f.resume
		if dir == "auto" {
			var err error
			if dir, err = f.latestCheckpoint(); err != nil {
				return err
			}
		}
		if dir != "" {
			if err := tr.Resume(dir); err != nil {
				return err
			}
			if f.rank() == 0 {
				fmt.Fprintf(os.Stderr, "resumed from %s at step %d\n", dir, tr.Step())
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	var report func(train.StepInfo)
	if f.rank() == 0 {
		report = stepReporter(name, tr.TotalSteps(), tr.Step(), f.ranks())
	}
	err := tr.Run(ctx, report)
	if errors.Is(err, train.ErrInterrupted) {
		fmt.Fprintf(os.Stderr, "%v; continue with --resume auto\n", err)
		return err
	}
	if err != nil || f.rank() != 0 {
		return err
	}
	return finishTraining(tr, f.baseName, *f.out, time.Since(began))
}

func runSFT(args []string) (err error) {
	fs := newFlags("sft", "--base DIR --data FILE --out DIR [flags]")
	f := addTrainFlags(fs, 1e-4)
	target := fs.String("target", "answer", "what native SocSci210 rows teach: answer (the response) or reasoning (reasoning text, then the response)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *target != "answer" && *target != "reasoning" {
		return fmt.Errorf("--target %q: want answer or reasoning", *target)
	}
	enc, err := f.setup()
	if err != nil {
		return err
	}
	defer f.done(&err)
	trainSet, err := readExamples(enc, *f.dataPath, f.readOptions(), *target == "reasoning")
	if err != nil {
		return err
	}
	var evalSet []data.Encoded
	if *f.evalPath != "" {
		if evalSet, err = readExamples(enc, *f.evalPath, f.readOptions(), *target == "reasoning"); err != nil {
			return err
		}
	}
	longest := 0
	for _, e := range trainSet {
		longest = max(longest, len(e.Tokens))
	}
	m, ad, fl, err := f.load(longest)
	if err != nil {
		return err
	}
	defer m.Close()
	var tr *train.Trainer
	if fl != nil {
		tr, err = train.NewFull(fl, f.cfg, trainSet, evalSet)
	} else {
		tr, err = train.New(m, ad, f.cfg, trainSet, evalSet)
	}
	if err != nil {
		return err
	}
	if f.rank() == 0 {
		fmt.Fprintf(os.Stderr, "sft: %d training examples, %d eval, %d steps of %s examples, %s\n",
			len(trainSet), len(evalSet), tr.TotalSteps(), f.batchShape(), f.what(ad, fl))
	}
	return f.run(tr, "sft")
}

// finishTraining writes the adapter and the loss plot and prints a summary.
func finishTraining(tr *train.Trainer, base, out string, took time.Duration) error {
	if err := tr.SaveOutput(base); err != nil {
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
	fmt.Printf(", %.0f tokens/s\n%s, metrics.jsonl and loss.svg in %s\n", float64(tokens)/took.Seconds(), tr.OutputKind(), out)
	return nil
}

// newEncoder loads the base's tokenizer and, unless noChat, its chat template.
func newEncoder(base string, noChat bool, chat chatFlags, maxLen int) (*data.Encoder, error) {
	tok, err := loadBaseTokenizer(base)
	if err != nil {
		return nil, err
	}
	enc := &data.Encoder{Tok: tok, MaxLen: maxLen}
	if !noChat {
		if enc.Template, err = chat.load(tok); err != nil {
			return nil, err
		}
	}
	return enc, nil
}

// readExamples reads and encodes a data file, reporting skipped lines.
func readExamples(enc *data.Encoder, path string, opt data.ReadOptions, reasoning bool) ([]data.Encoded, error) {
	var rep data.ReadReport
	opt.Report = &rep
	skipBad := opt.SkipBad
	rows, err := data.ReadSFT(path, opt)
	if err != nil {
		return nil, err
	}
	if reasoning {
		if err := data.UseReasoningTargets(rows); err != nil {
			return nil, err
		}
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
