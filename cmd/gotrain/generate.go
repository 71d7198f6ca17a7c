package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/internal/inputfile"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/tokenize"
)

// stopList collects repeated --stop flags.
type stopList []string

func (s *stopList) String() string { return strings.Join(*s, ",") }

func (s *stopList) Set(v string) error {
	if v == "" {
		return fmt.Errorf("empty stop string")
	}
	*s = append(*s, v)
	return nil
}

func runGenerate(args []string) error {
	return generate(args, os.Stdout)
}

// generate runs `gotrain generate`, writing the completion (or JSONL with
// --data) to stdout.
func generate(args []string, stdout io.Writer) error {
	fs := newFlags("generate", "--base DIR (--prompt TEXT | --data FILE.jsonl) [--adapter DIR] [--chat] [--temperature 0.7] [--top-p 0.9] [--top-k 0] [--seed 1] [--max-new-tokens 256] [--stop STR]...")
	base := fs.String("base", "", "base model: a directory, a Hugging Face repo id ORG/NAME[@REV] or an alias (qwen2.5-14b, llama3-8b, ...)")
	adapterDir := fs.String("adapter", "", "PEFT LoRA adapter directory")
	prompt := fs.String("prompt", "", "prompt text; the completion is streamed to stdout")
	dataPath := fs.String("data", "", `input JSONL of {"prompt": ...}; writes JSONL {"prompt", "completion"}`)
	outPath := fs.String("out", "", "output JSONL for --data (default stdout)")
	chat := fs.Bool("chat", false, "wrap the prompt in the model's chat template as a user turn (with the generation prompt)")
	chatf := addChatFlags(fs, tokenize.ChatTemplateNames+" (implies --chat)")
	temperature := fs.Float64("temperature", 0.7, "sampling temperature (0: greedy)")
	topP := fs.Float64("top-p", 0.9, "nucleus: keep the most likely tokens up to this probability mass (1: all)")
	topK := fs.Int("top-k", 0, "keep only the k most likely tokens (0: all)")
	seed := fs.Uint64("seed", 1, "sampling seed (each --data line gets its own stream)")
	maxLine := addMaxLineFlag(fs)
	maxNew := fs.Int("max-new-tokens", 256, "most tokens generated per prompt")
	var stops stopList
	fs.Var(&stops, "stop", "stop when the completion contains this string (not printed); repeatable")
	quantize := addQuantizeFlag(fs)
	compute := addComputeFlag(fs)
	pack := addPackFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case *base == "":
		return fmt.Errorf("--base is required")
	case (*prompt == "") == (*dataPath == ""):
		return fmt.Errorf("give exactly one of --prompt and --data")
	case *outPath != "" && *dataPath == "":
		return fmt.Errorf("--out goes with --data (--prompt streams to stdout)")
	}
	if err := resolveFlags(base, adapterDir); err != nil {
		return err
	}
	if err := checkOutputs([]flagPath{{"out", *outPath}}, []flagPath{{"base", *base}, {"adapter", *adapterDir}, {"data", *dataPath}}); err != nil {
		return err
	}
	var in []string
	if *dataPath != "" {
		var err error
		if in, err = readPrompts(*dataPath, *maxLine); err != nil {
			return err
		}
	}
	m, ad, err := loadModel(*base, *adapterDir, *quantize, *compute, *pack)
	if err != nil {
		return err
	}
	defer m.Close()
	tok, err := loadBaseTokenizer(*base)
	if err != nil {
		return err
	}
	var tmpl *tokenize.Template
	if *chat || *chatf.template != "" {
		if tmpl, err = chatf.load(tok); err != nil {
			return err
		}
	}
	g := generator{m: m, ad: ad, tok: tok, tmpl: tmpl, stops: stops,
		s: model.Sampling{Temperature: *temperature, TopP: *topP, TopK: *topK, MaxNewTokens: *maxNew, Stop: tok.EOS()}}
	began := time.Now()
	defer func() {
		took := time.Since(began)
		fmt.Fprintf(os.Stderr, "generated %d tokens in %s (%.1f tokens/s)\n", g.tokens, took.Round(time.Millisecond), float64(g.tokens)/took.Seconds())
	}()
	if *dataPath == "" {
		w := bufio.NewWriter(stdout)
		_, err := g.run(*prompt, rand.New(rand.NewPCG(*seed, 0)), w)
		if err == nil {
			_, err = w.WriteString("\n")
		}
		if ferr := w.Flush(); err == nil {
			err = ferr
		}
		return err
	}
	return writeOutputTo(stdout, *outPath, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for i, p := range in {
			out, err := g.run(p, rand.New(rand.NewPCG(*seed, uint64(i))), nil)
			if err != nil {
				return fmt.Errorf("%s: prompt %d: %w", *dataPath, i+1, err)
			}
			rec := struct {
				Prompt     string `json:"prompt"`
				Completion string `json:"completion"`
			}{p, out}
			if err := enc.Encode(&rec); err != nil {
				return err
			}
			if f, ok := w.(interface{ Flush() error }); ok {
				f.Flush() // a line at a time, so a long run shows progress
			}
		}
		return nil
	})
}

// writeOutputTo is writeOutput with stdout replaceable (for tests).
func writeOutputTo(stdout io.Writer, path string, write func(io.Writer) error) error {
	if path != "" {
		return writeOutput(path, write)
	}
	w := bufio.NewWriter(stdout)
	err := write(w)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	return err
}

// readPrompts reads the "prompt" of every line of a JSONL file.
func readPrompts(path string, maxLine int) ([]string, error) {
	f, err := inputfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var out []string
	for line := 1; ; line++ {
		b, long, err := data.ReadLine(br, maxLine)
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if long {
			return nil, fmt.Errorf("%s:%d: %w", path, line, data.LineTooLong(maxLine))
		}
		if len(bytes.TrimSpace(b)) == 0 {
			if err == io.EOF {
				break
			}
			continue
		}
		var r struct {
			Prompt *string `json:"prompt"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s:%d: invalid JSON: %w", path, line, err)
		}
		if r.Prompt == nil || *r.Prompt == "" {
			return nil, fmt.Errorf("%s:%d: no \"prompt\" (or it is empty)", path, line)
		}
		out = append(out, *r.Prompt)
		if err == io.EOF {
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no prompts", path)
	}
	return out, nil
}

// generator decodes completions of prompts with one model and settings.
type generator struct {
	m     *model.Model
	ad    *model.Adapter
	tok   *tokenize.Tokenizer
	tmpl  *tokenize.Template // nil: the prompt as plain text
	s     model.Sampling
	stops []string
	// Tokens counts the tokens generated so far (stop tokens excluded).
	tokens int
}

// run generates a completion of prompt, streaming its text to w (if not
// nil) as it is decoded, and returns the whole completion (up to a stop
// string, EOS or the token limit).
func (g *generator) run(prompt string, rng *rand.Rand, w io.Writer) (string, error) {
	var ids []int
	if g.tmpl != nil {
		var err error
		if ids, _, err = g.tok.EncodeChat(g.tmpl, []tokenize.Message{{Role: "user", Content: prompt}}, true); err != nil {
			return "", err
		}
	} else {
		ids = g.tok.EncodeSpecial(prompt) // with the BOS a base Llama expects
		if err := g.tok.Err(); err != nil {
			return "", err
		}
	}
	st := tokenize.NewStopWriter(w, g.stops)
	first := true
	gen, err := g.m.Generate(ids, g.ad, g.s, rng, func(id int) bool {
		piece := g.tok.DecodeNext(id, first)
		first = false
		return st.Add(piece)
	})
	g.tokens += len(gen)
	if ferr := st.Finish(); err == nil {
		err = ferr
	}
	return st.Text(), err
}
