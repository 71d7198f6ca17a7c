package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/predict"
)

func runPredict(args []string) error {
	fs := newFlags("predict", "--base DIR --data FILE [--adapter DIR] [--out FILE] [flags]")
	base := fs.String("base", "", "base model: a directory, a Hugging Face repo id ORG/NAME[@REV] or an alias (qwen2.5-14b, llama3-8b, ...)")
	adapterDir := fs.String("adapter", "", "PEFT LoRA adapter directory")
	dataPath := fs.String("data", "", "rows to predict: alpaca or SocSci210 JSONL (.gz ok)")
	outPath := fs.String("out", "", "output JSONL: every input field plus options, probs, prediction (default stdout)")
	noChat := fs.Bool("no-chat", false, "plain prompt text instead of the chat template (as trained)")
	template := fs.String("template", "", "chat template: qwen2.5|qwen3|llama3|llama3.1 (default: detect)")
	samples := fs.Int("samples", 0, "answers sampled for rows without enumerable options")
	temperature := fs.Float64("temperature", 1, "sampling temperature")
	topP := fs.Float64("top-p", 1, "sampling nucleus mass")
	seed := fs.Uint64("seed", 1, "sampling seed")
	shard := fs.String("shard", "", "i/n: predict only shard i (0-based) of n; shards split by study and condition")
	maxOptions := fs.Int("max-options", 101, "rows with more answer options than this (open numeric ranges) are sampled instead of scored exactly")
	skipBad := fs.Bool("skip-bad", false, "skip bad input lines instead of failing")
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
	shardI, shardN, err := parseShard(*shard)
	if err != nil {
		return err
	}
	var rep data.ReadReport
	rows, err := data.ReadSFT(*dataPath, data.ReadOptions{SkipBad: *skipBad, Report: &rep})
	if err != nil {
		return err
	}
	for _, e := range rep.Skipped {
		fmt.Fprintf(os.Stderr, "skipped %v\n", e)
	}
	if shardN > 1 {
		rows = shardRows(rows, shardI, shardN)
	}
	m, ad, err := loadModel(*base, *adapterDir, *quantize, *compute, *pack)
	if err != nil {
		return err
	}
	defer m.Close()
	enc, err := newEncoder(*base, *noChat, *template, 0)
	if err != nil {
		return err
	}
	p := predict.New(m, ad, enc, predict.Sampling{Samples: *samples, Temperature: *temperature, TopP: *topP, Seed: *seed, MaxOptions: *maxOptions})
	began := time.Now()
	results, err := p.Rows(rows, nil)
	if err != nil {
		return err
	}
	took := time.Since(began)
	sampled := 0
	err = writeOutput(*outPath, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for i := range rows {
			if results[i].Method == "sampled" {
				sampled++
			}
			if err := enc.Encode(predict.Record(&rows[i], &results[i])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "predicted %d rows in %s (%.1f rows/s); %d without enumerable options (sampled %d answers each); prompt tokens: %d computed, %d reused from the KV cache\n",
		len(rows), took.Round(time.Millisecond), float64(len(rows))/took.Seconds(), sampled, *samples, p.Computed, p.Reused)
	return nil
}

// parseShard parses "i/n".
func parseShard(s string) (i, n int, err error) {
	if s == "" {
		return 0, 1, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("--shard %q: want i/n with 0 ≤ i < n", s)
	}
	return i, n, nil
}

// shardRows keeps the rows of shard i of n. Rows go to shards by a hash of
// their study and condition, so rows that share a prompt prefix stay together
// and every shard is the same whatever machine computes it.
func shardRows(rows []data.Example, i, n int) []data.Example {
	var out []data.Example
	for _, r := range rows {
		h := fnv.New32a()
		fmt.Fprintf(h, "%s/%d", r.StudyID, r.ConditionNum)
		if int(h.Sum32()%uint32(n)) == i {
			out = append(out, r)
		}
	}
	return out
}
