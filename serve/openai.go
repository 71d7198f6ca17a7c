package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/tokenize"
)

// stringList is a JSON string or array of strings (OpenAI's "stop" and
// "prompt").
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*s = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = stringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or an array of strings")
	}
	*s = many
	return nil
}

// sampling is what completions and chat completions share.
type sampling struct {
	Model         string   `json:"model"`
	MaxTokens     *int     `json:"max_tokens"`
	Temperature   *float64 `json:"temperature"`
	TopP          *float64 `json:"top_p"`
	N             *int     `json:"n"`
	Stream        bool     `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Stop             stringList         `json:"stop"`
	Seed             *uint64            `json:"seed"`
	PresencePenalty  float64            `json:"presence_penalty"`
	FrequencyPenalty float64            `json:"frequency_penalty"`
	LogitBias        map[string]float64 `json:"logit_bias"`
}

// genParams are validated sampling settings.
type genParams struct {
	maxTokens   int
	s           model.Sampling
	stops       []string
	n           int
	seed        uint64
	logprobs    bool
	topLogprobs int
}

// check validates the shared fields; defMax is max_tokens when absent.
func (s *Server) check(req *sampling, defMax int) (genParams, error) {
	p := genParams{maxTokens: defMax, n: 1, s: model.Sampling{Temperature: 1, TopP: 1}}
	if req.MaxTokens != nil {
		p.maxTokens = *req.MaxTokens
	}
	if req.Temperature != nil {
		p.s.Temperature = *req.Temperature
	}
	if req.TopP != nil {
		p.s.TopP = *req.TopP
	}
	if req.N != nil {
		p.n = *req.N
	}
	switch {
	case p.maxTokens < 1 || p.maxTokens > s.lim.NewTokens:
		return p, errorf(http.StatusBadRequest, "invalid_max_tokens", `"max_tokens" %d: want 1 to %d`, p.maxTokens, s.lim.NewTokens)
	case p.s.Temperature < 0 || p.s.Temperature > 2 || math.IsNaN(p.s.Temperature):
		return p, errorf(http.StatusBadRequest, "invalid_temperature", `"temperature" %v: want 0 to 2`, p.s.Temperature)
	case p.s.TopP <= 0 || p.s.TopP > 1 || math.IsNaN(p.s.TopP):
		return p, errorf(http.StatusBadRequest, "invalid_top_p", `"top_p" %v: want 0 < top_p ≤ 1`, p.s.TopP)
	case p.n < 1 || p.n > s.lim.Choices:
		return p, errorf(http.StatusBadRequest, "invalid_n", `"n" %d: want 1 to %d`, p.n, s.lim.Choices)
	case len(req.Stop) > 4:
		return p, errorf(http.StatusBadRequest, "invalid_stop", `"stop": at most 4 strings`)
	case req.PresencePenalty != 0 || req.FrequencyPenalty != 0:
		return p, errorf(http.StatusBadRequest, "unsupported_parameter", "presence_penalty and frequency_penalty are not supported")
	case len(req.LogitBias) > 0:
		return p, errorf(http.StatusBadRequest, "unsupported_parameter", "logit_bias is not supported")
	}
	for _, st := range req.Stop {
		if st == "" {
			return p, errorf(http.StatusBadRequest, "invalid_stop", `"stop": empty string`)
		}
	}
	p.stops = req.Stop
	if req.Seed != nil {
		p.seed = *req.Seed
	} else {
		p.seed = mrand.Uint64()
	}
	p.s.Stop = s.cfg.Tok.EOS()
	return p, nil
}

// checkPrompt bounds the prompt plus the tokens to generate.
func (s *Server) checkPrompt(ids []int, p *genParams) error {
	if len(ids) == 0 {
		return errorf(http.StatusBadRequest, "invalid_prompt", "the prompt is empty")
	}
	if n := len(ids) + p.maxTokens; n > s.cfg.Model.MaxPositions() {
		return errorf(http.StatusBadRequest, "context_length_exceeded", "the prompt's %d tokens plus max_tokens %d exceed the model's %d positions", len(ids), p.maxTokens, s.cfg.Model.MaxPositions())
	}
	if n := p.n * (len(ids) + p.maxTokens); n > s.lim.Tokens {
		return errorf(http.StatusBadRequest, "too_many_tokens", "n × (prompt %d + max_tokens %d) = %d tokens: the server takes at most %d a request", len(ids), p.maxTokens, n, s.lim.Tokens)
	}
	return nil
}

// tokenLogprob is one generated token's log-probability and the most likely
// alternatives.
type tokenLogprob struct {
	id      int
	text    string
	logprob float64
	top     []tokenAlt
}

type tokenAlt struct {
	text    string
	logprob float64
}

// generation is one choice generated.
type generation struct {
	text     string
	finish   string // "stop" or "length"
	tokens   int
	logprobs []tokenLogprob
}

// generate samples one completion of ids; delta, if not nil, gets each piece
// of text as it becomes final, with the log-probabilities of the tokens that
// made it. Every step (the prompt, then each token) is a job of the
// batcher, so the steps of concurrent completions go through the layers
// together, with the predict rows, as vLLM's continuous batching does; the
// prefix cache keeps each sequence's keys and values between its steps.
// The tokens are model.Generate's for the same seed.
func (s *Server) generate(ctx context.Context, ent *entry, ids []int, p genParams, choice int, delta func(text string, lps []tokenLogprob) error) (generation, error) {
	var g generation
	var pending strings.Builder
	st := tokenize.NewStopWriter(writerFunc(func(b []byte) (int, error) { return pending.Write(b) }), p.stops)
	rng := mrand.New(mrand.NewPCG(p.seed, uint64(choice)))
	sm := model.Sampling{Temperature: p.s.Temperature, TopP: p.s.TopP, MaxNewTokens: p.maxTokens, Stop: p.s.Stop}
	var sent int // logprobs already sent with a delta
	stopped := false
	s.met.tokens(len(ids))
	logits := make([]float32, s.cfg.Model.Config.VocabSize)
	seq := slices.Clip(ids)
	for len(seq)-len(ids) < p.maxTokens {
		if _, err := s.b.score(ctx, ent, []model.ContinuationJob{{Prompt: seq, Logits: logits}}, nil); err != nil {
			return g, err
		}
		tok := model.Sample(logits, sm, rng)
		if slices.Contains(sm.Stop, tok) {
			break
		}
		seq = append(seq, tok)
		s.met.genToks.Add(1)
		s.met.tokens(1)
		piece := s.cfg.Tok.DecodeNext(tok, len(seq)-len(ids) == 1)
		if p.logprobs {
			g.logprobs = append(g.logprobs, s.logprob(tok, piece, logits, p.topLogprobs))
		}
		more := st.Add(piece)
		stopped = !more
		if delta != nil && pending.Len() > 0 {
			if err := delta(pending.String(), g.logprobs[sent:]); err != nil {
				return g, err
			}
			sent = len(g.logprobs)
			pending.Reset()
		}
		if !more {
			break
		}
	}
	st.Finish()
	if delta != nil && (pending.Len() > 0 || sent < len(g.logprobs)) {
		if err := delta(pending.String(), g.logprobs[sent:]); err != nil {
			return g, err
		}
	}
	g.text, g.tokens = st.Text(), len(seq)-len(ids)
	g.finish = "stop"
	if !stopped && g.tokens == p.maxTokens {
		g.finish = "length"
	}
	return g, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// logprob is token tok's log-probability under logits and the top
// alternatives (the model's distribution, before temperature).
func (s *Server) logprob(tok int, piece string, logits []float32, top int) tokenLogprob {
	norm := model.LogSumExp(logits)
	lp := tokenLogprob{id: tok, text: piece, logprob: float64(logits[tok]) - norm}
	if top > 0 {
		// the top few by insertion into a short sorted list: one pass over
		// the vocabulary
		var best []int
		for i, v := range logits {
			if len(best) == top && v <= logits[best[top-1]] {
				continue
			}
			k := len(best)
			if k < top {
				best = append(best, i)
			} else {
				k--
			}
			for ; k > 0 && logits[best[k-1]] < v; k-- {
				best[k] = best[k-1]
			}
			best[k] = i
		}
		for _, i := range best {
			lp.top = append(lp.top, tokenAlt{s.cfg.Tok.Decode([]int{i}), float64(logits[i]) - norm})
		}
	}
	return lp
}

// completionRequest is the body of /v1/completions.
type completionRequest struct {
	sampling
	Prompt   stringList `json:"prompt"`
	Logprobs *int       `json:"logprobs"`
	Echo     bool       `json:"echo"`
	Suffix   *string    `json:"suffix"`
	BestOf   *int       `json:"best_of"`
}

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// completionLogprobs is the legacy completions logprobs object.
type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float64            `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

func legacyLogprobs(lps []tokenLogprob, offset int) *completionLogprobs {
	out := &completionLogprobs{Tokens: []string{}, TokenLogprobs: []float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{}}
	for _, lp := range lps {
		out.Tokens = append(out.Tokens, lp.text)
		out.TokenLogprobs = append(out.TokenLogprobs, lp.logprob)
		top := map[string]float64{}
		for _, a := range lp.top {
			if _, dup := top[a.text]; !dup {
				top[a.text] = a.logprob
			}
		}
		out.TopLogprobs = append(out.TopLogprobs, top)
		out.TextOffset = append(out.TextOffset, offset)
		offset += len(lp.text)
	}
	return out
}

type completionChoice struct {
	Text         string              `json:"text"`
	Index        int                 `json:"index"`
	Logprobs     *completionLogprobs `json:"logprobs"`
	FinishReason *string             `json:"finish_reason"`
}

// response is the body of a completion or chat completion (or one chunk of
// its stream): the two differ only in their choices.
type response[C any] struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []C    `json:"choices"`
	Usage   *usage `json:"usage,omitempty"`
}

type completionResponse = response[completionChoice]

func (s *Server) completions(w http.ResponseWriter, r *http.Request) error {
	var req completionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ent, err := s.lookup(req.Model)
	if err != nil {
		return err
	}
	p, err := s.check(&req.sampling, 16)
	if err != nil {
		return err
	}
	switch {
	case len(req.Prompt) != 1:
		return errorf(http.StatusBadRequest, "invalid_prompt", `"prompt" must be one string (send one request per prompt)`)
	case req.Echo:
		return errorf(http.StatusBadRequest, "unsupported_parameter", "echo is not supported")
	case req.Suffix != nil && *req.Suffix != "":
		return errorf(http.StatusBadRequest, "unsupported_parameter", "suffix is not supported")
	case req.BestOf != nil && *req.BestOf != 1:
		return errorf(http.StatusBadRequest, "unsupported_parameter", "best_of is not supported")
	case req.Logprobs != nil && (*req.Logprobs < 0 || *req.Logprobs > 5):
		return errorf(http.StatusBadRequest, "invalid_logprobs", `"logprobs" %d: want 0 to 5`, *req.Logprobs)
	}
	if req.Logprobs != nil {
		p.logprobs, p.topLogprobs = true, *req.Logprobs
	}
	ids := s.cfg.Tok.EncodeSpecial(req.Prompt[0]) // with the BOS a base Llama expects
	if err := s.checkPrompt(ids, &p); err != nil {
		return err
	}
	resp := completionResponse{ID: newID("cmpl-"), Object: "text_completion", Created: time.Now().Unix(), Model: ent.name}
	chunk := func(ch completionChoice) any {
		return completionResponse{ID: resp.ID, Object: resp.Object, Created: resp.Created, Model: ent.name, Choices: []completionChoice{ch}}
	}
	offset := 0
	gens, u, err := s.choices(r.Context(), w, req.Stream, ent, ids, p, streamer{
		start: func(c int) any { offset = 0; return nil },
		delta: func(c int, text string, lps []tokenLogprob) any {
			ch := completionChoice{Text: text, Index: c}
			if p.logprobs {
				ch.Logprobs = legacyLogprobs(lps, offset)
			}
			offset += len(text)
			return chunk(ch)
		},
		finish: func(c int, reason string) any { return chunk(completionChoice{Index: c, FinishReason: &reason}) },
		usage: func(u *usage) any {
			return completionResponse{ID: resp.ID, Object: resp.Object, Created: resp.Created, Model: ent.name, Choices: []completionChoice{}, Usage: u}
		},
	}, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
	if err != nil || req.Stream {
		return err
	}
	for c, g := range gens {
		ch := completionChoice{Text: g.text, Index: c, FinishReason: &g.finish}
		if p.logprobs {
			ch.Logprobs = legacyLogprobs(g.logprobs, 0)
		}
		resp.Choices = append(resp.Choices, ch)
	}
	resp.Usage = &u
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// streamer makes the events of a stream: nil from start sends nothing.
type streamer struct {
	start  func(choice int) any
	delta  func(choice int, text string, lps []tokenLogprob) any
	finish func(choice int, reason string) any
	usage  func(*usage) any
}

// choices generates p.n completions of ids, one after another; with stream
// it sends them as server-sent events made by st as the text comes (and the
// usage at the end when includeUsage), then [DONE].
func (s *Server) choices(ctx context.Context, w http.ResponseWriter, stream bool, ent *entry, ids []int, p genParams, st streamer, includeUsage bool) ([]generation, usage, error) {
	release, err := acquire(ctx, s.gen)
	if err != nil {
		return nil, usage{}, err
	}
	defer release()
	u := usage{PromptTokens: len(ids)}
	var sse *eventStream
	if stream {
		sse = newEventStream(w)
	}
	var gens []generation
	for c := 0; c < p.n; c++ {
		var delta func(string, []tokenLogprob) error
		if sse != nil {
			if ev := st.start(c); ev != nil {
				if err := sse.send(ev); err != nil {
					return nil, u, err
				}
			}
			delta = func(text string, lps []tokenLogprob) error { return sse.send(st.delta(c, text, lps)) }
		}
		g, err := s.generate(ctx, ent, ids, p, c, delta)
		if err != nil {
			return nil, u, sse.fail(s, err)
		}
		u.CompletionTokens += g.tokens
		if sse != nil {
			if err := sse.send(st.finish(c, g.finish)); err != nil {
				return nil, u, err
			}
		}
		gens = append(gens, g)
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	if sse != nil {
		if includeUsage {
			if err := sse.send(st.usage(&u)); err != nil {
				return nil, u, err
			}
		}
		return gens, u, sse.done()
	}
	return gens, u, nil
}

// chatMessage is a message of a chat request; content is a string or an
// array of parts of which the text parts are used.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

func (m *chatMessage) text() (string, error) {
	c := bytes.TrimSpace(m.Content)
	if len(c) == 0 || string(c) == "null" {
		return "", nil
	}
	if c[0] == '"' {
		var s string
		err := json.Unmarshal(c, &s)
		return s, err
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(c, &parts); err != nil {
		return "", fmt.Errorf("content must be a string or an array of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("content part of type %q: only text is supported", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

type chatRequest struct {
	sampling
	Messages            []chatMessage `json:"messages"`
	MaxCompletionTokens *int          `json:"max_completion_tokens"`
	Logprobs            bool          `json:"logprobs"`
	TopLogprobs         *int          `json:"top_logprobs"`
	Tools               []any         `json:"tools"`
	// vLLM's extension: variables for the chat template; enable_thinking
	// (Qwen3) is the one the templates read.
	ChatTemplateKwargs map[string]json.RawMessage `json:"chat_template_kwargs"`
}

type chatLogprob struct {
	Token       string       `json:"token"`
	Logprob     float64      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []chatTopAlt `json:"top_logprobs"`
}

type chatTopAlt struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

type chatLogprobs struct {
	Content []chatLogprob `json:"content"`
}

func tokenBytes(s string) []int {
	b := make([]int, len(s))
	for i := range len(s) {
		b[i] = int(s[i])
	}
	return b
}

func chatLogprobsOf(lps []tokenLogprob) *chatLogprobs {
	out := &chatLogprobs{Content: []chatLogprob{}}
	for _, lp := range lps {
		c := chatLogprob{Token: lp.text, Logprob: lp.logprob, Bytes: tokenBytes(lp.text), TopLogprobs: []chatTopAlt{}}
		for _, a := range lp.top {
			c.TopLogprobs = append(c.TopLogprobs, chatTopAlt{Token: a.text, Logprob: a.logprob, Bytes: tokenBytes(a.text)})
		}
		out.Content = append(out.Content, c)
	}
	return out
}

type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chatChoice struct {
	Index        int           `json:"index"`
	Message      *chatDelta    `json:"message,omitempty"`
	Delta        *chatDelta    `json:"delta,omitempty"`
	Logprobs     *chatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

type chatResponse = response[chatChoice]

func (s *Server) chat(w http.ResponseWriter, r *http.Request) error {
	var req chatRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ent, err := s.lookup(req.Model)
	if err != nil {
		return err
	}
	if req.MaxCompletionTokens != nil && req.MaxTokens == nil {
		req.MaxTokens = req.MaxCompletionTokens
	}
	if s.cfg.Template == nil {
		return errorf(http.StatusBadRequest, "no_chat_template", "this model has no chat template (start the server with --template)")
	}
	if len(req.Messages) == 0 {
		return errorf(http.StatusBadRequest, "invalid_messages", `"messages" is empty`)
	}
	if len(req.Tools) > 0 {
		return errorf(http.StatusBadRequest, "unsupported_parameter", "tools are not supported")
	}
	msgs := make([]tokenize.Message, len(req.Messages))
	for i, m := range req.Messages {
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		if role != "system" && role != "user" && role != "assistant" {
			return errorf(http.StatusBadRequest, "invalid_messages", "messages[%d].role %q: want system, developer, user or assistant", i, m.Role)
		}
		text, err := m.text()
		if err != nil {
			return errorf(http.StatusBadRequest, "invalid_messages", "messages[%d]: %v", i, err)
		}
		msgs[i] = tokenize.Message{Role: role, Content: text}
	}
	tmpl := s.cfg.Template
	for k, v := range req.ChatTemplateKwargs {
		var on bool
		if k != "enable_thinking" || json.Unmarshal(v, &on) != nil {
			return errorf(http.StatusBadRequest, "unsupported_parameter", "chat_template_kwargs.%s: only enable_thinking (true or false) is supported", k)
		}
		t := *tmpl // templates without a thinking mode ignore it, as their Jinja does
		t.Thinking = on
		tmpl = &t
	}
	ids, _, err := s.cfg.Tok.EncodeChat(tmpl, msgs, true)
	if err != nil {
		return errorf(http.StatusBadRequest, "invalid_messages", "%v", err)
	}
	// without max_tokens a chat completion may run to the end of the context
	defMax := min(s.lim.NewTokens, max(1, s.cfg.Model.MaxPositions()-len(ids)))
	p, err := s.check(&req.sampling, defMax)
	if err != nil {
		return err
	}
	if req.TopLogprobs != nil {
		if *req.TopLogprobs < 0 || *req.TopLogprobs > 20 {
			return errorf(http.StatusBadRequest, "invalid_top_logprobs", `"top_logprobs" %d: want 0 to 20`, *req.TopLogprobs)
		}
		if !req.Logprobs {
			return errorf(http.StatusBadRequest, "invalid_top_logprobs", `"top_logprobs" needs "logprobs": true`)
		}
		p.topLogprobs = *req.TopLogprobs
	}
	p.logprobs = req.Logprobs
	if err := s.checkPrompt(ids, &p); err != nil {
		return err
	}
	resp := chatResponse{ID: newID("chatcmpl-"), Object: "chat.completion", Created: time.Now().Unix(), Model: ent.name}
	chunk := func(ch chatChoice) any {
		return chatResponse{ID: resp.ID, Object: "chat.completion.chunk", Created: resp.Created, Model: ent.name, Choices: []chatChoice{ch}}
	}
	gens, u, err := s.choices(r.Context(), w, req.Stream, ent, ids, p, streamer{
		start: func(c int) any {
			empty := ""
			return chunk(chatChoice{Index: c, Delta: &chatDelta{Role: "assistant", Content: &empty}})
		},
		delta: func(c int, text string, lps []tokenLogprob) any {
			ch := chatChoice{Index: c, Delta: &chatDelta{Content: &text}}
			if p.logprobs {
				ch.Logprobs = chatLogprobsOf(lps)
			}
			return chunk(ch)
		},
		finish: func(c int, reason string) any {
			return chunk(chatChoice{Index: c, Delta: &chatDelta{}, FinishReason: &reason})
		},
		usage: func(u *usage) any {
			return chatResponse{ID: resp.ID, Object: "chat.completion.chunk", Created: resp.Created, Model: ent.name, Choices: []chatChoice{}, Usage: u}
		},
	}, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
	if err != nil || req.Stream {
		return err
	}
	for c, g := range gens {
		ch := chatChoice{Index: c, Message: &chatDelta{Role: "assistant", Content: &g.text}, FinishReason: &g.finish}
		if p.logprobs {
			ch.Logprobs = chatLogprobsOf(g.logprobs)
		}
		resp.Choices = append(resp.Choices, ch)
	}
	resp.Usage = &u
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// eventStream writes server-sent events ("data: JSON\n\n", then
// "data: [DONE]"), flushing each.
type eventStream struct {
	w       http.ResponseWriter
	started bool
}

func newEventStream(w http.ResponseWriter) *eventStream { return &eventStream{w: w} }

func (e *eventStream) send(v any) error {
	if !e.started {
		h := e.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		e.w.WriteHeader(http.StatusOK)
		e.started = true
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(e.w, "data: %s\n\n", b); err != nil {
		return err
	}
	if f, ok := e.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

func (e *eventStream) done() error {
	if _, err := fmt.Fprint(e.w, "data: [DONE]\n\n"); err != nil {
		return err
	}
	if f, ok := e.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// fail ends a stream with an error event (OpenAI's shape) once it has
// started; before that (or without a stream) the error is answered as usual.
func (e *eventStream) fail(s *Server, err error) error {
	if e == nil || !e.started {
		return err
	}
	e.send(newErrorBody(s.asAPIError(err)))
	return err
}
