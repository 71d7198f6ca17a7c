package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/kernels"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/serve"
	"github.com/gotrain/gotrain/tokenize"
)

// benchServe is `gotrain bench serve`: N concurrent HTTP clients send
// SocSci210 sample rows to /v1/predict of an in-process server on a
// loopback port; for each client count it reports rows/s, request latency
// (p50, p99) and the resident memory as the requests go by. Every client
// count gets a fresh server (an empty prefix cache) and the same requests,
// so the runs differ only in concurrency.
func benchServe(args []string) error {
	fs := newFlags("bench serve", "[--base DIR | --size 0.5b] [--clients 1,8] [--requests 64] [--rows 1]")
	base := fs.String("base", "", "model directory (default: a random Qwen2 checkpoint of --size)")
	size := fs.String("size", "0.5b", "size of the random checkpoint")
	clientList := fs.String("clients", "1,8", "comma-separated numbers of concurrent clients, one run each")
	requests := fs.Int("requests", 64, "requests per run")
	rowsPer := fs.Int("rows", 1, "rows per request")
	pool := fs.Int("pool", 400, "distinct sample rows the requests draw from (shuffled; several studies)")
	order := fs.String("order", "shuffled", "shuffled: the pool's rows in random order, no two of a participant; participant: each pool row's persona answers its study's outcome questions under its condition, in a run (as real studies' files come)")
	perPerson := fs.Int("outcomes", 6, "with --order participant: outcome questions a participant answers (at most)")
	batchTokens := fs.Int("batch-tokens", serve.DefaultLimits.BatchTokens, "the server's --batch-tokens")
	prefixMiB := fs.Int64("prefix-cache", 1024, "the server's --prefix-cache (MiB)")
	lanes := fs.Int("lanes", 0, "the server's --lanes")
	threads := fs.Int("threads", 0, "worker threads (0: all cores)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the runs here")
	compute := addComputeFlag(fs)
	pack := addPackFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *threads > 0 {
		kernels.SetThreads(*threads)
	}
	var counts []int
	for _, s := range strings.Split(*clientList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("--clients %q: want numbers ≥ 1", *clientList)
		}
		counts = append(counts, n)
	}
	if *requests < 1 || *rowsPer < 1 {
		return fmt.Errorf("--requests and --rows must be ≥ 1")
	}
	if err := resolveFlags(base); err != nil {
		return err
	}
	dir := *base
	if dir == "" {
		var err error
		if dir, err = benchCheckpoint(model.Qwen2, *size, "bf16"); err != nil {
			return err
		}
	}
	m, err := model.Load(dir)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := setCompute(m, *compute); err != nil {
		return err
	}
	if *pack {
		m.PackWeights()
	}
	tok, err := tokenize.Load(dir)
	if err != nil {
		if tok, err = tokenize.LoadBundled(bundledTokenizer(m.Config.Arch)); err != nil {
			return err
		}
	}
	tmpl, err := tok.ChatTemplate("")
	if err != nil {
		return err
	}
	// the sample rows as the JSON objects a client sends, shuffled so that
	// requests mix studies and personas
	rows, err := data.SampleRows()
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 1))
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	all := rows
	rows = rows[:min(*pool, len(rows))]
	switch *order {
	case "shuffled":
	case "participant":
		if *perPerson < 1 {
			return fmt.Errorf("--outcomes must be ≥ 1")
		}
		rows = participantOrder(rows, all, *perPerson)
	default:
		return fmt.Errorf("--order %q: want shuffled or participant", *order)
	}
	bodies := make([][]byte, *requests)
	for r := range bodies {
		recs := make([]map[string]any, *rowsPer)
		for k := range recs {
			recs[k] = rows[(r**rowsPer+k)%len(rows)].Record()
		}
		if bodies[r], err = json.Marshal(map[string]any{"model": "bench", "rows": recs}); err != nil {
			return err
		}
	}
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	newServer := func() (*serve.Server, error) {
		return serve.New(serve.Config{Model: m, Name: "bench", Tok: tok, Template: tmpl, Encoder: &data.Encoder{Tok: tok, Template: tmpl},
			Limits: serve.Limits{BatchTokens: *batchTokens, Lanes: *lanes}, PrefixCacheBytes: *prefixMiB << 20})
	}
	// a warm-up run, not reported: the first run paid for faulting in the
	// weights and growing the buffers (1 client 10–25% slower than in its
	// second run of the same invocation)
	warm, err := newServer()
	if err != nil {
		return err
	}
	if _, err := benchServeRun(warm, 2, bodies[len(bodies)-min(len(bodies), 16):]); err != nil {
		return err
	}
	var runs []map[string]any
	for _, n := range counts {
		srv, err := newServer()
		if err != nil {
			return err
		}
		res, err := benchServeRun(srv, n, bodies)
		if err != nil {
			return err
		}
		for k, v := range batchStats(srv) {
			res[k] = v
		}
		res["rows"] = *requests * *rowsPer
		res["rows_per_s"] = float64(*requests**rowsPer) / res["seconds"].(float64)
		// on a shared machine: the rate with every thread on a core
		res["cpu_rows_per_s"] = perCPU(float64(*requests**rowsPer), res["cpu_seconds"].(float64), kernels.Threads())
		runs = append(runs, res)
	}
	out := map[string]any{"bench": "serve", "model": dir, "requests": *requests, "rows_per_request": *rowsPer,
		"threads": kernels.Threads(), "level": kernels.Level(), "compute": m.Compute().String(), "pack_weights": *pack, "lanes": *lanes, "order": *order, "runs": runs, "peak_rss_gib": peakRSSGiB()}
	if len(runs) > 1 {
		// The median rate of the last run's client count over the first's:
		// with --clients 1,8,1,8 each count's runs alternate, so drift of
		// the machine's load (and the first run's colder caches) does not
		// decide the ratio as a last-over-first run would.
		first, last := runs[0]["clients"], runs[len(runs)-1]["clients"]
		rate := func(clients any, key string) float64 {
			var v []float64
			for _, r := range runs {
				if r["clients"] == clients {
					v = append(v, r[key].(float64))
				}
			}
			return median(v)
		}
		out["speedup"] = rate(last, "rows_per_s") / rate(first, "rows_per_s")
		out["cpu_speedup"] = rate(last, "cpu_rows_per_s") / rate(first, "cpu_rows_per_s")
	}
	return printJSON(out)
}

// benchServeRun serves srv on a loopback port and sends bodies from n
// concurrent clients, each taking the next request when its previous one is
// answered.
func benchServeRun(srv *serve.Server, n int, bodies [][]byte) (map[string]any, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	defer func() { stop(); <-served }()
	url := "http://" + l.Addr().String() + "/v1/predict"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}, Timeout: 30 * time.Minute}
	send := func(body []byte) error {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
		}
		return nil
	}
	// memory over the run: sampled after every tenth of the requests
	runtime.GC()
	rss := []float64{rssMiB()}
	var next, done atomic.Int64
	lat := make([]float64, len(bodies))
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	began, cpu0 := time.Now(), cpuSeconds()
	for c := 0; c < n; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				t0 := time.Now()
				if err := send(bodies[i]); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				lat[i] = time.Since(t0).Seconds()
				if d := done.Add(1); d%int64(max(1, len(bodies)/10)) == 0 {
					mu.Lock()
					rss = append(rss, rssMiB())
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	secs, cpu := time.Since(began).Seconds(), cpuSeconds()-cpu0
	if firstErr != nil {
		return nil, firstErr
	}
	sort.Float64s(lat)
	pct := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	for i := range rss {
		rss[i] = float64(int(rss[i]*10)) / 10
	}
	// cores: the CPU the process had over the run (at most the threads); the
	// load average says how much other work shared the machine
	return map[string]any{"clients": n, "seconds": secs, "cpu_seconds": cpu, "cores": cpu / secs, "load1": loadAverage(),
		"p50_s": pct(0.5), "p99_s": pct(0.99), "rss_mib": rss}, nil
}

// batchStats reads the server's batch counters from its /metrics: jobs per
// forward pass and the prompt tokens computed and taken from the prefix
// cache.
func batchStats(srv *serve.Server) map[string]any {
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	v := map[string]float64{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if name, val, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			v[name], _ = strconv.ParseFloat(val, 64)
		}
	}
	out := map[string]any{"batches": v["gotrain_batches_total"], "prompt_tokens_computed": v["gotrain_prompt_tokens_computed_total"],
		"prompt_tokens_cached": v["gotrain_prompt_tokens_cached_total"]}
	if v["gotrain_batches_total"] > 0 {
		out["jobs_per_batch"] = v["gotrain_batch_rows_total"] / v["gotrain_batches_total"]
	}
	return out
}

// participantOrder lays rows out as a real study's file has them: in
// SocSci210 every participant answers each of the study's outcome questions
// (task_num) under their one condition, and a row's prompt is their persona
// then the stimulus (the vignette, then the question), so a participant's
// rows share the persona, and the vignette when the study shows one per
// condition. The 1% sample holds about one row per participant (161 of its
// 2,610 study × persona pairs have two or three), so the runs are rebuilt:
// each row of people keeps its persona and answers, in a run, up to per of
// the distinct outcome questions that donors asked under the same study and
// condition, each with the stimulus text that donor row had.
func participantOrder(people, donors []data.Example, per int) []data.Example {
	type cell struct {
		study string
		cond  int
	}
	stimuli := map[cell][]string{} // "Scenario: ..." texts, one a distinct question
	seen := map[cell]map[string]bool{}
	for _, d := range donors {
		_, stim, ok := strings.Cut(d.Input, "\n\nScenario:")
		if !ok {
			continue
		}
		c := cell{d.StudyID, d.ConditionNum}
		_, q, _ := strings.Cut(stim, "and then were asked")
		if seen[c] == nil {
			seen[c] = map[string]bool{}
		}
		if !seen[c][q] {
			seen[c][q] = true
			stimuli[c] = append(stimuli[c], stim)
		}
	}
	var out []data.Example
	for _, p := range people {
		persona, own, ok := strings.Cut(p.Input, "\n\nScenario:")
		if !ok {
			out = append(out, p)
			continue
		}
		// the participant's own row first, then the cell's other questions
		stims := []string{own}
		for _, st := range stimuli[cell{p.StudyID, p.ConditionNum}] {
			if len(stims) == per {
				break
			}
			if st != own {
				stims = append(stims, st)
			}
		}
		for _, st := range stims {
			r := p
			r.Input = persona + "\n\nScenario:" + st
			out = append(out, r)
		}
	}
	return out
}
