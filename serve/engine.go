package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/predict"
)

// predictRequest is the body of /v1/predict: rows as in a predict input file
// (SocSci210 or alpaca records) and the sampling of rows without options.
type predictRequest struct {
	Model       string          `json:"model"`
	Rows        json.RawMessage `json:"rows"`
	Samples     int             `json:"samples"`
	Temperature *float64        `json:"temperature"`
	TopP        *float64        `json:"top_p"`
	Seed        *uint64         `json:"seed"`
	MaxOptions  *int            `json:"max_options"`
	MaxTokens   int             `json:"max_tokens"` // per sampled answer
}

// maxSamples bounds answers sampled per open-ended row.
const maxSamples = 100

func (s *Server) predict(w http.ResponseWriter, r *http.Request) error {
	arrived := s.b.arrive()
	defer arrived()
	var req predictRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ent, err := s.lookup(req.Model)
	if err != nil {
		return err
	}
	if t := bytes.TrimSpace(req.Rows); len(t) == 0 || t[0] != '[' {
		return errorf(http.StatusBadRequest, "invalid_rows", `"rows" must be an array of row objects (SocSci210 or alpaca records, as in a predict input file)`)
	}
	rows, err := data.ReadSFTFrom(bytes.NewReader(req.Rows), "rows", data.ReadOptions{})
	if err != nil {
		return errorf(http.StatusBadRequest, "invalid_rows", "%v", err)
	}
	if len(rows) > s.lim.Rows {
		return errorf(http.StatusBadRequest, "too_many_rows", "%d rows: the server takes at most %d a request", len(rows), s.lim.Rows)
	}
	sm := predict.Sampling{Samples: req.Samples, Temperature: 1, TopP: 1, Seed: 1, MaxOptions: data.DefaultMaxOptions, MaxTokens: req.MaxTokens}
	if req.Temperature != nil {
		sm.Temperature = *req.Temperature
	}
	if req.TopP != nil {
		sm.TopP = *req.TopP
	}
	if req.Seed != nil {
		sm.Seed = *req.Seed
	}
	if req.MaxOptions != nil {
		sm.MaxOptions = *req.MaxOptions
	}
	switch {
	case req.Samples < 0 || req.Samples > maxSamples:
		return errorf(http.StatusBadRequest, "invalid_samples", `"samples" %d: want 0 to %d`, req.Samples, maxSamples)
	case sm.Temperature < 0 || sm.Temperature > 2:
		return errorf(http.StatusBadRequest, "invalid_temperature", `"temperature" %v: want 0 to 2`, sm.Temperature)
	case sm.TopP <= 0 || sm.TopP > 1:
		return errorf(http.StatusBadRequest, "invalid_top_p", `"top_p" %v: want 0 < top_p ≤ 1`, sm.TopP)
	case sm.MaxOptions < 0:
		return errorf(http.StatusBadRequest, "invalid_max_options", `"max_options" must be ≥ 0`)
	case req.MaxTokens < 0 || req.MaxTokens > 256:
		return errorf(http.StatusBadRequest, "invalid_max_tokens", `"max_tokens" %d: want 0 (16) to 256`, req.MaxTokens)
	}
	if req.Samples > 0 && len(rows)*req.Samples*max(req.MaxTokens, 16) > s.lim.Tokens {
		return errorf(http.StatusBadRequest, "too_many_tokens", "%d rows × %d samples exceed the server's limit of %d tokens a request", len(rows), req.Samples, s.lim.Tokens)
	}
	p := s.predictor(ent, sm, arrived)
	results, err := p.RowsContext(r.Context(), rows, nil)
	if err != nil {
		return err
	}
	s.met.rows.Add(int64(len(rows)))
	out := make([]map[string]any, len(rows))
	for i := range rows {
		out[i] = predict.Record(&rows[i], &results[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "predict", "model": ent.name, "rows": out})
	return nil
}

// predictor returns a predictor whose rows with options go through the
// batcher, within the request's token limit; arrived is the request's mark
// from batcher.arrive.
func (s *Server) predictor(ent *entry, sm predict.Sampling, arrived func()) *predict.Predictor {
	p := predict.New(s.cfg.Model, ent.ad, s.cfg.Encoder, sm)
	p.Score = func(ctx context.Context, jobs []model.ContinuationJob) ([][]float64, error) {
		n := 0
		for k, j := range jobs {
			n += jobSize(jobs, k)
			if len(j.Prompt)+maxLen(j.Conts) > s.cfg.Model.MaxPositions() {
				return nil, errorf(http.StatusBadRequest, "too_many_tokens", "a row of %d tokens is longer than the model's %d positions", len(j.Prompt)+maxLen(j.Conts), s.cfg.Model.MaxPositions())
			}
		}
		if n > s.lim.Tokens {
			return nil, errorf(http.StatusBadRequest, "too_many_tokens", "the rows come to %d prompt and answer tokens: the server takes at most %d a request", n, s.lim.Tokens)
		}
		return s.b.score(ctx, ent, jobs, arrived)
	}
	return p
}

func maxLen(v [][]int) int {
	n := 0
	for _, x := range v {
		n = max(n, len(x))
	}
	return n
}

// scoreRequest is the body of /v1/score: items as in a gotrain score input.
type scoreRequest struct {
	Model string              `json:"model"`
	Items []predict.ScoreItem `json:"items"`
	Chat  bool                `json:"chat"` // wrap each prompt in the chat template as a user turn
}

// scoreGroup is how many items are scored in one call (the request's
// deadline is checked between calls).
const scoreGroup = 64

func (s *Server) score(w http.ResponseWriter, r *http.Request) error {
	var req scoreRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ent, err := s.lookup(req.Model)
	if err != nil {
		return err
	}
	if len(req.Items) == 0 {
		return errorf(http.StatusBadRequest, "invalid_items", `"items" is empty: send [{"prompt": ..., "completion": ...}, ...]`)
	}
	if len(req.Items) > s.lim.Rows {
		return errorf(http.StatusBadRequest, "too_many_rows", "%d items: the server takes at most %d a request", len(req.Items), s.lim.Rows)
	}
	if req.Chat && s.cfg.Template == nil {
		return errorf(http.StatusBadRequest, "no_chat_template", "this model has no chat template (start the server with --template)")
	}
	tmpl := s.cfg.Template
	if !req.Chat {
		tmpl = nil
	}
	outs := make([]predict.ScoredItem, len(req.Items))
	seqs := make([]model.Sequence, len(req.Items))
	n := 0
	for i := range req.Items {
		o, seq, err := req.Items[i].Encode(s.cfg.Tok, tmpl, s.cfg.Model.Config.VocabSize, s.cfg.Model.MaxPositions())
		if err != nil {
			return errorf(http.StatusBadRequest, "invalid_items", "items[%d]: %v", i, err)
		}
		if len(seq.Tokens) > s.cfg.Model.MaxPositions() {
			return errorf(http.StatusBadRequest, "too_many_tokens", "items[%d]: %d tokens, longer than the model's %d positions", i, len(seq.Tokens), s.cfg.Model.MaxPositions())
		}
		n += len(seq.Tokens)
		outs[i], seqs[i] = o, seq
	}
	if n > s.lim.Tokens {
		return errorf(http.StatusBadRequest, "too_many_tokens", "the items come to %d tokens: the server takes at most %d a request", n, s.lim.Tokens)
	}
	release, err := acquire(r.Context(), s.scores)
	if err != nil {
		return err
	}
	defer release()
	for lo := 0; lo < len(seqs); lo += scoreGroup {
		if err := r.Context().Err(); err != nil {
			return err
		}
		hi := min(lo+scoreGroup, len(seqs))
		lps, err := s.cfg.Model.Score(seqs[lo:hi], ent.ad)
		if err != nil {
			return err
		}
		k := 0
		for i := lo; i < hi; i++ {
			outs[i].SetLogprobs(lps[i-lo])
			k += len(seqs[i].Tokens)
		}
		s.met.scored.Add(int64(k))
		s.met.tokens(k)
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "score", "model": ent.name, "items": outs})
	return nil
}

// simulateRequest is the body of /v1/simulate: an experiment spec (as
// gotrain simulate --experiment reads), the personas ("sample", the bundled
// pool, or an array of participant profiles) and the draw.
type simulateRequest struct {
	Model      string          `json:"model"`
	Experiment json.RawMessage `json:"experiment"`
	Personas   json.RawMessage `json:"personas"`
	N          *int            `json:"n"`
	Seed       *uint64         `json:"seed"`
	Bootstrap  *int            `json:"bootstrap"`
}

func (s *Server) simulate(w http.ResponseWriter, r *http.Request) error {
	arrived := s.b.arrive()
	defer arrived()
	var req simulateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ent, err := s.lookup(req.Model)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(req.Experiment)) == 0 {
		return errorf(http.StatusBadRequest, "invalid_experiment", `"experiment" is required: {"name", "conditions": [{"name", "stimulus"}...], "control", "outcome": {"question", "options"}}`)
	}
	exp, err := predict.ParseExperiment(req.Experiment, "request")
	if err != nil {
		return errorf(http.StatusBadRequest, "invalid_experiment", "%v", err)
	}
	var pool []data.Persona
	if p := bytes.TrimSpace(req.Personas); len(p) == 0 || string(p) == `"sample"` {
		s.personasOnce.Do(func() { s.personas, s.personasErr = data.SamplePersonas() })
		pool, err = s.personas, s.personasErr
	} else if p[0] == '[' {
		pool, err = data.ReadPersonasFrom(bytes.NewReader(p), "personas")
	} else {
		return errorf(http.StatusBadRequest, "invalid_personas", `"personas" must be "sample" or an array of participant profiles`)
	}
	if err != nil {
		return errorf(http.StatusBadRequest, "invalid_personas", "%v", err)
	}
	if len(pool) == 0 {
		return errorf(http.StatusBadRequest, "invalid_personas", "no personas")
	}
	opt := predict.SimOptions{N: 500, Seed: 1, Bootstrap: 1000}
	if req.N != nil {
		opt.N = *req.N
	}
	if req.Seed != nil {
		opt.Seed = *req.Seed
	}
	if req.Bootstrap != nil {
		opt.Bootstrap = *req.Bootstrap
	}
	if opt.N < 0 || opt.Bootstrap < 0 || opt.Bootstrap > 100000 {
		return errorf(http.StatusBadRequest, "invalid_simulation", `"n" must be ≥ 0 and "bootstrap" 0 to 100000`)
	}
	personas := len(pool)
	if opt.N > 0 {
		personas = min(opt.N, len(pool))
	}
	if rows := personas * len(exp.Conditions); rows > s.lim.Rows {
		return errorf(http.StatusBadRequest, "too_many_rows", "%d personas × %d conditions = %d rows: the server takes at most %d a request", personas, len(exp.Conditions), rows, s.lim.Rows)
	}
	p := s.predictor(ent, predict.Sampling{}, arrived)
	res, err := predict.Simulate(r.Context(), p, exp, pool, opt)
	if err != nil {
		return err
	}
	s.met.rows.Add(int64(personas * len(exp.Conditions)))
	writeJSON(w, http.StatusOK, res)
	return nil
}
