package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
)

// MaxHeaderBytes is the largest JSON header accepted (as in the reference
// implementation), so a corrupt length cannot make us allocate or scan GBs.
const MaxHeaderBytes = 100 << 20

// metadataKey is the reserved header key holding free-form string metadata.
const metadataKey = "__metadata__"

// ParseHeader validates a safetensors JSON header for a data section of
// dataLen bytes. It returns the tensors sorted by name (Data nil), their
// [begin, end) byte offsets relative to the start of the data section, and
// the __metadata__ strings (nil if absent).
//
// It rejects: JSON that is not one object (trailing whitespace is allowed:
// writers pad with spaces), duplicate names, entries missing dtype, shape or
// data_offsets or with wrong JSON types, unknown dtypes, negative or
// non-integer dims, begin > end, end > dataLen, a byte length that does not
// match shape × dtype size (checked without overflow), and tensors whose
// byte ranges overlap. Unlike the reference implementation it allows gaps
// between tensors and unused bytes at the end of the data section: they are
// harmless, and some writers align tensors that way.
func ParseHeader(header []byte, dataLen int64) (tensors []Tensor, offsets [][2]int64, meta map[string]string, err error) {
	if dataLen < 0 {
		return nil, nil, nil, fmt.Errorf("negative data length %d", dataLen)
	}
	if len(header) > MaxHeaderBytes {
		return nil, nil, nil, fmt.Errorf("header is %d bytes, more than the %d limit", len(header), MaxHeaderBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	type entry struct {
		t   Tensor
		off [2]int64
	}
	var entries []entry
	seen := map[string]bool{}
	err = scanObject(dec, "header", func(key string) error {
		if seen[key] {
			return fmt.Errorf("duplicate entry %q", key)
		}
		seen[key] = true
		if key == metadataKey {
			m, err := parseMetadata(dec)
			if err != nil {
				return fmt.Errorf("%s: %w", metadataKey, err)
			}
			meta = m
			return nil
		}
		t, off, err := parseEntry(dec, key, dataLen)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", key, err)
		}
		entries = append(entries, entry{t, off})
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	// Only padding may follow the object.
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("unexpected data")
		}
		return nil, nil, nil, fmt.Errorf("after header object: %w", err)
	}

	// Overlap check: sort by (begin, end); each range must start at or after
	// the end of the previous one.
	byOff := make([]int, len(entries))
	for i := range byOff {
		byOff[i] = i
	}
	sort.Slice(byOff, func(a, b int) bool {
		oa, ob := entries[byOff[a]].off, entries[byOff[b]].off
		if oa[0] != ob[0] {
			return oa[0] < ob[0]
		}
		return oa[1] < ob[1]
	})
	for k := 1; k < len(byOff); k++ {
		prev, cur := entries[byOff[k-1]], entries[byOff[k]]
		if cur.off[0] < prev.off[1] {
			return nil, nil, nil, fmt.Errorf("tensor %q bytes [%d, %d) overlap tensor %q bytes [%d, %d)",
				cur.t.Name, cur.off[0], cur.off[1], prev.t.Name, prev.off[0], prev.off[1])
		}
	}

	sort.Slice(entries, func(a, b int) bool { return entries[a].t.Name < entries[b].t.Name })
	tensors = make([]Tensor, len(entries))
	offsets = make([][2]int64, len(entries))
	for i, e := range entries {
		tensors[i] = e.t
		offsets[i] = e.off
	}
	return tensors, offsets, meta, nil
}

// scanObject reads one JSON object from dec, calling fn for each key with
// the decoder positioned at the key's value; fn must consume the value.
// Reading keys token by token (instead of decoding into a map) is what lets
// callers see duplicate keys.
func scanObject(dec *json.Decoder, what string, fn func(key string) error) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%s: invalid JSON: %w", what, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("%s: want a JSON object, got %s", what, describe(tok))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%s: invalid JSON: %w", what, err)
		}
		key, ok := tok.(string)
		if !ok { // the decoder itself rejects non-string keys; be safe anyway
			return fmt.Errorf("%s: want a string key, got %s", what, describe(tok))
		}
		if err := fn(key); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return fmt.Errorf("%s: invalid JSON: %w", what, err)
	}
	return nil
}

// describe names a JSON token for error messages.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// parseMetadata reads the __metadata__ object: string keys to string values.
func parseMetadata(dec *json.Decoder) (map[string]string, error) {
	m := map[string]string{}
	err := scanObject(dec, "metadata", func(key string) error {
		if _, dup := m[key]; dup {
			return fmt.Errorf("duplicate key %q", key)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("key %q: invalid JSON: %w", key, err)
		}
		var s string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return fmt.Errorf("key %q: value must be a string", key)
		}
		m[key] = s
		return nil
	})
	return m, err
}

// parseEntry reads one tensor entry {"dtype", "shape", "data_offsets"} and
// validates it against dataLen. Unknown extra fields are ignored, as the
// reference implementation does.
func parseEntry(dec *json.Decoder, name string, dataLen int64) (Tensor, [2]int64, error) {
	t := Tensor{Name: name}
	var off [2]int64
	var haveDType, haveShape, haveOff bool
	err := scanObject(dec, "entry", func(key string) error {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("field %q: invalid JSON: %w", key, err)
		}
		switch key {
		case "dtype":
			if haveDType {
				return errors.New(`duplicate field "dtype"`)
			}
			haveDType = true
			var s string
			if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
				return errors.New("dtype must be a string")
			}
			t.DType = DType(s)
			if !t.DType.known() {
				return fmt.Errorf("unknown dtype %q", s)
			}
		case "shape":
			if haveShape {
				return errors.New(`duplicate field "shape"`)
			}
			haveShape = true
			dims, err := intArray(raw)
			if err != nil {
				return fmt.Errorf("shape: %w", err)
			}
			t.Shape = make([]int, len(dims))
			for i, d := range dims {
				if d < 0 {
					return fmt.Errorf("shape %v: negative dimension %d", dims, d)
				}
				if int64(int(d)) != d {
					return fmt.Errorf("shape %v: dimension %d too large", dims, d)
				}
				t.Shape[i] = int(d)
			}
		case "data_offsets":
			if haveOff {
				return errors.New(`duplicate field "data_offsets"`)
			}
			haveOff = true
			v, err := intArray(raw)
			if err != nil {
				return fmt.Errorf("data_offsets: %w", err)
			}
			if len(v) != 2 {
				return fmt.Errorf("data_offsets %v: want [begin, end]", v)
			}
			off = [2]int64{v[0], v[1]}
		}
		return nil
	})
	if err != nil {
		return t, off, err
	}
	switch {
	case !haveDType:
		return t, off, errors.New("missing dtype")
	case !haveShape:
		return t, off, errors.New("missing shape")
	case !haveOff:
		return t, off, errors.New("missing data_offsets")
	}
	if off[0] < 0 || off[1] < 0 {
		return t, off, fmt.Errorf("negative data_offsets %v", off)
	}
	if off[0] > off[1] {
		return t, off, fmt.Errorf("data_offsets begin %d > end %d", off[0], off[1])
	}
	if off[1] > dataLen {
		return t, off, fmt.Errorf("data_offsets end %d beyond the %d-byte data section", off[1], dataLen)
	}
	n, ok := numElements(t.Shape)
	if !ok {
		return t, off, fmt.Errorf("shape %v: element count overflows", t.Shape)
	}
	want, ok := byteLen(n, t.DType)
	if !ok {
		return t, off, fmt.Errorf("shape %v of %s: byte size overflows or is not whole bytes", t.Shape, t.DType)
	}
	if got := off[1] - off[0]; got != want {
		return t, off, fmt.Errorf("data_offsets %v span %d bytes, shape %v of %s needs %d", off, got, t.Shape, t.DType, want)
	}
	return t, off, nil
}

// intArray parses a JSON array of integers that fit in int64. Numbers in
// float syntax (2.0, 1e3) and quoted numbers are rejected, as in the
// reference implementation.
func intArray(raw json.RawMessage) ([]int64, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '[' {
		return nil, fmt.Errorf("want an array of integers, got %s", describe(tok))
	}
	var out []int64
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("element %d is %s, want an integer", len(out), describe(tok))
		}
		v, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("element %d (%s) is not an int64", len(out), num)
		}
		out = append(out, v)
	}
	return out, nil
}
