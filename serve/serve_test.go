package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/kernels"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/predict"
	"github.com/gotrain/gotrain/tokenize"
)

// fixture is a tiny random model with the real Qwen2.5 tokenizer, written
// once per test binary.
var fixture struct {
	once sync.Once
	dir  string
	err  error
}

func tinyModel(t testing.TB) string {
	t.Helper()
	fixture.once.Do(func() {
		fixture.dir, fixture.err = os.MkdirTemp("", "gotrain-serve-test")
		if fixture.err == nil {
			_, fixture.err = model.InitCheckpoint(fixture.dir, model.InitOptions{Arch: model.Qwen2, Size: "tiny", DType: "bf16", Seed: 3})
		}
		if fixture.err == nil {
			fixture.err = tokenize.WriteBundled(fixture.dir, "qwen2.5")
		}
	})
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return fixture.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// testServer is a server on a free loopback port, stopped at the end of the test.
type testServer struct {
	url  string
	cfg  Config
	stop func() error
}

// testConfig loads the tiny model (closed when tb ends) with an adapter
// "tuned" beside the base "tiny".
func testConfig(tb testing.TB, edit func(*Config)) Config {
	tb.Helper()
	dir := tinyModel(tb)
	m, err := model.Load(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	tok, err := tokenize.Load(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl, err := tok.ChatTemplate("")
	if err != nil {
		tb.Fatal(err)
	}
	ad, err := m.NewAdapter(model.AdapterConfig{R: 4, LoraAlpha: 8, TargetModules: []string{"q_proj", "v_proj"}}, 5)
	if err != nil {
		tb.Fatal(err)
	}
	randomize(ad)
	cfg := Config{Model: m, Name: "tiny", Adapter: []Adapter{{"tuned", ad}}, Tok: tok, Template: tmpl,
		Encoder: &data.Encoder{Tok: tok, Template: tmpl}, Limits: Limits{Timeout: time.Minute}}
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}

func startServer(t *testing.T, edit func(*Config)) *testServer {
	t.Helper()
	cfg := testConfig(t, edit)
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	var once sync.Once
	var serr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serr = <-done:
			case <-time.After(time.Minute):
				serr = fmt.Errorf("the server did not stop within a minute")
			}
		})
		return serr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return &testServer{url: "http://" + l.Addr().String(), cfg: cfg, stop: stop}
}

// randomize gives an adapter's B matrices values, so that it changes the model.
func randomize(ad *model.Adapter) {
	names, params := ad.Params()
	for i, p := range params {
		if strings.Contains(names[i], "lora_B") {
			for j := range p {
				p[j] = float32(math.Sin(float64(j))) * 0.05
			}
		}
	}
}

var client = &http.Client{Timeout: 2 * time.Minute}

// post sends body (a string is sent as is, anything else as JSON) and
// decodes the JSON answer into out (if not nil).
func (s *testServer) post(t *testing.T, path string, body any, out any, header ...string) int {
	t.Helper()
	var b []byte
	if s, ok := body.(string); ok {
		b = []byte(s)
	} else {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest("POST", s.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, raw)
		}
	}
	return resp.StatusCode
}

func (s *testServer) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := client.Get(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sampleRows reads the committed SocSci210 sample rows as JSON objects.
func sampleRows(t *testing.T, n int) []json.RawMessage {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "data", "testdata", "socsci_sample.expect.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []json.RawMessage
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() && len(rows) < n {
		rows = append(rows, json.RawMessage(append([]byte(nil), sc.Bytes()...)))
	}
	return rows
}

type predictResponse struct {
	Model string           `json:"model"`
	Rows  []map[string]any `json:"rows"`
}

// TestPredictMatchesPredictor: rows predicted by concurrent clients, batched
// together (on one lane or several), get the probabilities the predictor gives them one at a time
// (what gotrain predict writes), with every input field kept, for the base
// model and for an adapter, in float32 and in bf16 compute (the default on
// CPUs with AVX512_BF16; emulated elsewhere).
func TestPredictMatchesPredictor(t *testing.T) {
	// one lane, and more lanes than this machine has threads: batches
	// computed side by side, each on a share of the cores
	for _, c := range []struct {
		lanes   int
		compute kernels.Compute
	}{{1, kernels.ComputeF32}, {3, kernels.ComputeF32}, {3, kernels.ComputeBF16}} {
		t.Run(fmt.Sprintf("lanes=%d/%v", c.lanes, c.compute), func(t *testing.T) { testPredictMatches(t, c.lanes, c.compute) })
	}
}

func testPredictMatches(t *testing.T, lanes int, compute kernels.Compute) {
	s := startServer(t, func(c *Config) { c.Limits.Lanes = lanes; c.Model.SetCompute(compute) })
	raw := sampleRows(t, 24)
	var buf bytes.Buffer
	for _, r := range raw {
		buf.Write(r)
		buf.WriteByte('\n')
	}
	rows, err := data.ReadSFTFrom(&buf, "rows", data.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tiny", "tuned"} {
		var ad *model.Adapter
		if name == "tuned" {
			ad = s.cfg.Adapter[0].Adapter
		}
		want, err := predict.New(s.cfg.Model, ad, s.cfg.Encoder, predict.Sampling{MaxOptions: 101}).Rows(rows, nil)
		if err != nil {
			t.Fatal(err)
		}
		const clients = 6
		got := make([]predictResponse, clients)
		per := len(raw) / clients
		var wg sync.WaitGroup
		codes := make([]int, clients)
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[c] = s.post(t, "/v1/predict", map[string]any{"model": name, "rows": raw[c*per : (c+1)*per]}, &got[c])
			}()
		}
		wg.Wait()
		worst, numeric := 0.0, 0
		for c := 0; c < clients; c++ {
			if codes[c] != 200 || len(got[c].Rows) != per {
				t.Fatalf("%s client %d: status %d, %d rows", name, c, codes[c], len(got[c].Rows))
			}
			for k, row := range got[c].Rows {
				i := c*per + k
				if row["sample_id"] != rows[i].Record()["sample_id"] || row["method"] != want[i].Method {
					t.Errorf("%s row %d: %v %v, want %v %v", name, i, row["sample_id"], row["method"], rows[i].Record()["sample_id"], want[i].Method)
				}
				probs, _ := row["probs"].([]any)
				if len(probs) != len(want[i].Probs) {
					t.Fatalf("%s row %d: %d probs, want %d", name, i, len(probs), len(want[i].Probs))
				}
				for j, p := range probs {
					worst = max(worst, math.Abs(p.(float64)-want[i].Probs[j]))
				}
				// numeric rows, their tree grown through the batcher
				num, _ := row["numeric"].([]any)
				if len(num) != len(want[i].Numeric) {
					t.Fatalf("%s row %d: %d numeric answers, want %d", name, i, len(num), len(want[i].Numeric))
				}
				for j, v := range num {
					vp := v.(map[string]any)
					if vp["value"] != want[i].Numeric[j].Value {
						t.Fatalf("%s row %d: numeric answer %d is %v, want %v", name, i, j, vp["value"], want[i].Numeric[j].Value)
					}
					worst = max(worst, math.Abs(vp["prob"].(float64)-want[i].Numeric[j].Prob))
					numeric++
				}
			}
		}
		// bf16 rounds every matmul's input, which turns the float32
		// summation-order differences of batching (attention's key blocks
		// fall elsewhere in a batch's cache) into an occasional flip of a
		// bfloat16 rounding: differences up to ~5e-4, far below bf16's
		// own distance from float32 (see docs/benchmarks.md, session 4)
		tol := 1e-6
		if compute == kernels.ComputeBF16 {
			tol = 2e-3
		}
		if worst > tol {
			t.Errorf("%s: probabilities differ from the predictor's by up to %g", name, worst)
		}
		t.Logf("%s: largest difference from the predictor %.2g (%d numeric answers among them)", name, worst, numeric)
	}
	_, met := s.get(t, "/metrics")
	for _, want := range []string{`gotrain_requests_total{endpoint="/v1/predict",code="200"} 12`, "gotrain_rows_total 48", `gotrain_prefix_cache_hits_total{model="tiny"}`, "gotrain_queue_depth 0"} {
		if !strings.Contains(met, want) {
			t.Errorf("metrics lack %q:\n%s", want, met)
		}
	}
}

// TestMalformed: every malformed or over-limit request is answered with a
// 4xx and an OpenAI-shaped error body, and the server keeps serving.
func TestMalformed(t *testing.T) {
	s := startServer(t, func(c *Config) {
		c.Limits.BodyBytes = 1 << 16
		c.Limits.Rows = 3
		c.Limits.Tokens = 4000
		c.Limits.NewTokens = 50
	})
	row := sampleRows(t, 1)[0]
	rows := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(row)
		}
		return "[" + b.String() + "]"
	}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"empty body", "POST", "/v1/predict", "", 400},
		{"broken JSON", "POST", "/v1/predict", `{"model": "tiny", "rows": [`, 400},
		{"not an object", "POST", "/v1/predict", `[1, 2]`, 400},
		{"two values", "POST", "/v1/predict", `{"model": "tiny", "rows": []} {}`, 400},
		{"wrong type", "POST", "/v1/predict", `{"model": 7, "rows": []}`, 400},
		{"no model", "POST", "/v1/predict", `{"rows": []}`, 400},
		{"unknown model", "POST", "/v1/predict", `{"model": "gpt-4", "rows": []}`, 404},
		{"rows not an array", "POST", "/v1/predict", `{"model": "tiny", "rows": {"a": 1}}`, 400},
		{"row not an object", "POST", "/v1/predict", `{"model": "tiny", "rows": [1]}`, 400},
		{"row without fields", "POST", "/v1/predict", `{"model": "tiny", "rows": [{"x": 1}]}`, 400},
		{"too many rows", "POST", "/v1/predict", `{"model": "tiny", "rows": ` + rows(4) + `}`, 400},
		{"negative samples", "POST", "/v1/predict", `{"model": "tiny", "rows": [], "samples": -1}`, 400},
		{"body too large", "POST", "/v1/predict", `{"model": "tiny", "rows": [], "pad": "` + strings.Repeat("x", 1<<16) + `"}`, 413},
		{"invalid UTF-8", "POST", "/v1/predict", "{\"model\": \"tiny\", \"rows\": [{\"instruction\": \"\xff\xfe\", \"output\": \"1\"}]}", 200},
		{"score no items", "POST", "/v1/score", `{"model": "tiny", "items": []}`, 400},
		{"score half item", "POST", "/v1/score", `{"model": "tiny", "items": [{"prompt": "a"}]}`, 400},
		{"score token out of range", "POST", "/v1/score", `{"model": "tiny", "items": [{"prompt_ids": [1], "completion_ids": [999999999]}]}`, 400},
		{"score negative token", "POST", "/v1/score", `{"model": "tiny", "items": [{"prompt_ids": [-1], "completion_ids": [1]}]}`, 400},
		{"score too many tokens", "POST", "/v1/score", `{"model": "tiny", "items": [{"prompt": "` + strings.Repeat("word ", 5000) + `", "completion": "x"}]}`, 400},
		{"simulate no experiment", "POST", "/v1/simulate", `{"model": "tiny"}`, 400},
		{"simulate bad experiment", "POST", "/v1/simulate", `{"model": "tiny", "experiment": {"name": "x", "bogus": 1}}`, 400},
		{"simulate too many rows", "POST", "/v1/simulate", `{"model": "tiny", "n": 100, "experiment": {"name": "x", "conditions": [{"name": "a", "stimulus": "A"}, {"name": "b", "stimulus": "B"}], "control": "a", "outcome": {"question": "How much? Only return an integer from 1 to 7, nothing else."}}}`, 400},
		{"simulate bad personas", "POST", "/v1/simulate", `{"model": "tiny", "personas": 5, "experiment": {}}`, 400},
		{"completion no prompt", "POST", "/v1/completions", `{"model": "tiny"}`, 400},
		{"completion prompt list", "POST", "/v1/completions", `{"model": "tiny", "prompt": ["a", "b"]}`, 400},
		{"completion prompt number", "POST", "/v1/completions", `{"model": "tiny", "prompt": 5}`, 400},
		{"completion empty prompt", "POST", "/v1/completions", `{"model": "tiny", "prompt": ""}`, 400},
		{"max_tokens too large", "POST", "/v1/completions", `{"model": "tiny", "prompt": "a", "max_tokens": 51}`, 400},
		{"max_tokens zero", "POST", "/v1/completions", `{"model": "tiny", "prompt": "a", "max_tokens": 0}`, 400},
		{"temperature", "POST", "/v1/completions", `{"model": "tiny", "prompt": "a", "temperature": 3}`, 400},
		{"top_p", "POST", "/v1/completions", `{"model": "tiny", "prompt": "a", "top_p": 0}`, 400},
		{"n", "POST", "/v1/completions", `{"model": "tiny", "prompt": "a", "n": 100}`, 400},
		{"stop type", "POST", "/v1/completions", `{"model": "tiny", "prompt": "a", "stop": 3}`, 400},
		{"too many stops", "POST", "/v1/completions", `{"model": "tiny", "prompt": "a", "stop": ["a","b","c","d","e"]}`, 400},
		{"logprobs", "POST", "/v1/completions", `{"model": "tiny", "prompt": "a", "logprobs": 9}`, 400},
		{"echo", "POST", "/v1/completions", `{"model": "tiny", "prompt": "a", "echo": true}`, 400},
		{"penalty", "POST", "/v1/completions", `{"model": "tiny", "prompt": "a", "presence_penalty": 1}`, 400},
		{"prompt too long", "POST", "/v1/completions", `{"model": "tiny", "prompt": "` + strings.Repeat("word ", 5000) + `"}`, 400},
		{"chat no messages", "POST", "/v1/chat/completions", `{"model": "tiny", "messages": []}`, 400},
		{"chat bad role", "POST", "/v1/chat/completions", `{"model": "tiny", "messages": [{"role": "wizard", "content": "hi"}]}`, 400},
		{"chat image part", "POST", "/v1/chat/completions", `{"model": "tiny", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}`, 400},
		{"chat content number", "POST", "/v1/chat/completions", `{"model": "tiny", "messages": [{"role": "user", "content": 5}]}`, 400},
		{"chat top_logprobs alone", "POST", "/v1/chat/completions", `{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}`, 400},
		{"chat tools", "POST", "/v1/chat/completions", `{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "tools": [{}]}`, 400},
		{"chat template kwarg", "POST", "/v1/chat/completions", `{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "chat_template_kwargs": {"tools_in_user": true}}`, 400},
		{"chat thinking not bool", "POST", "/v1/chat/completions", `{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "chat_template_kwargs": {"enable_thinking": "yes"}}`, 400},
		{"wrong method", "GET", "/v1/predict", "", 405},
		{"unknown path", "POST", "/v1/embeddings", `{}`, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.url+tc.path, strings.NewReader(tc.body))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if tc.status >= 400 && tc.status != 405 {
				var e errorBody
				if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" || e.Error.Code == "" {
					t.Errorf("error body %s (%v)", b, err)
				}
			}
			if code, _ := s.get(t, "/health"); code != 200 {
				t.Fatalf("health %d after the request", code)
			}
		})
	}
	var out predictResponse
	if code := s.post(t, "/v1/predict", `{"model": "tiny", "rows": `+rows(2)+`}`, &out); code != 200 || len(out.Rows) != 2 {
		t.Fatalf("the server no longer predicts: %d %v", code, out)
	}
}

// TestAPIKeyAndTimeout: with an API key every endpoint but /health wants it;
// a request that outlives the time limit is answered 408.
func TestAPIKeyAndTimeout(t *testing.T) {
	s := startServer(t, func(c *Config) { c.APIKey = "sekrit"; c.Limits.Timeout = time.Nanosecond })
	if code, _ := s.get(t, "/health"); code != 200 {
		t.Errorf("health: %d", code)
	}
	var e errorBody
	if code := s.post(t, "/v1/predict", `{}`, &e); code != 401 || e.Error.Type != "authentication_error" {
		t.Errorf("no key: %d %+v", code, e)
	}
	if code := s.post(t, "/v1/predict", `{}`, nil, "Authorization", "Bearer wrong"); code != 401 {
		t.Errorf("wrong key: %d", code)
	}
	if code, _ := s.get(t, "/v1/models"); code != 401 {
		t.Errorf("models without key: %d", code)
	}
	body := map[string]any{"model": "tiny", "rows": sampleRows(t, 2)}
	if code := s.post(t, "/v1/predict", body, &e, "Authorization", "Bearer sekrit"); code != 408 || e.Error.Code != "timeout" {
		t.Errorf("timeout: %d %+v", code, e)
	}
}

// TestOpenAI: completions and chat completions in the OpenAI shapes; a
// stream carries the same text as the answer with the same seed; stop
// strings cut; logprobs are log-probabilities.
func TestOpenAI(t *testing.T) {
	s := startServer(t, nil)
	var models struct {
		Object string `json:"object"`
		Data   []struct {
			ID     string `json:"id"`
			Object string `json:"object"`
		} `json:"data"`
	}
	code, body := s.get(t, "/v1/models")
	if json.Unmarshal([]byte(body), &models); code != 200 || models.Object != "list" || len(models.Data) != 2 || models.Data[1].ID != "tuned" {
		t.Fatalf("models: %d %s", code, body)
	}
	var c completionResponse
	req := map[string]any{"model": "tuned", "prompt": "The survey asked", "max_tokens": 12, "seed": 4, "temperature": 0.8, "logprobs": 3, "n": 2}
	if code := s.post(t, "/v1/completions", req, &c); code != 200 || len(c.Choices) != 2 || c.Object != "text_completion" {
		t.Fatalf("completion: %d %+v", code, c)
	}
	ch := c.Choices[0]
	if ch.Logprobs == nil || len(ch.Logprobs.Tokens) != 12 || strings.Join(ch.Logprobs.Tokens, "") != ch.Text || *ch.FinishReason != "length" {
		t.Fatalf("choice: %+v", ch)
	}
	for i, lp := range ch.Logprobs.TokenLogprobs {
		if lp > 0 || len(ch.Logprobs.TopLogprobs[i]) == 0 {
			t.Errorf("token %d: logprob %v, top %v", i, lp, ch.Logprobs.TopLogprobs[i])
		}
	}
	if c.Usage == nil || c.Usage.CompletionTokens != 24 {
		t.Errorf("usage %+v", c.Usage)
	}
	// the same request streamed: the deltas make the same text
	req["stream"] = true
	text := map[int]string{}
	finish := map[int]string{}
	events := s.stream(t, "/v1/completions", req)
	for _, ev := range events {
		var ck completionResponse
		if err := json.Unmarshal([]byte(ev), &ck); err != nil {
			t.Fatalf("event %s: %v", ev, err)
		}
		for _, ch := range ck.Choices {
			text[ch.Index] += ch.Text
			if ch.FinishReason != nil {
				finish[ch.Index] = *ch.FinishReason
			}
		}
	}
	if text[0] != c.Choices[0].Text || text[1] != c.Choices[1].Text || finish[1] != "length" {
		t.Errorf("stream %v %v, answer %q %q", text, finish, c.Choices[0].Text, c.Choices[1].Text)
	}
	// a stop string from the middle of the text cuts it there
	runes := []rune(c.Choices[0].Text)
	if len(runes) > 4 {
		stop := string(runes[len(runes)/2 : len(runes)/2+2])
		delete(req, "stream")
		req["stop"], req["n"] = stop, 1
		var cs completionResponse
		s.post(t, "/v1/completions", req, &cs)
		if want := c.Choices[0].Text[:strings.Index(c.Choices[0].Text, stop)]; len(cs.Choices) != 1 || cs.Choices[0].Text != want || *cs.Choices[0].FinishReason != "stop" {
			t.Errorf("stop %q: %+v, want %q", stop, cs.Choices, want)
		}
	}
	// chat, greedy, with logprobs: the chosen token is the most likely
	var cr chatResponse
	creq := map[string]any{"model": "tiny", "messages": []map[string]any{{"role": "system", "content": "Be brief."}, {"role": "user", "content": []map[string]string{{"type": "text", "text": "Hello"}}}},
		"max_tokens": 6, "temperature": 0, "logprobs": true, "top_logprobs": 2}
	if code := s.post(t, "/v1/chat/completions", creq, &cr); code != 200 || len(cr.Choices) != 1 || cr.Object != "chat.completion" {
		t.Fatalf("chat: %d %+v", code, cr)
	}
	// Qwen3's enable_thinking as vLLM takes it; the Qwen2.5 template ignores it, as its Jinja does
	var crThink chatResponse
	creq["chat_template_kwargs"] = map[string]any{"enable_thinking": true}
	if code := s.post(t, "/v1/chat/completions", creq, &crThink); code != 200 || *crThink.Choices[0].Message.Content != *cr.Choices[0].Message.Content {
		t.Errorf("chat with enable_thinking: %d %+v", code, crThink)
	}
	delete(creq, "chat_template_kwargs")
	msg := cr.Choices[0].Message
	lps := cr.Choices[0].Logprobs
	if msg == nil || msg.Role != "assistant" || msg.Content == nil || lps == nil || len(lps.Content) != 6 {
		t.Fatalf("chat choice: %+v", cr.Choices[0])
	}
	for _, lp := range lps.Content {
		if lp.TopLogprobs[0].Token != lp.Token || math.Abs(lp.TopLogprobs[0].Logprob-lp.Logprob) > 1e-9 || lp.TopLogprobs[1].Logprob > lp.Logprob {
			t.Errorf("greedy token %q (%v) is not the top one %+v", lp.Token, lp.Logprob, lp.TopLogprobs)
		}
	}
	creq["stream"] = true
	creq["stream_options"] = map[string]bool{"include_usage": true}
	var streamed string
	var sawUsage bool
	for _, ev := range s.stream(t, "/v1/chat/completions", creq) {
		var ck chatResponse
		json.Unmarshal([]byte(ev), &ck)
		if ck.Object != "chat.completion.chunk" {
			t.Errorf("chunk object %q", ck.Object)
		}
		for _, ch := range ck.Choices {
			if ch.Delta != nil && ch.Delta.Content != nil {
				streamed += *ch.Delta.Content
			}
		}
		sawUsage = sawUsage || ck.Usage != nil && ck.Usage.CompletionTokens == 6
	}
	if streamed != *msg.Content || !sawUsage {
		t.Errorf("streamed chat %q (usage %v), answer %q", streamed, sawUsage, *msg.Content)
	}
	// score: the sum of the completion's log-probabilities
	var sc struct {
		Items []predict.ScoredItem `json:"items"`
	}
	if code := s.post(t, "/v1/score", `{"model": "tuned", "items": [{"prompt": "a b", "completion": " c d"}, {"prompt_ids": [1, 2], "completion_ids": [3]}], "chat": true}`, &sc); code != 200 || len(sc.Items) != 2 || len(sc.Items[1].Logprobs) != 1 || sc.Items[1].Sum >= 0 {
		t.Errorf("score: %d %+v", code, sc)
	}
}

// stream posts a streaming request and returns the data of its events up
// to [DONE].
func (s *testServer) stream(t *testing.T, path string, body any) []string {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := client.Post(s.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("not an event line: %q", line)
		}
		if d == "[DONE]" {
			return events
		}
		events = append(events, d)
	}
	t.Fatal("the stream ended without [DONE]")
	return nil
}

// TestSimulate: /v1/simulate returns what gotrain simulate --out writes.
func TestSimulate(t *testing.T) {
	s := startServer(t, nil)
	spec, err := os.ReadFile(filepath.Join("..", "examples", "experiment.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res predict.SimResult
	code := s.post(t, "/v1/simulate", map[string]any{"model": "tuned", "experiment": json.RawMessage(spec), "n": 6, "bootstrap": 20}, &res)
	if code != 200 || res.Personas != 6 || len(res.Conditions) < 2 {
		t.Fatalf("simulate: %d %+v", code, res)
	}
	exp, err := predict.ParseExperiment(spec, "spec")
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := data.SamplePersonas()
	want, err := predict.Simulate(context.Background(), predict.New(s.cfg.Model, s.cfg.Adapter[0].Adapter, s.cfg.Encoder, predict.Sampling{}), exp, pool, predict.SimOptions{N: 6, Seed: 1, Bootstrap: 20})
	if err != nil {
		t.Fatal(err)
	}
	for c := range want.Conditions {
		for k, p := range want.Conditions[c].Probs {
			if d := math.Abs(p - res.Conditions[c].Probs[k]); d > 1e-6 {
				t.Errorf("condition %d option %d: %v, want %v", c, k, res.Conditions[c].Probs[k], p)
			}
		}
	}
}

// TestDrain: stopping the server lets a request in flight finish.
func TestDrain(t *testing.T) {
	s := startServer(t, nil)
	done := make(chan int, 1)
	go func() {
		var c completionResponse
		done <- s.post(t, "/v1/completions", map[string]any{"model": "tiny", "prompt": "Once", "max_tokens": 40, "temperature": 0}, &c)
	}()
	// wait until the request is in flight
	for i := 0; ; i++ {
		_, met := s.get(t, "/metrics")
		if strings.Contains(met, "gotrain_inflight_requests 2") {
			break
		}
		if i > 2000 {
			t.Fatal("the request never started")
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 200 {
		t.Errorf("the request in flight got %d", code)
	}
	if _, err := client.Get(s.url + "/health"); err == nil {
		t.Error("the server still answers after stopping")
	}
}

// TestCancel: when a client goes away, its rows still queued are dropped:
// the batcher stops working for it and the queue empties.
func TestCancel(t *testing.T) {
	s := startServer(t, func(c *Config) { c.Limits.BatchTokens = 1 }) // one row a batch
	rows := sampleRows(t, 40)
	body, _ := json.Marshal(map[string]any{"model": "tiny", "rows": rows})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", s.url+"/v1/predict", bytes.NewReader(body))
	errc := make(chan error, 1)
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	metric := func(name string) int {
		_, met := s.get(t, "/metrics")
		for _, line := range strings.Split(met, "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				var n int
				fmt.Sscan(v, &n)
				return n
			}
		}
		return -1
	}
	for i := 0; metric("gotrain_batches_total") < 2; i++ {
		if i > 5000 {
			t.Fatal("no batch ran")
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the cancelled request succeeded")
	}
	// the batch running at the cancel finishes; nothing after it starts
	var n int
	for i := 0; ; i++ {
		if metric("gotrain_queue_depth") == 0 && metric("gotrain_inflight_requests") == 1 {
			n = metric("gotrain_batch_rows_total")
			time.Sleep(200 * time.Millisecond)
			if metric("gotrain_batch_rows_total") == n {
				break
			}
		}
		if i > 500 {
			t.Fatal("the queue did not drain")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n >= 40 {
		t.Errorf("all %d rows were computed for a request cancelled after the second batch", n)
	}
	t.Logf("%d of 40 rows computed before the cancel took effect", n)
}

// TestCompletionsBatched: completions sent at once by several clients (and
// predict rows beside them) go through the batcher together, step by step,
// and each gets the tokens model.Generate gives it alone for its seed.
func TestCompletionsBatched(t *testing.T) {
	s := startServer(t, nil)
	type want struct {
		prompt string
		model  string
		seed   uint64
		temp   float64
		topP   float64
	}
	cases := []want{
		{"The survey asked", "tiny", 1, 0.8, 1}, {"Participants were", "tuned", 2, 1, 0.9},
		{"In the control condition", "tiny", 3, 0, 1}, {"The survey asked", "tiny", 4, 1.2, 0.5},
		{"Respondents", "tuned", 5, 0.7, 1}, {"A vignette", "tiny", 6, 1, 1},
	}
	maxTokens := 10
	if testing.Short() { // the race detector
		maxTokens, cases = 4, cases[:4]
	}
	got := make([]completionResponse, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.post(t, "/v1/completions", map[string]any{"model": c.model, "prompt": c.prompt, "max_tokens": maxTokens, "seed": c.seed, "temperature": c.temp, "top_p": c.topP, "logprobs": 0}, &got[i])
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var p predictResponse
		s.post(t, "/v1/predict", map[string]any{"model": "tiny", "rows": sampleRows(t, 6)}, &p)
	}()
	wg.Wait()
	m, tok := s.cfg.Model, s.cfg.Tok
	for i, c := range cases {
		var ad *model.Adapter
		if c.model == "tuned" {
			ad = s.cfg.Adapter[0].Adapter
		}
		rng := rand.New(rand.NewPCG(c.seed, 0))
		gen, err := m.Generate(tok.EncodeSpecial(c.prompt), ad, model.Sampling{Temperature: c.temp, TopP: c.topP, MaxNewTokens: maxTokens, Stop: tok.EOS()}, rng, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got[i].Choices) != 1 || got[i].Choices[0].Logprobs == nil {
			t.Fatalf("case %d: %+v", i, got[i])
		}
		ch := got[i].Choices[0]
		var want []string
		for _, id := range gen {
			want = append(want, tok.Decode([]int{id}))
		}
		if !slices.Equal(ch.Logprobs.Tokens, want) {
			t.Errorf("case %d %+v: tokens %q, generated alone %q", i, c, ch.Logprobs.Tokens, want)
		}
	}
	_, met := s.get(t, "/metrics")
	t.Logf("batches: %s", grepLines(met, "gotrain_batch"))
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}
