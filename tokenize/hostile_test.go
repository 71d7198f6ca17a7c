package tokenize

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestSplitPatternTimeout: a backtracking Split pattern fails within
// seconds with an error naming the pattern, instead of hanging.
func TestSplitPatternTimeout(t *testing.T) {
	vocab := map[string]any{}
	for b := 0; b < 256; b++ {
		vocab[toByteLevel(string([]byte{byte(b)}))] = b
	}
	data, _ := json.Marshal(map[string]any{
		"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{}},
		"pre_tokenizer": map[string]any{"type": "Split", "pattern": map[string]any{"Regex": "(a+)+$"}, "behavior": "Isolated"},
	})
	tok, err := parseJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Encode("aab"); tok.Err() != nil {
		t.Fatalf("short input: %v", tok.Err())
	}
	start := time.Now()
	tok.Encode(strings.Repeat("a", 5000) + "b")
	err = tok.Err()
	if err == nil || !strings.Contains(err.Error(), "(a+)+$") {
		t.Fatalf("err %v, want one naming the pattern", err)
	}
	if d := time.Since(start); d > 3*splitTimeout {
		t.Errorf("took %v", d)
	}
	if _, _, err := tok.EncodeChat(&Template{}, nil, false); err == nil {
		t.Error("EncodeChat after a timeout: no error")
	}
	t.Log(err)
}

// TestHostileTokenizerJSON: ids and sizes at the int64 extremes are refused
// or handled without a huge allocation.
func TestHostileTokenizerJSON(t *testing.T) {
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[toByteLevel(string([]byte{byte(b)}))] = b + 1
	}
	vb, _ := json.Marshal(vocab)
	bytesVocab := string(vb[1 : len(vb)-1])
	for _, doc := range []string{
		`{"model":{"type":"BPE","vocab":{"a":9223372036854775807},"merges":[]}}`,
		`{"model":{"type":"BPE","vocab":{"a":4611686018427387904},"merges":[]}}`,
		`{"model":{"type":"BPE","vocab":{"a":-1},"merges":[]}}`,
		`{"model":{"type":"BPE","vocab":{"a":0,BYTES},"merges":[]},"added_tokens":[{"id":9223372036854775807,"content":"x"}]}`,
		`{"model":{"type":"BPE","vocab":{"a":0,BYTES},"merges":[]},"added_tokens":[{"id":-9223372036854775808,"content":"x"}]}`,
		`{"model":{"type":"BPE","vocab":{"a":0,BYTES},"merges":[]},"added_tokens":[{"id":1,"content":""}]}`,
		`{"model":{"type":"BPE","vocab":{"a":0,BYTES},"merges":[]},"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"s"}}],"special_tokens":{"s":{"ids":[9223372036854775807]}}}}`,
		`{"model":{"type":"BPE","vocab":{"a":0,"a":1},"merges":[]}}`,
	} {
		doc = strings.ReplaceAll(doc, "BYTES", bytesVocab)
		done := make(chan struct{})
		go func() {
			defer close(done)
			tok, err := parseJSON([]byte(doc))
			if err == nil {
				tok.Decode(tok.EncodeSpecial("a x"))
				tok.Decode([]int{-1, 1 << 40})
			}
			t.Logf("%.200s: %v", doc, err)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: hangs", doc)
		}
	}
}
