package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gotrain/gotrain/kernels"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/serve"
	"github.com/gotrain/gotrain/tokenize"
)

// adapterList collects repeated --adapter NAME=DIR flags.
type adapterList []string

func (a *adapterList) String() string { return strings.Join(*a, ",") }

func (a *adapterList) Set(v string) error {
	if v == "" {
		return fmt.Errorf("empty adapter")
	}
	*a = append(*a, v)
	return nil
}

func runServe(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveUntil(ctx, args, nil)
}

// serveUntil runs `gotrain serve` until ctx is done (SIGTERM, SIGINT), then
// drains the requests in flight. ready, if not nil, gets the address
// listened on.
func serveUntil(ctx context.Context, args []string, ready func(addr string)) error {
	fs := newFlags("serve", "--base DIR|REPO|alias [--adapter NAME=DIR]... [--addr 127.0.0.1:8080] [--api-key KEY] [flags]")
	base := fs.String("base", "", "base model: a directory, a Hugging Face repo id ORG/NAME[@REV] or an alias (qwen2.5-14b, llama3-8b, ...)")
	var adapters adapterList
	fs.Var(&adapters, "adapter", "PEFT LoRA adapter served as NAME (the request's \"model\"): NAME=DIR (or DIR, named by its directory); repeatable")
	name := fs.String("name", "", "the base model's name in requests (default: --base as given)")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (loopback only unless you give another; port 0: any free port)")
	apiKey := fs.String("api-key", "", "demand Authorization: Bearer KEY (default $GOTRAIN_API_KEY; the flag shows in ps, the variable does not)")
	noChat := fs.Bool("no-chat", false, "predict rows as plain prompt text instead of the chat template (as trained)")
	chat := addChatFlags(fs, tokenize.ChatTemplateNames)
	def := serve.DefaultLimits
	maxBody := fs.Int64("max-body", def.BodyBytes, "largest request body in bytes")
	maxRows := fs.Int("max-rows", def.Rows, "most rows (predict), items (score) or personas × conditions (simulate) a request")
	maxTokens := fs.Int("max-tokens", def.Tokens, "most tokens a request (prompts, answers and generated tokens)")
	maxNew := fs.Int("max-new-tokens", def.NewTokens, "largest max_tokens of a completion")
	timeout := fs.Duration("timeout", def.Timeout, "longest time a request may take")
	batchTokens := fs.Int("batch-tokens", def.BatchTokens, "tokens of concurrent predict rows batched into one forward pass")
	prefixMiB := fs.Int64("prefix-cache", 1024, "MiB of prompt-prefix keys and values kept per model")
	lanes := fs.Int("lanes", 0, "batches computed at once, sharing the cores (0: one a thread)")
	quiet := fs.Bool("quiet", false, "do not log requests on stderr")
	compute := addComputeFlag(fs)
	quantize := addQuantizeFlag(fs)
	pack := addPackFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *base == "" {
		return fmt.Errorf("--base is required")
	}
	if *apiKey == "" {
		*apiKey = os.Getenv("GOTRAIN_API_KEY")
	}
	if *name == "" {
		*name = *base
	}
	type named struct{ name, dir string }
	var ads []named
	for _, a := range adapters {
		n, dir, ok := strings.Cut(a, "=")
		if !ok {
			n, dir = filepath.Base(filepath.Clean(a)), a
		}
		if n == "" || dir == "" {
			return fmt.Errorf("--adapter %q: want NAME=DIR", a)
		}
		ads = append(ads, named{n, dir})
	}
	if *prefixMiB < 1 || *prefixMiB > 1<<30 {
		return fmt.Errorf("--prefix-cache %d: want MiB from 1 (next to nothing kept) to 2^30", *prefixMiB)
	}
	if err := resolveFlags(base); err != nil {
		return err
	}
	for i := range ads {
		if err := resolveFlags(&ads[i].dir); err != nil {
			return err
		}
	}
	m, _, err := loadModel(*base, "", *quantize, *compute, *pack)
	if err != nil {
		return err
	}
	defer m.Close()
	// each model's prefix cache fills up to its bound as requests come, and
	// each lane's KV cache to a batch's keys and values (grown by doubling:
	// up to twice --batch-tokens rows): what is available once the weights
	// are loaded must hold them all
	nl := *lanes
	if nl <= 0 {
		nl = kernels.Threads()
	}
	mc := m.Config
	batchKV := int64(nl) * 2 * int64(*batchTokens) * int64(2*mc.Layers*mc.KVHeads*mc.HeadDim*4)
	if need, avail := int64(1+len(ads))*(*prefixMiB<<20)+batchKV, model.Available(); avail >= 0 && need > avail && !memCheckOff() {
		return fmt.Errorf("--prefix-cache %d MiB for each of %d models and the KV caches of %d --lanes (--batch-tokens %d) need %s, %s is available (lower --prefix-cache, --lanes or --batch-tokens, or set GOTRAIN_NO_MEMCHECK=1 to run anyway)",
			*prefixMiB, 1+len(ads), nl, *batchTokens, model.FormatBytes(need), model.FormatBytes(avail))
	}
	cfg := serve.Config{Model: m, Name: *name, APIKey: *apiKey,
		Limits:           serve.Limits{BodyBytes: *maxBody, Rows: *maxRows, Tokens: *maxTokens, NewTokens: *maxNew, Timeout: *timeout, BatchTokens: *batchTokens, Lanes: *lanes},
		PrefixCacheBytes: *prefixMiB << 20}
	for _, a := range ads {
		ad, err := m.LoadAdapter(a.dir)
		if err != nil {
			return fmt.Errorf("--adapter %s=%s: %w", a.name, a.dir, err)
		}
		cfg.Adapter = append(cfg.Adapter, serve.Adapter{Name: a.name, Adapter: ad})
	}
	if cfg.Encoder, err = newEncoder(*base, *noChat, chat, 0); err != nil {
		return err
	}
	cfg.Tok = cfg.Encoder.Tok
	cfg.Template = cfg.Encoder.Template
	if cfg.Template == nil {
		// chat completions still use the model's template when it has one
		if cfg.Template, err = chat.load(cfg.Tok); err != nil {
			cfg.Template = nil
			fmt.Fprintf(os.Stderr, "serve: no chat template (%v): /v1/chat/completions will answer 400\n", err)
		}
	}
	if !*quiet {
		cfg.Log = log.New(os.Stderr, "", log.LstdFlags)
	}
	srv, err := serve.New(cfg)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		srv.Close()
		return fmt.Errorf("--addr %s: %w", *addr, err)
	}
	if host, _, _ := net.SplitHostPort(l.Addr().String()); !net.ParseIP(host).IsLoopback() && *apiKey == "" {
		fmt.Fprintf(os.Stderr, "serve: warning: listening on %s, reachable from other machines, without --api-key\n", l.Addr())
	}
	names := []string{*name}
	for _, a := range ads {
		names = append(names, a.name)
	}
	fmt.Fprintf(os.Stderr, "serve: models %s on http://%s, %s matmuls (Ctrl-C or SIGTERM stops after the requests in flight)\n", strings.Join(names, ", "), l.Addr(), m.Compute())
	if m.Compute() == kernels.ComputeF32 && kernels.HasBF16Compute() && m.Embed.DType == kernels.BF16 {
		// f32 stays the default for /v1/predict = gotrain predict to 1e-6 (bf16's differ with batching)
		fmt.Fprintf(os.Stderr, "serve: this CPU has AVX512_BF16: --compute bf16 multiplies about twice as fast (8 clients: ~1.5× the rows of f32 on the bench shape; probabilities within ~3e-3 of f32's, and /v1/predict within ~5e-4 of predict --compute bf16 rather than 1e-6)\n")
	}
	if ready != nil {
		ready(l.Addr().String())
	}
	began := time.Now()
	err = srv.Serve(ctx, l)
	fmt.Fprintf(os.Stderr, "serve: stopped after %s\n", time.Since(began).Round(time.Second))
	return err
}
