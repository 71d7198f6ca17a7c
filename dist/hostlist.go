package dist

import (
	"fmt"
	"strconv"
	"strings"
)

// maxHosts bounds an expanded host list: a hostile "n[0-999999999]" must
// not allocate gigabytes.
const maxHosts = 1 << 16

// ExpandHostlist expands a Slurm host list such as "node[01-04,07],gpu3" or
// "rack[1-2]-n[1-3]" into host names in Slurm's order: comma-separated
// entries at the top level; each bracket a comma list of numbers or ranges
// whose zero padding is kept (the width of the range's start); several
// brackets in one entry multiply, the rightmost varying fastest. At most
// limit names are returned (limit ≤ 0: maxHosts); more is an error.
func ExpandHostlist(s string, limit int) ([]string, error) {
	if limit <= 0 || limit > maxHosts {
		limit = maxHosts
	}
	var out []string
	for _, entry := range splitTop(s) {
		if entry == "" {
			continue
		}
		names, err := expandEntry(entry, limit-len(out))
		if err != nil {
			return nil, fmt.Errorf("host list %q: %w", s, err)
		}
		out = append(out, names...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("host list %q names no host", s)
	}
	return out, nil
}

// FirstHost is the first name of a Slurm host list: where task 0 runs.
func FirstHost(s string) (string, error) {
	hs, err := ExpandHostlist(s, maxHosts)
	if err != nil {
		return "", err
	}
	return hs[0], nil
}

// splitTop splits at commas outside brackets.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// expandEntry expands one entry's brackets, at most limit names.
func expandEntry(e string, limit int) ([]string, error) {
	names := []string{""}
	for e != "" {
		open := strings.IndexByte(e, '[')
		if open < 0 {
			if strings.IndexByte(e, ']') >= 0 {
				return nil, fmt.Errorf("unmatched ']'")
			}
			for i := range names {
				names[i] += e
			}
			break
		}
		prefix := e[:open]
		if strings.IndexByte(prefix, ']') >= 0 {
			return nil, fmt.Errorf("unmatched ']'")
		}
		end := strings.IndexByte(e[open:], ']')
		if end < 0 {
			return nil, fmt.Errorf("unclosed '['")
		}
		body := e[open+1 : open+end]
		e = e[open+end+1:]
		if strings.IndexByte(body, '[') >= 0 {
			return nil, fmt.Errorf("nested '['")
		}
		nums, err := expandRanges(body, limit)
		if err != nil {
			return nil, err
		}
		if len(names)*len(nums) > limit {
			return nil, fmt.Errorf("more than %d hosts", limit)
		}
		next := make([]string, 0, len(names)*len(nums))
		for _, n := range names {
			for _, v := range nums {
				next = append(next, n+prefix+v)
			}
		}
		names = next
	}
	if len(names) > limit {
		return nil, fmt.Errorf("more than %d hosts", limit)
	}
	return names, nil
}

// expandRanges expands "01-04,07" into its numbers, keeping zero padding.
func expandRanges(body string, limit int) ([]string, error) {
	var out []string
	for _, part := range strings.Split(body, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isDigits(lo) || isRange && !isDigits(hi) {
			return nil, fmt.Errorf("bad range %q", part)
		}
		a, err1 := strconv.ParseUint(lo, 10, 32)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 32)
		}
		if err1 != nil || err2 != nil || b < a {
			return nil, fmt.Errorf("bad range %q", part)
		}
		if b-a >= uint64(limit-len(out)) {
			return nil, fmt.Errorf("more than %d hosts", limit)
		}
		for v := a; v <= b; v++ {
			out = append(out, fmt.Sprintf("%0*d", len(lo), v))
		}
	}
	return out, nil
}

func isDigits(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
