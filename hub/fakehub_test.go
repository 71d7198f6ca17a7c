package hub

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeFile is one file of a fake repo commit.
type fakeFile struct {
	data []byte
	lfs  bool
}

// fakeRepo is a repo on the fake Hub.
type fakeRepo struct {
	gated   bool                            // 401 without the right token
	refs    map[string]string               // branch or tag → commit
	commits map[string]map[string]*fakeFile // commit → path → file
}

// fakeHub implements the Hub endpoints huggingface_hub uses:
//
//	GET  /api/models/{org}/{name}/revision/{rev}[?blobs=true]
//	HEAD, GET /{org}/{name}/resolve/{rev}/{path}  (Range-capable; LFS files 302 to /cdn/{sha256})
//	GET  /cdn/{sha256}                            (Range-capable)
type fakeHub struct {
	t       *testing.T
	srv     *httptest.Server // the Hub
	cdn     *httptest.Server // another host, where LFS files redirect to
	token   string
	noBlobs bool // answer the API without blobId/lfs, forcing HEAD requests

	mu       sync.Mutex
	repos    map[string]*fakeRepo
	cuts     map[string]int  // path → how many more GETs to cut halfway through the body
	corrupt  map[string]bool // path → serve flipped bytes
	requests []string        // "METHOD path [range]"
	auth     []string        // Authorization headers seen
}

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{t: t, repos: map[string]*fakeRepo{}, cuts: map[string]int{}, corrupt: map[string]bool{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	t.Cleanup(h.cdn.Close)
	return h
}

// commitHash makes a deterministic 40-hex commit id.
func commitHash(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func gitOID(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// addCommit adds a commit with files to repo and points branch at it.
func (h *fakeHub) addCommit(repo, branch string, files map[string]*fakeFile) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.repos[repo]
	if r == nil {
		r = &fakeRepo{refs: map[string]string{}, commits: map[string]map[string]*fakeFile{}}
		h.repos[repo] = r
	}
	c := commitHash(repo + "@" + branch + fmt.Sprint(len(r.commits)))
	r.commits[c] = files
	r.refs[branch] = c
	return c
}

func (h *fakeHub) log(r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	line := r.Method + " " + r.URL.EscapedPath()
	if rg := r.Header.Get("Range"); rg != "" {
		line += " " + rg
	}
	h.requests = append(h.requests, line)
	h.auth = append(h.auth, r.Header.Get("Authorization"))
}

// count returns how many logged requests contain sub.
func (h *fakeHub) count(sub string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.requests {
		if strings.Contains(r, sub) {
			n++
		}
	}
	return n
}

func (h *fakeHub) fail(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// lookup finds repo and commit for an escaped "org/name" and revision.
func (h *fakeHub) lookup(w http.ResponseWriter, r *http.Request, repo, rev string) (*fakeRepo, string, bool) {
	rp := h.repos[repo]
	if rp == nil {
		h.fail(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found")
		return nil, "", false
	}
	if rp.gated && r.Header.Get("Authorization") != "Bearer "+h.token {
		h.fail(w, http.StatusUnauthorized, "GatedRepo", "Access to model "+repo+" is restricted.")
		return nil, "", false
	}
	c := rev
	if _, ok := rp.commits[c]; !ok {
		c = rp.refs[rev]
	}
	if _, ok := rp.commits[c]; !ok {
		h.fail(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return nil, "", false
	}
	return rp, c, true
}

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request) {
	h.log(r)
	h.mu.Lock()
	defer h.mu.Unlock()
	p := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(p, "/api/models/"):
		parts := strings.Split(strings.TrimPrefix(p, "/api/models/"), "/")
		if len(parts) != 4 || parts[2] != "revision" {
			h.fail(w, http.StatusNotFound, "", "bad api path")
			return
		}
		rev, _ := url.PathUnescape(parts[3])
		rp, c, ok := h.lookup(w, r, parts[0]+"/"+parts[1], rev)
		if !ok {
			return
		}
		var sib []map[string]any
		for name, f := range rp.commits[c] {
			s := map[string]any{"rfilename": name}
			if r.URL.Query().Get("blobs") == "true" && !h.noBlobs {
				s["size"] = len(f.data)
				if f.lfs {
					s["blobId"] = gitOID([]byte("lfs pointer " + name))
					s["lfs"] = map[string]any{"sha256": sha256hex(f.data), "size": len(f.data), "pointerSize": 134}
				} else {
					s["blobId"] = gitOID(f.data)
				}
			}
			sib = append(sib, s)
		}
		sort.Slice(sib, func(i, j int) bool { return sib[i]["rfilename"].(string) < sib[j]["rfilename"].(string) })
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": parts[0] + "/" + parts[1], "sha": c, "siblings": sib})
	case strings.HasPrefix(p, "/cdn/"):
		sha := strings.TrimPrefix(p, "/cdn/")
		for _, rp := range h.repos {
			for _, files := range rp.commits {
				for name, f := range files {
					if f.lfs && sha256hex(f.data) == sha {
						h.serveFile(w, r, name, f)
						return
					}
				}
			}
		}
		http.NotFound(w, r)
	default:
		// /{org}/{name}/resolve/{rev}/{path...}
		parts := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 5)
		if len(parts) != 5 || parts[2] != "resolve" {
			h.fail(w, http.StatusNotFound, "", "no route")
			return
		}
		rev, _ := url.PathUnescape(parts[3])
		name, _ := url.PathUnescape(parts[4])
		rp, c, ok := h.lookup(w, r, parts[0]+"/"+parts[1], rev)
		if !ok {
			return
		}
		f := rp.commits[c][name]
		if f == nil {
			h.fail(w, http.StatusNotFound, "EntryNotFound", name+" does not exist on "+rev)
			return
		}
		w.Header().Set("X-Repo-Commit", c)
		if f.lfs {
			w.Header().Set("X-Linked-Etag", `"`+sha256hex(f.data)+`"`)
			w.Header().Set("X-Linked-Size", fmt.Sprint(len(f.data)))
			w.Header().Set("ETag", `"cdn-etag"`)
			w.Header().Set("Location", h.cdn.URL+"/cdn/"+sha256hex(f.data)+"?X-Amz-Signature=x")
			w.WriteHeader(http.StatusFound)
			return
		}
		w.Header().Set("ETag", `"`+gitOID(f.data)+`"`)
		h.serveFile(w, r, name, f)
	}
}

// serveFile serves f with Range support, cutting or corrupting it on request.
func (h *fakeHub) serveFile(w http.ResponseWriter, r *http.Request, name string, f *fakeFile) {
	data := f.data
	if h.corrupt[name] {
		data = bytes.Clone(data)
		data[len(data)/2] ^= 0xff
	}
	if r.Method == http.MethodGet && h.cuts[name] > 0 {
		h.cuts[name]--
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			fmt.Sscanf(rg, "bytes=%d-", &start)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)-start))
		if start > 0 {
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		w.Write(data[start : start+(len(data)-start)/2])
		w.(http.Flusher).Flush()
		return // fewer bytes than Content-Length: the server closes the connection
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}
