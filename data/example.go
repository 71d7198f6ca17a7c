// Package data reads SocSci210 and LLaMA-Factory style training files,
// renders personas and prompts, parses answer options and responses, makes
// seeded splits and DPO contrastive pairs, and computes the paper's
// distributional and individual metrics.
//
// Every record remembers the file and 1-based line it came from, so any
// later error can point at the input that caused it.
//
// Entry points: ReadSFT / ReadSocSci / ReadSocSciParquet / ReadPairs read
// files into Examples; SampleRows and SamplePersonas return the bundled
// SocSci210 sample; Persona.Render and BuildPrompt write prompts;
// ParseOptions, ParseResponse and Question read the answer format, the
// answer and the outcome question; Split and the mapping readers make
// splits; ContrastivePairs makes DPO pairs; Evaluate scores predictions.
package data

import (
	"encoding/json"
	"fmt"
)

// Format names the layout of a JSONL record.
type Format int

// Record layouts understood by the readers.
const (
	FormatAuto       Format = iota // detect from the first record of each file
	FormatAlpaca                   // instruction, input, output, system, history
	FormatPrompt                   // prompt, completion
	FormatChat                     // messages: [{role, content}]
	FormatPreference               // prompt|messages, chosen, rejected
	FormatSocSci                   // native SocSci210 rows (sample_id, participant, ...)
)

var formatNames = [...]string{"auto", "alpaca", "prompt", "chat", "preference", "socsci210"}

// String returns the short name of the format.
func (f Format) String() string {
	if f < 0 || int(f) >= len(formatNames) {
		return fmt.Sprintf("Format(%d)", int(f))
	}
	return formatNames[f]
}

// Message is one chat turn.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// DefaultInstruction is the system-style instruction every SocSci210 alpaca
// row carries; native rows get it too so both layouts produce the same text.
const DefaultInstruction = "You are a behavioral prediction model. Given demographic information about a participant and an experimental scenario, predict how they would respond."

// Example is one training or evaluation record, whatever its file layout.
// Alpaca rows fill Instruction/Input/Output; prompt/completion rows fill
// Input/Output; chat rows fill Messages (the last assistant turn is also
// copied to Output); preference rows also fill Chosen/Rejected.
type Example struct {
	File   string `json:"file,omitempty"` // source file
	Line   int    `json:"line,omitempty"` // 1-based line (or line where the record starts)
	Format Format `json:"format"`

	System      string      `json:"system,omitempty"`
	Instruction string      `json:"instruction,omitempty"`
	Input       string      `json:"input,omitempty"`
	Output      string      `json:"output,omitempty"`
	History     [][2]string `json:"history,omitempty"` // earlier (user, assistant) turns
	Messages    []Message   `json:"messages,omitempty"`
	Chosen      string      `json:"chosen,omitempty"`
	Rejected    string      `json:"rejected,omitempty"`

	// SocSci210 identifiers. TaskNum and Participant are -1 when unknown
	// (alpaca rows carry neither).
	StudyID      string   `json:"study_id,omitempty"`
	ConditionNum int      `json:"condition_num"`
	TaskNum      int      `json:"task_num"`
	Participant  int      `json:"participant"`
	SampleID     string   `json:"sample_id,omitempty"`
	Persona      *Persona `json:"demographic,omitempty"` // native rows only
	Stimuli      string   `json:"stimuli,omitempty"`
	Reasoning    string   `json:"reasoning,omitempty"`
	Response     float64  `json:"response"`     // numeric answer when HasResponse
	HasResponse  bool     `json:"has_response"` // Response was given or parsed from Output

	// Extra keeps every input field this package does not interpret,
	// verbatim, so outputs can echo them.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

// Where returns "file:line" for error messages.
func (e *Example) Where() string { return fmt.Sprintf("%s:%d", e.File, e.Line) }

// UserText is the user turn LLaMA-Factory builds from an alpaca row:
// instruction, a newline, then input (either may be empty).
func (e *Example) UserText() string {
	switch {
	case e.Instruction == "":
		return e.Input
	case e.Input == "":
		return e.Instruction
	}
	return e.Instruction + "\n" + e.Input
}

// Conversation returns the whole dialogue ending with the assistant target
// (Output): system (if any), history turns, the user turn, the answer.
func (e *Example) Conversation() []Message {
	if e.Format == FormatChat || (len(e.Messages) > 0 && e.Instruction == "" && e.Input == "") {
		return append([]Message(nil), e.Messages...)
	}
	var m []Message
	if e.System != "" {
		m = append(m, Message{"system", e.System})
	}
	for _, h := range e.History {
		m = append(m, Message{"user", h[0]}, Message{"assistant", h[1]})
	}
	return append(m, Message{"user", e.UserText()}, Message{"assistant", e.Output})
}

// Prompt returns Conversation without its final assistant turn.
func (e *Example) Prompt() []Message {
	c := e.Conversation()
	if n := len(c); n > 0 && c[n-1].Role == "assistant" {
		c = c[:n-1]
	}
	return c
}

// LineError is a bad input record: the file, its 1-based line and why.
type LineError struct {
	File string
	Line int
	Err  error
}

// Error formats as "data: file:line: reason".
func (e *LineError) Error() string { return fmt.Sprintf("data: %s:%d: %v", e.File, e.Line, e.Err) }

// Unwrap returns the underlying cause.
func (e *LineError) Unwrap() error { return e.Err }

// MarshalText writes the format's name, so JSON shows "alpaca", not 1.
func (f Format) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads a format name written by MarshalText.
func (f *Format) UnmarshalText(b []byte) error {
	for i, n := range formatNames {
		if n == string(b) {
			*f = Format(i)
			return nil
		}
	}
	return fmt.Errorf("data: unknown format %q", b)
}

// Record returns the example as the fields of its input record (in its
// own layout), with every uninterpreted field from Extra, so a prediction
// file can echo each input row and add its own fields.
func (e *Example) Record() map[string]any {
	r := map[string]any{}
	for k, v := range e.Extra {
		r[k] = v
	}
	set := func(k string, v string) {
		if v != "" {
			r[k] = v
		}
	}
	switch e.Format {
	case FormatPrompt:
		r["prompt"], r["completion"] = e.Input, e.Output
		set("system", e.System)
	case FormatChat:
		r["messages"] = e.Messages
	case FormatPreference:
		if len(e.Messages) > 0 {
			r["messages"] = e.Messages[:len(e.Messages)-1]
		} else {
			r["prompt"] = e.Input
			set("system", e.System)
		}
		r["chosen"], r["rejected"] = e.Chosen, e.Rejected
	case FormatSocSci:
		r["sample_id"], r["participant"], r["prompt"], r["response"] = e.SampleID, e.Participant, e.Input, e.Response
		r["stimuli"], r["reasoning"], r["task_num"] = e.Stimuli, e.Reasoning, e.TaskNum
		if e.Persona != nil {
			r["demographic"] = e.Persona
		}
	default:
		r["instruction"], r["input"], r["output"] = e.Instruction, e.Input, e.Output
		set("system", e.System)
		if len(e.History) > 0 {
			r["history"] = e.History
		}
	}
	if e.StudyID != "" {
		r["study_id"] = e.StudyID
		r["condition_num"] = e.ConditionNum
	}
	if e.Format != FormatSocSci {
		if e.TaskNum >= 0 {
			r["task_num"] = e.TaskNum
		}
		if e.Participant >= 0 {
			r["participant"] = e.Participant
		}
	}
	return r
}
