// Command gotrain finetunes and runs Qwen2 and LLaMA models on the CPU.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

// command is one subcommand: run parses its own flags from args.
type command struct {
	name, summary string
	run           func(args []string) error
}

func commands() []command {
	return []command{
		{"init-model", "write a random-weight checkpoint in Hugging Face layout", runInitModel},
		{"score", "teacher-forced log-probabilities of completions", runScore},
		{"sft", "LoRA supervised finetuning", runSFT},
		{"download", "fetch a model or adapter into the Hugging Face cache", runDownload},
		{"dpo", "preference finetuning (DPO, IPO) on pairs or contrastive SocSci210 pairs", runDPO},
		{"merge", "write base + LoRA adapter as one checkpoint", runMerge},
		{"predict", "answer-option distributions for survey rows", runPredict},
		{"eval", "the paper's metrics for predictions, against baselines", runEval},
		{"simulate", "screen an experiment: predicted outcome distributions and effects per condition over sampled personas", runSimulate},
		{"generate", "decode text with the KV cache (streamed, or JSONL for --data)", runGenerate},
		{"split", "seeded train/eval split by study, condition, outcome or participant", runSplit},
		{"tokenize", "encode JSONL strings to token ids (or --decode)", runTokenize},
		{"bench", "benchmarks: gemm, peak, bandwidth, allreduce, prefill, decode, train, predict, dpo", runBench},
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: gotrain <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'gotrain <command> -h' for a command's flags.\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	for _, c := range commands() {
		if c.name == os.Args[1] {
			if err := c.run(os.Args[2:]); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					return
				}
				fmt.Fprintf(os.Stderr, "gotrain %s: %v\n", c.name, err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "gotrain: unknown command %q\n\n", os.Args[1])
	usage()
	os.Exit(2)
}

// newFlags returns a FlagSet for a subcommand whose errors are returned, not fatal.
func newFlags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("gotrain "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: gotrain %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}
