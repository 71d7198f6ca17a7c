//go:build !purego

package kernels

// Assembly routines (gemm_avx512_amd64.s, gemm_avx2_amd64.s). Pointers and
// counts are checked by the Go wrappers below before the call.

//go:noescape
func kern12x32AVX512(kc int, a, b, c *float32, ldc int, acc int)

//go:noescape
func kern12x32BF16AVX512(kc2 int, a, b *float32, c *float32, ldc int, acc int)

//go:noescape
func kern8x32BF16AVX512(kc2 int, a, b *float32, c *float32, ldc int, acc int)

//go:noescape
func cvtBF16AVX512(dst *uint16, src *float32, n32 int)

//go:noescape
func packPairsAVX512(dst, src *float32, lds, rows, ng int)

//go:noescape
func pairRows32AVX512(dst *float32, src *uint16, rs, kc2 int)

//go:noescape
func kern12x32PBF16AVX512(kc int, a *float32, b *uint16, c *float32, ldc int, acc int)

//go:noescape
func kern8x32AVX512(kc int, a, b, c *float32, ldc int, acc int)

//go:noescape
func kern8x32PBF16AVX512(kc int, a *float32, b *uint16, c *float32, ldc int, acc int)

//go:noescape
func kern6x16PBF16AVX2(kc int, a *float32, b *uint16, c *float32, ldc int, acc int)

//go:noescape
func kern6x16AVX2(kc int, a, b, c *float32, ldc int, acc int)

//go:noescape
func transpose8AVX2(dst *float32, ldd int, src *float32, lds, nblk int)

//go:noescape
func transpose8BF16AVX2(dst *float32, ldd int, src *uint16, lds, nblk int)

//go:noescape
func widenBF16AVX2(dst *float32, ldd int, src *uint16, lds, rows, n8 int)

//go:noescape
func gemv4x4AVX512(out, x *float32, ldx int, w *float32, ldw, k16 int)

//go:noescape
func gemv4x4BF16AVX512(out, x *float32, ldx int, w *uint16, ldw, k16 int)

//go:noescape
func gemv1x4AVX512(out, x *float32, w *float32, ldw, k16 int)

//go:noescape
func gemv1x4BF16AVX512(out, x *float32, w *uint16, ldw, k16 int)

//go:noescape
func gemv2x4AVX2(out, x *float32, ldx int, w *float32, ldw, k16 int)

//go:noescape
func gemv2x4BF16AVX2(out, x *float32, ldx int, w *uint16, ldw, k16 int)

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// avx512Impl is the AVX-512 level's table; bf16 adds the AVX512_BF16
// kernels.
func avx512Impl(bf16 bool) *impl {
	l := &impl{
		name: "avx512",
		ops:  avx512Ops, quant: avx512Quant,
		fmaLoop: func() int {
			fmaLoopAVX512(fmaIters)
			return fmaIters * 24 * 16 * 2
		},
		readSum: func(buf []float32) float32 {
			n64 := len(buf) / 64
			if n64 == 0 {
				return readSumGo(buf)
			}
			return readSumAVX512(&buf[0], n64) + readSumGo(buf[n64*64:])
		},
		cvtBF16: cvtBF16Go,
		mr:      12, nr: 32, kc: 256, mc: 240, nc: 8192,
		// 128 pairs (a 16 KiB B micro-panel, half of L1) rather than 256:
		// on the 0.5B training shapes (m 2048) the pairs GEMM went from
		// 490–620 to 650–740 GFLOP/s per CPU second.
		kcPairs: 128,
		kern: func(kc int, a, b, c []float32, ldc int, acc bool) {
			_ = a[12*kc-1]
			_ = b[32*kc-1]
			_ = c[11*ldc+31]
			kern12x32AVX512(kc, &a[0], &b[0], &c[0], ldc, b2i(acc))
		},
		kernPBF16: func(kc int, a []float32, b []uint16, c []float32, ldc int, acc bool) {
			_ = a[12*kc-1]
			_ = b[32*kc-1]
			_ = c[11*ldc+31]
			kern12x32PBF16AVX512(kc, &a[0], &b[0], &c[0], ldc, b2i(acc))
		},
		kern8: func(kc int, a, b, c []float32, ldc int, acc bool) {
			_ = a[12*kc-1]
			_ = b[32*kc-1]
			_ = c[7*ldc+31]
			kern8x32AVX512(kc, &a[0], &b[0], &c[0], ldc, b2i(acc))
		},
		kern8PBF16: func(kc int, a []float32, b []uint16, c []float32, ldc int, acc bool) {
			_ = a[12*kc-1]
			_ = b[32*kc-1]
			_ = c[7*ldc+31]
			kern8x32PBF16AVX512(kc, &a[0], &b[0], &c[0], ldc, b2i(acc))
		},
		packBT8:     packBT8AVX2,
		packBT8BF16: packBT8BF16AVX2,
		widenBF16:   widenBF16AVX2Go,
		gemvX:       4,
		gemv: func(out []float32, x []float32, ldx int, w []float32, ldw, k16 int) {
			if k16 == 0 {
				clear(out[:16])
				return
			}
			_ = out[15]
			_ = x[3*ldx+k16*16-1]
			_ = w[3*ldw+k16*16-1]
			gemv4x4AVX512(&out[0], &x[0], ldx, &w[0], ldw, k16)
		},
		gemvBF16: func(out []float32, x []float32, ldx int, w []uint16, ldw, k16 int) {
			if k16 == 0 {
				clear(out[:16])
				return
			}
			_ = out[15]
			_ = x[3*ldx+k16*16-1]
			_ = w[3*ldw+k16*16-1]
			gemv4x4BF16AVX512(&out[0], &x[0], ldx, &w[0], ldw, k16)
		},
		gemv1: func(out []float32, x []float32, w []float32, ldw, k16 int) {
			if k16 == 0 {
				clear(out[:4])
				return
			}
			_ = out[3]
			_ = x[k16*16-1]
			_ = w[3*ldw+k16*16-1]
			gemv1x4AVX512(&out[0], &x[0], &w[0], ldw, k16)
		},
		gemv1BF16: func(out []float32, x []float32, w []uint16, ldw, k16 int) {
			if k16 == 0 {
				clear(out[:4])
				return
			}
			_ = out[3]
			_ = x[k16*16-1]
			_ = w[3*ldw+k16*16-1]
			gemv1x4BF16AVX512(&out[0], &x[0], &w[0], ldw, k16)
		},
	}
	if bf16 {
		l.kernBF16 = func(kc2 int, a, b, c []float32, ldc int, acc bool) {
			_ = a[12*pairSteps(kc2)-1]
			_ = b[32*kc2-1]
			_ = c[11*ldc+31]
			kern12x32BF16AVX512(kc2, &a[0], &b[0], &c[0], ldc, b2i(acc))
		}
		l.kern8BF16 = func(kc2 int, a, b, c []float32, ldc int, acc bool) {
			_ = a[12*pairSteps(kc2)-1]
			_ = b[32*kc2-1]
			_ = c[7*ldc+31]
			kern8x32BF16AVX512(kc2, &a[0], &b[0], &c[0], ldc, b2i(acc))
		}
		l.quant = withNF4BF16(l.quant)
		l.packPairs = func(dst, src []float32, lds, rows, ng int) {
			_ = dst[((ng-1)*12+rows-1)*pairGroup+pairGroup-1]
			_ = src[(rows-1)*lds+ng*2*pairGroup-1]
			packPairsAVX512(&dst[0], &src[0], lds, rows, ng)
		}
		l.pairRows = func(dst []float32, src []uint16, rs, kc2 int) {
			_ = dst[32*kc2-1]
			_ = src[(2*kc2-1)*rs+31]
			pairRows32AVX512(&dst[0], &src[0], rs, kc2)
		}
		l.fmaLoopBF16 = func() int {
			fmaLoopBF16AVX512(fmaIters)
			return fmaIters * 24 * 32 * 2
		}
		l.cvtBF16 = func(dst []uint16, src []float32) {
			n32 := len(src) / 32
			if n32 > 0 {
				_ = dst[n32*32-1]
				cvtBF16AVX512(&dst[0], &src[0], n32)
			}
			cvtBF16Go(dst[n32*32:len(src)], src[n32*32:])
		}
	}
	return l
}

// avx2Impl is the AVX2+FMA level's table.
func avx2Impl() *impl {
	return &impl{
		name: "avx2",
		ops:  avx2Ops, quant: avx2Quant,
		fmaLoop: func() int {
			fmaLoopAVX2(fmaIters)
			return fmaIters * 12 * 8 * 2
		},
		readSum: readSumGo,
		cvtBF16: cvtBF16Go,
		mr:      6, nr: 16, kc: 256, mc: 120, nc: 3072, kcPairs: 128,
		kern: func(kc int, a, b, c []float32, ldc int, acc bool) {
			_ = a[6*kc-1]
			_ = b[16*kc-1]
			_ = c[5*ldc+15]
			kern6x16AVX2(kc, &a[0], &b[0], &c[0], ldc, b2i(acc))
		},
		kernPBF16: func(kc int, a []float32, b []uint16, c []float32, ldc int, acc bool) {
			_ = a[6*kc-1]
			_ = b[16*kc-1]
			_ = c[5*ldc+15]
			kern6x16PBF16AVX2(kc, &a[0], &b[0], &c[0], ldc, b2i(acc))
		},
		packBT8:     packBT8AVX2,
		packBT8BF16: packBT8BF16AVX2,
		widenBF16:   widenBF16AVX2Go,
		gemvX:       2,
		gemv: func(out []float32, x []float32, ldx int, w []float32, ldw, k16 int) {
			if k16 == 0 {
				clear(out[:8])
				return
			}
			_ = out[7]
			_ = x[ldx+k16*16-1]
			_ = w[3*ldw+k16*16-1]
			gemv2x4AVX2(&out[0], &x[0], ldx, &w[0], ldw, k16)
		},
		gemvBF16: func(out []float32, x []float32, ldx int, w []uint16, ldw, k16 int) {
			if k16 == 0 {
				clear(out[:8])
				return
			}
			_ = out[7]
			_ = x[ldx+k16*16-1]
			_ = w[3*ldw+k16*16-1]
			gemv2x4BF16AVX2(&out[0], &x[0], ldx, &w[0], ldw, k16)
		},
	}
}

func packBT8AVX2(dst []float32, ldd int, src []float32, lds, nblk int) {
	_ = dst[(8*nblk-1)*ldd+7]
	_ = src[7*lds+8*nblk-1]
	transpose8AVX2(&dst[0], ldd, &src[0], lds, nblk)
}

func packBT8BF16AVX2(dst []float32, ldd int, src []uint16, lds, nblk int) {
	_ = dst[(8*nblk-1)*ldd+7]
	_ = src[7*lds+8*nblk-1]
	transpose8BF16AVX2(&dst[0], ldd, &src[0], lds, nblk)
}

//go:noescape
func fmaLoopAVX512(iters int)

//go:noescape
func fmaLoopAVX2(iters int)

//go:noescape
func fmaLoopBF16AVX512(iters int)

//go:noescape
func readSumAVX512(p *float32, n64 int) float32

func widenBF16AVX2Go(dst []float32, ldd int, src []uint16, lds, rows, n8 int) {
	if rows <= 0 || n8 <= 0 {
		return
	}
	_ = dst[(rows-1)*ldd+8*n8-1]
	_ = src[(rows-1)*lds+8*n8-1]
	widenBF16AVX2(&dst[0], ldd, &src[0], lds, rows, n8)
}
