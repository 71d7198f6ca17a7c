package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/internal/inputfile"
	"github.com/gotrain/gotrain/kernels"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/predict"
	"github.com/gotrain/gotrain/tokenize"
)

// scoreGroup is how many input lines are scored together.
const scoreGroup = 64

func runScore(args []string) error {
	fs := newFlags("score", "--base DIR --data FILE.jsonl [--adapter DIR] [--out FILE.jsonl] [--chat]")
	base := fs.String("base", "", "base model: a directory, a Hugging Face repo id ORG/NAME[@REV] or an alias (qwen2.5-14b, llama3-8b, ...)")
	adapterDir := fs.String("adapter", "", "PEFT LoRA adapter directory")
	dataPath := fs.String("data", "", `input JSONL: {"prompt": ..., "completion": ...} (or "prompt_ids"/"completion_ids")`)
	outPath := fs.String("out", "", "output JSONL (default stdout)")
	chat := fs.Bool("chat", false, "wrap each prompt in the model's chat template as a user turn")
	chatf := addChatFlags(fs, tokenize.ChatTemplateNames)
	maxLine := addMaxLineFlag(fs)
	compute := addComputeFlag(fs)
	quantize := addQuantizeFlag(fs)
	pack := addPackFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *base == "" || *dataPath == "" {
		return fmt.Errorf("--base and --data are required")
	}
	if err := resolveFlags(base, adapterDir); err != nil {
		return err
	}
	if err := checkOutputs([]flagPath{{"out", *outPath}}, []flagPath{{"base", *base}, {"adapter", *adapterDir}, {"data", *dataPath}}); err != nil {
		return err
	}
	m, ad, err := loadModel(*base, *adapterDir, *quantize, *compute, *pack)
	if err != nil {
		return err
	}
	defer m.Close()
	var tok *tokenize.Tokenizer
	var tmpl *tokenize.Template
	in, err := inputfile.Open(*dataPath)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeOutput(*outPath, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		br := bufio.NewReaderSize(in, 1<<16)
		var outs []predict.ScoredItem
		var seqs []model.Sequence
		flush := func() error {
			lps, err := m.Score(seqs, ad)
			if err != nil {
				return err
			}
			for i := range outs {
				outs[i].SetLogprobs(lps[i])
				if err := enc.Encode(&outs[i]); err != nil {
					return err
				}
			}
			outs, seqs = outs[:0], seqs[:0]
			return nil
		}
		for line := 1; ; line++ {
			b, long, rerr := data.ReadLine(br, *maxLine)
			if rerr == io.EOF && len(b) == 0 && !long {
				break
			}
			if rerr != nil && rerr != io.EOF {
				return fmt.Errorf("%s:%d: %w", *dataPath, line, rerr)
			}
			if long {
				return fmt.Errorf("%s:%d: %w", *dataPath, line, data.LineTooLong(*maxLine))
			}
			if len(bytes.TrimSpace(b)) == 0 {
				continue
			}
			var r predict.ScoreItem
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("%s:%d: invalid JSON: %w", *dataPath, line, err)
			}
			if r.IsText() && tok == nil {
				if tok, err = loadBaseTokenizer(*base); err != nil {
					return err
				}
				if *chat {
					if tmpl, err = chatf.load(tok); err != nil {
						return err
					}
				}
			}
			o, seq, err := r.Encode(tok, tmpl, m.Config.VocabSize, m.MaxPositions())
			if err != nil {
				return fmt.Errorf("%s:%d: %w", *dataPath, line, err)
			}
			outs = append(outs, o)
			seqs = append(seqs, seq)
			if len(seqs) == scoreGroup {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return flush()
	})
}

// loadModel loads a base model in compute mode compute (its weights
// prepacked for it with pack) and, when adapterDir is set, a LoRA adapter.
func loadModel(base, adapterDir, quantize, compute string, pack bool) (*model.Model, *model.Adapter, error) {
	// inference holds one chunk of activations and a KV cache: plan for 2,048 tokens of each
	plan, err := planRun(base, quantize, 0, "", "", 2048, 2048)
	if err != nil {
		return nil, nil, err
	}
	if err := checkMemory(plan); err != nil {
		return nil, nil, err
	}
	m, err := model.LoadWith(base, model.LoadOptions{Quantize: quantize})
	if err != nil {
		return nil, nil, err
	}
	if err := setCompute(m, compute); err != nil {
		m.Close()
		return nil, nil, err
	}
	if pack {
		// The weights are loaded: what is still available must hold the copy.
		need, avail := m.PackBytes(), model.Available()
		if avail >= 0 && need > avail && !memCheckOff() {
			m.Close()
			return nil, nil, fmt.Errorf("--pack-weights needs %s more memory, %s is available (set GOTRAIN_NO_MEMCHECK=1 to run anyway)",
				model.FormatBytes(need), model.FormatBytes(avail))
		}
		m.PackWeights()
	}
	if adapterDir == "" {
		return m, nil, nil
	}
	ad, err := m.LoadAdapter(adapterDir)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, ad, nil
}

// writeOutput runs write on stdout, or on a temporary file renamed to path
// once write succeeds, so a failed run never leaves a partial output.
func writeOutput(path string, write func(io.Writer) error) error {
	if path == "" {
		w := bufio.NewWriter(os.Stdout)
		if err := write(w); err != nil {
			w.Flush()
			return err
		}
		return w.Flush()
	}
	return atomicfile.Write(path, write)
}

// addComputeFlag registers --compute; setCompute applies it to a loaded model.
// Inference defaults to auto like training: scoring is batch-invariant in
// bf16 too, so the server's batches answer what predict does bit for bit,
// and bf16 halves the LM head that dominates scoring answer rows.
func addComputeFlag(fs *flag.FlagSet) *string {
	return fs.String("compute", "auto", computeUsage)
}

const computeUsage = "matmul precision of the forward pass and the LM head: f32, bf16 (activations rounded to bfloat16, float32 accumulation, as PyTorch autocast; about 2× faster with AVX512_BF16), or auto (bf16 where the CPU has AVX512_BF16)"

// addTrainComputeFlag registers --compute for sft and dpo, where bf16 is the
// default on CPUs with a native BF16 dot product.
func addTrainComputeFlag(fs *flag.FlagSet) *string {
	return fs.String("compute", "auto", "matmul precision of the base model's forward and backward: bf16 (bfloat16 operands, float32 accumulation, as PyTorch autocast; LoRA weights, optimizer state, norms and the loss stay float32), f32, or auto (bf16 where the CPU has AVX512_BF16)")
}

func setCompute(m *model.Model, c string) error {
	switch c {
	case "f32", "":
		m.SetCompute(kernels.ComputeF32)
	case "bf16":
		m.SetCompute(kernels.ComputeBF16)
	case "auto":
		if kernels.HasBF16Compute() {
			m.SetCompute(kernels.ComputeBF16)
		} else {
			m.SetCompute(kernels.ComputeF32)
		}
	default:
		return fmt.Errorf("--compute %q: want f32, bf16 or auto", c)
	}
	return nil
}
