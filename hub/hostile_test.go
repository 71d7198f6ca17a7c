package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hostileHub answers a listing of the given siblings and serves body for
// every resolve URL, with declared sizes that may lie.
func hostileHub(t *testing.T, siblings []map[string]any, body func(w http.ResponseWriter, r *http.Request)) *httptest.Server {
	commit := commitHash("hostile")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/models/") {
			json.NewEncoder(w).Encode(map[string]any{"sha": commit, "siblings": siblings})
			return
		}
		w.Header().Set("X-Repo-Commit", commit)
		body(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// noFilesOutside fails when anything but root's own tree changed in parent.
func noFilesOutside(t *testing.T, parent, root string) {
	t.Helper()
	filepath.WalkDir(parent, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != parent && !strings.HasPrefix(p, root) {
			t.Errorf("file written outside the cache: %s", p)
		}
		return nil
	})
}

// TestHostileListing: names that would escape the snapshot and etags that
// would escape the blobs folder are refused before anything is written.
func TestHostileListing(t *testing.T) {
	clearEnv(t)
	ok := func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) }
	for _, name := range []string{
		"../../../../x.safetensors", "/etc/x.safetensors", `..\..\x.safetensors`, "C:x.safetensors",
		"a/../../x.safetensors", "./x.safetensors", "a//x.safetensors", "x\x1b[2J.safetensors", "..",
	} {
		sib := []map[string]any{{"rfilename": "config.json", "size": 2, "blobId": gitOID([]byte("{}"))},
			{"rfilename": name, "size": 2, "blobId": gitOID([]byte("{}"))}}
		srv := hostileHub(t, sib, ok)
		parent := t.TempDir()
		cache := filepath.Join(parent, "cache")
		opt := Options{Cache: cache, Endpoint: srv.URL, Files: []string{"*", "*/*", "*/*/*", "*/*/*/*", "*/*/*/*/*"}, retryWait: time.Millisecond}
		_, err := Resolve(context.Background(), "Org/Evil", opt)
		if err == nil || !strings.Contains(err.Error(), "bad file name") {
			t.Errorf("%q: err %v, want a bad file name", name, err)
		}
		noFilesOutside(t, parent, cache)
	}
	for _, etag := range []string{".", "..", "a/b", "x\x00", strings.Repeat("a", 300)} {
		sib := []map[string]any{{"rfilename": "config.json", "size": 2, "blobId": etag}}
		srv := hostileHub(t, sib, ok)
		parent := t.TempDir()
		cache := filepath.Join(parent, "cache")
		opt := Options{Cache: cache, Endpoint: srv.URL, Files: []string{"config.json"}, retryWait: time.Millisecond}
		_, err := Resolve(context.Background(), "Org/Evil", opt)
		if err == nil || !strings.Contains(err.Error(), "bad etag") {
			t.Errorf("etag %q: err %v", etag, err)
		}
		noFilesOutside(t, parent, cache)
	}
	// The index is checked like the listing.
	if _, err := indexFiles([]byte(`{"weight_map":{"a":"../x.safetensors"}}`)); err == nil {
		t.Error("index with ../ accepted")
	}
}

// writeChunked sends a body without Content-Length (chunked), 64 MiB unless
// the client hangs up first, and returns how much it wrote.
func writeChunked(w http.ResponseWriter) int64 {
	buf := make([]byte, 64<<10)
	var sent int64
	for range 1024 {
		n, err := w.Write(buf)
		sent += int64(n)
		if err != nil {
			break
		}
	}
	return sent
}

// regularBytes is the size of the regular files below dir.
func regularBytes(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
		return nil
	})
	return total
}

// TestDownloadLimitedToDeclaredSize: a server sending more than the listing
// declares is cut off one byte past it, and nothing stays on disk.
func TestDownloadLimitedToDeclaredSize(t *testing.T) {
	clearEnv(t)
	const declared = 1000
	srv := hostileHub(t, []map[string]any{{"rfilename": "config.json", "size": declared, "blobId": gitOID(make([]byte, declared))}},
		func(w http.ResponseWriter, r *http.Request) { writeChunked(w) })
	cache := t.TempDir()
	opt := Options{Cache: cache, Endpoint: srv.URL, Files: []string{"config.json"}, retryWait: time.Millisecond}
	_, err := Resolve(context.Background(), "Org/Big", opt)
	if err == nil || !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "more than the 1000 bytes") {
		t.Fatalf("err %v", err)
	}
	if n := regularBytes(cache); n > 0 {
		t.Errorf("%d bytes left in the cache", n)
	}
}

// TestDownloadUndeclaredSizeBounded: a file whose size nothing declares (no
// listing size, no headers, a chunked body without end) stops at the cap,
// and nothing stays on disk.
func TestDownloadUndeclaredSizeBounded(t *testing.T) {
	clearEnv(t)
	defer func(v int64) { maxUndeclaredBytes = v }(maxUndeclaredBytes)
	maxUndeclaredBytes = 1 << 20
	var sent atomic.Int64
	// A listing without blob ids sends the client to HEAD, which declares nothing.
	srv := hostileHub(t, []map[string]any{{"rfilename": "config.json"}},
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"`+strings.Repeat("a", 40)+`"`)
			if r.Method != http.MethodHead {
				sent.Add(writeChunked(w))
			}
		})
	cache := t.TempDir()
	opt := Options{Cache: cache, Endpoint: srv.URL, Files: []string{"config.json"}, retryWait: time.Millisecond}
	_, err := Resolve(context.Background(), "Org/Endless", opt)
	if err == nil || !strings.Contains(err.Error(), "declared no size") {
		t.Fatalf("err %v", err)
	}
	if n := sent.Load(); n > 32<<20 {
		t.Errorf("the client read %d bytes of an endless body", n)
	}
	if n := regularBytes(cache); n > 0 {
		t.Errorf("%d bytes left in the cache", n)
	}
}

// TestEndpointCredentialsHidden: a password in HF_ENDPOINT never appears in an error.
func TestEndpointCredentialsHidden(t *testing.T) {
	clearEnv(t)
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		w.Header().Set("X-Error-Message", "nope")
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	for _, ep := range []string{
		strings.Replace(srv.URL, "http://", "http://user:s3cret@", 1), // answers 500
		"http://user:s3cret@127.0.0.1:1",                              // connection refused
		"http://user:s3cret@ho st",                                    // unparseable
		"ftp://user:s3cret@host",
	} {
		t.Setenv("HF_ENDPOINT", ep)
		_, err := Resolve(context.Background(), "Org/Model", Options{Cache: t.TempDir(), retryWait: time.Millisecond})
		if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "\x1b") {
			t.Errorf("%s: err %v", ep, err)
		}
		t.Log(err)
	}
	if want := "Basic " + "dXNlcjpzM2NyZXQ="; auth != want {
		t.Errorf("mirror got Authorization %q, want %q", auth, want)
	}
}

// FuzzRepoFile: an accepted name always stays under its snapshot.
func FuzzRepoFile(f *testing.F) {
	for _, s := range []string{"config.json", "a/b.safetensors", "../x", "/x", `a\b`, "C:x", "a//b", ".", "..", "a/./b", strings.Repeat("a/", 600)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if checkRepoFile(name) != nil {
			return
		}
		dir := filepath.FromSlash("/cache/snap")
		p, err := within(dir, name)
		if err != nil || !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Errorf("%q accepted but joins to %q (%v)", name, p, err)
		}
		if checkEtag(name) == nil && strings.ContainsAny(name, `/\`) {
			t.Errorf("etag %q accepted", name)
		}
	})
}

// FuzzListing: no listing panics the snapshot's name and size checks.
func FuzzListing(f *testing.F) {
	f.Add([]byte(`{"sha":"` + strings.Repeat("a", 40) + `","siblings":[{"rfilename":"config.json","size":9223372036854775807}]}`))
	f.Add([]byte(`{"sha":"x","siblings":[{"rfilename":"../a","size":-1,"lfs":{"sha256":"..","size":-9223372036854775808}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var info modelInfo
		if json.Unmarshal(b, &info) != nil {
			return
		}
		for _, s := range info.Siblings {
			if checkRepoFile(s.Name) == nil {
				if _, err := within("/c", s.Name); err != nil {
					t.Errorf("%q: %v", s.Name, err)
				}
			}
		}
		sortBySize(info.Siblings)
		_ = fmt.Sprint(len(info.Siblings))
	})
}
