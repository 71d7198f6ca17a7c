package tokenize

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
)

// llama3Specials are the 256 special tokens Meta's Llama 3 tokenizer.py
// appends after the 128,000 BPE ranks.
func llama3Specials() []string {
	s := []string{
		"<|begin_of_text|>",
		"<|end_of_text|>",
		"<|reserved_special_token_0|>",
		"<|reserved_special_token_1|>",
		"<|reserved_special_token_2|>",
		"<|reserved_special_token_3|>",
		"<|start_header_id|>",
		"<|end_header_id|>",
		"<|reserved_special_token_4|>",
		"<|eot_id|>",
	}
	for i := 5; i < 256-5; i++ {
		s = append(s, "<|reserved_special_token_"+strconv.Itoa(i)+"|>")
	}
	return s
}

// parseTiktoken reads Meta's Llama 3 tokenizer.model: one "base64(token)
// rank" a line, rank = id. Merges are implied by ranks (tiktoken merges the
// adjacent pair whose concatenation has the lowest rank), so every split of
// a token into two vocab tokens becomes a merge rule with the token's rank.
// The pre-tokenizer is Llama 3's pattern and the special tokens are Llama
// 3's, with <|begin_of_text|> as BOS; without a tokenizer_config.json the
// chat template is Llama 3's.
func parseTiktoken(data []byte) (*Tokenizer, error) {
	t := &Tokenizer{vocab: make(map[string]int32), ignoreMerges: true}
	line := 0
	for len(data) > 0 {
		line++
		var l []byte
		l, data, _ = bytes.Cut(data, []byte("\n"))
		l = bytes.TrimRight(l, "\r")
		if len(l) == 0 {
			continue
		}
		b64, rankStr, ok := bytes.Cut(l, []byte(" "))
		if !ok {
			return nil, fmt.Errorf("line %d: want \"base64 rank\"", line)
		}
		tok, err := base64.StdEncoding.DecodeString(string(b64))
		if err != nil || len(tok) == 0 {
			return nil, fmt.Errorf("line %d: bad base64 token %q", line, b64)
		}
		rank, err := strconv.Atoi(string(rankStr))
		if err != nil || rank < 0 || rank > maxTokenID {
			return nil, fmt.Errorf("line %d: bad rank %q", line, rankStr)
		}
		if _, dup := t.vocab[string(tok)]; dup {
			return nil, fmt.Errorf("line %d: duplicate token", line)
		}
		t.vocab[string(tok)] = int32(rank)
		for len(t.pieces) <= rank {
			t.pieces = append(t.pieces, "")
		}
		t.pieces[rank] = string(tok)
	}
	if len(t.vocab) == 0 {
		return nil, errors.New("empty tokenizer.model")
	}
	for b := 0; b < 256; b++ {
		id, ok := t.vocab[string([]byte{byte(b)})]
		if !ok {
			return nil, fmt.Errorf("no token for byte 0x%02x", b)
		}
		t.byteIDs[b] = id
	}
	t.merges = make(map[uint64]merge)
	for tok, id := range t.vocab {
		for k := 1; k < len(tok); k++ {
			a, okA := t.vocab[tok[:k]]
			b, okB := t.vocab[tok[k:]]
			if okA && okB {
				t.merges[pairKey(a, b)] = merge{rank: id, id: id}
			}
		}
	}
	t.addedIDs = make(map[string]int)
	base := len(t.pieces)
	var list []addedToken
	for i, s := range llama3Specials() {
		id := base + i
		t.pieces = append(t.pieces, s)
		t.addedIDs[s] = id
		list = append(list, addedToken{content: s, id: id})
	}
	t.finishAdded(list)
	sp, err := splitterFor(llama3Pattern)
	if err != nil {
		return nil, err
	}
	t.stages = []stage{{split: sp}}
	t.prefix = []int{t.addedIDs["<|begin_of_text|>"]}
	t.bosToken = "<|begin_of_text|>"
	t.eosToken = "<|end_of_text|>"
	t.defaultChat = "llama3"
	return t, nil
}
