package hub

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clearEnv keeps the developer's HF_* settings out of the tests.
func clearEnv(t *testing.T) {
	for _, k := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "HF_ENDPOINT", "HF_TOKEN",
		"HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE"} {
		t.Setenv(k, "")
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// shardedModel is a small repo: a two-shard LFS checkpoint with its index,
// config and tokenizer files, plus files Resolve must not fetch.
func shardedModel() map[string]*fakeFile {
	return map[string]*fakeFile{
		"config.json":                       {data: []byte(`{"model_type":"qwen2"}`)},
		"generation_config.json":            {data: []byte(`{"do_sample":true}`)},
		"tokenizer.json":                    {data: []byte(`{"model":{"type":"BPE"}}`)},
		"README.md":                         {data: []byte("# not fetched")},
		"original/consolidated.safetensors": {data: randBytes(9, 100), lfs: true},
		"model.safetensors.index.json": {data: []byte(`{"metadata":{},"weight_map":{` +
			`"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}`)},
		"model-00001-of-00002.safetensors": {data: randBytes(1, 3000), lfs: true},
		"model-00002-of-00002.safetensors": {data: randBytes(2, 5001), lfs: true},
	}
}

// testOpts returns options for hub h with a fresh cache and fast retries.
func testOpts(t *testing.T, h *fakeHub) Options {
	return Options{Cache: t.TempDir(), Endpoint: h.srv.URL, retryWait: time.Millisecond}
}

// deadEndpoint is a URL nothing listens on: any request fails.
const deadEndpoint = "http://127.0.0.1:1"

func TestParseRef(t *testing.T) {
	tests := []struct {
		ref, repo, rev string
		bad            bool
	}{
		{ref: "Qwen/Qwen2.5-14B-Instruct", repo: "Qwen/Qwen2.5-14B-Instruct", rev: "main"},
		{ref: "Qwen/Qwen2.5-14B-Instruct@v1.0", repo: "Qwen/Qwen2.5-14B-Instruct", rev: "v1.0"},
		{ref: "org/m@refs/pr/1", repo: "org/m", rev: "refs/pr/1"},
		{ref: "gpt2", repo: "gpt2", rev: "main"},
		{ref: "qwen2.5-0.5b", repo: "Qwen/Qwen2.5-0.5B-Instruct", rev: "main"},
		{ref: "Qwen2.5-72B", repo: "Qwen/Qwen2.5-72B-Instruct", rev: "main"},
		{ref: "qwen2.5-7b@0123456789abcdef0123456789abcdef01234567", repo: "Qwen/Qwen2.5-7B-Instruct", rev: "0123456789abcdef0123456789abcdef01234567"},
		{ref: "llama3-8b", repo: "meta-llama/Meta-Llama-3-8B-Instruct", rev: "main"},
		{ref: "llama3.1-8b", repo: "meta-llama/Llama-3.1-8B-Instruct", rev: "main"},
		{ref: "llama3.2-1b", repo: "meta-llama/Llama-3.2-1B-Instruct", rev: "main"},
		{ref: "llama3.2-3b", repo: "meta-llama/Llama-3.2-3B-Instruct", rev: "main"},
		{ref: "a/b/c", bad: true},
		{ref: "org/m@", bad: true},
		{ref: "org/m@../x", bad: true},
		{ref: "org--x/m", bad: true},
		{ref: "org/m..x", bad: true},
		{ref: "org/-m", bad: true},
		{ref: "org/m m", bad: true},
		{ref: "/m", bad: true},
	}
	for _, tc := range tests {
		repo, rev, err := ParseRef(tc.ref)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseRef(%q) = %q, %q; want an error", tc.ref, repo, rev)
			}
			continue
		}
		if err != nil || repo != tc.repo || rev != tc.rev {
			t.Errorf("ParseRef(%q) = %q, %q, %v; want %q, %q", tc.ref, repo, rev, err, tc.repo, tc.rev)
		}
	}
	for alias := range Aliases() {
		if _, _, err := ParseRef(alias); err != nil {
			t.Errorf("alias %q: %v", alias, err)
		}
	}
}

func TestResolveDirectory(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	got, err := Resolve(context.Background(), dir, Options{Endpoint: deadEndpoint})
	if err != nil || got != dir {
		t.Fatalf("Resolve(dir) = %q, %v; want %q", got, err, dir)
	}
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	for _, ref := range []string{file, filepath.Join(dir, "missing"), "./missing", "", "a/b/c"} {
		if got, err := Resolve(context.Background(), ref, Options{Endpoint: deadEndpoint, Offline: true}); err == nil {
			t.Errorf("Resolve(%q) = %q, want an error", ref, got)
		}
	}
}

// checkLayout verifies the huggingface_hub cache layout of a fetched snapshot.
func checkLayout(t *testing.T, cache, repo, rev, commit string, files map[string]*fakeFile, want []string) {
	t.Helper()
	repoDir := filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
	if rev != commit {
		b, err := os.ReadFile(filepath.Join(repoDir, "refs", filepath.FromSlash(rev)))
		if err != nil || string(b) != commit {
			t.Errorf("refs/%s = %q, %v; want %q", rev, b, err, commit)
		}
	}
	snap := filepath.Join(repoDir, "snapshots", commit)
	for _, name := range want {
		f := files[name]
		etag := gitOID(f.data)
		if f.lfs {
			etag = sha256hex(f.data)
		}
		link, err := os.Readlink(filepath.Join(snap, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if wantLink := strings.Repeat("../", 2+strings.Count(name, "/")) + "blobs/" + etag; link != wantLink {
			t.Errorf("%s → %s, want %s", name, link, wantLink)
		}
		b, err := os.ReadFile(filepath.Join(snap, name))
		if err != nil || string(b) != string(f.data) {
			t.Errorf("%s: content differs (%v)", name, err)
		}
	}
	entries, _ := os.ReadDir(snap)
	if len(entries) != len(want) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("snapshot holds %v, want exactly %v", names, want)
	}
	blobs, _ := os.ReadDir(filepath.Join(repoDir, "blobs"))
	for _, b := range blobs {
		if strings.HasSuffix(b.Name(), ".incomplete") {
			t.Errorf("left behind %s", b.Name())
		}
	}
}

var shardedWant = []string{"config.json", "generation_config.json", "model-00001-of-00002.safetensors",
	"model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json"}

func TestFreshDownloadThenCacheHit(t *testing.T) {
	clearEnv(t)
	h := newFakeHub(t)
	files := shardedModel()
	commit := h.addCommit("Org/Tiny-Model", "main", files)
	opt := testOpts(t, h)
	done := map[string]int64{}
	opt.Progress = func(file string, d, total int64) {
		if total != int64(len(files[file].data)) {
			t.Errorf("progress %s total %d, want %d", file, total, len(files[file].data))
		}
		done[file] = d
	}
	dir, err := Resolve(context.Background(), "Org/Tiny-Model", opt)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(opt.Cache, "models--Org--Tiny-Model", "snapshots", commit); dir != want {
		t.Fatalf("dir %s, want %s", dir, want)
	}
	checkLayout(t, opt.Cache, "Org/Tiny-Model", "main", commit, files, shardedWant)
	for _, name := range shardedWant {
		if done[name] != int64(len(files[name].data)) {
			t.Errorf("progress for %s ended at %d of %d", name, done[name], len(files[name].data))
		}
	}
	if n := h.count("/cdn/"); n != 2 {
		t.Errorf("%d CDN downloads, want 2 (the shards): %v", n, h.requests)
	}
	// Cached now: no network needed, with or without offline mode.
	for _, offline := range []bool{false, true} {
		opt2 := Options{Cache: opt.Cache, Endpoint: deadEndpoint, Offline: offline}
		if got, err := Resolve(context.Background(), "Org/Tiny-Model", opt2); err != nil || got != dir {
			t.Errorf("cached (offline %v): %q, %v; want %q", offline, got, err, dir)
		}
	}
	if got, err := Resolve(context.Background(), "Org/Tiny-Model@"+commit, Options{Cache: opt.Cache, Endpoint: deadEndpoint}); err != nil || got != dir {
		t.Errorf("cached by commit: %q, %v", got, err)
	}
}

// TestPythonCacheHit builds the cache by hand, as huggingface_hub lays it out,
// and resolves an alias from it without a network.
func TestPythonCacheHit(t *testing.T) {
	clearEnv(t)
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	repoDir := filepath.Join(home, "hub", "models--Qwen--Qwen2.5-0.5B-Instruct")
	commit := commitHash("python")
	snap := filepath.Join(repoDir, "snapshots", commit)
	os.MkdirAll(snap, 0o755)
	os.MkdirAll(filepath.Join(repoDir, "blobs"), 0o755)
	os.MkdirAll(filepath.Join(repoDir, "refs"), 0o755)
	os.WriteFile(filepath.Join(repoDir, "refs", "main"), []byte(commit), 0o644)
	for name, etag := range map[string]string{"config.json": gitOID([]byte("{}")), "model.safetensors": sha256hex([]byte("w"))} {
		os.WriteFile(filepath.Join(repoDir, "blobs", etag), []byte("x"), 0o644)
		os.Symlink("../../blobs/"+etag, filepath.Join(snap, name))
	}
	t.Setenv("HF_ENDPOINT", deadEndpoint)
	got, err := Resolve(context.Background(), "qwen2.5-0.5b", Options{})
	if err != nil || got != snap {
		t.Fatalf("Resolve = %q, %v; want %q", got, err, snap)
	}
	// A dangling weight link is not a cache hit; online, the dead endpoint is named.
	os.Remove(filepath.Join(repoDir, "blobs", sha256hex([]byte("w"))))
	_, err = Resolve(context.Background(), "qwen2.5-0.5b", Options{})
	if err == nil || !strings.Contains(err.Error(), deadEndpoint+"/api/models/Qwen/Qwen2.5-0.5B-Instruct/revision/main") {
		t.Errorf("dead endpoint: error %v should name the URL", err)
	}
}

func TestResumeInterruptedDownload(t *testing.T) {
	clearEnv(t)
	h := newFakeHub(t)
	files := shardedModel()
	commit := h.addCommit("Org/Tiny-Model", "main", files)
	h.cuts["model-00002-of-00002.safetensors"] = 1 // CDN file: LFS
	h.cuts["tokenizer.json"] = 1                   // served by resolve itself
	opt := testOpts(t, h)
	if _, err := Resolve(context.Background(), "Org/Tiny-Model", opt); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, opt.Cache, "Org/Tiny-Model", "main", commit, files, shardedWant)
	for _, want := range []string{
		"/cdn/" + sha256hex(files["model-00002-of-00002.safetensors"].data) + " bytes=2500-",
		"/resolve/" + commit + "/tokenizer.json bytes=12-",
	} {
		if h.count(want) != 1 {
			t.Errorf("no resumed request %q in %v", want, h.requests)
		}
	}
}

// TestResumeLeftoverIncomplete resumes a .incomplete blob that an earlier,
// killed process left behind.
func TestResumeLeftoverIncomplete(t *testing.T) {
	clearEnv(t)
	h := newFakeHub(t)
	files := shardedModel()
	commit := h.addCommit("Org/Tiny-Model", "main", files)
	opt := testOpts(t, h)
	shard := files["model-00001-of-00002.safetensors"].data
	blobs := filepath.Join(opt.Cache, "models--Org--Tiny-Model", "blobs")
	os.MkdirAll(blobs, 0o755)
	os.WriteFile(filepath.Join(blobs, sha256hex(shard)+".incomplete"), shard[:1000], 0o644)
	if _, err := Resolve(context.Background(), "Org/Tiny-Model", opt); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, opt.Cache, "Org/Tiny-Model", "main", commit, files, shardedWant)
	if h.count("/cdn/"+sha256hex(shard)+" bytes=1000-") != 1 {
		t.Errorf("no resumed request in %v", h.requests)
	}
}

func TestHashMismatchRejected(t *testing.T) {
	clearEnv(t)
	h := newFakeHub(t)
	files := shardedModel()
	h.addCommit("Org/Tiny-Model", "main", files)
	for _, name := range []string{"model-00002-of-00002.safetensors", "config.json"} {
		t.Run(name, func(t *testing.T) {
			h.corrupt = map[string]bool{name: true}
			opt := testOpts(t, h)
			_, err := Resolve(context.Background(), "Org/Tiny-Model", opt)
			t.Log(err)
			if !errors.Is(err, ErrChecksum) {
				t.Fatalf("err %v, want ErrChecksum", err)
			}
			etag := sha256hex(files[name].data)
			if !files[name].lfs {
				etag = gitOID(files[name].data)
			}
			blob := filepath.Join(opt.Cache, "models--Org--Tiny-Model", "blobs", etag)
			for _, p := range []string{blob, blob + ".incomplete"} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s exists after a bad download", p)
				}
			}
			// Nothing usable is cached, so offline mode must not return it.
			opt.Offline = true
			if _, err := Resolve(context.Background(), "Org/Tiny-Model", opt); !errors.Is(err, ErrOffline) {
				t.Errorf("offline after bad download: %v, want ErrOffline", err)
			}
		})
	}
}

func TestOffline(t *testing.T) {
	clearEnv(t)
	h := newFakeHub(t)
	h.addCommit("Org/Tiny-Model", "main", shardedModel())
	opt := testOpts(t, h)
	t.Setenv("HF_HUB_OFFLINE", "1")
	_, err := Resolve(context.Background(), "Org/Tiny-Model", opt)
	t.Log(err)
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
		t.Errorf("err %v, want ErrOffline mentioning HF_HUB_OFFLINE", err)
	}
	if len(h.requests) != 0 {
		t.Errorf("offline mode made requests: %v", h.requests)
	}
}

func TestRevisions(t *testing.T) {
	clearEnv(t)
	h := newFakeHub(t)
	mainFiles := shardedModel()
	main := h.addCommit("Org/Tiny-Model", "main", mainFiles)
	v2Files := map[string]*fakeFile{
		"config.json":       {data: []byte(`{"model_type":"llama"}`)},
		"model.safetensors": {data: randBytes(3, 700), lfs: true},
	}
	v2 := h.addCommit("Org/Tiny-Model", "v2", v2Files)
	h.repos["Org/Tiny-Model"].refs["refs/pr/1"] = v2
	opt := testOpts(t, h)
	for _, tc := range []struct {
		rev, commit string
		files       map[string]*fakeFile
		want        []string
	}{
		{"v2", v2, v2Files, []string{"config.json", "model.safetensors"}},
		{"refs/pr/1", v2, v2Files, []string{"config.json", "model.safetensors"}},
		{main, main, mainFiles, shardedWant},
	} {
		dir, err := Resolve(context.Background(), "Org/Tiny-Model@"+tc.rev, opt)
		if err != nil {
			t.Fatalf("@%s: %v", tc.rev, err)
		}
		if filepath.Base(dir) != tc.commit {
			t.Errorf("@%s: dir %s, want snapshot %s", tc.rev, dir, tc.commit)
		}
		checkLayout(t, opt.Cache, "Org/Tiny-Model", tc.rev, tc.commit, tc.files, tc.want)
	}
	if h.count("/revision/refs%2Fpr%2F1") != 1 {
		t.Errorf("revision not path-escaped: %v", h.requests)
	}
	// The blob shared by v2 and refs/pr/1 was downloaded once.
	if n := h.count("/cdn/" + sha256hex(v2Files["model.safetensors"].data)); n != 1 {
		t.Errorf("model.safetensors fetched %d times, want 1", n)
	}
	// A commit hash resolves without writing a ref for it.
	if _, err := os.Stat(filepath.Join(opt.Cache, "models--Org--Tiny-Model", "refs", main)); err == nil {
		t.Errorf("wrote a ref named after a commit")
	}
	if _, err := Resolve(context.Background(), "Org/Tiny-Model@nope", opt); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown revision: %v, want ErrNotFound", err)
	}
}

// TestShardedIndexCompleteness: a snapshot missing one shard its index lists is
// not a cache hit, and only the missing shard is downloaded.
func TestShardedIndexCompleteness(t *testing.T) {
	clearEnv(t)
	h := newFakeHub(t)
	files := shardedModel()
	commit := h.addCommit("Org/Tiny-Model", "main", files)
	opt := testOpts(t, h)
	if _, err := Resolve(context.Background(), "Org/Tiny-Model", opt); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(opt.Cache, "models--Org--Tiny-Model", "snapshots", commit)
	os.Remove(filepath.Join(snap, "model-00002-of-00002.safetensors"))
	err := CheckSnapshot(snap)
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "model-00002-of-00002.safetensors") {
		t.Fatalf("CheckSnapshot: %v, want ErrIncomplete naming the shard", err)
	}
	off := opt
	off.Offline = true
	if _, err := Resolve(context.Background(), "Org/Tiny-Model", off); !errors.Is(err, ErrOffline) {
		t.Fatalf("offline with a missing shard: %v", err)
	}
	before := len(h.requests)
	if _, err := Resolve(context.Background(), "Org/Tiny-Model", opt); err != nil {
		t.Fatal(err)
	}
	// The blob is still there, so only the API is asked: the link is remade.
	if got := h.requests[before:]; len(got) != 1 || !strings.HasPrefix(got[0], "GET /api/models/") {
		t.Errorf("requests after removing a link: %v", got)
	}
	checkLayout(t, opt.Cache, "Org/Tiny-Model", "main", commit, files, shardedWant)

	// An index naming a file the repo lacks is an error, not a half model.
	bad := shardedModel()
	delete(bad, "model-00002-of-00002.safetensors")
	h.addCommit("Org/Broken", "main", bad)
	if _, err := Resolve(context.Background(), "Org/Broken", opt); !errors.Is(err, ErrNotFound) ||
		!strings.Contains(err.Error(), "model-00002-of-00002.safetensors") {
		t.Errorf("index with a missing shard: %v", err)
	}
}

func TestGatedRepo(t *testing.T) {
	clearEnv(t)
	h := newFakeHub(t)
	h.token = "hf_secret"
	files := shardedModel()
	commit := h.addCommit("meta-llama/Llama-3.2-1B-Instruct", "main", files)
	h.repos["meta-llama/Llama-3.2-1B-Instruct"].gated = true
	opt := testOpts(t, h)
	_, err := Resolve(context.Background(), "llama3.2-1b", opt)
	t.Log(err)
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Fatalf("no token: %v, want ErrUnauthorized mentioning HF_TOKEN", err)
	}
	opt.Token = "hf_wrong"
	if _, err := Resolve(context.Background(), "llama3.2-1b", opt); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong token: %v", err)
	}
	// The token comes from $HF_HOME/token when HF_TOKEN is unset.
	opt.Token = ""
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "token"), []byte("hf_secret\n"), 0o600)
	t.Setenv("HF_HOME", home)
	dir, err := Resolve(context.Background(), "llama3.2-1b", opt)
	if err != nil {
		t.Fatal(err)
	}
	checkLayout(t, opt.Cache, "meta-llama/Llama-3.2-1B-Instruct", "main", commit, files, shardedWant)
	// The token goes to the Hub, never to the CDN.
	cdn := 0
	for i, r := range h.requests {
		switch {
		case strings.Contains(r, "/cdn/"):
			cdn++
			if h.auth[i] != "" {
				t.Errorf("%s: sent Authorization %q to the CDN", r, h.auth[i])
			}
		case strings.Contains(r, "/resolve/") && h.auth[i] != "Bearer hf_secret":
			t.Errorf("%s: Authorization %q", r, h.auth[i])
		}
	}
	if cdn == 0 {
		t.Errorf("no CDN requests")
	}
	if filepath.Base(dir) != commit {
		t.Errorf("dir %s", dir)
	}
}

func TestErrors(t *testing.T) {
	clearEnv(t)
	h := newFakeHub(t)
	h.addCommit("Org/Readme-Only", "main", map[string]*fakeFile{"README.md": {data: []byte("hi")}})
	h.addCommit("Org/Pytorch", "main", map[string]*fakeFile{"config.json": {data: []byte("{}")}, "pytorch_model.bin": {data: []byte("x"), lfs: true}})
	opt := testOpts(t, h)
	for _, tc := range []struct {
		ref, msg string
		is       error
	}{
		{"Org/Missing", "no repo Org/Missing", ErrNotFound},
		{"Org/Readme-Only", "not a model", nil},
		{"Org/Pytorch", "no *.safetensors", ErrNotFound},
	} {
		_, err := Resolve(context.Background(), tc.ref, opt)
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: err %v, want %q", tc.ref, err, tc.msg)
		}
	}
	// A bad pattern is reported.
	opt.Files = []string{"["}
	if _, err := Resolve(context.Background(), "Org/Pytorch", opt); err == nil || !strings.Contains(err.Error(), "pattern") {
		t.Errorf("bad pattern: %v", err)
	}
	// Cancelled context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Resolve(ctx, "Org/Pytorch", testOpts(t, h)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestHeadFallback: without blob ids in the listing, etags come from HEAD
// requests (not following the CDN redirect), as in huggingface_hub.
func TestHeadFallback(t *testing.T) {
	clearEnv(t)
	h := newFakeHub(t)
	h.noBlobs = true
	files := shardedModel()
	commit := h.addCommit("Org/Tiny-Model", "main", files)
	opt := testOpts(t, h)
	if _, err := Resolve(context.Background(), "Org/Tiny-Model", opt); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, opt.Cache, "Org/Tiny-Model", "main", commit, files, shardedWant)
	if n := h.count("HEAD /Org/Tiny-Model/resolve/"); n != len(shardedWant) {
		t.Errorf("%d HEAD requests, want %d", n, len(shardedWant))
	}
	if n := h.count("HEAD /cdn/"); n != 0 {
		t.Errorf("HEAD followed the CDN redirect %d times", n)
	}
}

func TestFilesOption(t *testing.T) {
	clearEnv(t)
	h := newFakeHub(t)
	files := shardedModel()
	commit := h.addCommit("Org/Tiny-Model", "main", files)
	opt := testOpts(t, h)
	opt.Files = []string{"config.json", "tokenizer*"}
	if _, err := Resolve(context.Background(), "Org/Tiny-Model", opt); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, opt.Cache, "Org/Tiny-Model", "main", commit, files, []string{"config.json", "tokenizer.json"})
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	o := Options{}.withDefaults()
	if o.Cache != filepath.Join(home, "hub") || o.Endpoint != "https://huggingface.co" || o.Token != "" || o.Offline {
		t.Errorf("defaults with HF_HOME: %+v", o)
	}
	t.Setenv("HF_HUB_CACHE", "/c")
	t.Setenv("HF_ENDPOINT", "http://mirror/")
	t.Setenv("HF_TOKEN", " hf_x ")
	t.Setenv("HF_HUB_OFFLINE", "true")
	o = Options{}.withDefaults()
	if o.Cache != "/c" || o.Endpoint != "http://mirror" || o.Token != "hf_x" || !o.Offline {
		t.Errorf("defaults from env: %+v", o)
	}
	o = Options{Cache: "/d", Endpoint: "http://e", Token: "t"}.withDefaults()
	if o.Cache != "/d" || o.Endpoint != "http://e" || o.Token != "t" {
		t.Errorf("explicit options overridden: %+v", o)
	}
	t.Setenv("HF_HOME", "")
	t.Setenv("HF_HUB_CACHE", "")
	xdg := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", xdg)
	if o := (Options{}).withDefaults(); o.Cache != filepath.Join(xdg, "huggingface", "hub") {
		t.Errorf("XDG default: %s", o.Cache)
	}
}

// TestConcurrentResolve: two downloads of one repo into one cache share the
// work through the blob locks; each blob is fetched once.
func TestConcurrentResolve(t *testing.T) {
	clearEnv(t)
	h := newFakeHub(t)
	files := shardedModel()
	commit := h.addCommit("Org/Tiny-Model", "main", files)
	opt := testOpts(t, h)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Resolve(context.Background(), "Org/Tiny-Model", opt)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	checkLayout(t, opt.Cache, "Org/Tiny-Model", "main", commit, files, shardedWant)
	for _, name := range shardedWant {
		n := h.count("GET /Org/Tiny-Model/resolve/" + commit + "/" + name)
		if files[name].lfs {
			n = h.count("GET /cdn/" + sha256hex(files[name].data))
		}
		if n != 1 {
			t.Errorf("%s fetched %d times, want 1", name, n)
		}
	}
}

// TestGiveUpAfterRetries: a connection that keeps breaking fails with the URL
// named, leaves only the resumable .incomplete file, and the next run resumes.
func TestGiveUpAfterRetries(t *testing.T) {
	clearEnv(t)
	h := newFakeHub(t)
	files := shardedModel()
	commit := h.addCommit("Org/Tiny-Model", "main", files)
	shard := files["model-00002-of-00002.safetensors"].data
	h.cuts["model-00002-of-00002.safetensors"] = 100
	opt := testOpts(t, h)
	_, err := Resolve(context.Background(), "Org/Tiny-Model", opt)
	if err == nil || !strings.Contains(err.Error(), h.cdn.URL+"/cdn/"+sha256hex(shard)) {
		t.Fatalf("err %v, want one naming the CDN URL", err)
	}
	t.Log(err)
	if n := h.count("/cdn/" + sha256hex(shard)); n != maxAttempts {
		t.Errorf("%d attempts, want %d", n, maxAttempts)
	}
	blob := filepath.Join(opt.Cache, "models--Org--Tiny-Model", "blobs", sha256hex(shard))
	if _, err := os.Stat(blob); err == nil {
		t.Errorf("partial file under its final name")
	}
	st, err := os.Stat(blob + ".incomplete")
	if err != nil || st.Size() == 0 || st.Size() >= int64(len(shard)) {
		t.Fatalf("incomplete file: %v, %v", st, err)
	}
	h.cuts = map[string]int{}
	if _, err := Resolve(context.Background(), "Org/Tiny-Model", opt); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, opt.Cache, "Org/Tiny-Model", "main", commit, files, shardedWant)
	if h.count(fmt.Sprintf("/cdn/%s bytes=%d-", sha256hex(shard), st.Size())) != 1 {
		t.Errorf("did not resume at %d: %v", st.Size(), h.requests)
	}
}

func TestAdapterRepo(t *testing.T) {
	clearEnv(t)
	h := newFakeHub(t)
	files := map[string]*fakeFile{
		"adapter_config.json":       {data: []byte(`{"peft_type":"LORA","r":8}`)},
		"adapter_model.safetensors": {data: randBytes(4, 900), lfs: true},
		"README.md":                 {data: []byte("card")},
		"training_args.bin":         {data: []byte("x"), lfs: true},
	}
	commit := h.addCommit("someone/qwen-lora", "main", files)
	opt := testOpts(t, h)
	dir, err := Resolve(context.Background(), "someone/qwen-lora", opt)
	if err != nil {
		t.Fatal(err)
	}
	checkLayout(t, opt.Cache, "someone/qwen-lora", "main", commit, files, []string{"adapter_config.json", "adapter_model.safetensors"})
	opt.Offline = true
	if got, err := Resolve(context.Background(), "someone/qwen-lora", opt); err != nil || got != dir {
		t.Errorf("offline: %q, %v", got, err)
	}
}

// FuzzParseRef: no input panics, and accepted ones are well-formed repo ids.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"Qwen/Qwen2.5-0.5B-Instruct@main", "qwen2.5-7b", "a/b/c", "@", "x@refs/pr/1", "--/..", "é/ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		repo, rev, err := ParseRef(ref)
		if err != nil {
			return
		}
		if strings.Count(repo, "/") > 1 || strings.Contains(repo, "--") || strings.Contains(repo, "..") || rev == "" {
			t.Errorf("ParseRef(%q) = %q, %q", ref, repo, rev)
		}
	})
}
