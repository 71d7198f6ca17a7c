package kernels

import (
	"fmt"
	"math"
)

// RoPETable holds cos/sin for positions [0,maxPos) and headDim D = 2·len(invFreq),
// in the HF "rotate_half" layout: element i of a head is paired with i+D/2, and
// both use frequency invFreq[i]. Positions outside the table are computed on the
// fly, so the table never has to grow and is safe for concurrent use.
type RoPETable struct {
	invFreq  []float32
	half     int       // D/2
	maxPos   int       // positions with precomputed rows
	cos, sin []float32 // [maxPos × half]
}

// NewRoPETable precomputes cos/sin for positions [0,maxPos). invFreq [D/2] is
// computed by the model (it applies llama3 rope scaling itself). As in HF the
// angle pos·invFreq is rounded to float32 before cos/sin are taken, so tables
// match the reference implementation bit for bit in the common case.
func NewRoPETable(invFreq []float32, maxPos int) *RoPETable {
	maxPos = max(maxPos, 0)
	half := len(invFreq)
	r := &RoPETable{
		invFreq: append([]float32(nil), invFreq...),
		half:    half,
		maxPos:  maxPos,
		cos:     make([]float32, maxPos*half),
		sin:     make([]float32, maxPos*half),
	}
	for p := 0; p < maxPos; p++ {
		r.row(r.cos[p*half:(p+1)*half], r.sin[p*half:(p+1)*half], int32(p))
	}
	return r
}

// HeadDim returns D, the head dimension the table was built for.
func (r *RoPETable) HeadDim() int { return 2 * r.half }

// MaxPos returns the number of precomputed positions.
func (r *RoPETable) MaxPos() int { return r.maxPos }

// row writes cos/sin of position p into c, s [half].
func (r *RoPETable) row(c, s []float32, p int32) {
	for i, f := range r.invFreq {
		a := float64(float32(p) * f)
		c[i] = float32(math.Cos(a))
		s[i] = float32(math.Sin(a))
	}
}

// Apply rotates x [T × heads × D] in place, token t at position pos[t]:
// (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin) for x1 = x[i], x2 = x[i+D/2].
func (r *RoPETable) Apply(x []float32, T, heads, D int, pos []int32) {
	r.rotate("Apply", x, T, heads, D, pos, 1)
}

// ApplyBackward applies the inverse rotation (angle −θ) to the gradient dx
// [T × heads × D] in place: the rotation is orthogonal, so its transpose is
// its inverse.
func (r *RoPETable) ApplyBackward(dx []float32, T, heads, D int, pos []int32) {
	r.rotate("ApplyBackward", dx, T, heads, D, pos, -1)
}

func (r *RoPETable) rotate(op string, x []float32, T, heads, D int, pos []int32, sign float32) {
	if D != 2*r.half {
		panic(fmt.Sprintf("kernels.RoPETable.%s: head dim %d, table built for %d", op, D, 2*r.half))
	}
	needLen("RoPETable."+op, "x", x, T*heads*D)
	if len(pos) < T {
		panic(fmt.Sprintf("kernels.RoPETable.%s: len(pos)=%d < T=%d", op, len(pos), T))
	}
	half := r.half
	parallelFor(T, 6*heads*D, func(lo, hi int) {
		var cbuf, sbuf []float32
		for t := lo; t < hi; t++ {
			p := pos[t]
			var c, s []float32
			if p >= 0 && int(p) < r.maxPos {
				c = r.cos[int(p)*half : int(p+1)*half]
				s = r.sin[int(p)*half : int(p+1)*half]
			} else {
				if cbuf == nil {
					cbuf = make([]float32, half)
					sbuf = make([]float32, half)
				}
				r.row(cbuf, sbuf, p)
				c, s = cbuf, sbuf
			}
			for h := 0; h < heads; h++ {
				base := (t*heads + h) * D
				x1 := x[base : base+half]
				x2 := x[base+half : base+D]
				for i := range x1 {
					a, b := x1[i], x2[i]
					cs, sn := c[i], sign*s[i]
					x1[i] = a*cs - b*sn
					x2[i] = b*cs + a*sn
				}
			}
		}
	})
}
