//go:build !purego

#include "textflag.h"

// AVX-512F kernels of the quantized weights (quant.go). Each has a pure-Go
// twin there; quant_test.go compares them. Blocks are whole: the Go callers
// do the short last block of a row.

// The NF4 codebook, and VPERMT2PS indices that interleave 16 low-nibble
// values (even columns) with 16 high-nibble values (odd columns).
DATA nf4tab<>+0(SB)/4, $0xbf800000
DATA nf4tab<>+4(SB)/4, $0xbf3239b1
DATA nf4tab<>+8(SB)/4, $0xbf066b30
DATA nf4tab<>+12(SB)/4, $0xbeca32a0
DATA nf4tab<>+16(SB)/4, $0xbe91a24d
DATA nf4tab<>+20(SB)/4, $0xbe3d353f
DATA nf4tab<>+24(SB)/4, $0xbdba7871
DATA nf4tab<>+28(SB)/4, $0x00000000
DATA nf4tab<>+32(SB)/4, $0x3da2faff
DATA nf4tab<>+36(SB)/4, $0x3e24cae3
DATA nf4tab<>+40(SB)/4, $0x3e7c04dd
DATA nf4tab<>+44(SB)/4, $0x3ead033a
DATA nf4tab<>+48(SB)/4, $0x3ee1a4b8
DATA nf4tab<>+52(SB)/4, $0x3f1007ab
DATA nf4tab<>+56(SB)/4, $0x3f3913b3
DATA nf4tab<>+60(SB)/4, $0x3f800000
GLOBL nf4tab<>(SB), RODATA|NOPTR, $64
DATA nf4ilo<>+0(SB)/4, $0
DATA nf4ilo<>+4(SB)/4, $16
DATA nf4ilo<>+8(SB)/4, $1
DATA nf4ilo<>+12(SB)/4, $17
DATA nf4ilo<>+16(SB)/4, $2
DATA nf4ilo<>+20(SB)/4, $18
DATA nf4ilo<>+24(SB)/4, $3
DATA nf4ilo<>+28(SB)/4, $19
DATA nf4ilo<>+32(SB)/4, $4
DATA nf4ilo<>+36(SB)/4, $20
DATA nf4ilo<>+40(SB)/4, $5
DATA nf4ilo<>+44(SB)/4, $21
DATA nf4ilo<>+48(SB)/4, $6
DATA nf4ilo<>+52(SB)/4, $22
DATA nf4ilo<>+56(SB)/4, $7
DATA nf4ilo<>+60(SB)/4, $23
GLOBL nf4ilo<>(SB), RODATA|NOPTR, $64
DATA nf4ihi<>+0(SB)/4, $8
DATA nf4ihi<>+4(SB)/4, $24
DATA nf4ihi<>+8(SB)/4, $9
DATA nf4ihi<>+12(SB)/4, $25
DATA nf4ihi<>+16(SB)/4, $10
DATA nf4ihi<>+20(SB)/4, $26
DATA nf4ihi<>+24(SB)/4, $11
DATA nf4ihi<>+28(SB)/4, $27
DATA nf4ihi<>+32(SB)/4, $12
DATA nf4ihi<>+36(SB)/4, $28
DATA nf4ihi<>+40(SB)/4, $13
DATA nf4ihi<>+44(SB)/4, $29
DATA nf4ihi<>+48(SB)/4, $14
DATA nf4ihi<>+52(SB)/4, $30
DATA nf4ihi<>+56(SB)/4, $15
DATA nf4ihi<>+60(SB)/4, $31
GLOBL nf4ihi<>(SB), RODATA|NOPTR, $64

// func dotQ8AVX512(x *float32, q *byte, s *float32, nblk int) float32
// Σ_b s[b] · Σ_{j<32} x[32b+j]·int8(q[32b+j]), nblk ≥ 1.
TEXT ·dotQ8AVX512(SB), NOSPLIT, $0-36
	MOVQ   x+0(FP), DI
	MOVQ   q+8(FP), SI
	MOVQ   s+16(FP), DX
	MOVQ   nblk+24(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z9, Z9, Z9

dq8_loop:
	VPMOVSXBD    (SI), Z1
	VPMOVSXBD    16(SI), Z2
	VCVTDQ2PS    Z1, Z1
	VCVTDQ2PS    Z2, Z2
	VMULPS       (DI), Z1, Z3
	VFMADD231PS  64(DI), Z2, Z3
	VBROADCASTSS (DX), Z4
	VFMADD231PS  Z4, Z3, Z0
	ADDQ         $32, SI
	ADDQ         $128, DI
	ADDQ         $4, DX
	DECQ         CX
	JZ           dq8_done
	VPMOVSXBD    (SI), Z5
	VPMOVSXBD    16(SI), Z6
	VCVTDQ2PS    Z5, Z5
	VCVTDQ2PS    Z6, Z6
	VMULPS       (DI), Z5, Z7
	VFMADD231PS  64(DI), Z6, Z7
	VBROADCASTSS (DX), Z8
	VFMADD231PS  Z8, Z7, Z9
	ADDQ         $32, SI
	ADDQ         $128, DI
	ADDQ         $4, DX
	DECQ         CX
	JNZ          dq8_loop

dq8_done:
	VADDPS        Z9, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VMOVSS        X0, ret+32(FP)
	VZEROUPPER
	RET

// func dotNF4AVX512(x *float32, q *byte, s *float32, nblk int) float32
// Σ_b s[b] · Σ_{j<64} x[64b+j]·nf4[code j], two codes per byte of q (low
// nibble first), nblk ≥ 1.
TEXT ·dotNF4AVX512(SB), NOSPLIT, $0-36
	MOVQ    x+0(FP), DI
	MOVQ    q+8(FP), SI
	MOVQ    s+16(FP), DX
	MOVQ    nblk+24(FP), CX
	VMOVUPS nf4tab<>(SB), Z31
	VMOVUPS nf4ilo<>(SB), Z30
	VMOVUPS nf4ihi<>(SB), Z29
	VXORPS  Z0, Z0, Z0

dn4_loop:
	VPMOVZXBD    (SI), Z1
	VPMOVZXBD    16(SI), Z2
	VPSRLD       $4, Z1, Z3
	VPSRLD       $4, Z2, Z4
	VPERMPS      Z31, Z1, Z1
	VPERMPS      Z31, Z3, Z3
	VPERMPS      Z31, Z2, Z2
	VPERMPS      Z31, Z4, Z4
	VMOVAPS      Z1, Z5
	VPERMT2PS    Z3, Z30, Z5
	VPERMT2PS    Z3, Z29, Z1
	VMOVAPS      Z2, Z6
	VPERMT2PS    Z4, Z30, Z6
	VPERMT2PS    Z4, Z29, Z2
	VMULPS       (DI), Z5, Z7
	VFMADD231PS  64(DI), Z1, Z7
	VFMADD231PS  128(DI), Z6, Z7
	VFMADD231PS  192(DI), Z2, Z7
	VBROADCASTSS (DX), Z8
	VFMADD231PS  Z8, Z7, Z0
	ADDQ         $32, SI
	ADDQ         $256, DI
	ADDQ         $4, DX
	DECQ         CX
	JNZ          dn4_loop

	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VMOVSS        X0, ret+32(FP)
	VZEROUPPER
	RET

// func dequantQ8AVX512(dst *float32, q *byte, s float32, n16 int)
// dst[j] = int8(q[j])·s for j < 16·n16, n16 ≥ 1.
TEXT ·dequantQ8AVX512(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         q+8(FP), SI
	VBROADCASTSS s+16(FP), Z4
	MOVQ         n16+24(FP), CX

deq8_loop:
	VPMOVSXBD (SI), Z1
	VCVTDQ2PS Z1, Z1
	VMULPS    Z4, Z1, Z1
	VMOVUPS   Z1, (DI)
	ADDQ      $16, SI
	ADDQ      $64, DI
	DECQ      CX
	JNZ       deq8_loop
	VZEROUPPER
	RET

// func dequantNF4AVX512(dst *float32, q *byte, s float32, n32 int)
// dst[j] = nf4[code j]·s for j < 32·n32 (16 bytes of q each), n32 ≥ 1.
TEXT ·dequantNF4AVX512(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         q+8(FP), SI
	VBROADCASTSS s+16(FP), Z4
	MOVQ         n32+24(FP), CX
	VMOVUPS      nf4tab<>(SB), Z31
	VMULPS       Z4, Z31, Z31
	VMOVUPS      nf4ilo<>(SB), Z30
	VMOVUPS      nf4ihi<>(SB), Z29

deqn4_loop:
	VPMOVZXBD (SI), Z1
	VPSRLD    $4, Z1, Z3
	VPERMPS   Z31, Z1, Z1
	VPERMPS   Z31, Z3, Z3
	VMOVAPS   Z1, Z5
	VPERMT2PS Z3, Z30, Z5
	VPERMT2PS Z3, Z29, Z1
	VMOVUPS   Z5, (DI)
	VMOVUPS   Z1, 64(DI)
	ADDQ      $16, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       deqn4_loop
	VZEROUPPER
	RET
