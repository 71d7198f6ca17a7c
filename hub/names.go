package hub

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// checkRepoFile refuses a repo file name from a listing or an index that could
// name a place outside the snapshot or confuse a terminal: empty, absolute,
// with a backslash, a drive letter, a "", "." or ".." segment, or a control
// character (huggingface_hub refuses the same before it joins paths).
func checkRepoFile(name string) error {
	bad := func(why string) error { return fmt.Errorf("bad file name %q: %s", name, why) }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > 1024:
		return bad("longer than 1024 bytes")
	case strings.HasPrefix(name, "/"):
		return bad("absolute")
	case strings.ContainsRune(name, '\\'):
		return bad("backslash")
	case len(name) >= 2 && name[1] == ':':
		return bad("drive letter")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return bad("control character")
		}
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad(fmt.Sprintf("%q path segment", seg))
		}
	}
	return nil
}

// checkEtag refuses an etag that cannot be a blob's file name: the Hub's are
// hex digests (an S3 etag may add "-N"), so anything outside [A-Za-z0-9._-]
// or "." and ".." is a hostile or broken server.
func checkEtag(etag string) error {
	if etag == "" || etag == "." || etag == ".." || len(etag) > 256 {
		return fmt.Errorf("bad etag %q", etag)
	}
	for _, r := range etag {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("bad etag %q", etag)
		}
	}
	return nil
}

// within returns dir/name if it lies under dir, else an error: the last
// guard, after checkRepoFile, against a name escaping its folder.
func within(dir, name string) (string, error) {
	p := filepath.Join(dir, filepath.FromSlash(name))
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("file name %q leads outside %s", name, dir)
	}
	return p, nil
}

// redactURL hides the password of a URL with credentials (HF_ENDPOINT may be
// http://user:pass@mirror), so that error messages never show it.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.Index(s, "@"); err != nil && i >= 0 && strings.Contains(s[:i], "://") {
			return s[:strings.Index(s, "://")+3] + "xxxxx" + s[i:] // unparseable: hide all before the @
		}
		return s
	}
	return u.Redacted()
}

// endpointHost is the host of the endpoint, where its credentials may go.
func (c *client) endpointHost() string {
	if u, err := url.Parse(c.opt.Endpoint); err == nil {
		return u.Host
	}
	return ""
}

// printable cuts a server's message to n bytes and replaces control
// characters, so a hostile header cannot rewrite the user's terminal.
func printable(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}
