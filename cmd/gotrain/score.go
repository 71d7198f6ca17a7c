package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/kernels"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/tokenize"
)

type scoreIn struct {
	Prompt        *string `json:"prompt"`
	Completion    *string `json:"completion"`
	PromptIDs     []int   `json:"prompt_ids"`
	CompletionIDs []int   `json:"completion_ids"`
}

type scoreOut struct {
	PromptIDs     []int     `json:"prompt_ids"`
	CompletionIDs []int     `json:"completion_ids"`
	Logprobs      []float32 `json:"logprobs"`
	Sum           float64   `json:"sum"`
}

// scoreGroup is how many input lines are scored together.
const scoreGroup = 64

func runScore(args []string) error {
	fs := newFlags("score", "--base DIR --data FILE.jsonl [--adapter DIR] [--out FILE.jsonl] [--chat]")
	base := fs.String("base", "", "base model: a directory, a Hugging Face repo id ORG/NAME[@REV] or an alias (qwen2.5-14b, llama3-8b, ...)")
	adapterDir := fs.String("adapter", "", "PEFT LoRA adapter directory")
	dataPath := fs.String("data", "", `input JSONL: {"prompt": ..., "completion": ...} (or "prompt_ids"/"completion_ids")`)
	outPath := fs.String("out", "", "output JSONL (default stdout)")
	chat := fs.Bool("chat", false, "wrap each prompt in the model's chat template as a user turn")
	template := fs.String("template", "", "chat template: qwen2.5|qwen3|llama3|llama3.1 (default: detect)")
	compute := addComputeFlag(fs)
	quantize := addQuantizeFlag(fs)
	pack := addPackFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *base == "" || *dataPath == "" {
		return fmt.Errorf("--base and --data are required")
	}
	if err := resolveFlags(base, adapterDir); err != nil {
		return err
	}
	m, ad, err := loadModel(*base, *adapterDir, *quantize, *compute, *pack)
	if err != nil {
		return err
	}
	defer m.Close()
	var tok *tokenize.Tokenizer
	var tmpl *tokenize.Template
	in, err := os.Open(*dataPath)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeOutput(*outPath, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		var outs []scoreOut
		var seqs []model.Sequence
		flush := func() error {
			lps, err := m.Score(seqs, ad)
			if err != nil {
				return err
			}
			for i := range outs {
				outs[i].Logprobs = lps[i]
				for _, v := range lps[i] {
					outs[i].Sum += float64(v)
				}
				if err := enc.Encode(&outs[i]); err != nil {
					return err
				}
			}
			outs, seqs = outs[:0], seqs[:0]
			return nil
		}
		for line := 1; sc.Scan(); line++ {
			if len(sc.Bytes()) == 0 {
				continue
			}
			var r scoreIn
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				return fmt.Errorf("%s:%d: invalid JSON: %w", *dataPath, line, err)
			}
			o := scoreOut{PromptIDs: r.PromptIDs, CompletionIDs: r.CompletionIDs}
			if r.Prompt != nil || r.Completion != nil {
				if r.Prompt == nil || r.Completion == nil {
					return fmt.Errorf("%s:%d: need both \"prompt\" and \"completion\"", *dataPath, line)
				}
				if tok == nil {
					if tok, err = tokenize.Load(*base); err != nil {
						return err
					}
					if *chat {
						if tmpl, err = tok.ChatTemplate(*template); err != nil {
							return err
						}
					}
				}
				if *chat {
					ids, _, err := tok.EncodeChat(tmpl, []tokenize.Message{{Role: "user", Content: *r.Prompt}}, true)
					if err != nil {
						return fmt.Errorf("%s:%d: %w", *dataPath, line, err)
					}
					o.PromptIDs = ids
				} else {
					o.PromptIDs = tok.Encode(*r.Prompt)
				}
				o.CompletionIDs = tok.Encode(*r.Completion)
			}
			if len(o.PromptIDs) == 0 {
				return fmt.Errorf("%s:%d: the prompt is empty: the first completion token needs context", *dataPath, line)
			}
			if len(o.CompletionIDs) == 0 {
				return fmt.Errorf("%s:%d: the completion is empty", *dataPath, line)
			}
			toks := append(append([]int{}, o.PromptIDs...), o.CompletionIDs...)
			for _, t := range toks {
				if t < 0 || t >= m.Config.VocabSize {
					return fmt.Errorf("%s:%d: token id %d outside the model's vocabulary [0,%d)", *dataPath, line, t, m.Config.VocabSize)
				}
			}
			outs = append(outs, o)
			seqs = append(seqs, model.Sequence{Tokens: toks, From: len(o.PromptIDs)})
			if len(seqs) == scoreGroup {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("%s: %w", *dataPath, err)
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
func addComputeFlag(fs *flag.FlagSet) *string {
	return fs.String("compute", "f32", "matmul precision of the forward pass: f32, bf16 (activations rounded to bfloat16, float32 accumulation, as PyTorch autocast; about 2× faster with AVX512_BF16), or auto (bf16 where the CPU has AVX512_BF16)")
}

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
