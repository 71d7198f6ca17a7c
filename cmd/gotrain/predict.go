package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/predict"
	"github.com/gotrain/gotrain/tokenize"
)

func runPredict(args []string) error {
	fs := newFlags("predict", "--base DIR --data FILE [--adapter DIR] [--out FILE] [flags]")
	base := fs.String("base", "", "base model: a directory, a Hugging Face repo id ORG/NAME[@REV] or an alias (qwen2.5-14b, llama3-8b, ...)")
	adapterDir := fs.String("adapter", "", "PEFT LoRA adapter directory")
	dataPath := fs.String("data", "", "rows to predict: alpaca or SocSci210 JSONL (.gz ok)")
	outPath := fs.String("out", "", "output JSONL: every input field plus options, probs, prediction (default stdout)")
	noChat := fs.Bool("no-chat", false, "plain prompt text instead of the chat template (as trained)")
	chat := addChatFlags(fs, tokenize.ChatTemplateNames)
	samples := fs.Int("samples", 0, "answers sampled for rows without enumerable options (0: their exact numeric distribution)")
	numericEps := fs.Float64("numeric-eps", predict.DefaultNumericEps, "numeric answers: stop expanding the tree of number tokens when the unexpanded mass is below this share of the numeric mass")
	numericNodes := fs.Int("numeric-nodes", predict.DefaultNumericNodes, "numeric answers: most tree nodes run through the model per row")
	temperature := fs.Float64("temperature", 1, "sampling temperature")
	topP := fs.Float64("top-p", 1, "sampling nucleus mass")
	seed := fs.Uint64("seed", 1, "sampling seed")
	shard := fs.String("shard", "", "i/n: predict only shard i (0-based) of n; shards split by study and condition")
	maxOptions := fs.Int("max-options", data.DefaultMaxOptions, "a stated range with more answers than this is an open numeric answer (its numeric distribution, or sampled)")
	skipBad := fs.Bool("skip-bad", false, "skip bad input lines instead of failing")
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
	if *numericEps <= 0 || *numericEps >= 1 || *numericNodes < 1 || *samples < 0 {
		return fmt.Errorf("want 0 < --numeric-eps < 1, --numeric-nodes ≥ 1 and --samples ≥ 0")
	}
	if err := resolveFlags(base, adapterDir); err != nil {
		return err
	}
	if err := checkOutputs([]flagPath{{"out", *outPath}}, []flagPath{{"base", *base}, {"adapter", *adapterDir}, {"data", *dataPath}}); err != nil {
		return err
	}
	shardI, shardN, err := parseShard(*shard)
	if err != nil {
		return err
	}
	var rep data.ReadReport
	rows, err := data.ReadSFT(*dataPath, data.ReadOptions{SkipBad: *skipBad, Report: &rep, MaxLineBytes: *maxLine})
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
	enc, err := newEncoder(*base, *noChat, chat, 0)
	if err != nil {
		return err
	}
	p := predict.New(m, ad, enc, predict.Sampling{Samples: *samples, Temperature: *temperature, TopP: *topP, Seed: *seed, MaxOptions: *maxOptions,
		NumericEps: *numericEps, NumericNodes: *numericNodes})
	began := time.Now()
	results, err := p.Rows(rows, nil)
	if err != nil {
		return err
	}
	took := time.Since(began)
	err = writeOutput(*outPath, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for i := range rows {
			if err := enc.Encode(predict.Record(&rows[i], &results[i])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "predicted %d rows in %s (%.1f rows/s); prompt tokens: %d computed, %d reused from the KV cache\n",
		len(rows), took.Round(time.Millisecond), float64(len(rows))/took.Seconds(), p.Computed, p.Reused)
	fmt.Fprintln(os.Stderr, methodSummary(results))
	return nil
}

// methodSummary counts rows by method, rows without a prediction by
// reason, and rows by the answer-format form their options were read by:
// "by method: options 2688, numeric 90, sampled 0, none 2 (2 the model
// gives no numeric answer any probability)\nby answer format: list 202
// numeric 18 range 2560".
func methodSummary(res []predict.Result) string {
	n := predict.CountMethods(res)
	var b strings.Builder
	b.WriteString("by method:")
	for i, m := range data.Methods {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s %d", m, n[m])
	}
	reasons := map[string]int{}
	for _, r := range res {
		if r.Method == "none" {
			reasons[r.Reason]++
		}
	}
	keys := make([]string, 0, len(reasons))
	for k := range reasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		sep := "; "
		if i == 0 {
			sep = " ("
		}
		fmt.Fprintf(&b, "%s%d %s", sep, reasons[k], k)
	}
	if len(keys) > 0 {
		b.WriteByte(')')
	}
	// The answer-format forms the questions were read by, so that a new
	// phrasing the parser does not know shows as "none".
	forms := map[string]int{}
	for _, r := range res {
		f := r.Options.Form
		if f == "" {
			f = "none"
		}
		forms[f]++
	}
	keys = keys[:0]
	for k := range forms {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("\nby answer format:")
	for _, k := range keys {
		fmt.Fprintf(&b, " %s %d", k, forms[k])
	}
	return b.String()
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
