// Package hub resolves a model reference (a directory, a Hugging Face repo id
// with an optional @revision, or a short alias such as qwen2.5-0.5b) to a local
// directory, downloading the files into the Hugging Face cache when needed.
//
// The cache layout is exactly the one huggingface_hub writes, so Python and
// gotrain share downloads:
//
//	<cache>/models--ORG--NAME/refs/<revision>            commit hash of a branch or tag
//	<cache>/models--ORG--NAME/snapshots/<commit>/<file>  symlink to ../../blobs/<etag>
//	<cache>/models--ORG--NAME/blobs/<etag>               the file; etag is the LFS sha256
//	                                                      or, for small files, the git blob id
//	<cache>/.locks/models--ORG--NAME/<etag>.lock         flock held while downloading a blob
package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gotrain/gotrain/internal/inputfile"
)

// Options say where the cache is, which server to ask and what to fetch. The
// zero value uses the same environment variables as huggingface_hub.
type Options struct {
	Cache    string                               // default $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
	Endpoint string                               // default $HF_ENDPOINT, else https://huggingface.co
	Token    string                               // default $HF_TOKEN, else the token file $HF_TOKEN_PATH or $HF_HOME/token
	Offline  bool                                 // also on when $HF_HUB_OFFLINE is 1/true/yes/on: never download
	Progress func(file string, done, total int64) // nil: none; total is -1 when unknown
	Files    []string                             // path.Match patterns of repo files to fetch; default DefaultFiles

	retryWait time.Duration // pause before retrying an interrupted download; tests shorten it
}

// DefaultFiles are the files Resolve fetches when Options.Files is empty:
// what model.Load, tokenize.Load and LoadAdapter read. Patterns match the whole
// repo path, so weights in subfolders (original/, onnx/) are skipped.
var DefaultFiles = []string{
	"config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json",
	"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
	"adapter_config.json", "adapter_model.safetensors",
}

// Errors that callers may test for with errors.Is.
var (
	ErrNotFound     = errors.New("not found")                 // no such repo, revision or file (HTTP 404)
	ErrUnauthorized = errors.New("access denied")             // gated or private repo (HTTP 401/403)
	ErrOffline      = errors.New("not cached and offline")    // offline mode and the cache lacks the files
	ErrChecksum     = errors.New("checksum mismatch")         // downloaded bytes do not match their sha256/size
	ErrIncomplete   = errors.New("incomplete model snapshot") // a snapshot lacks config or weight files
)

// aliases maps short names (lower case) to repo ids.
var aliases = map[string]string{
	"qwen2.5-0.5b": "Qwen/Qwen2.5-0.5B-Instruct",
	"qwen2.5-1.5b": "Qwen/Qwen2.5-1.5B-Instruct",
	"qwen2.5-3b":   "Qwen/Qwen2.5-3B-Instruct",
	"qwen2.5-7b":   "Qwen/Qwen2.5-7B-Instruct",
	"qwen2.5-14b":  "Qwen/Qwen2.5-14B-Instruct",
	"qwen2.5-32b":  "Qwen/Qwen2.5-32B-Instruct",
	"qwen2.5-72b":  "Qwen/Qwen2.5-72B-Instruct",
	// Qwen3 (dense): one model for chat with and without reasoning, no -Instruct suffix
	"qwen3-0.6b":    "Qwen/Qwen3-0.6B",
	"qwen3-1.7b":    "Qwen/Qwen3-1.7B",
	"qwen3-4b":      "Qwen/Qwen3-4B",
	"qwen3-8b":      "Qwen/Qwen3-8B",
	"qwen3-14b":     "Qwen/Qwen3-14B",
	"qwen3-32b":     "Qwen/Qwen3-32B",
	"qwen3-30b-a3b": "Qwen/Qwen3-30B-A3B",
	"llama3-8b":     "meta-llama/Meta-Llama-3-8B-Instruct",
	"llama3.1-8b":   "meta-llama/Llama-3.1-8B-Instruct",
	"llama3.2-1b":   "meta-llama/Llama-3.2-1B-Instruct",
	"llama3.2-3b":   "meta-llama/Llama-3.2-3B-Instruct",
}

// Aliases returns a copy of the short-name table (alias → repo id).
func Aliases() map[string]string {
	m := make(map[string]string, len(aliases))
	for k, v := range aliases {
		m[k] = v
	}
	return m
}

// repoPart is one side of a repo id, as the Hub validates it.
var repoPart = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ParseRef splits a reference "ORG/NAME[@REVISION]" or "ALIAS[@REVISION]" into
// a repo id and a revision (default "main"). It does not look at the disk.
func ParseRef(ref string) (repo, revision string, err error) {
	repo, revision = ref, "main"
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		repo, revision = ref[:i], ref[i+1:]
		if revision == "" {
			return "", "", fmt.Errorf("hub: %q: empty revision after @", ref)
		}
		if strings.Contains(revision, "..") || strings.HasPrefix(revision, "/") || strings.HasSuffix(revision, "/") {
			return "", "", fmt.Errorf("hub: %q: bad revision %q", ref, revision)
		}
	}
	if r, ok := aliases[strings.ToLower(repo)]; ok {
		repo = r
	}
	parts := strings.Split(repo, "/")
	if len(parts) > 2 || len(repo) > 96 {
		return "", "", fmt.Errorf("hub: %q is neither a directory, a repo id ORG/NAME nor a known alias", ref)
	}
	for _, p := range parts {
		// The Hub forbids "--" and ".." (they would be ambiguous in cache folder names).
		if !repoPart.MatchString(p) || strings.Contains(p, "--") || strings.Contains(p, "..") ||
			strings.HasSuffix(p, "-") || strings.HasSuffix(p, ".") {
			return "", "", fmt.Errorf("hub: %q is neither a directory, a repo id ORG/NAME nor a known alias", ref)
		}
	}
	return repo, revision, nil
}

// looksLikePath reports whether ref can only be meant as a local path.
func looksLikePath(ref string) bool {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i] // a revision may contain slashes: refs/pr/1
	}
	return filepath.IsAbs(ref) || strings.HasPrefix(ref, ".") || strings.HasPrefix(ref, "~") ||
		strings.Count(ref, "/") > 1 || strings.HasSuffix(ref, "/") || strings.ContainsRune(ref, os.PathSeparator) && os.PathSeparator != '/'
}

// Resolve returns a local directory holding the model that ref names.
//
// An existing directory is returned as it is. Otherwise ref is an alias or a
// repo id with an optional @revision (branch, tag or commit hash); a complete
// snapshot in the cache is returned without touching the network, and if there
// is none the selected files are downloaded into the cache first (resuming any
// interrupted download). The returned directory is the cache snapshot.
func Resolve(ctx context.Context, ref string, opt Options) (dir string, err error) {
	if ref == "" {
		return "", fmt.Errorf("hub: empty model reference")
	}
	if st, err := os.Stat(ref); err == nil {
		if !st.IsDir() {
			return "", fmt.Errorf("hub: %s is a file, not a model directory", ref)
		}
		return ref, nil
	}
	if looksLikePath(ref) {
		return "", fmt.Errorf("hub: no such directory %s", ref)
	}
	repo, rev, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	opt = opt.withDefaults()
	if opt.Cache == "" {
		return "", fmt.Errorf("hub: no cache directory: set HF_HUB_CACHE or HF_HOME")
	}
	repoDir := filepath.Join(opt.Cache, repoFolder(repo))
	snap, cacheErr := cachedSnapshot(repoDir, rev)
	if cacheErr == nil {
		return snap, nil
	}
	if opt.Offline {
		return "", fmt.Errorf("hub: %s@%s: %w (cache %s: %v); unset HF_HUB_OFFLINE to download it", repo, rev, ErrOffline, opt.Cache, cacheErr)
	}
	c, err := newClient(opt)
	if err != nil {
		return "", err
	}
	return c.snapshot(ctx, repo, rev, repoDir)
}

// withDefaults fills empty fields from the environment, as huggingface_hub does.
func (o Options) withDefaults() Options {
	hfHome := expandHome(os.Getenv("HF_HOME"))
	if hfHome == "" {
		if xdg := os.Getenv("XDG_CACHE_HOME"); xdg != "" {
			hfHome = filepath.Join(expandHome(xdg), "huggingface")
		} else if home, err := os.UserHomeDir(); err == nil {
			hfHome = filepath.Join(home, ".cache", "huggingface")
		}
	}
	if o.Cache == "" {
		o.Cache = expandHome(os.Getenv("HF_HUB_CACHE"))
	}
	if o.Cache == "" {
		o.Cache = expandHome(os.Getenv("HUGGINGFACE_HUB_CACHE")) // legacy name
	}
	if o.Cache == "" && hfHome != "" {
		o.Cache = filepath.Join(hfHome, "hub")
	}
	if o.Endpoint == "" {
		o.Endpoint = os.Getenv("HF_ENDPOINT")
	}
	if o.Endpoint == "" {
		o.Endpoint = "https://huggingface.co"
	}
	o.Endpoint = strings.TrimRight(o.Endpoint, "/")
	if o.Token == "" {
		o.Token = strings.TrimSpace(os.Getenv("HF_TOKEN"))
	}
	if o.Token == "" {
		o.Token = strings.TrimSpace(os.Getenv("HUGGING_FACE_HUB_TOKEN")) // legacy name
	}
	if o.Token == "" {
		path := expandHome(os.Getenv("HF_TOKEN_PATH"))
		if path == "" && hfHome != "" {
			path = filepath.Join(hfHome, "token")
		}
		if b, err := inputfile.ReadFile(path, inputfile.MaxSmallFile); err == nil {
			o.Token = strings.TrimSpace(string(b))
		}
	}
	switch strings.ToUpper(strings.TrimSpace(os.Getenv("HF_HUB_OFFLINE"))) {
	case "1", "ON", "YES", "TRUE":
		o.Offline = true
	}
	if len(o.Files) == 0 {
		o.Files = DefaultFiles
	}
	if o.retryWait == 0 {
		o.retryWait = time.Second
	}
	return o
}

// expandHome replaces a leading ~ by the home directory, like os.path.expanduser.
func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}
