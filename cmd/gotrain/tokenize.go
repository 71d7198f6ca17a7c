package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/tokenize"
)

// runTokenize encodes stdin to token ids, one JSON value a line: a string
// (or with --chat an array of {"role","content"} messages) in, an array of
// ids out; with --decode an array of ids in, a string out.
func runTokenize(args []string) error {
	fs := newFlags("tokenize", "--tokenizer DIR [--chat [--template NAME] [--gen]] [--decode] [--special] < in.jsonl")
	dir := fs.String("tokenizer", "", "checkpoint or tokenizer directory (tokenizer.json or tokenizer.model), or a bundled name: qwen2.5, qwen3, llama3")
	chat := fs.Bool("chat", false, "input lines are JSON arrays of {\"role\",\"content\"} messages, rendered with the chat template")
	chatf := addChatFlags(fs, tokenize.ChatTemplateNames+"|none")
	gen := fs.Bool("gen", false, "with --chat, append the assistant generation prompt")
	decode := fs.Bool("decode", false, "input lines are JSON arrays of ids; output the decoded text as JSON strings")
	special := fs.Bool("special", false, "add the post-processor's special tokens (BOS) when encoding plain text")
	maxLine := addMaxLineFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("--tokenizer is required and no positional arguments are accepted")
	}
	tok, err := loadTokenizer(*dir)
	if err != nil {
		return err
	}
	var tp *tokenize.Template
	if *chat {
		if tp, err = chatf.load(tok); err != nil {
			return err
		}
	}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	for line := 1; ; line++ {
		b, long, err := data.ReadLine(in, *maxLine)
		if long {
			out.Flush()
			return fmt.Errorf("stdin line %d: %w", line, data.LineTooLong(*maxLine))
		}
		if len(bytes.TrimSpace(b)) > 0 {
			res, perr := tokenizeLine(tok, tp, b, *decode, *special, *gen)
			if perr != nil {
				out.Flush() // keep the lines before the bad one
				return fmt.Errorf("stdin line %d: %w", line, perr)
			}
			out.Write(res)
			out.WriteByte('\n')
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			out.Flush()
			return fmt.Errorf("stdin line %d: %w", line, err)
		}
	}
	return out.Flush()
}

// loadTokenizer loads dir, or the bundled tokenizer of that name when no
// such directory exists.
func loadTokenizer(dir string) (*tokenize.Tokenizer, error) {
	if _, err := os.Stat(dir); err != nil {
		for _, n := range tokenize.BundledNames {
			if n == dir {
				return tokenize.LoadBundled(n)
			}
		}
	}
	return tokenize.Load(dir)
}

// tokenizeLine converts one input line to its output JSON.
func tokenizeLine(tok *tokenize.Tokenizer, tp *tokenize.Template, b []byte, decode, special, gen bool) ([]byte, error) {
	switch {
	case decode:
		var ids []int
		if err := json.Unmarshal(b, &ids); err != nil {
			return nil, fmt.Errorf("want a JSON array of token ids: %w", err)
		}
		for i, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				return nil, fmt.Errorf("id %d at index %d is outside the vocabulary [0, %d)", id, i, tok.VocabSize())
			}
		}
		return json.Marshal(tok.Decode(ids))
	case tp != nil:
		var msgs []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		}
		if err := json.Unmarshal(b, &msgs); err != nil {
			return nil, fmt.Errorf("want a JSON array of {\"role\",\"content\"} messages: %w", err)
		}
		conv := make([]tokenize.Message, len(msgs))
		for i, m := range msgs {
			conv[i] = tokenize.Message{Role: m.Role, Content: m.Content}
		}
		ids, _, err := tok.EncodeChat(tp, conv, gen)
		if err != nil {
			return nil, err
		}
		return appendIDs(nil, ids), nil
	default:
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("want a JSON string: %w", err)
		}
		var ids []int
		if special {
			ids = tok.EncodeSpecial(s)
		} else {
			ids = tok.Encode(s)
		}
		if err := tok.Err(); err != nil {
			return nil, err
		}
		return appendIDs(nil, ids), nil
	}
}

// appendIDs writes ids as a JSON array.
func appendIDs(b []byte, ids []int) []byte {
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(id), 10)
	}
	return append(b, ']')
}
