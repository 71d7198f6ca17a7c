package data

// A small, dependency-free Parquet reader: enough for SocSci210's native
// files (flat columns plus the optional `demographic` struct), not a general
// implementation. Supported: data pages v1 and v2, dictionary pages,
// PLAIN / PLAIN_DICTIONARY / RLE_DICTIONARY values, RLE/bit-packed levels,
// UNCOMPRESSED / SNAPPY / GZIP pages, nested groups without repetition.
// Anything else (lists, ZSTD, DELTA encodings, INT96) is a clear error.

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// ReadSocSciParquet reads native SocSci210 rows from a Parquet file. Each
// row goes through the same checks as a JSONL row; errors and records name
// the 1-based row number as the line.
func ReadSocSciParquet(path string, opt ReadOptions) ([]Example, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return ReadSocSciParquetBytes(b, path, opt)
}

// ReadSocSciParquetBytes is ReadSocSciParquet on the file's bytes; name is
// used in errors.
func ReadSocSciParquetBytes(b []byte, name string, opt ReadOptions) ([]Example, error) {
	pf, err := openParquet(b)
	if err != nil {
		return nil, fmt.Errorf("data: %s: %w", name, err)
	}
	rd := &reader{name: name, opt: opt, format: FormatSocSci}
	if opt.Format != FormatAuto && opt.Format != FormatSocSci {
		rd.format = opt.Format
	}
	if opt.Report != nil {
		*opt.Report = ReadReport{}
	}
	var out []Example
	row := 0
	for g := range pf.rowGroups {
		rows, err := pf.readRowGroup(g)
		if err != nil {
			return out, fmt.Errorf("data: %s: row group %d: %w", name, g, err)
		}
		for _, r := range rows {
			row++
			js, err := json.Marshal(r)
			if err == nil {
				var ex Example
				if ex, err = rd.parse(js, row); err == nil {
					out = append(out, ex)
					continue
				}
			}
			if stop := rd.bad(row, err); stop != nil {
				return out, stop
			}
		}
	}
	if opt.Report != nil {
		opt.Report.Format = rd.format
		opt.Report.Records = len(out)
		opt.Report.Skipped = rd.skipped
	}
	return out, nil
}

// ---- Thrift compact protocol ----

// tstruct is a decoded Thrift struct: field id -> value. Values are int64,
// float64, bool, []byte, []any (lists) or tstruct.
type tstruct map[int16]any

type thrift struct {
	b   []byte
	pos int
}

var errShort = errors.New("truncated thrift data")

func (t *thrift) byte1() (byte, error) {
	if t.pos >= len(t.b) {
		return 0, errShort
	}
	c := t.b[t.pos]
	t.pos++
	return c, nil
}

func (t *thrift) uvarint() (uint64, error) {
	v, n := binary.Uvarint(t.b[t.pos:])
	if n <= 0 {
		return 0, errShort
	}
	t.pos += n
	return v, nil
}

func (t *thrift) zigzag() (int64, error) {
	u, err := t.uvarint()
	return int64(u>>1) ^ -int64(u&1), err
}

func (t *thrift) value(typ byte, depth int) (any, error) {
	if depth > 32 {
		return nil, errors.New("thrift data nested too deeply")
	}
	switch typ {
	case 1:
		return true, nil
	case 2:
		return false, nil
	case 3:
		c, err := t.byte1()
		return int64(int8(c)), err
	case 4, 5, 6:
		return t.zigzag()
	case 7:
		if t.pos+8 > len(t.b) {
			return nil, errShort
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(t.b[t.pos:]))
		t.pos += 8
		return v, nil
	case 8:
		n, err := t.uvarint()
		if err != nil {
			return nil, err
		}
		if n > uint64(len(t.b)-t.pos) {
			return nil, errShort
		}
		s := t.b[t.pos : t.pos+int(n)]
		t.pos += int(n)
		return s, nil
	case 9, 10:
		h, err := t.byte1()
		if err != nil {
			return nil, err
		}
		n := uint64(h >> 4)
		if n == 15 {
			if n, err = t.uvarint(); err != nil {
				return nil, err
			}
		}
		if n > uint64(len(t.b)-t.pos) {
			return nil, errShort // every element takes at least a byte
		}
		et := h & 15
		list := make([]any, 0, n)
		for i := uint64(0); i < n; i++ {
			var v any
			if et == 1 || et == 2 { // booleans in lists are one byte each
				c, err := t.byte1()
				if err != nil {
					return nil, err
				}
				v = c == 1
			} else if v, err = t.value(et, depth+1); err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		return list, nil
	case 11:
		n, err := t.uvarint()
		if err != nil || n == 0 {
			return nil, err
		}
		kv, err := t.byte1()
		if err != nil {
			return nil, err
		}
		if n > uint64(len(t.b)-t.pos) {
			return nil, errShort
		}
		for i := uint64(0); i < 2*n; i++ {
			et := kv >> 4
			if i%2 == 1 {
				et = kv & 15
			}
			if _, err := t.value(et, depth+1); err != nil {
				return nil, err
			}
		}
		return nil, nil
	case 12:
		return t.structure(depth + 1)
	}
	return nil, fmt.Errorf("unknown thrift type %d", typ)
}

func (t *thrift) structure(depth int) (tstruct, error) {
	s := tstruct{}
	var last int16
	for {
		h, err := t.byte1()
		if err != nil {
			return nil, err
		}
		if h == 0 {
			return s, nil
		}
		id := last + int16(h>>4)
		if h>>4 == 0 {
			v, err := t.zigzag()
			if err != nil {
				return nil, err
			}
			id = int16(v)
		}
		v, err := t.value(h&15, depth)
		if err != nil {
			return nil, err
		}
		s[id] = v
		last = id
	}
}

func (s tstruct) int(id int16) int64 { v, _ := s[id].(int64); return v }
func (s tstruct) str(id int16) string {
	v, _ := s[id].([]byte)
	return string(v)
}
func (s tstruct) sub(id int16) tstruct { v, _ := s[id].(tstruct); return v }
func (s tstruct) list(id int16) []any  { v, _ := s[id].([]any); return v }

// ---- file structure ----

type pqColumn struct {
	path    []string
	levels  []int // definition level reached after each path element
	maxDef  int
	typ     int64 // physical type
	typeLen int64
}

type parquetFile struct {
	b         []byte
	columns   []pqColumn
	rowGroups []tstruct
}

func openParquet(b []byte) (*parquetFile, error) {
	if len(b) < 12 || string(b[:4]) != "PAR1" || string(b[len(b)-4:]) != "PAR1" {
		return nil, errors.New("not a Parquet file (no PAR1 magic)")
	}
	n := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	if n <= 0 || n > len(b)-12 {
		return nil, errors.New("bad Parquet footer length")
	}
	t := &thrift{b: b[len(b)-8-n : len(b)-8]}
	meta, err := t.structure(0)
	if err != nil {
		return nil, fmt.Errorf("footer: %w", err)
	}
	pf := &parquetFile{b: b}
	for _, g := range meta.list(4) {
		gs, ok := g.(tstruct)
		if !ok {
			return nil, errors.New("footer: bad row group")
		}
		pf.rowGroups = append(pf.rowGroups, gs)
	}
	var schema []tstruct
	for _, e := range meta.list(2) {
		es, ok := e.(tstruct)
		if !ok {
			return nil, errors.New("footer: bad schema element")
		}
		schema = append(schema, es)
	}
	if len(schema) == 0 {
		return nil, errors.New("footer: empty schema")
	}
	// Walk the depth-first schema list; the root is element 0.
	pos := 1
	var walk func(path []string, levels []int, def int, children int64) error
	walk = func(path []string, levels []int, def int, children int64) error {
		for c := int64(0); c < children; c++ {
			if pos >= len(schema) {
				return errors.New("footer: schema ends early")
			}
			e := schema[pos]
			pos++
			name := e.str(4)
			d := def
			switch e.int(3) {
			case 1:
				d++
			case 2:
				return fmt.Errorf("column %q is repeated (lists are not supported)", name)
			}
			p := append(append([]string(nil), path...), name)
			l := append(append([]int(nil), levels...), d)
			if nc := e.int(5); nc > 0 {
				if err := walk(p, l, d, nc); err != nil {
					return err
				}
				continue
			}
			pf.columns = append(pf.columns, pqColumn{path: p, levels: l, maxDef: d, typ: e.int(1), typeLen: e.int(2)})
		}
		return nil
	}
	if err := walk(nil, nil, 0, schema[0].int(5)); err != nil {
		return nil, err
	}
	return pf, nil
}

// readRowGroup decodes one row group into rows of nested maps.
func (pf *parquetFile) readRowGroup(g int) ([]map[string]any, error) {
	rg := pf.rowGroups[g]
	nrows := rg.int(3)
	chunks := rg.list(1)
	if len(chunks) != len(pf.columns) {
		return nil, fmt.Errorf("%d column chunks for %d columns", len(chunks), len(pf.columns))
	}
	if nrows < 0 || nrows > int64(len(pf.b))*8 {
		return nil, fmt.Errorf("bad row count %d", nrows)
	}
	rows := make([]map[string]any, nrows)
	for i := range rows {
		rows[i] = map[string]any{}
	}
	for ci, ch := range chunks {
		col := &pf.columns[ci]
		cs, _ := ch.(tstruct)
		md := cs.sub(3)
		if md == nil {
			return nil, fmt.Errorf("column %v: no metadata", col.path)
		}
		defs, vals, err := pf.readChunk(col, md, int(nrows))
		if err != nil {
			return nil, fmt.Errorf("column %v: %w", col.path, err)
		}
		if len(defs) != int(nrows) {
			return nil, fmt.Errorf("column %v: %d values for %d rows", col.path, len(defs), nrows)
		}
		vi := 0
		for r, d := range defs {
			cur := rows[r]
			for i, name := range col.path {
				parentDef := 0
				if i > 0 {
					parentDef = col.levels[i-1]
				}
				if d < parentDef {
					break
				}
				if i == len(col.path)-1 {
					if d == col.maxDef {
						cur[name] = vals[vi]
						vi++
					} else {
						cur[name] = nil
					}
					break
				}
				if d < col.levels[i] {
					if _, ok := cur[name]; !ok {
						cur[name] = nil
					}
					break
				}
				next, ok := cur[name].(map[string]any)
				if !ok {
					next = map[string]any{}
					cur[name] = next
				}
				cur = next
			}
		}
	}
	return rows, nil
}

// readChunk returns the definition level and the non-null values of every
// row of one column chunk.
func (pf *parquetFile) readChunk(col *pqColumn, md tstruct, nrows int) (defs []int, vals []any, err error) {
	codec := md.int(4)
	start := md.int(9)
	if d, ok := md[11].(int64); ok && d > 0 && d < start {
		start = d
	}
	end := start + md.int(7)
	if start < 4 || end > int64(len(pf.b)) || end < start {
		return nil, nil, errors.New("column chunk outside the file")
	}
	var dict []any
	total := md.int(5)
	t := &thrift{b: pf.b[:end], pos: int(start)}
	for int64(len(defs)) < total && t.pos < int(end) {
		ph, err := t.structure(0)
		if err != nil {
			return nil, nil, fmt.Errorf("page header: %w", err)
		}
		csize := ph.int(3)
		if csize < 0 || csize > int64(int(end)-t.pos) {
			return nil, nil, errors.New("page outside the column chunk")
		}
		raw := pf.b[t.pos : t.pos+int(csize)]
		t.pos += int(csize)
		usize := ph.int(2)
		switch ph.int(1) {
		case 2: // dictionary page
			data, err := decompress(codec, raw, usize)
			if err != nil {
				return nil, nil, err
			}
			h := ph.sub(7)
			if dict, _, err = plainValues(col, data, int(h.int(1))); err != nil {
				return nil, nil, fmt.Errorf("dictionary: %w", err)
			}
		case 0: // data page v1: levels and values compressed together
			h := ph.sub(5)
			data, err := decompress(codec, raw, usize)
			if err != nil {
				return nil, nil, err
			}
			n := int(h.int(1))
			if n < 0 || len(defs)+n > nrows {
				return nil, nil, fmt.Errorf("page of %d values overflows the %d rows", n, nrows)
			}
			d := make([]int, n)
			if col.maxDef > 0 {
				if len(data) < 4 {
					return nil, nil, errors.New("short definition levels")
				}
				l := int(binary.LittleEndian.Uint32(data))
				if l < 0 || l > len(data)-4 {
					return nil, nil, errors.New("bad definition level length")
				}
				if err := hybrid(data[4:4+l], bitWidth(col.maxDef), d); err != nil {
					return nil, nil, fmt.Errorf("definition levels: %w", err)
				}
				data = data[4+l:]
			} else {
				fill(d, 0)
			}
			v, err := pageValues(col, h.int(2), data, countDef(d, col.maxDef), dict)
			if err != nil {
				return nil, nil, err
			}
			defs, vals = append(defs, d...), append(vals, v...)
		case 3: // data page v2: levels stored uncompressed before the values
			h := ph.sub(8)
			n := int(h.int(1))
			if n < 0 || len(defs)+n > nrows {
				return nil, nil, fmt.Errorf("page of %d values overflows the %d rows", n, nrows)
			}
			dl, rl := int(h.int(5)), int(h.int(6))
			if dl < 0 || rl < 0 || dl+rl > len(raw) {
				return nil, nil, errors.New("bad level lengths")
			}
			d := make([]int, n)
			if col.maxDef > 0 {
				if err := hybrid(raw[rl:rl+dl], bitWidth(col.maxDef), d); err != nil {
					return nil, nil, fmt.Errorf("definition levels: %w", err)
				}
			}
			data := raw[rl+dl:]
			if c, ok := h[7].(bool); !ok || c {
				if data, err = decompress(codec, data, usize-int64(rl+dl)); err != nil {
					return nil, nil, err
				}
			}
			v, err := pageValues(col, h.int(4), data, countDef(d, col.maxDef), dict)
			if err != nil {
				return nil, nil, err
			}
			defs, vals = append(defs, d...), append(vals, v...)
		default: // index pages and the like are skipped
		}
		if len(defs) > nrows {
			return nil, nil, errors.New("more values than rows")
		}
	}
	return defs, vals, nil
}

func fill(d []int, v int) {
	for i := range d {
		d[i] = v
	}
}

func countDef(d []int, max int) int {
	n := 0
	for _, x := range d {
		if x == max {
			n++
		}
	}
	return n
}

func bitWidth(max int) int {
	w := 0
	for max > 0 {
		w++
		max >>= 1
	}
	return w
}

// hybrid decodes the RLE / bit-packed hybrid encoding into out.
func hybrid(b []byte, width int, out []int) error {
	if width > 32 {
		return fmt.Errorf("bit width %d", width)
	}
	bytesPer := (width + 7) / 8
	n := 0
	for n < len(out) {
		h, k := binary.Uvarint(b)
		if k <= 0 {
			return errShort
		}
		b = b[k:]
		if h&1 == 0 { // RLE run
			run := int(min(h>>1, uint64(len(out)-n)))
			if len(b) < bytesPer {
				return errShort
			}
			v := 0
			for i := 0; i < bytesPer; i++ {
				v |= int(b[i]) << (8 * i)
			}
			b = b[bytesPer:]
			for i := 0; i < run; i++ {
				out[n] = v
				n++
			}
			if h>>1 == 0 {
				return errors.New("empty RLE run")
			}
			continue
		}
		groups := h >> 1
		if groups == 0 || groups > uint64(len(b)) {
			return errShort
		}
		nb := int(groups) * width // bytes of 8 values each
		if nb > len(b) {
			return errShort
		}
		for i := 0; i < int(groups)*8 && n < len(out); i++ {
			v := 0
			for j := 0; j < width; j++ {
				bit := i*width + j
				if b[bit/8]>>(bit%8)&1 == 1 {
					v |= 1 << j
				}
			}
			out[n] = v
			n++
		}
		b = b[nb:]
	}
	return nil
}

// pageValues decodes n values in the page's encoding.
func pageValues(col *pqColumn, enc int64, data []byte, n int, dict []any) ([]any, error) {
	switch enc {
	case 0:
		v, _, err := plainValues(col, data, n)
		return v, err
	case 2, 8:
		if dict == nil {
			return nil, errors.New("dictionary-encoded page without a dictionary")
		}
		if n == 0 {
			return nil, nil
		}
		if len(data) < 1 {
			return nil, errShort
		}
		idx := make([]int, n)
		if err := hybrid(data[1:], int(data[0]), idx); err != nil {
			return nil, fmt.Errorf("dictionary indices: %w", err)
		}
		out := make([]any, n)
		for i, k := range idx {
			if k < 0 || k >= len(dict) {
				return nil, fmt.Errorf("dictionary index %d out of range", k)
			}
			out[i] = dict[k]
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported encoding %d", enc)
}

// plainValues decodes n PLAIN values; it also returns the bytes used.
func plainValues(col *pqColumn, b []byte, n int) ([]any, int, error) {
	if n < 0 || n > len(b)*8 {
		return nil, 0, errShort
	}
	out := make([]any, 0, n)
	pos := 0
	need := func(k int) error {
		if k < 0 || pos+k > len(b) {
			return errShort
		}
		return nil
	}
	for i := 0; i < n; i++ {
		switch col.typ {
		case 0: // BOOLEAN, bit-packed
			if err := need(0); err != nil || i/8 >= len(b) {
				return nil, 0, errShort
			}
			out = append(out, b[i/8]>>(i%8)&1 == 1)
			continue
		case 1: // INT32
			if err := need(4); err != nil {
				return nil, 0, err
			}
			out = append(out, int64(int32(binary.LittleEndian.Uint32(b[pos:]))))
			pos += 4
		case 2: // INT64
			if err := need(8); err != nil {
				return nil, 0, err
			}
			out = append(out, int64(binary.LittleEndian.Uint64(b[pos:])))
			pos += 8
		case 4: // FLOAT
			if err := need(4); err != nil {
				return nil, 0, err
			}
			out = append(out, float64(math.Float32frombits(binary.LittleEndian.Uint32(b[pos:]))))
			pos += 4
		case 5: // DOUBLE
			if err := need(8); err != nil {
				return nil, 0, err
			}
			f := math.Float64frombits(binary.LittleEndian.Uint64(b[pos:]))
			if math.IsNaN(f) || math.IsInf(f, 0) {
				out = append(out, nil)
			} else {
				out = append(out, f)
			}
			pos += 8
		case 6: // BYTE_ARRAY
			if err := need(4); err != nil {
				return nil, 0, err
			}
			l := int(binary.LittleEndian.Uint32(b[pos:]))
			pos += 4
			if err := need(l); err != nil {
				return nil, 0, err
			}
			out = append(out, string(b[pos:pos+l]))
			pos += l
		case 7: // FIXED_LEN_BYTE_ARRAY
			l := int(col.typeLen)
			if err := need(l); err != nil {
				return nil, 0, err
			}
			out = append(out, string(b[pos:pos+l]))
			pos += l
		default:
			return nil, 0, fmt.Errorf("unsupported physical type %d", col.typ)
		}
	}
	if col.typ == 0 {
		pos = (n + 7) / 8
	}
	return out, pos, nil
}

// decompress undoes a page codec.
func decompress(codec int64, b []byte, size int64) ([]byte, error) {
	switch codec {
	case 0:
		return b, nil
	case 1:
		return snappyDecode(b)
	case 2:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("gzip page: %w", err)
		}
		if size < 0 || size > 1<<31 {
			return nil, errors.New("bad page size")
		}
		out, err := io.ReadAll(io.LimitReader(zr, size+1))
		if err != nil {
			return nil, fmt.Errorf("gzip page: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported compression codec %d (want UNCOMPRESSED, SNAPPY or GZIP)", codec)
}

// snappyDecode decodes a raw (unframed) Snappy block.
func snappyDecode(src []byte) ([]byte, error) {
	n, k := binary.Uvarint(src)
	if k <= 0 || n > uint64(len(src))*255+64 {
		return nil, errors.New("snappy: bad length")
	}
	src = src[k:]
	dst := make([]byte, 0, n)
	for len(src) > 0 {
		tag := src[0]
		var length, offset int
		switch tag & 3 {
		case 0: // literal
			length = int(tag>>2) + 1
			src = src[1:]
			if length > 60 {
				nb := length - 60
				if len(src) < nb {
					return nil, errors.New("snappy: short literal length")
				}
				length = 0
				for i := 0; i < nb; i++ {
					length |= int(src[i]) << (8 * i)
				}
				length++
				src = src[nb:]
			}
			if length <= 0 || length > len(src) {
				return nil, errors.New("snappy: short literal")
			}
			dst = append(dst, src[:length]...)
			src = src[length:]
			continue
		case 1:
			if len(src) < 2 {
				return nil, errors.New("snappy: short copy")
			}
			length = 4 + int(tag>>2)&7
			offset = int(tag>>5)<<8 | int(src[1])
			src = src[2:]
		case 2:
			if len(src) < 3 {
				return nil, errors.New("snappy: short copy")
			}
			length = 1 + int(tag>>2)
			offset = int(binary.LittleEndian.Uint16(src[1:]))
			src = src[3:]
		case 3:
			if len(src) < 5 {
				return nil, errors.New("snappy: short copy")
			}
			length = 1 + int(tag>>2)
			offset = int(binary.LittleEndian.Uint32(src[1:]))
			src = src[5:]
		}
		if offset <= 0 || offset > len(dst) || uint64(len(dst)+length) > n {
			return nil, errors.New("snappy: bad copy")
		}
		for i := 0; i < length; i++ { // byte by byte: copies may overlap
			dst = append(dst, dst[len(dst)-offset])
		}
	}
	if uint64(len(dst)) != n {
		return nil, errors.New("snappy: length mismatch")
	}
	return dst, nil
}
