package data

// SocSci210's native Parquet files (flat columns plus the optional
// `demographic` struct) are decoded by github.com/parquet-go/parquet-go
// (every codec and encoding it supports: SNAPPY, GZIP, ZSTD, LZ4, BROTLI,
// dictionary and DELTA values, data pages v1 and v2); this file only turns
// each row into the JSON object a JSONL row would be, so both go through the
// same checks. Row groups are read a batch of rows at a time, so a multi-GB
// file is never held in memory. Repeated columns (lists) and INT96 are a
// clear error, as they never occur in SocSci210.
//
// Corrupt files are errors, never panics (library panics are recovered),
// but the library sizes some buffers from counts inside a page before
// checking them, so a damaged or hostile file can cost far more memory
// and time than its size.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/gotrain/gotrain/internal/inputfile"
)

// parquetBatch is how many rows are decoded at a time.
const parquetBatch = 256

// ReadSocSciParquet reads native SocSci210 rows from a Parquet file. Each
// row goes through the same checks as a JSONL row; errors and records name
// the 1-based row number as the line.
func ReadSocSciParquet(path string, opt ReadOptions) ([]Example, error) {
	f, err := inputfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return readSocSciParquet(f, st.Size(), path, opt)
}

// ReadSocSciParquetBytes is ReadSocSciParquet on the file's bytes; name is
// used in errors.
func ReadSocSciParquetBytes(b []byte, name string, opt ReadOptions) ([]Example, error) {
	return readSocSciParquet(bytes.NewReader(b), int64(len(b)), name, opt)
}

func readSocSciParquet(r io.ReaderAt, size int64, name string, opt ReadOptions) (out []Example, err error) {
	// The library may panic on corrupt input; that is an error naming the
	// file, never a crash.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("data: %s: corrupt Parquet file: %v", name, p)
		}
	}()
	if err := checkParquetFooter(r, size); err != nil {
		return nil, fmt.Errorf("data: %s: %w", name, err)
	}
	pf, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("data: %s: %w", name, err)
	}
	cols, err := parquetColumns(pf.Root())
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
	row := 0
	buf := make([]parquet.Row, parquetBatch)
	for g, rg := range pf.RowGroups() {
		if n := len(rg.ColumnChunks()); n != len(cols) {
			return out, fmt.Errorf("data: %s: row group %d: %d column chunks for %d columns", name, g, n, len(cols))
		}
		// Ask for no more rows than the group holds: the library's cost
		// grows with the buffer's length, not with the rows it returns.
		left := rg.NumRows()
		if left < 0 {
			return out, fmt.Errorf("data: %s: row group %d: bad row count %d", name, g, left)
		}
		rows := rg.Rows()
		for left > 0 {
			n, rerr := rows.ReadRows(buf[:min(int64(len(buf)), left)])
			left -= int64(n)
			for _, pr := range buf[:n] {
				row++
				m, err := parquetRow(cols, pr)
				var js []byte
				if err == nil {
					js, err = json.Marshal(m)
				}
				if err == nil {
					var ex Example
					if ex, err = rd.parse(js, row); err == nil {
						out = append(out, ex)
						continue
					}
				}
				if stop := rd.bad(row, err); stop != nil {
					rows.Close()
					return out, stop
				}
			}
			switch {
			case rerr == io.EOF && left > 0:
				rerr = fmt.Errorf("%d rows missing", left)
			case rerr == io.EOF:
				rerr = nil
			case rerr == nil && n == 0:
				rerr = errors.New("no progress reading rows")
			}
			if rerr != nil {
				rows.Close()
				return out, fmt.Errorf("data: %s: row group %d: %w", name, g, rerr)
			}
		}
		if err := rows.Close(); err != nil {
			return out, fmt.Errorf("data: %s: row group %d: %w", name, g, err)
		}
	}
	if opt.Report != nil {
		opt.Report.Format = rd.format
		opt.Report.Records = len(out)
		opt.Report.Skipped = rd.skipped
	}
	return out, nil
}

// checkParquetFooter checks the magic bytes and the footer length before the
// library sees the file: it would otherwise allocate whatever length a
// corrupt footer claims.
func checkParquetFooter(r io.ReaderAt, size int64) error {
	var head, tail [8]byte
	if size < 12 {
		return errors.New("not a Parquet file (no PAR1 magic)")
	}
	if _, err := r.ReadAt(head[:4], 0); err != nil {
		return err
	}
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return err
	}
	if string(head[:4]) != "PAR1" || string(tail[4:]) != "PAR1" {
		return errors.New("not a Parquet file (no PAR1 magic)")
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n <= 0 || n > size-12 {
		return errors.New("bad Parquet footer length")
	}
	return nil
}

// pqColumn is one leaf column: its path from the root and the definition
// level reached after each path element.
type pqColumn struct {
	path   []string
	levels []int
	kind   parquet.Kind
}

// parquetColumns lists the leaf columns in file order, which is the order
// of a row's values (parquet.Value.Column).
func parquetColumns(root *parquet.Column) ([]pqColumn, error) {
	var cols []pqColumn
	var walk func(c *parquet.Column, path []string, levels []int, def int) error
	walk = func(c *parquet.Column, path []string, levels []int, def int) error {
		for _, ch := range c.Columns() {
			name := ch.Name()
			p := append(append([]string(nil), path...), name)
			if ch.Repeated() {
				return fmt.Errorf("column %q is repeated (lists are not supported)", strings.Join(p, "."))
			}
			d := def
			if ch.Optional() {
				d++
			}
			l := append(append([]int(nil), levels...), d)
			if !ch.Leaf() {
				if err := walk(ch, p, l, d); err != nil {
					return err
				}
				continue
			}
			k := ch.Type().Kind()
			if k == parquet.Int96 {
				return fmt.Errorf("column %q: unsupported physical type INT96", strings.Join(p, "."))
			}
			if ch.Index() != len(cols) {
				return fmt.Errorf("column %q: leaf index %d, want %d", strings.Join(p, "."), ch.Index(), len(cols))
			}
			cols = append(cols, pqColumn{path: p, levels: l, kind: k})
		}
		return nil
	}
	if err := walk(root, nil, nil, 0); err != nil {
		return nil, err
	}
	return cols, nil
}

// parquetRow rebuilds one row as nested maps: a null group is a null
// value, not an object of nulls. BYTE_ARRAY values are strings, integers
// int64, floats float64 (NaN and infinities, which JSON lacks, are null).
func parquetRow(cols []pqColumn, pr parquet.Row) (map[string]any, error) {
	m := make(map[string]any, len(cols))
	seen := 0
	for _, v := range pr {
		ci := v.Column()
		if ci < 0 || ci >= len(cols) {
			return nil, fmt.Errorf("value of unknown column %d", ci)
		}
		col := &cols[ci]
		seen++
		d := v.DefinitionLevel()
		cur := m
		for i, name := range col.path {
			parentDef := 0
			if i > 0 {
				parentDef = col.levels[i-1]
			}
			if d < parentDef {
				break
			}
			if i == len(col.path)-1 {
				if d == col.levels[i] && !v.IsNull() {
					cur[name] = parquetValue(col.kind, v)
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
	if seen != len(cols) {
		return nil, fmt.Errorf("%d values for %d columns", seen, len(cols))
	}
	return m, nil
}

func parquetValue(k parquet.Kind, v parquet.Value) any {
	switch k {
	case parquet.Boolean:
		return v.Boolean()
	case parquet.Int32:
		return int64(v.Int32())
	case parquet.Int64:
		return v.Int64()
	case parquet.Float:
		return finite(float64(v.Float()))
	case parquet.Double:
		return finite(v.Double())
	}
	return string(v.ByteArray()) // BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY
}

// finite maps NaN and infinities to nil (JSON null).
func finite(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return f
}
