// Package serve is gotrain's HTTP server: one model loaded once, its LoRA
// adapters selectable per request by name, answering the OpenAI API
// (/v1/models, /v1/completions, /v1/chat/completions) and the engine's own
// endpoints (/v1/predict, /v1/score, /v1/simulate) that return what the
// gotrain predict, score and simulate commands write. The rows of concurrent
// predict and simulate requests are batched through the model together and
// share a bounded cache of prompt-prefix keys and values.
package serve

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/tokenize"
)

// Adapter is a LoRA adapter served under Name.
type Adapter struct {
	Name    string
	Adapter *model.Adapter
}

// Limits bound what one request may ask for; each is answered with a 4xx
// when exceeded. Zero fields take the defaults of DefaultLimits.
type Limits struct {
	BodyBytes   int64         // request body
	Rows        int           // rows of /v1/predict, items of /v1/score, personas × conditions of /v1/simulate
	Tokens      int           // prompt, continuation and generated tokens of one request
	NewTokens   int           // max_tokens of a completion
	Choices     int           // n of a completion
	Timeout     time.Duration // wall time of one request
	BatchTokens int           // tokens the batcher puts into one forward pass
	Generators  int           // completions decoded at once (their steps batched together)
	Scores      int           // /v1/score requests computed at once (each holds a KV cache and activations)
	Lanes       int           // batches computed at once, sharing the cores (each holds a KV cache and activations; 0: one a kernel thread)
}

// DefaultLimits are the limits used for zero fields.
var DefaultLimits = Limits{
	BodyBytes:   16 << 20,
	Rows:        2000,
	Tokens:      1 << 20,
	NewTokens:   4096,
	Choices:     8,
	Timeout:     10 * time.Minute,
	BatchTokens: 4096,
	Generators:  8,
	Scores:      2,
}

// Config is what New needs.
type Config struct {
	Model   *model.Model
	Name    string // the base model's name in the "model" field
	Adapter []Adapter
	Tok     *tokenize.Tokenizer
	// Template is the chat template of /v1/chat/completions (nil: that
	// endpoint answers 400).
	Template *tokenize.Template
	// Encoder encodes predict and simulate rows, as gotrain predict does
	// (with or without the chat template, as the model was trained).
	Encoder *data.Encoder
	// APIKey, when set, is demanded as "Authorization: Bearer KEY" by every
	// endpoint but /health.
	APIKey string
	Limits Limits
	// PrefixCacheBytes bounds each model's prompt-prefix cache (0: 1 GiB).
	PrefixCacheBytes int64
	Log              *log.Logger // nil: no request log
}

// entry is a servable model: the base (ad nil) or an adapter.
type entry struct {
	name   string
	ad     *model.Adapter
	prefix *model.PrefixCache
}

// Server answers the HTTP API. Close it to stop its batcher.
type Server struct {
	cfg     Config
	lim     Limits
	entries map[string]*entry
	names   []string
	b       *batcher
	met     *metrics
	gen     chan struct{} // a slot per completion decoded at once
	scores  chan struct{} // a slot per /v1/score request computed at once
	created int64
	handler http.Handler

	personasOnce sync.Once
	personas     []data.Persona
	personasErr  error
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Model == nil || cfg.Tok == nil || cfg.Encoder == nil {
		return nil, errors.New("serve: need a model, a tokenizer and a row encoder")
	}
	if cfg.Name == "" {
		return nil, errors.New("serve: the base model needs a name")
	}
	lim, def := cfg.Limits, DefaultLimits
	orDefault(&lim.BodyBytes, def.BodyBytes)
	orDefault(&lim.Rows, def.Rows)
	orDefault(&lim.Tokens, def.Tokens)
	orDefault(&lim.NewTokens, def.NewTokens)
	orDefault(&lim.Choices, def.Choices)
	orDefault(&lim.Timeout, def.Timeout)
	orDefault(&lim.BatchTokens, def.BatchTokens)
	orDefault(&lim.Generators, def.Generators)
	orDefault(&lim.Scores, def.Scores)
	if cfg.PrefixCacheBytes <= 0 {
		cfg.PrefixCacheBytes = 1 << 30
	}
	s := &Server{cfg: cfg, lim: lim, entries: map[string]*entry{}, met: newMetrics(),
		gen: make(chan struct{}, lim.Generators), scores: make(chan struct{}, lim.Scores), created: time.Now().Unix()}
	add := func(name string, ad *model.Adapter) error {
		if name == "" {
			return errors.New("serve: an adapter has no name")
		}
		if _, dup := s.entries[name]; dup {
			return fmt.Errorf("serve: two models named %q", name)
		}
		s.entries[name] = &entry{name: name, ad: ad, prefix: model.NewPrefixCache(cfg.PrefixCacheBytes)}
		s.names = append(s.names, name)
		return nil
	}
	if err := add(cfg.Name, nil); err != nil {
		return nil, err
	}
	for _, a := range cfg.Adapter {
		if err := add(a.Name, a.Adapter); err != nil {
			return nil, err
		}
	}
	s.b = newBatcher(cfg.Model, lim.BatchTokens, lim.Lanes, s.met)
	mux := http.NewServeMux()
	mux.HandleFunc("/health", s.health)
	s.route(mux, "GET /metrics", s.metricsPage)
	s.route(mux, "GET /v1/models", s.models)
	s.route(mux, "POST /v1/completions", s.completions)
	s.route(mux, "POST /v1/chat/completions", s.chat)
	s.route(mux, "POST /v1/predict", s.predict)
	s.route(mux, "POST /v1/score", s.score)
	s.route(mux, "POST /v1/simulate", s.simulate)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.finish(w, r, "other", time.Now(), errorf(http.StatusNotFound, "not_found", "no endpoint %s %s", r.Method, r.URL.Path))
	})
	s.handler = mux
	return s, nil
}

// orDefault sets a limit that is not positive to its default.
func orDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the batcher once the rows queued are done.
func (s *Server) Close() { s.b.close() }

// Serve answers on l until ctx is done, then stops accepting connections,
// lets the requests in flight finish (at most the request timeout) and
// returns. It closes the server.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // a body sent slower than that holds no handler
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), s.lim.Timeout+5*time.Second)
		err = hs.Shutdown(sctx)
		cancel()
		if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = e
		}
	}
	s.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// apiError is an error answered with an HTTP status and an OpenAI-shaped body.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status, code, fmt.Sprintf(format, args...)}
}

// errorType is OpenAI's error type for a status.
func errorType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestTimeout:
		return "timeout_error"
	case http.StatusServiceUnavailable:
		return "service_unavailable"
	}
	if status >= 500 {
		return "server_error"
	}
	return "invalid_request_error"
}

var errShuttingDown = errorf(http.StatusServiceUnavailable, "shutting_down", "the server is shutting down")

type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	} `json:"error"`
}

func newErrorBody(e *apiError) errorBody {
	var b errorBody
	b.Error.Message, b.Error.Type, b.Error.Code = e.msg, errorType(e.status), e.code
	return b
}

// asAPIError classifies an error from an endpoint: its own, the request's
// deadline, a client gone, or a bad input found by the engine (every engine
// error is about the request's values: tokens, lengths, rows).
func (s *Server) asAPIError(err error) *apiError {
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusRequestTimeout, "timeout", "the request took longer than the server's limit of %s; send fewer rows or tokens", s.lim.Timeout)
	case errors.Is(err, context.Canceled):
		return errorf(499, "cancelled", "the client closed the request")
	case errors.As(err, &mbe):
		return errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the request body is larger than the server's limit of %d bytes", mbe.Limit)
	}
	return errorf(http.StatusBadRequest, "invalid_request", "%v", err)
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// route registers an endpoint behind the checks every endpoint shares: the
// API key, the body limit, the request timeout, metrics and the log.
func (s *Server) route(mux *http.ServeMux, pattern string, h func(http.ResponseWriter, *http.Request) error) {
	method, endpoint, _ := strings.Cut(pattern, " ")
	mux.HandleFunc(endpoint, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", method)
		s.finish(w, r, endpoint, time.Now(), errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s takes %s, not %s", endpoint, method, r.Method))
	})
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		s.met.inflight.Add(1)
		defer s.met.inflight.Add(-1)
		sw := &statusWriter{ResponseWriter: w}
		if err := s.authorize(r); err != nil {
			s.finish(sw, r, endpoint, began, err)
			return
		}
		r.Body = http.MaxBytesReader(sw, r.Body, s.lim.BodyBytes)
		ctx, cancel := context.WithTimeout(r.Context(), s.lim.Timeout)
		defer cancel()
		err := h(sw, r.WithContext(ctx))
		s.finish(sw, r, endpoint, began, err)
	})
}

// finish writes err (if the handler has not written yet), counts and logs the request.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, endpoint string, began time.Time, err error) {
	sw, ok := w.(*statusWriter)
	if !ok {
		sw = &statusWriter{ResponseWriter: w}
	}
	if err != nil {
		ae := s.asAPIError(err)
		if sw.code == 0 {
			if ae.status == http.StatusUnauthorized {
				sw.Header().Set("WWW-Authenticate", `Bearer realm="gotrain"`)
			}
			writeJSON(sw, ae.status, newErrorBody(ae))
		}
		if sw.code == 0 || ae.status == 499 {
			sw.code = ae.status
		}
	}
	took := time.Since(began)
	s.met.request(endpoint, sw.code, took)
	if s.cfg.Log != nil {
		msg := ""
		if err != nil {
			msg = " " + err.Error()
		}
		s.cfg.Log.Printf("%s %s %d %s%s", r.Method, r.URL.Path, sw.code, took.Round(time.Millisecond), msg)
	}
}

func (s *Server) authorize(r *http.Request) error {
	if s.cfg.APIKey == "" {
		return nil
	}
	auth := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return errorf(http.StatusUnauthorized, "invalid_api_key", "missing API key: send the header Authorization: Bearer KEY")
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(s.cfg.APIKey)) != 1 {
		return errorf(http.StatusUnauthorized, "invalid_api_key", "incorrect API key")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		fmt.Fprintf(&buf, `{"error":{"message":%q,"type":"server_error","param":null,"code":"encode"}}`+"\n", err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// decode reads the request body, one JSON object, into v.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return errorf(http.StatusBadRequest, "invalid_json", "the request body is empty: send a JSON object")
		}
		return errorf(http.StatusBadRequest, "invalid_json", "the request body is not the JSON object expected: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errorf(http.StatusBadRequest, "invalid_json", "the request body holds more than one JSON value")
	}
	return nil
}

// lookup returns the model named name.
func (s *Server) lookup(name string) (*entry, error) {
	if name == "" {
		return nil, errorf(http.StatusBadRequest, "model_required", `"model" is required: one of %s`, strings.Join(s.names, ", "))
	}
	e, ok := s.entries[name]
	if !ok {
		return nil, errorf(http.StatusNotFound, "model_not_found", "the model %q does not exist: this server has %s", name, strings.Join(s.names, ", "))
	}
	return e, nil
}

// acquire takes one of slots, or fails when ctx ends first.
func acquire(ctx context.Context, slots chan struct{}) (release func(), err error) {
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "models": s.names})
}

func (s *Server) metricsPage(w http.ResponseWriter, r *http.Request) error {
	caches := map[string]*model.PrefixCache{}
	for n, e := range s.entries {
		caches[n] = e.prefix
	}
	var buf bytes.Buffer
	s.met.write(&buf, s.b.depth.Load(), caches)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, err := w.Write(buf.Bytes())
	return err
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) error {
	type card struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
		Parent  string `json:"parent,omitempty"`
	}
	list := struct {
		Object string `json:"object"`
		Data   []card `json:"data"`
	}{Object: "list"}
	for _, n := range s.names {
		c := card{ID: n, Object: "model", Created: s.created, OwnedBy: "gotrain"}
		if s.entries[n].ad != nil {
			c.Parent = s.cfg.Name
		}
		list.Data = append(list.Data, c)
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}
