package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/internal/inputfile"
)

// maxAttempts is how often one file's download is tried when the connection
// breaks; each retry resumes where the last one stopped.
const maxAttempts = 5

// client talks to one Hub endpoint.
type client struct {
	opt  Options
	user *url.Userinfo // credentials of the endpoint URL, kept out of every URL we print
	http *http.Client
}

// stallTimeout is how long a download may receive nothing before it is
// dropped and resumed.
const stallTimeout = 60 * time.Second

func newClient(opt Options) (*client, error) {
	ep, err := url.Parse(opt.Endpoint)
	if err != nil || (ep.Scheme != "http" && ep.Scheme != "https") || ep.Host == "" {
		return nil, fmt.Errorf("hub: endpoint %q is not an http(s) URL (HF_ENDPOINT or --endpoint)", redactURL(opt.Endpoint))
	}
	user := ep.User
	ep.User = nil
	opt.Endpoint = ep.String()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = stallTimeout
	// No overall timeout: a 15 GB shard takes long. The context cancels, and
	// stallTimeout catches a connection that stops sending.
	return &client{opt: opt, user: user, http: &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return fmt.Errorf("stopped after 10 redirects")
			}
			// Like huggingface_hub, send the token to the Hub only, never to the
			// CDN: a presigned URL with an Authorization header is rejected, and
			// net/http would forward it to subdomains such as cdn-lfs.huggingface.co.
			if req.URL.Host != via[0].URL.Host {
				req.Header.Del("Authorization")
			}
			return nil
		},
	}}, nil
}

// stallReader cancels its request when no bytes arrive for stallTimeout.
type stallReader struct {
	r     io.Reader
	timer *time.Timer
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.timer.Reset(stallTimeout)
	return n, err
}

// sibling is one file of the API's "siblings" list (with ?blobs=true).
type sibling struct {
	Name   string `json:"rfilename"`
	Size   int64  `json:"size"`
	BlobID string `json:"blobId"`
	LFS    *struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"lfs"`
}

// modelInfo is the part of GET /api/models/{repo}/revision/{rev} that we use.
type modelInfo struct {
	SHA      string    `json:"sha"`
	Siblings []sibling `json:"siblings"`
}

// request builds a request with the token and a user agent.
func (c *client) request(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("hub: %s %s: %w", method, u, err)
	}
	if c.user != nil && req.URL.Host == c.endpointHost() {
		req.URL.User = c.user // basic auth for a mirror; net/http drops it on redirects elsewhere
	}
	req.Header.Set("User-Agent", "gotrain-hub/1")
	// No transparent gzip: byte ranges and sizes must refer to the file itself.
	req.Header.Set("Accept-Encoding", "identity")
	if c.opt.Token != "" {
		// net/http drops Authorization on redirects to another host (the CDN).
		req.Header.Set("Authorization", "Bearer "+c.opt.Token)
	}
	return req, nil
}

// statusError turns a failed response into an error naming the URL and, for
// 401/403/404, wrapping ErrUnauthorized or ErrNotFound with advice.
func (c *client) statusError(resp *http.Response, repo, what string) error {
	u := resp.Request.URL.Redacted()
	code := resp.Header.Get("X-Error-Code")
	msg := resp.Header.Get("X-Error-Message")
	if msg == "" {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &body) == nil && body.Error != "" {
			msg = body.Error
		}
	}
	if msg != "" {
		msg = " (" + printable(msg, 200) + ")"
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && code == "":
		return fmt.Errorf("hub: GET %s: %w: no %s in %s, or no such repo%s", u, ErrNotFound, what, repo, msg)
	case code == "RepoNotFound":
		hint := ""
		if c.opt.Token == "" {
			hint = "; if it is private, set HF_TOKEN"
		}
		return fmt.Errorf("hub: GET %s: %w: no repo %s%s%s", u, ErrNotFound, repo, hint, msg)
	case code == "RevisionNotFound":
		return fmt.Errorf("hub: GET %s: %w: no such revision of %s%s", u, ErrNotFound, repo, msg)
	case code == "EntryNotFound":
		return fmt.Errorf("hub: GET %s: %w: no %s in %s%s", u, ErrNotFound, what, repo, msg)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		if c.opt.Token == "" {
			return fmt.Errorf("hub: GET %s: HTTP %d: %w: %s is gated or private: accept its license on %s/%s and set HF_TOKEN%s",
				u, resp.StatusCode, ErrUnauthorized, repo, c.opt.Endpoint, repo, msg)
		}
		return fmt.Errorf("hub: GET %s: HTTP %d: %w: your token has no access to %s: accept its license on %s/%s or check HF_TOKEN%s",
			u, resp.StatusCode, ErrUnauthorized, repo, c.opt.Endpoint, repo, msg)
	}
	return fmt.Errorf("hub: GET %s: HTTP %s%s", u, resp.Status, msg)
}

// info fetches the commit and file list of repo at rev.
func (c *client) info(ctx context.Context, repo, rev string) (*modelInfo, error) {
	u := fmt.Sprintf("%s/api/models/%s/revision/%s?blobs=true", c.opt.Endpoint, repo, url.PathEscape(rev))
	req, err := c.request(ctx, http.MethodGet, u)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err) // *url.Error names the method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.statusError(resp, repo, "revision "+rev)
	}
	var info modelInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&info); err != nil {
		return nil, fmt.Errorf("hub: GET %s: bad JSON: %w", u, err)
	}
	if !isCommit(info.SHA) {
		return nil, fmt.Errorf("hub: GET %s: no commit hash in the answer (sha %q)", u, info.SHA)
	}
	return &info, nil
}

// resolveURL is where a file of a commit is downloaded from.
func (c *client) resolveURL(repo, commit, file string) string {
	segs := strings.Split(file, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return fmt.Sprintf("%s/%s/resolve/%s/%s", c.opt.Endpoint, repo, commit, strings.Join(segs, "/"))
}

// snapshot downloads the selected files of repo at rev into repoDir and
// returns the snapshot directory.
func (c *client) snapshot(ctx context.Context, repo, rev, repoDir string) (string, error) {
	info, err := c.info(ctx, repo, rev)
	if err != nil {
		return "", err
	}
	var sel []sibling
	have := map[string]bool{}
	for _, s := range info.Siblings {
		have[s.Name] = true
		for _, p := range c.opt.Files {
			ok, err := path.Match(p, s.Name)
			if err != nil {
				return "", fmt.Errorf("hub: bad file pattern %q: %w", p, err)
			}
			if ok {
				if err := checkRepoFile(s.Name); err != nil {
					return "", fmt.Errorf("hub: %s@%s: repo listing: %w", repo, rev, err)
				}
				if s.Size < 0 || s.LFS != nil && s.LFS.Size < 0 {
					return "", fmt.Errorf("hub: %s@%s: %s: negative size in the repo listing", repo, rev, s.Name)
				}
				sel = append(sel, s)
				break
			}
		}
	}
	if !have["config.json"] && !have["adapter_config.json"] {
		return "", fmt.Errorf("hub: %s@%s has no config.json or adapter_config.json: not a model or adapter repo", repo, rev)
	}
	if slices.Equal(c.opt.Files, DefaultFiles) {
		weights := false
		for _, s := range sel {
			weights = weights || strings.HasSuffix(s.Name, ".safetensors")
		}
		if !weights {
			return "", fmt.Errorf("hub: %s@%s: %w: no *.safetensors weights in the repo (gotrain reads no .bin/.pth)", repo, rev, ErrNotFound)
		}
	}
	snap := filepath.Join(repoDir, "snapshots", info.SHA)
	// Small files first, so the index is there to be checked before the shards.
	sortBySize(sel)
	for _, s := range sel {
		if err := c.fetchFile(ctx, repo, info.SHA, repoDir, s); err != nil {
			return "", err
		}
		if s.Name == "model.safetensors.index.json" {
			b, err := inputfile.ReadFile(filepath.Join(snap, s.Name), inputfile.MaxLargeFile)
			if err != nil {
				return "", fmt.Errorf("hub: %w", err)
			}
			files, err := indexFiles(b)
			if err != nil {
				return "", fmt.Errorf("hub: %s@%s: %s: %w", repo, rev, s.Name, err)
			}
			for _, f := range files {
				if !have[f] {
					return "", fmt.Errorf("hub: %s@%s: %w: %s lists %s, which the repo lacks", repo, rev, ErrNotFound, s.Name, f)
				}
			}
		}
	}
	if err := writeRef(repoDir, rev, info.SHA); err != nil {
		return "", err
	}
	if err := CheckSnapshot(snap); err != nil && slices.Equal(c.opt.Files, DefaultFiles) {
		return "", fmt.Errorf("hub: %s@%s: %w", repo, rev, err)
	}
	return snap, nil
}

// sortBySize orders files by size, smallest first (stable: names break ties).
func sortBySize(s []sibling) {
	size := func(x sibling) int64 {
		if x.LFS != nil {
			return x.LFS.Size
		}
		return x.Size
	}
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && size(s[j]) < size(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// want is what a downloaded blob must match.
type want struct {
	size   int64  // -1: unknown
	sha256 string // LFS files: hex sha256 of the content
	gitOID string // other files: git blob id, sha1("blob <size>\x00" + content)
	commit string // the commit asked for; the Hub's X-Repo-Commit must match
}

// fetchFile makes snapshots/<commit>/<file> point at a complete blob,
// downloading the blob unless it is already cached.
func (c *client) fetchFile(ctx context.Context, repo, commit, repoDir string, s sibling) error {
	pointer, err := within(filepath.Join(repoDir, "snapshots", commit), s.Name)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if _, err := os.Stat(pointer); err == nil {
		return nil
	}
	u := c.resolveURL(repo, commit, s.Name)
	w := want{size: -1, commit: commit}
	var etag string
	switch {
	case s.LFS != nil && s.LFS.SHA256 != "":
		etag, w.sha256, w.size = s.LFS.SHA256, s.LFS.SHA256, s.LFS.Size
	case s.BlobID != "":
		etag, w.gitOID, w.size = s.BlobID, s.BlobID, s.Size
	default:
		// The listing lacks blob ids: ask the file's headers, as huggingface_hub does.
		m, err := c.head(ctx, u, repo, s.Name)
		if err != nil {
			return err
		}
		etag, w.size = m.etag, m.size
		if m.lfs {
			w.sha256 = m.etag
		} else {
			w.gitOID = m.etag
		}
	}
	if err := checkEtag(etag); err != nil {
		return fmt.Errorf("hub: %s: %w", u, err)
	}
	if !isHex(w.sha256) {
		w.sha256 = "" // not a sha256 (e.g. an S3 etag): check the size only
	}
	if !isCommit(w.gitOID) {
		w.gitOID = ""
	}
	blob := filepath.Join(repoDir, "blobs", etag)
	if _, err := os.Stat(blob); err != nil {
		unlock, err := lockFile(filepath.Join(filepath.Dir(repoDir), ".locks", filepath.Base(repoDir), etag+".lock"))
		if err != nil {
			return err
		}
		err = c.fetchBlob(ctx, repo, u, s.Name, blob, w)
		unlock()
		if err != nil {
			return err
		}
	}
	return linkPointer(blob, pointer)
}

func isHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// meta is what a HEAD on a resolve URL tells.
type meta struct {
	etag string
	size int64
	lfs  bool
}

// head reads a file's etag and size like huggingface_hub's get_hf_file_metadata:
// relative redirects (renamed repos) are followed, a redirect to another host
// (the CDN) is not, because the Hub's own headers are on the redirect.
func (c *client) head(ctx context.Context, u, repo, file string) (meta, error) {
	hc := *c.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for range 10 {
		req, err := c.request(ctx, http.MethodHead, u)
		if err != nil {
			return meta{}, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return meta{}, fmt.Errorf("hub: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			raw, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || resp.Header.Get("Location") == "" {
				return meta{}, fmt.Errorf("hub: HEAD %s: redirect without a valid Location", u)
			}
			if raw.Host == "" { // relative: a renamed repo on the Hub itself
				u = resp.Request.URL.ResolveReference(raw).String()
				continue
			}
		} else if resp.StatusCode != http.StatusOK {
			return meta{}, c.statusError(resp, repo, "file "+file)
		}
		if rc := resp.Header.Get("X-Repo-Commit"); rc == "" {
			return meta{}, fmt.Errorf("hub: HEAD %s: no X-Repo-Commit header: not a Hugging Face Hub?", u)
		}
		m := meta{etag: resp.Header.Get("X-Linked-Etag"), size: -1}
		if m.etag != "" {
			m.lfs = true
		} else {
			m.etag = resp.Header.Get("ETag")
		}
		m.etag = strings.Trim(strings.TrimPrefix(m.etag, "W/"), `"`)
		sz := resp.Header.Get("X-Linked-Size")
		if sz == "" {
			sz = resp.Header.Get("Content-Length")
		}
		if n, err := strconv.ParseInt(sz, 10, 64); err == nil {
			m.size = n
		}
		if m.etag == "" {
			return meta{}, fmt.Errorf("hub: HEAD %s: no ETag header", u)
		}
		return m, nil
	}
	return meta{}, fmt.Errorf("hub: HEAD %s: too many redirects", u)
}

// maxUndeclaredBytes bounds a file no one declared the size of. The Hub
// declares every size (listings, X-Linked-Size, Content-Length); only a
// non-conforming mirror omits them all, and the largest file worth fetching
// then is a safetensors shard (the Hub's default shard is 5 GB). Tests lower it.
var maxUndeclaredBytes int64 = 64 << 30

// retryable marks an error after which a download may be resumed.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// fetchBlob downloads u into blob via blob+".incomplete", resuming what an
// earlier attempt (or process) left there, and renames it into place only
// once its size and hash are right.
func (c *client) fetchBlob(ctx context.Context, repo, u, file, blob string, w want) error {
	if _, err := os.Stat(blob); err == nil {
		return nil // another process finished it while we waited for the lock
	}
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	inc := blob + ".incomplete"
	for attempt := 1; ; attempt++ {
		err := c.fetchOnce(ctx, repo, u, file, inc, w)
		if err == nil {
			break
		}
		var r retryable
		if !errors.As(err, &r) || attempt == maxAttempts || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hub: %s: %w", u, ctx.Err())
		case <-time.After(c.opt.retryWait * time.Duration(attempt)):
		}
	}
	if err := os.Rename(inc, blob); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	atomicfile.SyncDir(filepath.Dir(blob)) // best effort: the blob is re-checked by size if lost
	return nil
}

// fetchOnce is one attempt of fetchBlob.
func (c *client) fetchOnce(ctx context.Context, repo, u, file, inc string, w want) error {
	f, err := os.OpenFile(inc, os.O_RDWR|os.O_CREATE|oNoFollow, 0o644)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	n := st.Size()
	if w.size >= 0 && n > w.size {
		n = 0 // longer than the file can be: start over
	}
	var h hash.Hash
	newHash := func() {
		switch {
		case w.sha256 != "":
			h = sha256.New()
		case w.gitOID != "" && w.size >= 0:
			h = sha1.New()
			fmt.Fprintf(h, "blob %d\x00", w.size)
		default:
			h = nil
		}
	}
	newHash()
	if n > 0 && h != nil {
		// Hash what is already there, so the final check covers the whole file.
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, n)); err != nil {
			return fmt.Errorf("hub: %s: %w", inc, err)
		}
	}
	if w.size < 0 || n < w.size {
		reqCtx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		timer := time.AfterFunc(stallTimeout, func() {
			cancel(fmt.Errorf("no data for %v", stallTimeout))
		})
		defer timer.Stop()
		req, err := c.request(reqCtx, http.MethodGet, u)
		if err != nil {
			return err
		}
		if n > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", n))
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("hub: %w", err)
			}
			return retryable{fmt.Errorf("hub: %w", err)}
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusPartialContent && n > 0:
			if !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", n)) {
				return fmt.Errorf("hub: GET %s: asked for bytes %d- but got Content-Range %q", u, n, resp.Header.Get("Content-Range"))
			}
		case resp.StatusCode == http.StatusOK:
			n = 0 // no Range support: start over
			newHash()
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
			f.Truncate(0)
			return retryable{fmt.Errorf("hub: GET %s: range %d- not satisfiable; starting over", u, n)}
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
			return retryable{fmt.Errorf("hub: GET %s: HTTP %s", u, resp.Status)}
		default:
			return c.statusError(resp, repo, "file "+file)
		}
		if rc := resp.Header.Get("X-Repo-Commit"); rc != "" && rc != w.commit {
			return fmt.Errorf("hub: GET %s: answered for commit %s, not %s", u, rc, w.commit)
		}
		if err := f.Truncate(n); err != nil {
			return fmt.Errorf("hub: %s: %w", inc, err)
		}
		if _, err := f.Seek(n, io.SeekStart); err != nil {
			return fmt.Errorf("hub: %s: %w", inc, err)
		}
		total := w.size
		if total < 0 && resp.ContentLength >= 0 {
			total = n + resp.ContentLength
			if w.gitOID != "" && h == nil && n == 0 {
				w.size = total
				newHash()
			}
		}
		dst := []io.Writer{f}
		if h != nil {
			dst = append(dst, h)
		}
		if c.opt.Progress != nil {
			dst = append(dst, &progress{fn: c.opt.Progress, file: file, done: n, total: total})
			c.opt.Progress(file, n, total)
		}
		where := u
		if final := resp.Request.URL; final.String() != u {
			// Name the CDN too, without its long signed query.
			where += " (via " + final.Scheme + "://" + final.Host + final.Path + ")"
		}
		// Never write more than the declared size: one byte more proves the
		// server wrong without filling the disk.
		// A file whose size neither the listing, its headers nor the response
		// declare is capped at maxUndeclaredBytes, so a server streaming
		// without end cannot fill the disk.
		limit, declared := maxUndeclaredBytes-n, false
		switch {
		case w.size >= 0:
			limit, declared = w.size-n, true
		case resp.ContentLength >= 0:
			limit, declared = resp.ContentLength, true
		}
		body := io.LimitReader(&stallReader{resp.Body, timer}, max(limit, 0)+1)
		copied, err := io.CopyBuffer(io.MultiWriter(dst...), body, make([]byte, 1<<20))
		n += copied
		if copied > limit {
			f.Close()
			os.Remove(inc)
			if !declared {
				return fmt.Errorf("hub: GET %s: the server declared no size and sent more than %d bytes; refusing the file", where, maxUndeclaredBytes)
			}
			return fmt.Errorf("hub: GET %s: %w: the server sent more than the %d bytes it declared", where, ErrChecksum, n-copied+limit)
		}
		if err != nil && context.Cause(reqCtx) != nil && ctx.Err() == nil {
			err = context.Cause(reqCtx) // stalled: say so rather than "context canceled"
		}
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) || ctx.Err() != nil {
				return fmt.Errorf("hub: %s: %w", inc, err) // disk full or cancelled: do not retry
			}
			return retryable{fmt.Errorf("hub: GET %s: connection broke after %d bytes: %w", where, n, err)}
		}
		if resp.ContentLength >= 0 && copied < resp.ContentLength {
			return retryable{fmt.Errorf("hub: GET %s: body ended after %d bytes", where, n)}
		}
	}
	if w.size >= 0 && n != w.size {
		f.Close()
		os.Remove(inc)
		return fmt.Errorf("hub: %s: %w: got %d bytes, want %d", u, ErrChecksum, n, w.size)
	}
	if h != nil {
		got := hex.EncodeToString(h.Sum(nil))
		if exp := w.sha256 + w.gitOID; got != exp {
			f.Close()
			os.Remove(inc)
			return fmt.Errorf("hub: %s: %w: content hashes to %s, want %s", u, ErrChecksum, got, exp)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("hub: %s: %w", inc, err)
	}
	return f.Close()
}

// progress reports bytes written through it.
type progress struct {
	fn          func(file string, done, total int64)
	file        string
	done, total int64
}

func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	p.fn(p.file, p.done, p.total)
	return len(b), nil
}
