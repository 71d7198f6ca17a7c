package serve

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRequest: any body sent to any endpoint is answered (never a panic,
// never a 5xx), with small limits so that valid requests stay quick.
func FuzzRequest(f *testing.F) {
	for _, seed := range []string{
		`{"model": "tiny", "rows": [{"instruction": "How old? Only return an integer from 1 to 3, nothing else.", "output": "2"}]}`,
		`{"model": "tuned", "items": [{"prompt": "a", "completion": "b"}], "chat": true}`,
		`{"model": "tiny", "prompt": "Hi", "max_tokens": 2, "logprobs": 1, "stop": ["x"]}`,
		`{"model": "tiny", "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}], "max_tokens": 2, "stream": true}`,
		`{"model": "tiny", "experiment": {"name": "x"}, "personas": []}`,
		`{"model": "tiny", "rows": [{"study_id": "s", "stimuli": "?", "response": 1, "demographic": {}}]}`,
		`{"model":`, `[]`, `null`, `{"model": "tiny", "rows": null}`,
	} {
		for _, path := range []string{"/v1/predict", "/v1/score", "/v1/completions", "/v1/chat/completions", "/v1/simulate"} {
			f.Add(path, seed)
		}
	}
	cfg := testConfig(f, func(c *Config) {
		c.Limits.Rows, c.Limits.Tokens, c.Limits.NewTokens, c.Limits.Choices = 2, 3000, 3, 2
	})
	f.Fuzz(func(t *testing.T, path, body string) {
		srv, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.URL.Path = "/" + strings.TrimLeft(path, "/")
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Errorf("%s %q: status %d: %s", path, body, w.Code, w.Body)
		}
		if w.Code >= 400 && !strings.Contains(w.Body.String(), `"error"`) && w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s %q: status %d without an error body: %s", path, body, w.Code, w.Body)
		}
	})
}
