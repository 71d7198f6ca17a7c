package tokenize

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Message is one chat turn; Role is "system", "user" or "assistant".
type Message struct{ Role, Content string }

// Span is the token index range [Start, End) of an assistant turn's content
// plus its end-of-turn token, the part of a conversation training learns.
type Span struct{ Start, End int }

// Template is a recognised chat template, rendered in Go rather than by a
// Jinja engine. It reproduces the real template's output for plain system,
// user and assistant messages (no tools).
type Template struct {
	// Name is "qwen2.5", "qwen3", "llama3", "llama3.1", one of the [INST]
	// templates of Llama 2 and Mistral ("llama2", "mistral", "mistral-v3",
	// "mistral-v3-last", "mistral-v0.1", "mixtral") or "none".
	Name string
	// Thinking is Qwen3's enable_thinking (other templates ignore it). Off
	// (false, the default here), the generation prompt ends in the empty
	// think block "<think>\n\n</think>\n\n" that the template renders for
	// enable_thinking=false, and training treats the empty think block of a
	// final assistant turn as prompt, not as tokens to learn: the model
	// learns what prediction then scores. On, the generation prompt leaves
	// the model to open its reasoning, and a final turn's think block
	// (empty or not) is learned.
	Thinking bool
	// alwaysGen adds the generation prompt even when not asked, as the Llama 3
	// template of some tokenizer_config.json files does.
	alwaysGen bool
	// bos and eos are the bos_token and eos_token the [INST] templates
	// write ("<s>" and "</s>" when empty).
	bos, eos string
}

// qwen3EmptyThink is the think block Qwen3's template renders for a final
// assistant turn without reasoning, and after the generation prompt when
// enable_thinking is false.
const qwen3EmptyThink = "<think>\n\n</think>\n\n"

// ChatTemplateNames lists the chat templates by name, for flag help.
const ChatTemplateNames = "qwen2.5|qwen3|llama3|llama3.1|" + instNames

// Template names accepted by ChatTemplate.
const templateNames = ChatTemplateNames + "|none"

const qwenDefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

// ChatTemplate returns the named template, or with name "" the template
// recognised from tokenizer_config.json's chat_template (or
// chat_template.jinja). "llama3" is Meta's Llama 3 template; "llama3.1" is
// Meta's Llama 3.1 template with its "Cutting Knowledge Date" system
// preamble; "llama2" and the "mistral" names are the [INST] templates of
// Llama 2 chat and Mistral 7B Instruct (see instFormats); "none"
// concatenates the contents.
func (t *Tokenizer) ChatTemplate(name string) (*Template, error) {
	var tp *Template
	switch _, inst := instFormats[name]; {
	case inst, name == "qwen2.5", name == "qwen3", name == "llama3", name == "llama3.1", name == "none":
		tp = &Template{Name: name}
	case name == "" && t.chatTemplate == "" && t.defaultChat != "":
		tp = &Template{Name: t.defaultChat}
	case name == "":
		var err error
		if tp, err = detectTemplate(t.chatTemplate); err != nil {
			src := t.templateFile
			if src == "" {
				src = t.path
			}
			if src != "" {
				return nil, fmt.Errorf("%w (%s)", err, src)
			}
			return nil, err
		}
	default:
		return nil, fmt.Errorf("tokenize: unknown chat template %q (want %s)", name, templateNames)
	}
	tp.bos, tp.eos = t.bosToken, t.eosToken
	return tp, nil
}

// detectTemplate recognises a Jinja chat template: the [INST] templates by
// their whole text, the others by distinctive substrings.
func detectTemplate(src string) (*Template, error) {
	if name, ok := instCanon[canonTemplate(src)]; ok {
		return &Template{Name: name}, nil
	}
	switch {
	case src == "":
		return nil, fmt.Errorf("tokenize: the tokenizer has no chat template; pass --template %s", templateNames)
	case strings.Contains(src, "<|im_start|>") && strings.Contains(src, qwenDefaultSystem):
		return &Template{Name: "qwen2.5"}, nil
	case strings.Contains(src, "<|im_start|>") && strings.Contains(src, "</think>") && strings.Contains(src, "enable_thinking"):
		return &Template{Name: "qwen3"}, nil
	case strings.Contains(src, "<|im_start|>") && strings.Contains(src, "</think>"):
		// Qwen3-2507's Instruct and Thinking templates drop enable_thinking and
		// render think blocks their own way: not rendered as Qwen3's guessingly.
		return nil, fmt.Errorf("tokenize: a Qwen3-style chat template without enable_thinking (Qwen3-2507?) is not recognised; pass --template qwen3 (with --thinking for a generation prompt without the empty think block) if it renders as Qwen3's")
	case strings.Contains(src, "[INST]"):
		return nil, fmt.Errorf("tokenize: an [INST] chat template that is not one of Llama 2's or Mistral's known ones; pass --template %s if it renders as one of them", instNames)
	case strings.Contains(src, "<|start_header_id|>") && strings.Contains(src, "Cutting Knowledge Date"):
		return &Template{Name: "llama3.1"}, nil
	case strings.Contains(src, "<|start_header_id|>") && strings.Contains(src, "<|eot_id|>"):
		return &Template{Name: "llama3", alwaysGen: !strings.Contains(src, "add_generation_prompt")}, nil
	}
	return nil, fmt.Errorf("tokenize: unrecognised chat template; pass --template %s", templateNames)
}

// Render returns the conversation as the template formats it, followed by
// the assistant header when addGenerationPrompt is set (the [INST]
// templates have none: their user turn ends in [/INST]). It fails where
// the real template raises an exception (roles out of turn).
func (tp *Template) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	s, _, err := tp.render(msgs, addGenerationPrompt)
	return s, err
}

// byteSpan is a byte range of rendered text.
type byteSpan struct{ start, end int }

// render returns the text and the byte range of each assistant turn's
// content plus end-of-turn token.
func (tp *Template) render(msgs []Message, gen bool) (string, []byteSpan, error) {
	var b strings.Builder
	var spans []byteSpan
	// assistant writes the content then the end-of-turn marker as a span.
	assistant := func(content, eot string) {
		s := b.Len()
		b.WriteString(content)
		b.WriteString(eot)
		spans = append(spans, byteSpan{s, b.Len()})
	}
	if _, ok := instFormats[tp.Name]; ok {
		if err := tp.renderInst(msgs, &b, assistant); err != nil {
			return "", nil, err
		}
		return b.String(), spans, nil
	}
	switch tp.Name {
	case "qwen2.5", "qwen3":
		first := 0
		if len(msgs) > 0 && msgs[0].Role == "system" {
			b.WriteString("<|im_start|>system\n" + msgs[0].Content + "<|im_end|>\n")
			first = 1
		} else if tp.Name == "qwen2.5" {
			b.WriteString("<|im_start|>system\n" + qwenDefaultSystem + "<|im_end|>\n")
		}
		lastQuery := qwen3LastQuery(msgs)
		for i := first; i < len(msgs); i++ {
			m := msgs[i]
			if m.Role != "assistant" {
				b.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
				continue
			}
			b.WriteString("<|im_start|>assistant\n")
			content := m.Content
			if tp.Name == "qwen3" {
				var think string
				think, content = qwen3Assistant(content, i > lastQuery, i == len(msgs)-1)
				if think == qwen3EmptyThink && !tp.Thinking {
					b.WriteString(think) // what the generation prompt supplies
				} else {
					content = think + content
				}
			}
			assistant(content, "<|im_end|>")
			b.WriteString("\n")
		}
		if gen {
			b.WriteString("<|im_start|>assistant\n")
			if tp.Name == "qwen3" && !tp.Thinking {
				b.WriteString(qwen3EmptyThink)
			}
		}
	case "llama3", "llama3.1":
		first := 0
		if tp.Name == "llama3.1" {
			sys := ""
			if len(msgs) > 0 && msgs[0].Role == "system" {
				sys = jinjaTrim(msgs[0].Content)
				first = 1
			}
			b.WriteString("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" +
				"Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" + sys + "<|eot_id|>")
		}
		for i := first; i < len(msgs); i++ {
			m := msgs[i]
			if i == 0 && tp.Name == "llama3" {
				b.WriteString("<|begin_of_text|>")
			}
			b.WriteString("<|start_header_id|>" + m.Role + "<|end_header_id|>\n\n")
			if m.Role == "assistant" {
				assistant(jinjaTrim(m.Content), "<|eot_id|>")
			} else {
				b.WriteString(jinjaTrim(m.Content) + "<|eot_id|>")
			}
		}
		if gen || tp.alwaysGen {
			b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
		}
	default: // "none": contents back to back
		for _, m := range msgs {
			if m.Role == "assistant" {
				assistant(m.Content, "")
			} else {
				b.WriteString(m.Content)
			}
		}
	}
	return b.String(), spans, nil
}

// qwen3LastQuery is the index of the last user message that is not a tool
// response (the template's ns.last_query_index).
func qwen3LastQuery(msgs []Message) int {
	for i := len(msgs) - 1; i >= 0; i-- {
		c := msgs[i].Content
		if msgs[i].Role == "user" && !(strings.HasPrefix(c, "<tool_response>") && strings.HasSuffix(c, "</tool_response>")) {
			return i
		}
	}
	return len(msgs) - 1
}

// qwen3Assistant formats an assistant message as Qwen3's template does:
// reasoning in <think>...</think> is split off, and turns after the last
// user query keep (or get an empty) think block, returned apart.
func qwen3Assistant(content string, afterQuery, last bool) (think, rest string) {
	reasoning := ""
	if strings.Contains(content, "</think>") {
		parts := strings.Split(content, "</think>")
		before := strings.TrimRight(parts[0], "\n")
		think := strings.Split(before, "<think>")
		reasoning = strings.TrimLeft(think[len(think)-1], "\n")
		content = strings.TrimLeft(parts[len(parts)-1], "\n")
	}
	if afterQuery && (last || reasoning != "") {
		return "<think>\n" + strings.Trim(reasoning, "\n") + "\n</think>\n\n", strings.TrimLeft(content, "\n")
	}
	return "", content
}

// jinjaTrim is Jinja's trim filter: strip leading and trailing whitespace.
func jinjaTrim(s string) string { return strings.TrimFunc(s, unicode.IsSpace) }

// EncodeChat renders msgs with tp and tokenizes the result. assistant holds
// the token range of each assistant turn's content and end-of-turn token;
// training masks every other position.
func (t *Tokenizer) EncodeChat(tp *Template, msgs []Message, addGenerationPrompt bool) (ids []int, assistant []Span, err error) {
	if tp == nil {
		return nil, nil, errors.New("tokenize: EncodeChat: nil template")
	}
	norm := make([]Message, len(msgs))
	for i, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return nil, nil, fmt.Errorf("tokenize: message %d: role %q is not supported (want system, user or assistant)", i, m.Role)
		}
		// Normalize contents up front so the tokens' bytes line up with the
		// rendered text and spans can be found by byte offset.
		c := m.Content
		for _, f := range t.norms {
			c = f.String(c)
		}
		norm[i] = Message{m.Role, c}
	}
	text, spans, err := tp.render(norm, addGenerationPrompt)
	if err != nil {
		return nil, nil, err
	}
	// ends[k] is the byte offset in text where token k ends.
	var ends []int
	if t.spm != nil {
		if ids, ends, err = t.encodeEnds(text); err != nil {
			return nil, nil, err
		}
	} else {
		ids = t.Encode(text)
		if err := t.Err(); err != nil {
			return nil, nil, err
		}
		ends = make([]int, len(ids))
		off := 0
		for k, id := range ids {
			off += len(t.pieces[id])
			ends[k] = off
		}
		if off != len(text) {
			return nil, nil, errors.New("tokenize: EncodeChat: normalization changed the rendered text at a turn boundary")
		}
	}
	// A token belongs to the span if it ends inside it (a token across the
	// span's start counts as the reply's) and starts before its end. A
	// zero-width token (the "▁" a SentencePiece normalizer prepends after a
	// special token) belongs to the text after it.
	startOf := func(k int) int {
		if k == 0 {
			return 0
		}
		return ends[k-1]
	}
	k := 0
	for _, s := range spans {
		for k < len(ids) && (ends[k] < s.start || ends[k] == s.start && startOf(k) < s.start) {
			k++
		}
		start := k
		for k < len(ids) && startOf(k) < s.end && ends[k] <= s.end {
			k++
		}
		assistant = append(assistant, Span{start, k})
	}
	return ids, assistant, nil
}
