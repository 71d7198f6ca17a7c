//go:build unix

package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The hostile-input suite: one case per class of bad input or careless
// command. Each runs the CLI as a subprocess in a scratch folder and must
// exit non-zero with a message naming the file, field, line or flag, with no
// panic, within hostileTime and hostileRSS, writing nothing outside the
// output and cache folders and leaving every input byte-identical.
const (
	hostileTime = 30 * time.Second
	hostileRSS  = 1 << 30 // bytes; the tiny model's runs take ~100-200 MB
)

var (
	hostileModelOnce sync.Once
	hostileModelErr  error
)

// hostileModel is a tiny random Qwen2 checkpoint with its tokenizer, made once.
func hostileModel(t *testing.T) string {
	hostileModelOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gotrain-hostile-model")
		if err != nil {
			hostileModelErr = err
			return
		}
		hostileModelDir = filepath.Join(dir, "model")
		cmd := exec.Command(os.Args[0], "init-model", "--size", "tiny", "--out", hostileModelDir)
		cmd.Env = append(os.Environ(), "GOTRAIN_AS_CLI=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			hostileModelErr = fmt.Errorf("init-model: %v\n%s", err, out)
		}
	})
	if hostileModelErr != nil {
		t.Fatal(hostileModelErr)
	}
	return hostileModelDir
}

// copyModel makes a copy of the tiny model in dir whose files are links to
// the original, except those given, which are written with the given text
// ("" removes the file, "FIFO" makes a named pipe).
func copyModel(t *testing.T, dir string, replace map[string]string) string {
	src := hostileModel(t)
	os.MkdirAll(dir, 0o755)
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		if _, ok := replace[e.Name()]; !ok {
			os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dir, e.Name()))
		}
	}
	for name, text := range replace {
		p := filepath.Join(dir, name)
		switch text {
		case "":
		case "FIFO":
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Skip("no FIFOs here:", err)
			}
		default:
			writeFile(t, p, text)
		}
	}
	return dir
}

// readModelFile returns a file of the tiny model.
func readModelFile(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join(hostileModel(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// jsonEdit returns doc with field set to the raw JSON value.
func jsonEdit(t *testing.T, doc, field, value string) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	m[field] = json.RawMessage(value)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hostileHub serves a repo listing of siblings and, for every file, body
// (or 50 MB of zeros when body is nil) on 127.0.0.1.
func hostileHub(t *testing.T, siblings string, body []byte) string {
	commit := strings.Repeat("c", 40)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/models/") {
			fmt.Fprintf(w, `{"sha": %q, "siblings": %s}`, commit, siblings)
			return
		}
		w.Header().Set("X-Repo-Commit", commit)
		if body != nil {
			w.Write(body)
			return
		}
		zeros := make([]byte, 1<<20)
		for range 50 {
			if _, err := w.Write(zeros); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// tree maps every file under root to its sha256 (symlinks to theirs).
func tree(t *testing.T, root string) map[string]string {
	m := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			m[p] = "link:" + target
			return nil
		}
		if !d.Type().IsRegular() {
			m[p] = d.Type().String()
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		m[p] = hex.EncodeToString(s[:])
		return nil
	})
	return m
}

// hostileCase is one class of hostile input.
type hostileCase struct {
	name string
	// setup writes the inputs into in (and may use out, the output folder)
	// and returns the arguments, standard input and extra environment.
	setup func(t *testing.T, in, out string) (args []string, stdin string, env []string)
	want  []string // substrings of the message
}

func TestHostileInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the CLI on a tiny model some 40 times")
	}
	model := hostileModel(t)
	modelHashes := tree(t, model)
	cfg := readModelFile(t, "config.json")
	tokJSON := readModelFile(t, "tokenizer.json")
	row := `{"instruction": "Answer.", "input": "Only return an integer from 1 to 5.", "output": "Response: 2", "study_id": "s1", "condition_num": 1}`
	data := func(in string) string { return writeFile(t, filepath.Join(in, "d.jsonl"), row+"\n") }
	args := func(a ...string) []string { return a }
	cases := []hostileCase{
		// The Hub: listing names, etags, sizes, credentials.
		{"hub path traversal", func(t *testing.T, in, out string) ([]string, string, []string) {
			ep := hostileHub(t, `[{"rfilename": "config.json", "size": 2, "blobId": "`+strings.Repeat("a", 40)+`"},
				{"rfilename": "../../../../x.safetensors", "size": 2, "blobId": "`+strings.Repeat("b", 40)+`"}]`, []byte("{}"))
			return args("download", "--endpoint", ep, "--cache", filepath.Join(out, "cache"), "--include", "*,*/*/*/*/*", "Org/Evil"), "", nil
		}, []string{"bad file name", "../../../../x.safetensors"}},
		{"hub etag dot-dot", func(t *testing.T, in, out string) ([]string, string, []string) {
			ep := hostileHub(t, `[{"rfilename": "config.json", "size": 2, "blobId": ".."}]`, []byte("{}"))
			return args("download", "--endpoint", ep, "--cache", filepath.Join(out, "cache"), "--include", "config.json", "Org/Evil"), "", nil
		}, []string{"bad etag", `".."`}},
		{"hub body beyond its size", func(t *testing.T, in, out string) ([]string, string, []string) {
			ep := hostileHub(t, `[{"rfilename": "config.json", "size": 10, "blobId": "`+strings.Repeat("a", 40)+`"}]`, nil)
			return args("download", "--endpoint", ep, "--cache", filepath.Join(out, "cache"), "--include", "config.json", "Org/Big"), "", nil
		}, []string{"more than the 10 bytes"}},
		{"hub endpoint credentials", func(t *testing.T, in, out string) ([]string, string, []string) {
			return args("download", "--cache", filepath.Join(out, "cache"), "Org/Model"), "", []string{"HF_ENDPOINT=http://user:s3cret@127.0.0.1:1"}
		}, []string{"127.0.0.1:1", "!s3cret"}},
		// Config and weights.
		{"config size overflow", func(t *testing.T, in, out string) ([]string, string, []string) {
			m := copyModel(t, filepath.Join(in, "m"), map[string]string{"config.json": jsonEdit(t, cfg, "num_hidden_layers", "4611686018427387904")})
			return args("predict", "--base", m, "--data", data(in)), "", nil
		}, []string{"config.json", "num_hidden_layers"}},
		{"config duplicate key", func(t *testing.T, in, out string) ([]string, string, []string) {
			// Python and Go both take a repeated key's last value: that one is checked.
			bad := strings.TrimSpace(cfg)
			bad = bad[:len(bad)-1] + `, "vocab_size": 4611686018427387904}`
			m := copyModel(t, filepath.Join(in, "m"), map[string]string{"config.json": bad})
			return args("predict", "--base", m, "--data", data(in)), "", nil
		}, []string{"config.json", "vocab_size"}},
		{"config FIFO", func(t *testing.T, in, out string) ([]string, string, []string) {
			m := copyModel(t, filepath.Join(in, "m"), map[string]string{"config.json": "FIFO"})
			return args("predict", "--base", m, "--data", data(in)), "", nil
		}, []string{"config.json", "is a FIFO"}},
		{"safetensors truncated", func(t *testing.T, in, out string) ([]string, string, []string) {
			full := readModelFile(t, "model.safetensors")
			m := copyModel(t, filepath.Join(in, "m"), map[string]string{"model.safetensors": full[:200]})
			return args("predict", "--base", m, "--data", data(in)), "", nil
		}, []string{"model.safetensors"}},
		{"safetensors giant header", func(t *testing.T, in, out string) ([]string, string, []string) {
			var b [16]byte
			binary.LittleEndian.PutUint64(b[:], 1<<62)
			m := copyModel(t, filepath.Join(in, "m"), map[string]string{"model.safetensors": string(b[:]) + "{}"})
			return args("predict", "--base", m, "--data", data(in)), "", nil
		}, []string{"model.safetensors"}},
		{"safetensors empty", func(t *testing.T, in, out string) ([]string, string, []string) {
			m := copyModel(t, filepath.Join(in, "m"), map[string]string{"model.safetensors": ""})
			writeFile(t, filepath.Join(m, "model.safetensors"), "")
			return args("predict", "--base", m, "--data", data(in)), "", nil
		}, []string{"model.safetensors"}},
		// Tokenizer.
		{"tokenizer backtracking pattern", func(t *testing.T, in, out string) ([]string, string, []string) {
			var tj map[string]json.RawMessage
			json.Unmarshal([]byte(tokJSON), &tj)
			tj["pre_tokenizer"] = json.RawMessage(`{"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated"}`)
			b, _ := json.Marshal(tj)
			m := copyModel(t, filepath.Join(in, "m"), map[string]string{"tokenizer.json": string(b)})
			return args("tokenize", "--tokenizer", m), `"` + strings.Repeat("a", 5000) + `b"` + "\n", nil
		}, []string{"(a+)+$", "tokenizer.json", "stdin line 1"}},
		// Data.
		{"data line of 10 MB", func(t *testing.T, in, out string) ([]string, string, []string) {
			big := writeFile(t, filepath.Join(in, "big.jsonl"), row+"\n"+`{"instruction": "`+strings.Repeat("x", 10<<20)+`", "output": "1"}`+"\n")
			return args("predict", "--base", model, "--data", big), "", nil
		}, []string{"big.jsonl:2", "--max-line-bytes"}},
		{"data FIFO", func(t *testing.T, in, out string) ([]string, string, []string) {
			p := filepath.Join(in, "fifo.jsonl")
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Skip(err)
			}
			return args("predict", "--base", model, "--data", p), "", nil
		}, []string{"fifo.jsonl", "is a FIFO"}},
		{"data binary garbage", func(t *testing.T, in, out string) ([]string, string, []string) {
			g := make([]byte, 4096)
			for i := range g {
				g[i] = byte(i*131 + 7)
			}
			p := writeFile(t, filepath.Join(in, "garbage.jsonl"), string(g))
			return args("sft", "--base", model, "--data", p, "--out", filepath.Join(out, "a")), "", nil
		}, []string{"garbage.jsonl:1"}},
		{"data empty", func(t *testing.T, in, out string) ([]string, string, []string) {
			p := writeFile(t, filepath.Join(in, "empty.jsonl"), "")
			return args("sft", "--base", model, "--data", p, "--out", filepath.Join(out, "a")), "", nil
		}, []string{"empty.jsonl"}},
		{"data NaN and huge numbers", func(t *testing.T, in, out string) ([]string, string, []string) {
			p := writeFile(t, filepath.Join(in, "nan.jsonl"), row+"\n"+strings.Replace(row, `"condition_num": 1`, `"condition_num": 1e400`, 1)+"\n")
			return args("predict", "--base", model, "--data", p), "", nil
		}, []string{"nan.jsonl:2", "condition_num"}},
		{"eval probabilities summing to +Inf", func(t *testing.T, in, out string) ([]string, string, []string) {
			pred := strings.Replace(row, `}`, `, "probs": [1e308, 1e308, 1e308, 0, 0]}`, 1)
			p := writeFile(t, filepath.Join(in, "pred.jsonl"), pred+"\n")
			return args("eval", "--pred", p), "", nil
		}, []string{"pred.jsonl:1", "+Inf"}},
		// Adapter.
		{"adapter rank disagreeing with r", func(t *testing.T, in, out string) ([]string, string, []string) {
			ad := filepath.Join(in, "ad")
			os.MkdirAll(ad, 0o755)
			fixture, _ := filepath.Abs(filepath.Join("..", "..", "model", "testdata", "tiny-llama-f32"))
			src := filepath.Join(fixture, "adapter")
			c, _ := os.ReadFile(filepath.Join(src, "adapter_config.json"))
			w, _ := os.ReadFile(filepath.Join(src, "adapter_model.safetensors"))
			var m map[string]any
			json.Unmarshal(c, &m)
			m["r"] = 7
			c, _ = json.Marshal(m)
			writeFile(t, filepath.Join(ad, "adapter_config.json"), string(c))
			writeFile(t, filepath.Join(ad, "adapter_model.safetensors"), string(w))
			ids := writeFile(t, filepath.Join(in, "ids.jsonl"), `{"prompt_ids": [1, 2], "completion_ids": [3]}`+"\n")
			return args("score", "--base", fixture, "--adapter", ad, "--data", ids), "", nil
		}, []string{"adapter_config.json", "r = 7"}},
		// Destructive outputs.
		{"merge --out is --base", func(t *testing.T, in, out string) ([]string, string, []string) {
			return args("merge", "--base", model, "--adapter", model, "--out", model), "", nil
		}, []string{"--out", "is the input --base"}},
		{"merge --out a symlink to --base", func(t *testing.T, in, out string) ([]string, string, []string) {
			link := filepath.Join(out, "link")
			os.Symlink(model, link)
			return args("merge", "--base", model, "--adapter", model, "--out", link+"/"), "", nil
		}, []string{"is the input --base"}},
		{"init-model over a model", func(t *testing.T, in, out string) ([]string, string, []string) {
			m := copyModel(t, filepath.Join(in, "m"), nil)
			return args("init-model", "--out", m), "", nil
		}, []string{"already holds a model", "--overwrite"}},
		{"sft --out inside --base", func(t *testing.T, in, out string) ([]string, string, []string) {
			return args("sft", "--base", model, "--data", data(in), "--out", filepath.Join(model, "adapter")), "", nil
		}, []string{"lies inside the input --base"}},
		{"sft over a trained adapter", func(t *testing.T, in, out string) ([]string, string, []string) {
			a := filepath.Join(in, "a")
			os.MkdirAll(a, 0o755)
			writeFile(t, filepath.Join(a, "adapter_model.safetensors"), "x")
			return args("sft", "--base", model, "--data", data(in), "--out", a), "", nil
		}, []string{"already holds a trained adapter", "--overwrite", "--resume auto"}},
		{"predict --out is --data", func(t *testing.T, in, out string) ([]string, string, []string) {
			d := data(in)
			return args("predict", "--base", model, "--data", d, "--out", d), "", nil
		}, []string{"is the input --data"}},
		{"split --train is --eval", func(t *testing.T, in, out string) ([]string, string, []string) {
			p := filepath.Join(out, "x.jsonl")
			return args("split", "--data", data(in), "--train", p, "--eval", p), "", nil
		}, []string{"same file"}},
		// Flags.
		{"--lr NaN", func(t *testing.T, in, out string) ([]string, string, []string) {
			return args("sft", "--base", model, "--data", data(in), "--out", filepath.Join(out, "a"), "--lr", "NaN"), "", nil
		}, []string{"--lr NaN"}},
		{"--max-len 0", func(t *testing.T, in, out string) ([]string, string, []string) {
			return args("sft", "--base", model, "--data", data(in), "--out", filepath.Join(out, "a"), "--max-len", "0"), "", nil
		}, []string{"--max-len 0"}},
		{"--temperature NaN", func(t *testing.T, in, out string) ([]string, string, []string) {
			return args("generate", "--base", model, "--prompt", "x", "--temperature", "NaN"), "", nil
		}, []string{"--temperature NaN"}},
		{"--batch-size negative", func(t *testing.T, in, out string) ([]string, string, []string) {
			return args("sft", "--base", model, "--data", data(in), "--out", filepath.Join(out, "a"), "--batch-size", "-4"), "", nil
		}, []string{"--batch-size -4"}},
		{"--max-new-tokens huge", func(t *testing.T, in, out string) ([]string, string, []string) {
			return args("generate", "--base", model, "--prompt", "x", "--max-new-tokens", "9223372036854775807"), "", nil
		}, []string{"--max-new-tokens"}},
		{"--max-new-tokens beyond the context", func(t *testing.T, in, out string) ([]string, string, []string) {
			return args("generate", "--base", model, "--prompt", "x", "--max-new-tokens", "16777216"), "", nil
		}, []string{"exceeds the 32768 positions"}},
		{"data gzip bomb", func(t *testing.T, in, out string) ([]string, string, []string) {
			p := writeFile(t, filepath.Join(in, "bomb.json.gz"), gzipBomb())
			return args("predict", "--base", model, "--data", p), "", nil
		}, []string{"bomb.json.gz", "JSONL"}},
		{"personas gzip bomb", func(t *testing.T, in, out string) ([]string, string, []string) {
			p := writeFile(t, filepath.Join(in, "personas.json.gz"), gzipBomb())
			spec, _ := filepath.Abs(filepath.Join("..", "..", "examples", "experiment.json"))
			return args("simulate", "--base", model, "--experiment", spec, "--personas", p), "", nil
		}, []string{"personas.json.gz", "over 64 MiB"}},
		{"hub cache ref FIFO", func(t *testing.T, in, out string) ([]string, string, []string) {
			refs := filepath.Join(out, "cache", "models--Org--M", "refs")
			os.MkdirAll(refs, 0o755)
			if err := syscall.Mkfifo(filepath.Join(refs, "main"), 0o644); err != nil {
				t.Skip(err)
			}
			return args("download", "--offline", "--cache", filepath.Join(out, "cache"), "Org/M"), "", nil
		}, []string{"refs/main", "is a FIFO"}},
		{"score sequence beyond the context", func(t *testing.T, in, out string) ([]string, string, []string) {
			ids := strings.Repeat("0,", 40000)
			p := writeFile(t, filepath.Join(in, "long.jsonl"), `{"prompt_ids": [`+ids+`0], "completion_ids": [1]}`+"\n")
			return args("score", "--base", model, "--data", p), "", nil
		}, []string{"long.jsonl:1", "40002 tokens", "32768 positions"}},
		{"sft example beyond the context", func(t *testing.T, in, out string) ([]string, string, []string) {
			p := writeFile(t, filepath.Join(in, "long.jsonl"), `{"prompt": "`+strings.Repeat("b ", 40000)+`", "completion": "c"}`+"\n")
			return args("sft", "--base", model, "--data", p, "--out", filepath.Join(out, "a"), "--max-len", "100000", "--no-chat"), "", nil
		}, []string{"long.jsonl:1", "32768 positions"}},
		{"--lora-r huge", func(t *testing.T, in, out string) ([]string, string, []string) {
			return args("sft", "--base", model, "--data", data(in), "--out", filepath.Join(out, "a"), "--lora-r", "4611686018427387904"), "", nil
		}, []string{"--lora-r"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Not t.TempDir: its path holds the case's name, which the
			// messages' checks must not match.
			root, err := os.MkdirTemp("", "hostile")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(root)
			in, out, work := filepath.Join(root, "in"), filepath.Join(root, "out"), filepath.Join(root, "work")
			for _, d := range []string{in, out, work} {
				os.MkdirAll(d, 0o755)
			}
			args, stdin, env := tc.setup(t, in, out)
			before := tree(t, in)
			ctx, cancel := context.WithTimeout(context.Background(), hostileTime)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], args...)
			cmd.Dir = work
			cmd.Stdin = strings.NewReader(stdin)
			cmd.Env = append(os.Environ(), "GOTRAIN_AS_CLI=1", "HF_HOME="+filepath.Join(out, "hf"), "HF_HUB_CACHE="+filepath.Join(out, "cache"),
				"HF_ENDPOINT=http://127.0.0.1:1", "HF_TOKEN=")
			cmd.Env = append(cmd.Env, env...)
			start := time.Now()
			var b []byte
			b, err = cmd.CombinedOutput()
			msg := string(b)
			took := time.Since(start)
			if ctx.Err() != nil {
				t.Fatalf("gotrain %v: still running after %v:\n%.2000s", args, hostileTime, msg)
			}
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() == 0 {
				t.Fatalf("gotrain %v: exit %v, want a failure:\n%.2000s", args, err, msg)
			}
			if strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine ") {
				t.Fatalf("gotrain %v panicked:\n%.4000s", args, msg)
			}
			for _, w := range tc.want {
				if strings.HasPrefix(w, "!") {
					if strings.Contains(msg, w[1:]) {
						t.Errorf("message shows %q:\n%.2000s", w[1:], msg)
					}
				} else if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q:\n%.2000s", w, msg)
				}
			}
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss*1024 > hostileRSS {
				t.Errorf("peak RSS %d MiB, over %d MiB", ru.Maxrss/1024, hostileRSS>>20)
			}
			if after := tree(t, in); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("inputs changed:\nbefore %v\nafter  %v", before, after)
			}
			if w := tree(t, work); len(w) > 0 {
				t.Errorf("files written in the working folder: %v", w)
			}
			if fmt.Sprint(tree(t, model)) != fmt.Sprint(modelHashes) {
				t.Fatalf("the shared model changed")
			}
			if entries, _ := os.ReadDir(root); len(entries) != 3 {
				t.Errorf("files written beside the folders: %v", entries)
			}
			t.Logf("%v in %v: %s", args[0], took.Round(time.Millisecond), strings.TrimSpace(lastLine(msg)))
		})
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// gzipBomb is 400 KB of gzip that inflates to a 400 MB JSON array.
func gzipBomb() string {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write([]byte("["))
	spaces := bytes.Repeat([]byte(" "), 1<<20)
	for range 400 {
		zw.Write(spaces)
	}
	zw.Close()
	return b.String()
}
