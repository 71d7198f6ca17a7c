package kernels

import (
	"fmt"
	"math"
	"sync"
)

// Quantized frozen weights. A [Rows × Cols] matrix is quantized along Cols
// (the input features, the dot-product direction of y = x·Wᵀ) in blocks that
// never cross a row, so row i's blocks are Quant.Scales[i*nb : (i+1)*nb] with
// nb = ceil(Cols/block); the last block of a row may be short.
//
//   - Q8 (like ggml Q8_0): int8 values, scale = absmax/127 per block of 32.
//   - NF4 (QLoRA): 4-bit codes into the NormalFloat codebook nf4Table, two
//     per byte (low nibble = even column), rows padded to a whole byte,
//     scale = absmax per block of 64. Optional double quantization stores the
//     scales as int8 around their mean with one float32 per 256 scales.
//
// The matmuls never widen the whole matrix: for m > 8 MatMulT/MatMulN
// dequantize one panel of rows (or columns) of about 2 MiB at a time into
// float32 (AVX-512 or Go, dequantQ8/dequantNF4) and run the active level's
// packed GEMM microkernel on it; in ComputeBF16 with AVX512_BF16 the panel
// is rounded to bfloat16 row by row and multiplied by VDPBF16PS, and an NF4
// w in the forward (MatMulT) is dequantized by the GEMM driver into each B
// micro-panel as it packs it (packBQuant). For m ≤ 8 (decoding) each row of w is
// dotted with x straight from its quantized bytes (dotQ8/dotNF4: AVX-512
// dequantizes in registers), so the weights stream through once; in
// ComputeBF16 with AVX512_BF16 an NF4 row is looked up as the bf16 panels'
// values and dotted with x rounded to bf16 (dotNF4RowsBF16). Every
// routine has an AVX-512 and an AVX2 version (quant_*_amd64.s; the bf16
// ones AVX-512 only) and a Go twin.

// Block sizes along Cols.
const (
	Q8Block    = 32
	NF4Block   = 64
	DQBlock    = 256     // scales per float32 in NF4 double quantization
	quantPanel = 2 << 20 // floats in a dequantized panel (8 MiB, like a packed B panel)
)

// nf4Table is the NormalFloat4 codebook of QLoRA (bitsandbytes
// functional.py, get_4bit_type("nf4")): quantiles of N(0,1) scaled to
// [-1, 1] with an exact zero.
var nf4Table = [16]float32{
	-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
	-0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
	0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
	0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
}

// NF4Table returns a copy of the NF4 codebook.
func NF4Table() [16]float32 { return nf4Table }

// QuantData is the storage of a Q8 or NF4 matrix.
type QuantData struct {
	// Q8: Rows*Cols int8 values stored as bytes. NF4: Rows*((Cols+1)/2)
	// bytes, two codes each.
	Q []byte
	// Scales holds one float32 per block (nil when double-quantized).
	Scales []float32
	// Double quantization (NF4): block b's scale is
	// float32(QScales[b])*DQScales[b/DQBlock] + DQMean.
	QScales  []int8
	DQScales []float32
	DQMean   float32
}

// quantBlock is the block size of a quantized dtype.
func quantBlock(d DType) int {
	if d == Q8 {
		return Q8Block
	}
	return NF4Block
}

// QuantBlocks reports the number of blocks per row of a cols-wide matrix.
func QuantBlocks(d DType, cols int) int {
	b := quantBlock(d)
	return (cols + b - 1) / b
}

// QuantRowBytes reports the bytes of quantized values in one row.
func QuantRowBytes(d DType, cols int) int {
	if d == Q8 {
		return cols
	}
	return (cols + 1) / 2
}

// IsQuantized reports whether w is stored as Q8 or NF4.
func (w *Matrix) IsQuantized() bool { return w.DType == Q8 || w.DType == NF4 }

// scale returns the scale of block b (a flat index over all rows).
func (q *QuantData) scale(b int) float32 {
	if q.Scales != nil {
		return q.Scales[b]
	}
	return float32(q.QScales[b])*q.DQScales[b/DQBlock] + q.DQMean
}

// Validate checks that w's quantized buffers have the lengths its shape
// needs (for matrices read from a file).
func (w *Matrix) Validate() error {
	if !w.IsQuantized() {
		return nil
	}
	q := w.Quant
	if q == nil {
		return fmt.Errorf("kernels: %s matrix without quantized data", w.DType)
	}
	nb := w.Rows * QuantBlocks(w.DType, w.Cols)
	if len(q.Q) != w.Rows*QuantRowBytes(w.DType, w.Cols) {
		return fmt.Errorf("kernels: %s [%d×%d]: %d value bytes, want %d", w.DType, w.Rows, w.Cols, len(q.Q), w.Rows*QuantRowBytes(w.DType, w.Cols))
	}
	if q.Scales != nil {
		if len(q.Scales) != nb {
			return fmt.Errorf("kernels: %s [%d×%d]: %d scales, want %d", w.DType, w.Rows, w.Cols, len(q.Scales), nb)
		}
		return nil
	}
	if w.DType != NF4 || len(q.QScales) != nb || len(q.DQScales) != (nb+DQBlock-1)/DQBlock {
		return fmt.Errorf("kernels: %s [%d×%d]: bad double-quantized scales (%d, %d)", w.DType, w.Rows, w.Cols, len(q.QScales), len(q.DQScales))
	}
	return nil
}

// QuantizeQ8 quantizes an F32 or BF16 matrix to Q8, in parallel over rows.
func QuantizeQ8(w *Matrix) *Matrix {
	n, k := w.Rows, w.Cols
	nb := QuantBlocks(Q8, k)
	q := &QuantData{Q: make([]byte, n*k), Scales: make([]float32, n*nb)}
	Parallel(n, func(lo, hi int) {
		row := make([]float32, k)
		for i := lo; i < hi; i++ {
			w.Row(row, i)
			for b := 0; b < nb; b++ {
				p0, p1 := b*Q8Block, min((b+1)*Q8Block, k)
				var amax float32
				for _, v := range row[p0:p1] {
					amax = max(amax, abs32(v))
				}
				s := amax / 127
				q.Scales[i*nb+b] = s
				inv := float32(0)
				if s > 0 {
					inv = 1 / s
				}
				dst := q.Q[i*k+p0 : i*k+p1]
				for p, v := range row[p0:p1] {
					r := math.RoundToEven(float64(v * inv))
					dst[p] = byte(int8(max(-127, min(127, r))))
				}
			}
		}
	})
	return &Matrix{Rows: n, Cols: k, DType: Q8, Quant: q}
}

// QuantizeNF4 quantizes an F32 or BF16 matrix to NF4, in parallel over rows;
// double also quantizes the block scales (QLoRA's double quantization).
func QuantizeNF4(w *Matrix, double bool) *Matrix {
	n, k := w.Rows, w.Cols
	nb := QuantBlocks(NF4, k)
	rb := QuantRowBytes(NF4, k)
	q := &QuantData{Q: make([]byte, n*rb), Scales: make([]float32, n*nb)}
	Parallel(n, func(lo, hi int) {
		row := make([]float32, k+1) // +1: an odd row's padding code is 0 → 7 (zero)
		for i := lo; i < hi; i++ {
			w.Row(row[:k], i)
			row[k] = 0
			for b := 0; b < nb; b++ {
				p0, p1 := b*NF4Block, min((b+1)*NF4Block, k)
				var amax float32
				for _, v := range row[p0:p1] {
					amax = max(amax, abs32(v))
				}
				q.Scales[i*nb+b] = amax
				inv := float32(0)
				if amax > 0 {
					inv = 1 / amax
				}
				for p := p0; p < p1; p += 2 {
					lo := nf4Code(row[p] * inv)
					hi := byte(7)
					if p+1 < p1 {
						hi = nf4Code(row[p+1] * inv)
					}
					q.Q[i*rb+p/2] = lo | hi<<4
				}
			}
		}
	})
	if double {
		doubleQuantize(q)
	}
	return &Matrix{Rows: n, Cols: k, DType: NF4, Quant: q}
}

// nf4Mid are the midpoints between neighbouring codebook values.
var nf4Mid = func() (m [15]float32) {
	for c := range m {
		m[c] = (nf4Table[c] + nf4Table[c+1]) / 2
	}
	return m
}()

// nf4Lut[b] is a lower bound of the code of every v in bin b of [-1, 1]
// (256 bins, narrower than the gaps between midpoints, so nf4Code's scan
// takes at most one step, rarely two).
var nf4Lut = func() (t [256]uint8) {
	for b := range t {
		edge := float32(b)/128 - 1 - 1e-4 // a margin for rounding in nf4Code
		for t[b] < 15 && edge > nf4Mid[t[b]] {
			t[b]++
		}
	}
	return t
}()

// nf4Code returns the index of the codebook value nearest v (v in [-1, 1]):
// the number of midpoints below v.
func nf4Code(v float32) byte {
	b := int((v + 1) * 128)
	c := nf4Lut[min(max(b, 0), 255)]
	for c < 15 && v > nf4Mid[c] {
		c++
	}
	return c
}

// doubleQuantize replaces q.Scales by int8 codes around their mean, one
// float32 scale per DQBlock codes. (bitsandbytes uses an 8-bit dynamic
// float code; symmetric int8 gives the same 8 bits per scale.)
func doubleQuantize(q *QuantData) {
	s := q.Scales
	var mean float64
	for _, v := range s {
		mean += float64(v)
	}
	if len(s) > 0 {
		mean /= float64(len(s))
	}
	q.DQMean = float32(mean)
	q.QScales = make([]int8, len(s))
	q.DQScales = make([]float32, (len(s)+DQBlock-1)/DQBlock)
	for b := range q.DQScales {
		blk := s[b*DQBlock : min((b+1)*DQBlock, len(s))]
		var amax float32
		for _, v := range blk {
			amax = max(amax, abs32(v-q.DQMean))
		}
		sc := amax / 127
		q.DQScales[b] = sc
		for j, v := range blk {
			var c float64
			if sc > 0 {
				c = math.RoundToEven(float64((v - q.DQMean) / sc))
			}
			q.QScales[b*DQBlock+j] = int8(max(-127, min(127, c)))
		}
	}
	q.Scales = nil
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// Dequantize returns w as a new F32 matrix (a copy for F32 and BF16 too).
// It is for tests and references; the matmuls never call it.
func (w *Matrix) Dequantize() *Matrix {
	out := make([]float32, w.Rows*w.Cols)
	Parallel(w.Rows, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			w.Row(out[i*w.Cols:(i+1)*w.Cols], i)
		}
	})
	return NewF32(w.Rows, w.Cols, out)
}

// dequantRange widens row i, columns [p0,p1) of a k-column matrix into dst
// (len ≥ p1-p0). p0 must be a multiple of the block size.
func (q *QuantData) dequantRange(dst []float32, d DType, k, i, p0, p1 int) {
	bs := quantBlock(d)
	nb := (k + bs - 1) / bs
	for p := p0; p < p1; p += bs {
		e := min(p+bs, p1)
		s := q.scale(i*nb + p/bs)
		out := dst[p-p0 : e-p0]
		if d == Q8 {
			dequantQ8(out, q.Q[i*k+p:i*k+e], s)
		} else {
			rb := (k + 1) / 2
			dequantNF4(out, q.Q[i*rb+p/2:i*rb+(e+1)/2], s)
		}
	}
}

// dequantQ8Go writes dst[j] = int8(src[j])*s.
func dequantQ8Go(dst []float32, src []byte, s float32) {
	src = src[:len(dst)]
	for j, v := range src {
		dst[j] = float32(int8(v)) * s
	}
}

// dequantNF4Go writes dst[j] = nf4Table[code j]*s; codes two per byte of src.
func dequantNF4Go(dst []float32, src []byte, s float32) {
	var t [16]float32
	for c, v := range nf4Table {
		t[c] = v * s
	}
	n := len(dst)
	for j := 0; j+1 < n; j += 2 {
		b := src[j/2]
		dst[j] = t[b&15]
		dst[j+1] = t[b>>4]
	}
	if n%2 == 1 {
		dst[n-1] = t[src[n/2]&15]
	}
}

// dequantNF4BF16Go is the pure-Go dequantNF4BF16: each block through a
// float32 row, rounded by F32ToBF16.
func dequantNF4BF16Go(dst []uint16, src []byte, s []float32, nblk int) {
	var row [NF4Block]float32
	for b := 0; b < nblk; b++ {
		dequantNF4Go(row[:], src[b*NF4Block/2:(b+1)*NF4Block/2], s[b])
		cvtBF16Go(dst[b*NF4Block:(b+1)*NF4Block], row[:])
	}
}

// dequantNF4BF16 writes columns [p0,p1) of row i of a k-column NF4 matrix
// (p0 a multiple of NF4Block) to dst as bfloat16: whole blocks by the
// level's dequantNF4BF16, a short last block through float32. sbuf holds
// decoded double-quantized scales.
func (q *QuantData) dequantNF4BF16(l *impl, dst []uint16, sbuf *[]float32, k, i, p0, p1 int) {
	nb := (k + NF4Block - 1) / NF4Block
	rb := (k + 1) / 2
	full := (p1 - p0) / NF4Block
	if full > 0 {
		b0 := i*nb + p0/NF4Block
		sc := q.Scales
		if sc != nil {
			sc = sc[b0 : b0+full]
		} else {
			*sbuf = grow(*sbuf, full)
			sc = *sbuf
			for b := range sc {
				sc[b] = q.scale(b0 + b)
			}
		}
		l.quant.dequantNF4BF16(dst, q.Q[i*rb+p0/2:], sc, full)
	}
	if p := p0 + full*NF4Block; p < p1 {
		var row [NF4Block]float32
		dequantNF4(row[:p1-p], q.Q[i*rb+p/2:i*rb+(p1+1)/2], q.scale(i*nb+p/NF4Block))
		l.cvtBF16(dst[p-p0:p1-p0], row[:p1-p])
	}
}

// rowScales returns the nb block scales of row j (a view of Scales, or
// decoded into buf when double-quantized).
func (q *QuantData) rowScales(buf []float32, j, nb int) []float32 {
	if q.Scales != nil {
		return q.Scales[j*nb : (j+1)*nb]
	}
	qs := q.QScales[j*nb : (j+1)*nb]
	for b, c := range qs {
		buf[b] = float32(c)*q.DQScales[(j*nb+b)/DQBlock] + q.DQMean
	}
	return buf[:nb]
}

// nf4RowDot returns x · row j of a k-column NF4 matrix with block scales
// sc, row by row for the levels without dotNF4Rows: whole blocks by
// dotNF4, the short last block in Go.
func (q *QuantData) nf4RowDot(x []float32, k, j int, sc []float32) float32 {
	rb := (k + 1) / 2
	row := q.Q[j*rb : (j+1)*rb]
	return dotNF4(x, row, sc, k/NF4Block) + tailDot(x, row, NF4, k, sc[len(sc)-1])
}

// tailDot returns x · the short last block of a quantized row of k columns
// (0 when the blocks are whole), s its scale.
func tailDot(x []float32, row []byte, d DType, k int, s float32) float32 {
	bs := quantBlock(d)
	t := k / bs * bs
	if t == k {
		return 0
	}
	var tail [NF4Block]float32
	tv := tail[:k-t]
	if d == Q8 {
		dequantQ8Go(tv, row[t:], s)
	} else {
		dequantNF4Go(tv, row[t/2:], s)
	}
	var sum float32
	for p, v := range tv {
		sum += x[t+p] * v
	}
	return sum
}

// rowsDot sets y[r] = x · row j0+r of a k-column Q8 or NF4 matrix for r <
// len(y), by one call of the level's row-run kernel (dotQ8Rows; for NF4
// dotNF4RowsBF16 on xh, x rounded and permuted by permuteNF4BF16, when xh
// is not nil, else dotNF4Rows on xp, x permuted by permuteNF4, not nil) and
// the short last blocks in Go. Double-quantized scales are decoded into
// sbuf, which it returns (grown).
func (q *QuantData) rowsDot(y, x, xp []float32, xh []uint16, d DType, k, j0 int, sbuf []float32) []float32 {
	n, nb, rb := len(y), QuantBlocks(d, k), QuantRowBytes(d, k)
	var sc []float32
	if q.Scales != nil {
		sc = q.Scales[j0*nb : (j0+n)*nb]
	} else {
		sbuf = grow(sbuf, n*nb)
		for r := range n {
			q.rowScales(sbuf[r*nb:], j0+r, nb)
		}
		sc = sbuf[:n*nb]
	}
	qr := q.Q[j0*rb : (j0+n)*rb]
	switch full := k / quantBlock(d); {
	case full == 0:
		clear(y)
	case d == Q8:
		active.Load().quant.dotQ8Rows(y, x, qr, sc, full, rb, nb)
	case xh != nil:
		active.Load().quant.dotNF4RowsBF16(y, xh, qr, sc, full, rb, nb)
	default:
		active.Load().quant.dotNF4Rows(y, xp, qr, sc, full, rb, nb)
	}
	if k%quantBlock(d) != 0 {
		for r := range y {
			if xh != nil {
				y[r] += tailDotBF16(x, qr[r*rb:(r+1)*rb], k, sc[r*nb+nb-1])
			} else {
				y[r] += tailDot(x, qr[r*rb:(r+1)*rb], d, k, sc[r*nb+nb-1])
			}
		}
	}
	return sbuf
}

// dotQ8RowsGo is the pure-Go dotQ8Rows: dotQ8Go row by row.
func dotQ8RowsGo(y, x []float32, q []byte, s []float32, nblk, qstride, sstride int) {
	for r := range y {
		y[r] = dotQ8Go(x, q[r*qstride:], s[r*sstride:], nblk)
	}
}

// dotQ8Go is the pure-Go dotQ8: Σ_b s[b]·Σ_{j<32} x·int8(q) over nblk
// whole blocks.
func dotQ8Go(x []float32, q []byte, s []float32, nblk int) float32 {
	var sum float32
	for b := 0; b < nblk; b++ {
		xb, qb := x[b*Q8Block:(b+1)*Q8Block], q[b*Q8Block:(b+1)*Q8Block]
		var d float32
		for p, v := range qb {
			d += xb[p] * float32(int8(v))
		}
		sum += d * s[b]
	}
	return sum
}

// permuteNF4 returns x's whole NF4 blocks (of k columns) laid out for the
// level's dotNF4Rows, in buf (grown when short): in each pair of blocks
// (128 columns 8d+s for 16 dwords d of the 64 code bytes and nibbles s),
// column 8d+s at 16s+d, as the kernel's shifted dwords index the codebook;
// an odd last block in each half of 32, the even columns then the odd
// ones, as its bytes' low and high nibbles decode. nil when the level has
// no dotNF4Rows.
func permuteNF4(buf, x []float32, k int) []float32 {
	if active.Load().quant.dotNF4Rows == nil || k < NF4Block {
		return nil
	}
	n := k / NF4Block * NF4Block
	xp := grow(buf, n)
	p := n / 128 * 128
	for g := 0; g < p; g += 128 {
		// x in order (its lines may be another core's fresh writes), no
		// bounds checks: 9 ns a value the other way round, in a decode profile
		src, dst := (*[128]float32)(x[g:g+128]), (*[128]float32)(xp[g:g+128])
		for d := 0; d < 16; d++ {
			v := (*[8]float32)(src[8*d : 8*d+8])
			dst[d], dst[16+d], dst[32+d], dst[48+d] = v[0], v[1], v[2], v[3]
			dst[64+d], dst[80+d], dst[96+d], dst[112+d] = v[4], v[5], v[6], v[7]
		}
	}
	for h := p; h < n; h += 32 {
		src, dst := x[h:h+32:h+32], xp[h:h+32:h+32]
		for i := 0; i < 16; i++ {
			dst[i], dst[16+i] = src[2*i], src[2*i+1]
		}
	}
	return xp
}

// dotNF4RowsGo is the pure-Go twin of the levels' dotNF4Rows (for the
// tests; the Go level dots unpermuted x with dotNF4Go): y[r] = Σ_b
// s[r·sstride+b]·Σ x·nf4[code] over nblk whole blocks of row r at
// q[r·qstride:], x permuted by permuteNF4.
func dotNF4RowsGo(y, xp []float32, q []byte, s []float32, nblk, qstride, sstride int) {
	for r := range y {
		qr, sr := q[r*qstride:], s[r*sstride:]
		var sum float32
		for b := 0; b < nblk; b++ {
			var d float32
			qb := qr[b*32 : (b+1)*32]
			if pair := b / 2 * 2; pair+1 < nblk { // a pair's block: column 8j+i at 16i+j
				xb := xp[pair*64 : pair*64+128]
				for i, v := range qb {
					c := (b-pair)*64 + 2*i // column in the pair
					d += xb[16*(c%8)+c/8]*nf4Table[v&15] + xb[16*((c+1)%8)+(c+1)/8]*nf4Table[v>>4]
				}
			} else { // the odd last block: even columns of each 32, then odd
				xb := xp[b*64 : (b+1)*64]
				for i, v := range qb {
					h := i / 16 * 32
					d += xb[h+i%16]*nf4Table[v&15] + xb[h+16+i%16]*nf4Table[v>>4]
				}
			}
			sum += d * sr[b]
		}
		y[r] = sum
	}
}

// dotNF4Go is the pure-Go dotNF4: Σ_b s[b]·Σ_{j<64} x·nf4[code] over nblk
// whole blocks (32 bytes each, low nibble first).
func dotNF4Go(x []float32, q []byte, s []float32, nblk int) float32 {
	var sum float32
	for b := 0; b < nblk; b++ {
		xb, qb := x[b*NF4Block:(b+1)*NF4Block], q[b*NF4Block/2:(b+1)*NF4Block/2]
		var d float32
		for p, v := range qb {
			d += xb[2*p]*nf4Table[v&15] + xb[2*p+1]*nf4Table[v>>4]
		}
		sum += d * s[b]
	}
	return sum
}

// panelPool recycles the float32 panels quantized matmuls dequantize into.
var panelPool = sync.Pool{New: func() any { return new([]float32) }}

// quantMatMulT is MatMulT for a quantized w; with bf16 set (ComputeBF16 on
// a level with kernBF16) the panels are dequantized into bfloat16 instead of
// float32 and multiplied by VDPBF16PS with x rounded to bf16 pairs once,
// and a few rows of x (decoding) dot NF4 rows by dotNF4RowsBF16, the same
// products.
func quantMatMulT(y, x []float32, m int, w *Matrix, acc, bf16 bool) {
	n, k := w.Rows, w.Cols
	checkLen("MatMulT y", y, m*n)
	checkLen("MatMulT x", x, m*k)
	if err := w.Validate(); err != nil {
		panic(err.Error())
	}
	if m <= 0 || n <= 0 {
		return
	}
	if k == 0 {
		if !acc {
			clear(y[:m*n])
		}
		return
	}
	l := active.Load()
	t := Threads()
	if m <= gemvMaxM {
		// Decoding: each row of w is dotted with the rows of x straight
		// from its quantized bytes (dequantized in registers), so the
		// weights stream through once.
		nb := QuantBlocks(w.DType, k)
		var xps [gemvMaxM][]float32 // x's rows permuted for dotNF4Rows
		var xhs [gemvMaxM][]uint16  // or rounded and permuted for dotNF4RowsBF16
		if w.DType == NF4 && bf16 && l.quant.dotNF4RowsBF16 != nil {
			// bf16(x)·bf16(nf4·scale): the products of the bf16 GEMM's panels
			bp := pairPool.Get().(*[]uint16)
			defer pairPool.Put(bp)
			kb := k / NF4Block * NF4Block
			*bp = growU16(*bp, m*kb)
			for i := 0; i < m; i++ {
				xhs[i] = permuteNF4BF16((*bp)[i*kb:(i+1)*kb:(i+1)*kb], x[i*k:(i+1)*k], k)
			}
		} else if w.DType == NF4 {
			// a recycled buffer: fresh memory per call cost 4 ms of
			// page-fresh writes a decoded token of Qwen3-30B-A3B
			bp := scratchPool.Get().(*[]float32)
			defer scratchPool.Put(bp)
			kb := k / NF4Block * NF4Block
			*bp = grow(*bp, m*kb)
			for i := 0; i < m; i++ {
				xps[i] = permuteNF4((*bp)[i*kb:(i+1)*kb:(i+1)*kb], x[i*k:(i+1)*k], k)
			}
		}
		rows := w.DType == Q8 || xps[0] != nil || xhs[0] != nil // a row-run kernel
		gemvParallel(n, func(lo, hi int) {
			if rows && m == 1 && !acc {
				w.Quant.rowsDot(y[lo:hi], x, xps[0], xhs[0], w.DType, k, lo, nil)
				return
			}
			if rows {
				// Runs of rows small enough to stay in cache for all of x.
				var sbuf []float32
				var out [32]float32
				for j0 := lo; j0 < hi; j0 += len(out) {
					o := out[:min(len(out), hi-j0)]
					for i := 0; i < m; i++ {
						sbuf = w.Quant.rowsDot(o, x[i*k:(i+1)*k], xps[i], xhs[i], w.DType, k, j0, sbuf)
						yr := y[i*n+j0 : i*n+j0+len(o)]
						if acc {
							for c, v := range o {
								yr[c] += v
							}
						} else {
							copy(yr, o)
						}
					}
				}
				return
			}
			sbuf := make([]float32, nb)
			for j := lo; j < hi; j++ {
				sc := w.Quant.rowScales(sbuf, j, nb)
				for i := 0; i < m; i++ {
					s := w.Quant.nf4RowDot(x[i*k:(i+1)*k], k, j, sc)
					if acc {
						y[i*n+j] += s
					} else {
						y[i*n+j] = s
					}
				}
			}
		})
		return
	}
	if bf16 && w.DType == NF4 {
		// The GEMM driver dequantizes each B micro-panel as it packs it.
		a := matA{f: x, rs: k, cs: 1, round: true, kk: k}
		gemm(l, m, n, (k+1)/2, a, matB{q: w, rs: 1, cs: k, pairs: true, kk: k}, y, n, acc)
		return
	}
	// Panels of pr rows of w (a multiple of the tile width, about
	// quantPanel floats), each dequantized once and multiplied by all of x.
	// Big panels matter: gemmSerial repacks x for every panel.
	pr := max(l.nr, min(quantPanel/k, (n+2*t-1)/(2*t))/l.nr*l.nr)
	np := (n + pr - 1) / pr
	a, kk, done := quantLeft(l, x, m, k, bf16)
	defer done()
	parallelChunks(np, min(np, 4*t), func(lo, hi int) {
		pb := getPanel(bf16, pr*k)
		defer pb.put()
		for pi := lo; pi < hi; pi++ {
			j0, j1 := pi*pr, min((pi+1)*pr, n)
			for j := j0; j < j1; j++ {
				pb.dequant(w, j, 0, k, (j-j0)*k)
			}
			b := matB{f: pb.f, h: pb.h, rs: 1, cs: k, pairs: bf16, kk: k}
			gemmSerial(l, m, j1-j0, kk, a, b, y[j0:], n, acc)
		}
	})
}

// packBQuant is packBPairs for a quantized w (b.q, NF4, read transposed):
// the nc ≤ NR rows of w from b.pj+j0 on, pairs [q0,q0+kc2) of k, are
// dequantized into an L1-sized bfloat16 stage and packed from there, just
// before the panel's first use. (Dequantizing whole panels of ~2 MiB
// first, then packing from them, went through L2 and L3 twice.)
func packBQuant(l *impl, bufs *packBufs, dst []float32, b matB, q0, kc2, j0, nc int) {
	w := b.q
	k := w.Cols
	p0, p1 := 2*q0, min(2*(q0+kc2), k)
	ld := 2 * kc2
	if cap(bufs.stage) < nc*ld {
		bufs.stage = make([]uint16, l.nr*ld)
	}
	st := bufs.stage[:nc*ld]
	for j := 0; j < nc; j++ {
		row := st[j*ld : (j+1)*ld]
		w.Quant.dequantNF4BF16(l, row[:p1-p0], &bufs.sc, k, b.pj+j0+j, p0, p1)
		clear(row[p1-p0:])
	}
	packBPairs(l, dst, matB{h: st, rs: 1, cs: ld, pairs: true, kk: ld}, 0, kc2, 0, nc)
}

// quantLeft is the left operand x [m×k] of a quantized matmul and its
// inner length: as is, or (bf16) rounded into pair panels once for every
// dequantized panel (prepackA), whose buffer done returns.
func quantLeft(l *impl, x []float32, m, k int, bf16 bool) (a matA, kk int, done func()) {
	if !bf16 {
		return matA{f: x, rs: k, cs: 1}, k, func() {}
	}
	k2 := (k + 1) / 2
	a, buf := prepackA(l, matA{f: x, rs: k, cs: 1, round: true, kk: k}, m, k2)
	return a, k2, func() { packPool.Put(buf) }
}

// quantPanelBuf is a dequantized panel, float32 (f) or bfloat16 (h, for
// ComputeBF16: half the bytes, and packed into pairs by the 32-bit
// transposes), with a float32 row of scratch for the bf16 case.
type quantPanelBuf struct {
	f, row []float32
	h      []uint16
	pf     *[]float32
	ph     *[]uint16
}

// getPanel takes an n-value panel buffer from the pools.
func getPanel(bf16 bool, n int) *quantPanelBuf {
	pb := &quantPanelBuf{pf: panelPool.Get().(*[]float32)}
	if !bf16 {
		pb.f = grow(*pb.pf, n)
		return pb
	}
	pb.ph = pairPool.Get().(*[]uint16)
	if cap(*pb.ph) < n {
		*pb.ph = make([]uint16, n)
	}
	pb.h = (*pb.ph)[:n]
	return pb
}

func (pb *quantPanelBuf) put() {
	if pb.f != nil {
		*pb.pf = pb.f
	} else if pb.row != nil {
		*pb.pf = pb.row
	}
	panelPool.Put(pb.pf)
	if pb.ph != nil {
		pairPool.Put(pb.ph)
	}
}

// dequant widens row j, columns [p0,p1) of w into the panel at off: as
// float32, or through an L1-sized float32 row rounded to bfloat16.
func (pb *quantPanelBuf) dequant(w *Matrix, j, p0, p1, off int) {
	if pb.h == nil {
		w.Quant.dequantRange(pb.f[off:], w.DType, w.Cols, j, p0, p1)
		return
	}
	l := active.Load()
	if w.DType == NF4 {
		w.Quant.dequantNF4BF16(l, pb.h[off:off+p1-p0], &pb.row, w.Cols, j, p0, p1)
		return
	}
	pb.row = grow(pb.row, p1-p0)
	w.Quant.dequantRange(pb.row, w.DType, w.Cols, j, p0, p1)
	l.cvtBF16(pb.h[off:off+p1-p0], pb.row)
}

// quantMatMulN is MatMulN for a quantized w: dx[m×k] (+)= dy[m×n]·w. It
// splits the columns of w into block-aligned panels, each dequantized
// (all n rows) once. bf16 is as for quantMatMulT.
func quantMatMulN(dx, dy []float32, m int, w *Matrix, acc, bf16 bool) {
	n, k := w.Rows, w.Cols
	checkLen("MatMulN dx", dx, m*k)
	checkLen("MatMulN dy", dy, m*n)
	if err := w.Validate(); err != nil {
		panic(err.Error())
	}
	if m <= 0 || k <= 0 {
		return
	}
	if n == 0 {
		if !acc {
			clear(dx[:m*k])
		}
		return
	}
	l := active.Load()
	t := Threads()
	// Panel columns, block-aligned; big panels since dy is repacked per panel.
	pc := max(NF4Block, min(quantPanel/n, (k+2*t-1)/(2*t))/NF4Block*NF4Block)
	np := (k + pc - 1) / pc
	a, nn, done := quantLeft(l, dy, m, n, bf16)
	defer done()
	parallelChunks(np, min(np, 4*t), func(lo, hi int) {
		pb := getPanel(bf16, n*pc)
		defer pb.put()
		for pi := lo; pi < hi; pi++ {
			p0, p1 := pi*pc, min((pi+1)*pc, k)
			kw := p1 - p0
			for j := 0; j < n; j++ {
				pb.dequant(w, j, p0, p1, j*kw)
			}
			b := matB{f: pb.f, h: pb.h, rs: kw, cs: 1, pairs: bf16, kk: n}
			gemmSerial(l, m, kw, nn, a, b, dx[p0:], k, acc)
		}
	})
}

// permuteNF4BF16 returns x's whole NF4 blocks (of k columns) rounded to
// bfloat16 and laid out for dotNF4RowsBF16, in buf (grown when short): in
// each pair of blocks (128 columns 4w+i for the 32 words w of the 64 code
// bytes and their nibbles i), column 4w+i at 32i+w, as the kernel's
// shifted words index the codebook; an odd last block likewise in 16-word
// rows (column 4w+i at 16i+w).
func permuteNF4BF16(buf []uint16, x []float32, k int) []uint16 {
	n := k / NF4Block * NF4Block
	xh := growU16(buf, n)
	if xh == nil { // never nil, even empty: rowsDot tells the arithmetic by it
		xh = []uint16{}
	}
	p := n / 128 * 128
	for g := 0; g < p; g += 128 {
		src, dst := (*[128]float32)(x[g:g+128]), (*[128]uint16)(xh[g:g+128])
		for w := 0; w < 32; w++ {
			v := (*[4]float32)(src[4*w : 4*w+4])
			dst[w], dst[32+w], dst[64+w], dst[96+w] = F32ToBF16(v[0]), F32ToBF16(v[1]), F32ToBF16(v[2]), F32ToBF16(v[3])
		}
	}
	if p < n {
		src, dst := (*[64]float32)(x[p:p+64]), (*[64]uint16)(xh[p:p+64])
		for w := 0; w < 16; w++ {
			v := (*[4]float32)(src[4*w : 4*w+4])
			dst[w], dst[16+w], dst[32+w], dst[48+w] = F32ToBF16(v[0]), F32ToBF16(v[1]), F32ToBF16(v[2]), F32ToBF16(v[3])
		}
	}
	return xh
}

// dotNF4RowsBF16Go is the pure-Go twin of dotNF4RowsBF16 (for the tests;
// levels without AVX512_BF16 multiply quantized weights in float32): y[r] =
// Σ_b Σ bf16(x)·bf16(nf4[code]·s[r·sstride+b]) over nblk whole blocks of row
// r at q[r·qstride:], x permuted by permuteNF4BF16, the products summed in
// float32.
func dotNF4RowsBF16Go(y []float32, xh []uint16, q []byte, s []float32, nblk, qstride, sstride int) {
	for r := range y {
		qr, sr := q[r*qstride:], s[r*sstride:]
		var sum float32
		for b := 0; b < nblk; b++ {
			var t [16]float32 // the block's weights, as the bf16 GEMM's panels hold them
			for c, v := range nf4Table {
				t[c] = BF16ToF32(F32ToBF16(v * sr[b]))
			}
			xb, qb := xh[b/2*128:], qr[b*32:(b+1)*32]
			rs, w0 := 32, (b%2)*16 // a pair's block: its words from 16·(b%2)
			if b == nblk-1 && nblk%2 == 1 {
				rs, w0 = 16, 0 // the odd last block: 16-word rows
			}
			for w := 0; w < 16; w++ {
				code := uint16(qb[2*w]) | uint16(qb[2*w+1])<<8
				for i := 0; i < 4; i++ {
					sum += BF16ToF32(xb[rs*i+w0+w]) * t[code>>(4*i)&15]
				}
			}
		}
		y[r] = sum
	}
}

// tailDotBF16 is tailDot in dotNF4RowsBF16's arithmetic: x rounded to
// bfloat16, the weights bf16(nf4[code]·s).
func tailDotBF16(x []float32, row []byte, k int, s float32) float32 {
	t := k / NF4Block * NF4Block
	var sum float32
	for p := t; p < k; p++ {
		code := row[p/2] >> (4 * (p % 2)) & 15
		sum += BF16ToF32(F32ToBF16(x[p])) * BF16ToF32(F32ToBF16(nf4Table[code]*s))
	}
	return sum
}
