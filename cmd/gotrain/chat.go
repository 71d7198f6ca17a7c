package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/tokenize"
)

// bundledTokenizer names the bundled tokenizer of an architecture's random
// checkpoints (init-model, bench), "" when it has none.
func bundledTokenizer(arch model.Arch) string {
	return map[model.Arch]string{model.Qwen2: "qwen2.5", model.Qwen3: "qwen3", model.Qwen3MoE: "qwen3", model.Llama: "llama3"}[arch]
}

// fallbackTokenizer names the bundled tokenizer a checkpoint of arch
// without tokenizer files is given: only where every model of the
// architecture shares it (all Qwen3 do; Qwen2 differs from Qwen2.5 in its
// template, Llama 2 from Llama 3 in everything).
var fallbackTokenizer = map[model.Arch]string{model.Qwen3: "qwen3", model.Qwen3MoE: "qwen3"}

// loadBaseTokenizer loads the tokenizer of the checkpoint in dir, or, when
// it has no tokenizer files, the bundled one of its architecture if there
// is one.
func loadBaseTokenizer(dir string) (*tokenize.Tokenizer, error) {
	tok, err := tokenize.Load(dir)
	if !errors.Is(err, tokenize.ErrNoTokenizer) {
		return tok, err
	}
	cfg, cerr := model.LoadConfig(filepath.Join(dir, "config.json"))
	if cerr != nil || fallbackTokenizer[cfg.Arch] == "" {
		return nil, err
	}
	name := fallbackTokenizer[cfg.Arch]
	fmt.Fprintf(os.Stderr, "%s has no tokenizer files: using the bundled %s tokenizer\n", dir, name)
	return tokenize.LoadBundled(name)
}

// chatFlags are the chat template flags of the commands that render chats.
type chatFlags struct {
	template *string
	thinking *bool
}

func addChatFlags(fs *flag.FlagSet, names string) chatFlags {
	return chatFlags{
		template: fs.String("template", "", "chat template: "+names+" (default: detect)"),
		thinking: fs.Bool("thinking", false, "Qwen3: render with enable_thinking=true (the model may reason before answering, and a final turn's think block is learned); off, prompts end in the template's empty think block"),
	}
}

// load returns tok's chat template chosen by the flags.
func (f chatFlags) load(tok *tokenize.Tokenizer) (*tokenize.Template, error) {
	tp, err := tok.ChatTemplate(*f.template)
	if err != nil {
		return nil, err
	}
	if *f.thinking && tp.Name != "qwen3" {
		return nil, fmt.Errorf("--thinking: the %s chat template has no thinking mode (Qwen3's has)", tp.Name)
	}
	tp.Thinking = *f.thinking
	return tp, nil
}
