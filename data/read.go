package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// ReadOptions controls the readers.
type ReadOptions struct {
	// Format forces a layout; FormatAuto detects it from the first record of
	// each file and then holds every line of that file to it.
	Format Format
	// SkipBad collects bad lines (in Report) and keeps going instead of
	// failing on the first one. Broken JSON inside a JSON array file stays
	// fatal because the decoder cannot resynchronise.
	SkipBad bool
	// Report, if non-nil, receives what was read and skipped.
	Report *ReadReport
}

// ReadReport describes one read.
type ReadReport struct {
	Format  Format       // detected (or forced) layout
	Records int          // records returned
	Skipped []*LineError // bad lines skipped under SkipBad
}

// ReadSFT reads a training file: JSONL or a JSON array, optionally gzip
// compressed, in any layout of Format (detected per file unless forced),
// or a ".parquet" file of native SocSci210 rows. Preference records come
// back with Output = Chosen.
func ReadSFT(path string, opt ReadOptions) ([]Example, error) {
	if strings.HasSuffix(strings.ToLower(path), ".parquet") {
		return ReadSocSciParquet(path, opt)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	return ReadSFTFrom(f, path, opt)
}

// ReadSocSci reads native SocSci210 rows (JSONL or Parquet with sample_id,
// participant, demographic, stimuli, prompt, reasoning, response,
// condition_num, task_num, study_id).
func ReadSocSci(path string, opt ReadOptions) ([]Example, error) {
	opt.Format = FormatSocSci
	if strings.HasSuffix(strings.ToLower(path), ".parquet") {
		return ReadSocSciParquet(path, opt)
	}
	return ReadSFT(path, opt)
}

// ReadPairs reads an explicit preference file ({"prompt","chosen","rejected"}
// or messages + chosen/rejected) into pairs.
func ReadPairs(path string, opt ReadOptions) ([]Pair, error) {
	opt.Format = FormatPreference
	ex, err := ReadSFT(path, opt)
	if err != nil {
		return nil, err
	}
	pairs := make([]Pair, len(ex))
	for i, e := range ex {
		pairs[i] = Pair{Example: e, Chosen: e.Chosen, Rejected: e.Rejected}
		pairs[i].ChosenValue, _ = ParseResponse(e.Chosen)
		pairs[i].RejectedValue, _ = ParseResponse(e.Rejected)
	}
	return pairs, nil
}

// ReadSFTFrom is ReadSFT on an open stream; name is used in errors.
func ReadSFTFrom(r io.Reader, name string, opt ReadOptions) ([]Example, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("data: %s: %w", name, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 1<<16)
	}
	rd := &reader{name: name, opt: opt, format: opt.Format}
	if opt.Report != nil {
		*opt.Report = ReadReport{}
	}
	var out []Example
	var err error
	if first, _ := peekNonSpace(br); first == '[' {
		out, err = rd.readArray(br)
	} else {
		out, err = rd.readLines(br)
	}
	if opt.Report != nil {
		opt.Report.Format = rd.format
		opt.Report.Records = len(out)
		opt.Report.Skipped = rd.skipped
	}
	return out, err
}

// peekNonSpace returns the first byte that is not whitespace or a BOM,
// without consuming anything.
func peekNonSpace(br *bufio.Reader) (byte, bool) {
	for n := 1; n <= 4096; n++ {
		b, _ := br.Peek(n)
		if len(b) < n {
			return 0, false
		}
		c := b[n-1]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0xef || c == 0xbb || c == 0xbf {
			continue
		}
		return c, true
	}
	return 0, false
}

type reader struct {
	name    string
	opt     ReadOptions
	format  Format
	skipped []*LineError
}

// bad records a bad line; it returns a non-nil error when reading must stop.
func (rd *reader) bad(line int, err error) error {
	le := &LineError{File: rd.name, Line: line, Err: err}
	if !rd.opt.SkipBad {
		return le
	}
	rd.skipped = append(rd.skipped, le)
	return nil
}

func (rd *reader) readLines(br *bufio.Reader) ([]Example, error) {
	var out []Example
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return out, fmt.Errorf("data: %s:%d: %w", rd.name, line, err)
		}
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		}
		if t := bytes.TrimSpace(b); len(t) > 0 {
			ex, perr := rd.parse(t, line)
			if perr != nil {
				if stop := rd.bad(line, perr); stop != nil {
					return out, stop
				}
			} else {
				out = append(out, ex)
			}
		}
		if err == io.EOF {
			return out, nil
		}
	}
}

// readArray reads a JSON array of records; line numbers are those where
// each element starts.
func (rd *reader) readArray(br *bufio.Reader) ([]Example, error) {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, br); err != nil {
		return nil, fmt.Errorf("data: %s: %w", rd.name, err)
	}
	src := bytes.TrimPrefix(buf.Bytes(), []byte("\xef\xbb\xbf"))
	lineAt := func(off int64) int {
		for off < int64(len(src)) && (src[off] == ' ' || src[off] == '\t' || src[off] == '\r' || src[off] == '\n' || src[off] == ',') {
			off++
		}
		if off > int64(len(src)) {
			off = int64(len(src))
		}
		return 1 + bytes.Count(src[:off], []byte{'\n'})
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	if _, err := dec.Token(); err != nil { // '['
		return nil, &LineError{rd.name, 1, err}
	}
	var out []Example
	for dec.More() {
		line := lineAt(dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return out, &LineError{rd.name, line, fmt.Errorf("invalid JSON: %w", err)}
		}
		ex, err := rd.parse(raw, line)
		if err != nil {
			if stop := rd.bad(line, err); stop != nil {
				return out, stop
			}
			continue
		}
		out = append(out, ex)
	}
	if _, err := dec.Token(); err != nil { // ']'
		return out, &LineError{rd.name, lineAt(dec.InputOffset()), fmt.Errorf("invalid JSON: %w", err)}
	}
	return out, nil
}

// fields is one decoded JSON object; get* methods delete what they consume
// so the rest can go to Example.Extra.
type fields map[string]json.RawMessage

func (rd *reader) parse(b []byte, line int) (Example, error) {
	var m fields
	if err := json.Unmarshal(b, &m); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return Example{}, fmt.Errorf("record is a JSON %s, want an object", ute.Value)
		}
		return Example{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if m == nil {
		return Example{}, errors.New("record is null, want an object")
	}
	if rd.format == FormatAuto {
		f, err := detect(m)
		if err != nil {
			return Example{}, err
		}
		rd.format = f
	}
	ex := Example{File: rd.name, Line: line, Format: rd.format, TaskNum: -1, Participant: -1}
	var err error
	switch rd.format {
	case FormatAlpaca:
		err = m.alpaca(&ex)
	case FormatPrompt:
		err = m.promptCompletion(&ex)
	case FormatChat:
		err = m.chat(&ex)
	case FormatPreference:
		err = m.preference(&ex)
	case FormatSocSci:
		err = m.socsci(&ex)
	default:
		err = fmt.Errorf("unknown format %v", rd.format)
	}
	if err != nil {
		return Example{}, err
	}
	// Given options win over the text's, so a bad list must not pass
	// silently for the text's.
	if raw, ok := m["options"]; ok && !isNull(raw) {
		if _, err := ParseOptionsField(raw); err != nil {
			return Example{}, fmt.Errorf(`field "options": %w`, err)
		}
	}
	if len(m) > 0 {
		ex.Extra = map[string]json.RawMessage(m)
	}
	return ex, nil
}

// detect picks a layout from the keys of the first record.
func detect(m fields) (Format, error) {
	has := func(k string) bool { _, ok := m[k]; return ok }
	switch {
	case has("chosen") && has("rejected"):
		return FormatPreference, nil
	case has("messages"):
		return FormatChat, nil
	case has("sample_id") || has("stimuli") || (has("participant") && has("response")):
		return FormatSocSci, nil
	case has("completion"):
		return FormatPrompt, nil
	case has("instruction") || has("output"):
		return FormatAlpaca, nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return FormatAuto, fmt.Errorf("cannot detect the record layout from fields %q", keys)
}

// kind names the JSON type of a raw value for error messages.
func kind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func isNull(raw json.RawMessage) bool { return kind(raw) == "null" }

// str consumes a string field. A missing or null optional field is "".
func (m fields) str(key string, required bool) (string, error) {
	raw, ok := m[key]
	delete(m, key)
	if !ok || isNull(raw) {
		if required {
			return "", fmt.Errorf("missing field %q", key)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("field %q: want string, got %s", key, kind(raw))
	}
	return s, nil
}

// nonEmpty consumes a required string field that must have visible text.
func (m fields) nonEmpty(key string) (string, error) {
	s, err := m.str(key, true)
	if err == nil && strings.TrimSpace(s) == "" {
		err = fmt.Errorf("field %q is empty", key)
	}
	return s, err
}

// integer consumes an integral number field; def is used when it is absent.
func (m fields) integer(key string, required bool, def int) (int, error) {
	raw, ok := m[key]
	delete(m, key)
	if !ok || isNull(raw) {
		if required {
			return def, fmt.Errorf("missing field %q", key)
		}
		return def, nil
	}
	if kind(raw) != "number" {
		return def, fmt.Errorf("field %q: want integer, got %s", key, kind(raw))
	}
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return def, fmt.Errorf("field %q: want integer, got %s", key, bytes.TrimSpace(raw))
	}
	return int(f), nil
}

// number consumes a number field.
func (m fields) number(key string, required bool) (float64, bool, error) {
	raw, ok := m[key]
	delete(m, key)
	if !ok || isNull(raw) {
		if required {
			return 0, false, fmt.Errorf("missing field %q", key)
		}
		return 0, false, nil
	}
	if kind(raw) != "number" {
		return 0, false, fmt.Errorf("field %q: want number, got %s", key, kind(raw))
	}
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false, fmt.Errorf("field %q: bad number %s", key, bytes.TrimSpace(raw))
	}
	return f, true, nil
}

// id consumes an identifier that may be written as a string or a number.
func (m fields) id(key string) (string, error) {
	raw, ok := m[key]
	if ok && kind(raw) == "number" {
		delete(m, key)
		return string(bytes.TrimSpace(raw)), nil
	}
	return m.str(key, false)
}

// socsciIDs consumes the optional SocSci210 identifiers alpaca rows may carry.
func (m fields) socsciIDs(ex *Example) error {
	var err error
	if ex.StudyID, err = m.id("study_id"); err != nil {
		return err
	}
	if ex.ConditionNum, err = m.integer("condition_num", false, 0); err != nil {
		return err
	}
	if ex.TaskNum, err = m.integer("task_num", false, -1); err != nil {
		return err
	}
	if ex.Participant, err = m.integer("participant", false, -1); err != nil {
		return err
	}
	return nil
}

func (m fields) alpaca(ex *Example) error {
	var err error
	if ex.Instruction, err = m.str("instruction", false); err != nil {
		return err
	}
	if ex.Input, err = m.str("input", false); err != nil {
		return err
	}
	if strings.TrimSpace(ex.Instruction) == "" && strings.TrimSpace(ex.Input) == "" {
		return errors.New(`fields "instruction" and "input" are both missing or empty`)
	}
	if ex.Output, err = m.nonEmpty("output"); err != nil {
		return err
	}
	if ex.System, err = m.str("system", false); err != nil {
		return err
	}
	if raw, ok := m["history"]; ok && !isNull(raw) {
		delete(m, "history")
		var h [][]string
		if err := json.Unmarshal(raw, &h); err != nil {
			return fmt.Errorf(`field "history": want [[user, assistant], ...] strings, got %s`, kind(raw))
		}
		for i, t := range h {
			if len(t) != 2 {
				return fmt.Errorf(`field "history": turn %d has %d strings, want 2`, i, len(t))
			}
			ex.History = append(ex.History, [2]string{t[0], t[1]})
		}
	} else {
		delete(m, "history")
	}
	if err := m.socsciIDs(ex); err != nil {
		return err
	}
	ex.Response, ex.HasResponse = ParseResponse(ex.Output)
	return nil
}

func (m fields) promptCompletion(ex *Example) error {
	var err error
	if ex.Input, err = m.str("prompt", true); err != nil {
		return err
	}
	if ex.Output, err = m.nonEmpty("completion"); err != nil {
		return err
	}
	if ex.System, err = m.str("system", false); err != nil {
		return err
	}
	if err := m.socsciIDs(ex); err != nil {
		return err
	}
	ex.Response, ex.HasResponse = ParseResponse(ex.Output)
	return nil
}

// messages consumes a list of {role, content} turns.
func (m fields) messages(key string) ([]Message, error) {
	raw, ok := m[key]
	delete(m, key)
	if !ok || isNull(raw) {
		return nil, fmt.Errorf("missing field %q", key)
	}
	if kind(raw) != "array" {
		return nil, fmt.Errorf("field %q: want array of {role, content}, got %s", key, kind(raw))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("field %q: %w", key, err)
	}
	msgs := make([]Message, 0, len(items))
	for i, it := range items {
		var f fields
		if kind(it) != "object" || json.Unmarshal(it, &f) != nil {
			return nil, fmt.Errorf("field %q: message %d: want object, got %s", key, i, kind(it))
		}
		role, err := f.str("role", true)
		if err != nil {
			return nil, fmt.Errorf("field %q: message %d: %w", key, i, err)
		}
		switch role {
		case "system", "user", "assistant":
		default:
			return nil, fmt.Errorf("field %q: message %d: unknown role %q", key, i, role)
		}
		content, err := f.str("content", true)
		if err != nil {
			return nil, fmt.Errorf("field %q: message %d: %w", key, i, err)
		}
		msgs = append(msgs, Message{Role: role, Content: content})
	}
	return msgs, nil
}

func (m fields) chat(ex *Example) error {
	msgs, err := m.messages("messages")
	if err != nil {
		return err
	}
	users := 0
	for _, t := range msgs {
		if t.Role == "user" {
			users++
		}
		if t.Role == "system" && ex.System == "" {
			ex.System = t.Content
		}
	}
	n := len(msgs)
	if users == 0 {
		return errors.New(`field "messages": no user turn`)
	}
	if msgs[n-1].Role != "assistant" {
		return fmt.Errorf(`field "messages": last turn is %q, want "assistant"`, msgs[n-1].Role)
	}
	if strings.TrimSpace(msgs[n-1].Content) == "" {
		return errors.New(`field "messages": last assistant turn is empty`)
	}
	ex.Messages = msgs
	ex.Output = msgs[n-1].Content
	if err := m.socsciIDs(ex); err != nil {
		return err
	}
	ex.Response, ex.HasResponse = ParseResponse(ex.Output)
	return nil
}

// answer consumes chosen/rejected, written as a string or as a message list
// whose last assistant turn is the answer.
func (m fields) answer(key string) (string, error) {
	raw, ok := m[key]
	if ok && kind(raw) == "array" {
		msgs, err := m.messages(key)
		if err != nil {
			return "", err
		}
		if len(msgs) == 0 || msgs[len(msgs)-1].Role != "assistant" {
			return "", fmt.Errorf("field %q: want a final assistant turn", key)
		}
		s := msgs[len(msgs)-1].Content
		if strings.TrimSpace(s) == "" {
			return "", fmt.Errorf("field %q is empty", key)
		}
		return s, nil
	}
	return m.nonEmpty(key)
}

func (m fields) preference(ex *Example) error {
	var err error
	if _, ok := m["messages"]; ok {
		if ex.Messages, err = m.messages("messages"); err != nil {
			return err
		}
		if len(ex.Messages) == 0 {
			return errors.New(`field "messages" is empty`)
		}
		for _, t := range ex.Messages {
			if t.Role == "system" && ex.System == "" {
				ex.System = t.Content
			}
		}
	} else {
		if ex.Input, err = m.nonEmpty("prompt"); err != nil {
			return err
		}
		if ex.System, err = m.str("system", false); err != nil {
			return err
		}
	}
	if ex.Chosen, err = m.answer("chosen"); err != nil {
		return err
	}
	if ex.Rejected, err = m.answer("rejected"); err != nil {
		return err
	}
	ex.Output = ex.Chosen
	if len(ex.Messages) > 0 {
		ex.Messages = append(ex.Messages, Message{"assistant", ex.Chosen})
	}
	if err := m.socsciIDs(ex); err != nil {
		return err
	}
	ex.Response, ex.HasResponse = ParseResponse(ex.Output)
	return nil
}

func (m fields) socsci(ex *Example) error {
	var err error
	if ex.SampleID, err = m.id("sample_id"); err != nil {
		return err
	}
	if ex.StudyID, err = m.id("study_id"); err != nil {
		return err
	}
	if ex.StudyID == "" {
		return errors.New(`missing field "study_id"`)
	}
	if ex.Participant, err = m.integer("participant", true, -1); err != nil {
		return err
	}
	if ex.ConditionNum, err = m.integer("condition_num", true, 0); err != nil {
		return err
	}
	if ex.TaskNum, err = m.integer("task_num", true, -1); err != nil {
		return err
	}
	if ex.Stimuli, err = m.str("stimuli", false); err != nil {
		return err
	}
	if ex.Reasoning, err = m.str("reasoning", false); err != nil {
		return err
	}
	var prompt string
	if prompt, err = m.str("prompt", false); err != nil {
		return err
	}
	if raw, ok := m["demographic"]; ok && !isNull(raw) {
		delete(m, "demographic")
		if kind(raw) != "object" {
			return fmt.Errorf(`field "demographic": want object, got %s`, kind(raw))
		}
		var p Persona
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf(`field "demographic": %w`, err)
		}
		ex.Persona = &p
	} else {
		delete(m, "demographic")
	}
	if ex.Response, ex.HasResponse, err = m.number("response", true); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(prompt) != "":
		ex.Input = prompt
	case strings.TrimSpace(ex.Stimuli) != "" && ex.Persona != nil:
		ex.Input = BuildPrompt(ex.Persona.Render(), ex.Stimuli)
	case strings.TrimSpace(ex.Stimuli) != "":
		ex.Input = ex.Stimuli
	default:
		return errors.New(`fields "prompt" and "stimuli" are both missing or empty`)
	}
	ex.Instruction = DefaultInstruction
	ex.Output = FormatResponse(ex.Response)
	return nil
}
