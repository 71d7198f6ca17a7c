package tokenize

// The [INST] chat templates of Llama 2 and Mistral 7B, as their
// tokenizer_config.json files on the Hugging Face Hub spell them
// (templates/*.jinja). They differ in where the system message goes, the
// spaces around [INST] and the reply, and which whitespace they strip, so a
// template is recognised only when its text equals a known one (whitespace
// outside string literals aside): a near miss would tokenize differently.

import (
	"embed"
	"fmt"
	"strings"
	"unicode"
)

//go:embed templates/*.jinja
var instFS embed.FS

// instFormat is how one [INST] template renders plain chat messages.
type instFormat struct {
	bosEachUser    bool   // Llama 2: bos_token before every [INST]
	userPre        string // before a user message's content
	userPost       string // after it
	stripUser      bool   // Llama 2: content.strip()
	system         string // where a leading system message goes: "sys" (Llama 2's <<SYS>> block), "first" user, "lastuser" (the last user message, compared by value), "last" (only if the conversation ends with it), "" (refused)
	asstPre        string // before an assistant message's content
	asstPost       string // between the content and eos_token (Llama 2: " ")
	asstAfter      string // after eos_token (Mistral v0.1: " ")
	stripAsst      bool   // Llama 2's strip(), Mistral v3's trim
	dropOddSystems bool   // Llama 2 passes a later system message at an odd position silently
}

// instFormats are the [INST] templates by name, each rendering the file
// templates/<name>.jinja.
var instFormats = map[string]instFormat{
	// meta-llama/Llama-2-*-chat-hf
	"llama2": {bosEachUser: true, userPre: "[INST] ", userPost: " [/INST]", stripUser: true, system: "sys",
		asstPre: " ", asstPost: " ", stripAsst: true, dropOddSystems: true},
	// Mistral-7B-Instruct-v0.1 as first published: no system message
	"mistral-v0.1": {userPre: "[INST] ", userPost: " [/INST]", asstAfter: " "},
	// Mixtral-8x7B-Instruct-v0.1 and Mistral-7B-Instruct-v0.2 as first published
	"mixtral": {userPre: "[INST] ", userPost: " [/INST]"},
	// Mistral-7B-Instruct-v0.1 and v0.2 today (mistral_common's v1 tokenizer)
	"mistral": {userPre: " [INST] ", userPost: " [/INST]", system: "first", asstPre: " "},
	// Mistral-7B-Instruct-v0.3 (v3 tokenizer): system message on the last user message
	"mistral-v3": {userPre: "[INST] ", userPost: "[/INST]", system: "lastuser", asstPre: " ", stripAsst: true},
	// the v3 template's other revision: the system message only when the
	// conversation ends with a user message (so never in training examples)
	"mistral-v3-last": {userPre: "[INST] ", userPost: "[/INST]", system: "last", asstPre: " ", stripAsst: true},
}

// instNames lists instFormats' keys for messages.
const instNames = "llama2|mistral|mistral-v3|mistral-v3-last|mistral-v0.1|mixtral"

// instCanon maps the canonical text of each known [INST] template to its name.
var instCanon = func() map[string]string {
	m := make(map[string]string, len(instFormats))
	for name := range instFormats {
		src, err := instFS.ReadFile("templates/" + name + ".jinja")
		if err != nil {
			panic(err) // embedded: a build error
		}
		m[canonTemplate(string(src))] = name
	}
	return m
}()

// canonTemplate drops the whitespace outside string literals, which these
// templates either strip ({%- -%}) or never output, so that files differing
// only in layout are recognised alike.
func canonTemplate(s string) string {
	var b strings.Builder
	var quote rune
	esc := false
	for _, r := range s {
		switch {
		case quote != 0:
			if esc {
				esc = false
			} else if r == '\\' {
				esc = true
			} else if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case unicode.IsSpace(r):
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// renderInst renders msgs with an [INST] template, failing where the Jinja
// template raises an exception. The templates have no generation prompt:
// a conversation ending with a user message ends in [/INST] either way.
func (tp *Template) renderInst(msgs []Message, b *strings.Builder, assistant func(content, eot string)) error {
	f := instFormats[tp.Name]
	if len(msgs) == 0 {
		return fmt.Errorf("tokenize: template %s: no messages", tp.Name)
	}
	loop, sys, hasSys := msgs, "", false
	if f.system != "" && msgs[0].Role == "system" {
		loop, sys, hasSys = msgs[1:], msgs[0].Content, true
	}
	lastUser := -1
	for i, m := range loop {
		if m.Role == "user" {
			lastUser = i
		}
	}
	bos, eos := tp.bos, tp.eos
	if bos == "" {
		bos = "<s>"
	}
	if eos == "" {
		eos = "</s>"
	}
	if !f.bosEachUser {
		b.WriteString(bos)
	}
	for i, m := range loop {
		if (m.Role == "user") != (i%2 == 0) {
			return fmt.Errorf("tokenize: template %s: message %d (%s): roles must alternate user/assistant after the optional system message", tp.Name, i+len(msgs)-len(loop), m.Role)
		}
		content := m.Content
		switch m.Role {
		case "user":
			switch {
			case f.system == "sys" && hasSys && i == 0:
				content = "<<SYS>>\n" + sys + "\n<</SYS>>\n\n" + content
			case f.system == "first" && hasSys && i == 0,
				f.system == "lastuser" && hasSys && m == loop[lastUser],
				f.system == "last" && hasSys && i == len(loop)-1:
				content = sys + "\n\n" + content
			}
			if f.stripUser {
				content = pyStrip(content)
			}
			if f.bosEachUser {
				b.WriteString(bos)
			}
			b.WriteString(f.userPre + content + f.userPost)
		case "assistant":
			if f.stripAsst {
				content = pyStrip(content)
			}
			// The span starts before asstPre: the generation prompt ends at
			// [/INST], so the space that follows it is the reply's to learn.
			assistant(f.asstPre+content+f.asstPost, eos)
			b.WriteString(f.asstAfter)
		default:
			if f.dropOddSystems {
				continue // Llama 2's template writes nothing for it
			}
			return fmt.Errorf("tokenize: template %s: message %d: role %q is not supported here (only user and assistant, after an optional first system message)", tp.Name, i+len(msgs)-len(loop), m.Role)
		}
	}
	return nil
}

// pyStrip is Python's str.strip() (and Jinja's trim filter): Unicode
// whitespace plus the separators U+001C..U+001F, which Go's unicode.IsSpace
// leaves out.
func pyStrip(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f })
}
