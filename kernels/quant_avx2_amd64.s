//go:build !purego

#include "textflag.h"

// AVX2+FMA kernels of the quantized weights (quant.go), twins of the
// AVX-512 ones in quant_avx512_amd64.s. VPERMPS on YMM indexes 8 entries, so
// an NF4 lookup is two VPERMPS (codes 0-7, 8-15) blended on bit 3.

// The NF4 codebook (low half at +0, high half at +32) and a nibble mask.
DATA nf4tab2<>+0(SB)/4, $0xbf800000
DATA nf4tab2<>+4(SB)/4, $0xbf3239b1
DATA nf4tab2<>+8(SB)/4, $0xbf066b30
DATA nf4tab2<>+12(SB)/4, $0xbeca32a0
DATA nf4tab2<>+16(SB)/4, $0xbe91a24d
DATA nf4tab2<>+20(SB)/4, $0xbe3d353f
DATA nf4tab2<>+24(SB)/4, $0xbdba7871
DATA nf4tab2<>+28(SB)/4, $0x00000000
DATA nf4tab2<>+32(SB)/4, $0x3da2faff
DATA nf4tab2<>+36(SB)/4, $0x3e24cae3
DATA nf4tab2<>+40(SB)/4, $0x3e7c04dd
DATA nf4tab2<>+44(SB)/4, $0x3ead033a
DATA nf4tab2<>+48(SB)/4, $0x3ee1a4b8
DATA nf4tab2<>+52(SB)/4, $0x3f1007ab
DATA nf4tab2<>+56(SB)/4, $0x3f3913b3
DATA nf4tab2<>+60(SB)/4, $0x3f800000
GLOBL nf4tab2<>(SB), RODATA|NOPTR, $64
DATA nf4mask2<>+0(SB)/4, $15
DATA nf4mask2<>+4(SB)/4, $15
DATA nf4mask2<>+8(SB)/4, $15
DATA nf4mask2<>+12(SB)/4, $15
DATA nf4mask2<>+16(SB)/4, $15
DATA nf4mask2<>+20(SB)/4, $15
DATA nf4mask2<>+24(SB)/4, $15
DATA nf4mask2<>+28(SB)/4, $15
GLOBL nf4mask2<>(SB), RODATA|NOPTR, $32

// NF4DEC8 decodes the 8 bytes at (SI) into 16 values, in column order, in
// Y1 (columns 0-7) and Y2 (columns 8-15), using tables Y14 (codes 0-7) and
// Y15 (codes 8-15) and the mask Y13. Clobbers Y3-Y8.
#define NF4DEC8 \
	VPMOVZXBD (SI), Y1 \
	VPSRLD    $4, Y1, Y3 \
	VPAND     Y13, Y1, Y1 \
	VPERMPS   Y14, Y1, Y4 \
	VPERMPS   Y15, Y1, Y5 \
	VPSLLD    $28, Y1, Y6 \
	VBLENDVPS Y6, Y5, Y4, Y4 \
	VPERMPS   Y14, Y3, Y5 \
	VPERMPS   Y15, Y3, Y7 \
	VPSLLD    $28, Y3, Y6 \
	VBLENDVPS Y6, Y7, Y5, Y5 \
	VUNPCKLPS Y5, Y4, Y7 \
	VUNPCKHPS Y5, Y4, Y8 \
	VPERM2F128 $0x20, Y8, Y7, Y1 \
	VPERM2F128 $0x31, Y8, Y7, Y2

// func dotQ8AVX2(x *float32, q *byte, s *float32, nblk int) float32
TEXT ·dotQ8AVX2(SB), NOSPLIT, $0-36
	MOVQ   x+0(FP), DI
	MOVQ   q+8(FP), SI
	MOVQ   s+16(FP), DX
	MOVQ   nblk+24(FP), CX
	VXORPS Y0, Y0, Y0

dq8a_loop:
	VPMOVSXBD    (SI), Y1
	VPMOVSXBD    8(SI), Y2
	VPMOVSXBD    16(SI), Y3
	VPMOVSXBD    24(SI), Y4
	VCVTDQ2PS    Y1, Y1
	VCVTDQ2PS    Y2, Y2
	VCVTDQ2PS    Y3, Y3
	VCVTDQ2PS    Y4, Y4
	VMULPS       (DI), Y1, Y5
	VMULPS       32(DI), Y2, Y6
	VFMADD231PS  64(DI), Y3, Y5
	VFMADD231PS  96(DI), Y4, Y6
	VADDPS       Y6, Y5, Y5
	VBROADCASTSS (DX), Y7
	VFMADD231PS  Y7, Y5, Y0
	ADDQ         $32, SI
	ADDQ         $128, DI
	ADDQ         $4, DX
	DECQ         CX
	JNZ          dq8a_loop

	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMOVSS       X0, ret+32(FP)
	VZEROUPPER
	RET

// func dotNF4AVX2(x *float32, q *byte, s *float32, nblk int) float32
TEXT ·dotNF4AVX2(SB), NOSPLIT, $0-36
	MOVQ    x+0(FP), DI
	MOVQ    q+8(FP), SI
	MOVQ    s+16(FP), DX
	MOVQ    nblk+24(FP), CX
	VMOVUPS nf4tab2<>(SB), Y14
	VMOVUPS nf4tab2<>+32(SB), Y15
	VMOVUPS nf4mask2<>(SB), Y13
	VXORPS  Y0, Y0, Y0

dn4a_block:
	VXORPS Y9, Y9, Y9
	MOVQ   $4, BX

dn4a_loop:
	NF4DEC8
	VFMADD231PS (DI), Y1, Y9
	VFMADD231PS 32(DI), Y2, Y9
	ADDQ        $8, SI
	ADDQ        $64, DI
	DECQ        BX
	JNZ         dn4a_loop
	VBROADCASTSS (DX), Y10
	VFMADD231PS  Y10, Y9, Y0
	ADDQ         $4, DX
	DECQ         CX
	JNZ          dn4a_block

	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMOVSS       X0, ret+32(FP)
	VZEROUPPER
	RET

// func dequantQ8AVX2(dst *float32, q *byte, s float32, n8 int)
// dst[j] = int8(q[j])·s for j < 8·n8, n8 ≥ 1.
TEXT ·dequantQ8AVX2(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         q+8(FP), SI
	VBROADCASTSS s+16(FP), Y4
	MOVQ         n8+24(FP), CX

deq8a_loop:
	VPMOVSXBD (SI), Y1
	VCVTDQ2PS Y1, Y1
	VMULPS    Y4, Y1, Y1
	VMOVUPS   Y1, (DI)
	ADDQ      $8, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       deq8a_loop
	VZEROUPPER
	RET

// func dequantNF4AVX2(dst *float32, q *byte, s float32, n16 int)
// dst[j] = nf4[code j]·s for j < 16·n16 (8 bytes of q each), n16 ≥ 1.
TEXT ·dequantNF4AVX2(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         q+8(FP), SI
	VBROADCASTSS s+16(FP), Y12
	MOVQ         n16+24(FP), CX
	VMOVUPS      nf4tab2<>(SB), Y14
	VMOVUPS      nf4tab2<>+32(SB), Y15
	VMULPS       Y12, Y14, Y14
	VMULPS       Y12, Y15, Y15
	VMOVUPS      nf4mask2<>(SB), Y13

deqn4a_loop:
	NF4DEC8
	VMOVUPS Y1, (DI)
	VMOVUPS Y2, 32(DI)
	ADDQ    $8, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     deqn4a_loop
	VZEROUPPER
	RET
