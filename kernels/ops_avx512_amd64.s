//go:build !purego

#include "textflag.h"

// AVX-512F kernels of the fused ops. Each has a pure-Go twin in
// ops_kern.go; ops_kern_test.go compares them on awkward sizes. Row kernels
// need the row length to be a multiple of 16 (d16 = D/16 ≥ 1, checked by the
// Go caller); vector kernels handle any n with a masked tail.

// func axpyRowsAVX512(acc *float32, d16 int, p *float32, n int, m *float32, stride int)
// acc[0:16*d16] += Σ_j p[j] · m[j*stride : j*stride+16*d16].
// acc is kept in registers 64 floats at a time; rows go two at a time into
// separate accumulators so the FMA latency chains overlap.
TEXT ·axpyRowsAVX512(SB), NOSPLIT, $0-48
	MOVQ acc+0(FP), DI
	MOVQ d16+8(FP), R9
	MOVQ p+16(FP), SI
	MOVQ n+24(FP), CX
	MOVQ m+32(FP), DX
	MOVQ stride+40(FP), R8
	SHLQ $2, R8

axpy_quad:
	CMPQ    R9, $4
	JLT     axpy_one
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	VMOVUPS 128(DI), Z2
	VMOVUPS 192(DI), Z3
	VXORPS  Z4, Z4, Z4
	VXORPS  Z5, Z5, Z5
	VXORPS  Z6, Z6, Z6
	VXORPS  Z7, Z7, Z7
	MOVQ    SI, R10
	MOVQ    DX, R11
	MOVQ    CX, R12

axpy_q2:
	CMPQ         R12, $2
	JLT          axpy_q1
	VBROADCASTSS (R10), Z8
	VBROADCASTSS 4(R10), Z9
	LEAQ         (R11)(R8*1), R13
	VFMADD231PS  (R11), Z8, Z0
	VFMADD231PS  64(R11), Z8, Z1
	VFMADD231PS  128(R11), Z8, Z2
	VFMADD231PS  192(R11), Z8, Z3
	VFMADD231PS  (R13), Z9, Z4
	VFMADD231PS  64(R13), Z9, Z5
	VFMADD231PS  128(R13), Z9, Z6
	VFMADD231PS  192(R13), Z9, Z7
	ADDQ         $8, R10
	LEAQ         (R13)(R8*1), R11
	SUBQ         $2, R12
	JMP          axpy_q2

axpy_q1:
	TESTQ        R12, R12
	JZ           axpy_qstore
	VBROADCASTSS (R10), Z8
	VFMADD231PS  (R11), Z8, Z0
	VFMADD231PS  64(R11), Z8, Z1
	VFMADD231PS  128(R11), Z8, Z2
	VFMADD231PS  192(R11), Z8, Z3

axpy_qstore:
	VADDPS  Z4, Z0, Z0
	VADDPS  Z5, Z1, Z1
	VADDPS  Z6, Z2, Z2
	VADDPS  Z7, Z3, Z3
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ    $256, DI
	ADDQ    $256, DX
	SUBQ    $4, R9
	JMP     axpy_quad

axpy_one:
	TESTQ   R9, R9
	JZ      axpy_done
	VMOVUPS (DI), Z0
	VXORPS  Z4, Z4, Z4
	MOVQ    SI, R10
	MOVQ    DX, R11
	MOVQ    CX, R12

axpy_o2:
	CMPQ         R12, $2
	JLT          axpy_o1
	VBROADCASTSS (R10), Z8
	VBROADCASTSS 4(R10), Z9
	LEAQ         (R11)(R8*1), R13
	VFMADD231PS  (R11), Z8, Z0
	VFMADD231PS  (R13), Z9, Z4
	ADDQ         $8, R10
	LEAQ         (R13)(R8*1), R11
	SUBQ         $2, R12
	JMP          axpy_o2

axpy_o1:
	TESTQ        R12, R12
	JZ           axpy_ostore
	VBROADCASTSS (R10), Z8
	VFMADD231PS  (R11), Z8, Z0

axpy_ostore:
	VADDPS  Z4, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, DI
	ADDQ    $64, DX
	DECQ    R9
	JMP     axpy_one

axpy_done:
	VZEROUPPER
	RET

// EXPV computes P = exp(a·X − b) for 16 lanes (X is clobbered, T and Z are
// scratch), with the constants loaded by EXP_CONSTS. Range reduction as in
// the Go expf: n = round(t·log2e), r = t − n·ln2 in two parts, a degree-6
// polynomial, then VSCALEFPS multiplies by 2^n, which also produces +Inf on
// overflow and 0 (via subnormals) on underflow. The input is clamped to
// [-120, 100] first so ±Inf give 0 and +Inf; NaN propagates.
#define EXPV(X, T, P, Z) \
	VMULPS       X, Z20, X; \
	VSUBPS       Z21, X, X; \
	VMAXPS       X, Z22, X; \
	VMINPS       X, Z23, X; \
	VMULPS       Z24, X, T; \
	VRNDSCALEPS  $0, T, T; \
	VFNMADD231PS Z25, T, X; \
	VFNMADD231PS Z26, T, X; \
	VMOVAPS      Z27, P; \
	VFMADD213PS  Z28, X, P; \
	VFMADD213PS  Z29, X, P; \
	VFMADD213PS  Z30, X, P; \
	VFMADD213PS  Z31, X, P; \
	VFMADD213PS  Z19, X, P; \
	VMULPS       X, X, Z; \
	VFMADD213PS  X, Z, P; \
	VADDPS       Z18, P, P; \
	VSCALEFPS    T, P, P

#define EXP_CONSTS \
	MOVL $0xc2f00000, AX; VPBROADCASTD AX, Z22; \
	MOVL $0x42c80000, AX; VPBROADCASTD AX, Z23; \
	MOVL $0x3fb8aa3b, AX; VPBROADCASTD AX, Z24; \
	MOVL $0x3f318000, AX; VPBROADCASTD AX, Z25; \
	MOVL $0xb95e8083, AX; VPBROADCASTD AX, Z26; \
	MOVL $0x39506967, AX; VPBROADCASTD AX, Z27; \
	MOVL $0x3ab743ce, AX; VPBROADCASTD AX, Z28; \
	MOVL $0x3c088908, AX; VPBROADCASTD AX, Z29; \
	MOVL $0x3d2aa9c1, AX; VPBROADCASTD AX, Z30; \
	MOVL $0x3e2aaaaa, AX; VPBROADCASTD AX, Z31; \
	MOVL $0x3f000000, AX; VPBROADCASTD AX, Z19; \
	MOVL $0x3f800000, AX; VPBROADCASTD AX, Z18

// func expAffineAVX512(dst, x *float32, n int, a, b float32) float32
// dst[i] = exp(a·x[i] − b) for i < n; returns Σ dst[i]. dst may equal x.
TEXT ·expAffineAVX512(SB), NOSPLIT, $0-36
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS a+24(FP), Z20
	VBROADCASTSS b+28(FP), Z21
	EXP_CONSTS
	VXORPS       Z16, Z16, Z16
	VXORPS       Z17, Z17, Z17

exp_loop2:
	CMPQ    CX, $32
	JLT     exp_loop1
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z4
	EXPV(Z0, Z1, Z2, Z3)
	EXPV(Z4, Z5, Z6, Z7)
	VMOVUPS Z2, (DI)
	VMOVUPS Z6, 64(DI)
	VADDPS  Z2, Z16, Z16
	VADDPS  Z6, Z17, Z17
	ADDQ    $128, SI
	ADDQ    $128, DI
	SUBQ    $32, CX
	JMP     exp_loop2

exp_loop1:
	CMPQ    CX, $16
	JLT     exp_tail
	VMOVUPS (SI), Z0
	EXPV(Z0, Z1, Z2, Z3)
	VMOVUPS Z2, (DI)
	VADDPS  Z2, Z16, Z16
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX

exp_tail:
	TESTQ     CX, CX
	JZ        exp_done
	MOVQ      $1, AX
	SHLQ      CX, AX
	DECQ      AX
	KMOVW     AX, K1
	VMOVUPS.Z (SI), K1, Z0
	EXPV(Z0, Z1, Z2, Z3)
	VMOVUPS   Z2, K1, (DI)
	VADDPS    Z2, Z16, K1, Z16

exp_done:
	VADDPS        Z17, Z16, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VMOVSS        X0, ret+32(FP)
	VZEROUPPER
	RET

// func maxAVX512(x *float32, n int) float32
// max of x[0:n], n ≥ 1.
TEXT ·maxAVX512(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	MOVL         $0xff800000, AX
	VPBROADCASTD AX, Z0
	VMOVAPS      Z0, Z1
	VMOVAPS      Z0, Z2
	VMOVAPS      Z0, Z3
	VMOVAPS      Z0, Z4

max_loop4:
	CMPQ   CX, $64
	JLT    max_loop1
	VMAXPS (SI), Z0, Z0
	VMAXPS 64(SI), Z1, Z1
	VMAXPS 128(SI), Z2, Z2
	VMAXPS 192(SI), Z3, Z3
	ADDQ   $256, SI
	SUBQ   $64, CX
	JMP    max_loop4

max_loop1:
	CMPQ   CX, $16
	JLT    max_tail
	VMAXPS (SI), Z0, Z0
	ADDQ   $64, SI
	SUBQ   $16, CX
	JMP    max_loop1

max_tail:
	TESTQ   CX, CX
	JZ      max_reduce
	MOVQ    $1, AX
	SHLQ    CX, AX
	DECQ    AX
	KMOVW   AX, K1
	VMOVUPS (SI), K1, Z4
	VMAXPS  Z4, Z0, Z0

max_reduce:
	VMAXPS        Z1, Z0, Z0
	VMAXPS        Z3, Z2, Z2
	VMAXPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0x4e, X0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0xb1, X0, X1
	VMAXPS        X1, X0, X0
	VMOVSS        X0, ret+16(FP)
	VZEROUPPER
	RET

// func swigluAVX512(out, gate, up *float32, n int)
// out[i] = gate[i] / (1 + exp(−gate[i])) · up[i]; out may alias gate or up.
TEXT ·swigluAVX512(SB), NOSPLIT, $0-32
	MOVQ         out+0(FP), DI
	MOVQ         gate+8(FP), SI
	MOVQ         up+16(FP), DX
	MOVQ         n+24(FP), CX
	MOVL         $0xbf800000, AX
	VPBROADCASTD AX, Z20
	VXORPS       Z21, Z21, Z21
	EXP_CONSTS

swiglu_loop:
	CMPQ    CX, $16
	JLT     swiglu_tail
	VMOVUPS (SI), Z0
	VMOVAPS Z0, Z4
	EXPV(Z4, Z1, Z2, Z3)
	VADDPS  Z18, Z2, Z2
	VDIVPS  Z2, Z0, Z5
	VMULPS  (DX), Z5, Z5
	VMOVUPS Z5, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     swiglu_loop

swiglu_tail:
	TESTQ     CX, CX
	JZ        swiglu_done
	MOVQ      $1, AX
	SHLQ      CX, AX
	DECQ      AX
	KMOVW     AX, K1
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z6
	VMOVAPS   Z0, Z4
	EXPV(Z4, Z1, Z2, Z3)
	VADDPS    Z18, Z2, Z2
	VDIVPS    Z2, Z0, Z5
	VMULPS    Z6, Z5, Z5
	VMOVUPS   Z5, K1, (DI)

swiglu_done:
	VZEROUPPER
	RET

// SWIGLU_BACK computes, for g in Z0, u in Z6, d in Z7: dgate in Z1 and dup in
// Z8 (see SwiGLUBackward), in the same operation order as the Go twin.
#define SWIGLU_BACK \
	VMOVAPS Z0, Z4; \
	EXPV(Z4, Z1, Z2, Z3); \
	VADDPS  Z18, Z2, Z2; \
	VDIVPS  Z2, Z18, Z5; \
	VMULPS  Z5, Z0, Z8; \
	VSUBPS  Z5, Z18, Z9; \
	VMULPS  Z9, Z0, Z9; \
	VADDPS  Z18, Z9, Z9; \
	VMULPS  Z6, Z7, Z1; \
	VMULPS  Z5, Z1, Z1; \
	VMULPS  Z9, Z1, Z1; \
	VMULPS  Z8, Z7, Z8

// func swigluBackAVX512(dgate, dup, dout, gate, up *float32, n int)
TEXT ·swigluBackAVX512(SB), NOSPLIT, $0-48
	MOVQ         dgate+0(FP), DI
	MOVQ         dup+8(FP), R8
	MOVQ         dout+16(FP), R9
	MOVQ         gate+24(FP), SI
	MOVQ         up+32(FP), DX
	MOVQ         n+40(FP), CX
	MOVL         $0xbf800000, AX
	VPBROADCASTD AX, Z20
	VXORPS       Z21, Z21, Z21
	EXP_CONSTS

swiglub_loop:
	CMPQ    CX, $16
	JLT     swiglub_tail
	VMOVUPS (SI), Z0
	VMOVUPS (DX), Z6
	VMOVUPS (R9), Z7
	SWIGLU_BACK
	VMOVUPS Z1, (DI)
	VMOVUPS Z8, (R8)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, R9
	ADDQ    $64, DI
	ADDQ    $64, R8
	SUBQ    $16, CX
	JMP     swiglub_loop

swiglub_tail:
	TESTQ     CX, CX
	JZ        swiglub_done
	MOVQ      $1, AX
	SHLQ      CX, AX
	DECQ      AX
	KMOVW     AX, K1
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z6
	VMOVUPS.Z (R9), K1, Z7
	SWIGLU_BACK
	VMOVUPS   Z1, K1, (DI)
	VMOVUPS   Z8, K1, (R8)

swiglub_done:
	VZEROUPPER
	RET

// func scores64AVX512(s *float32, q *float32, d int, kt *float32)
// s[0:64] = Σ_{i<d} q[i] · kt[64i : 64i+64] (d ≥ 0): scores of one query
// against a block of 64 keys stored transposed, so no horizontal sums are
// needed. Even and odd i go to separate accumulators to overlap FMA latency.
TEXT ·scores64AVX512(SB), NOSPLIT, $0-32
	MOVQ   s+0(FP), DI
	MOVQ   q+8(FP), SI
	MOVQ   d+16(FP), CX
	MOVQ   kt+24(FP), DX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7

sc_loop2:
	CMPQ         CX, $2
	JLT          sc_loop1
	VBROADCASTSS (SI), Z8
	VBROADCASTSS 4(SI), Z9
	VFMADD231PS  (DX), Z8, Z0
	VFMADD231PS  64(DX), Z8, Z1
	VFMADD231PS  128(DX), Z8, Z2
	VFMADD231PS  192(DX), Z8, Z3
	VFMADD231PS  256(DX), Z9, Z4
	VFMADD231PS  320(DX), Z9, Z5
	VFMADD231PS  384(DX), Z9, Z6
	VFMADD231PS  448(DX), Z9, Z7
	ADDQ         $8, SI
	ADDQ         $512, DX
	SUBQ         $2, CX
	JMP          sc_loop2

sc_loop1:
	TESTQ        CX, CX
	JZ           sc_store
	VBROADCASTSS (SI), Z8
	VFMADD231PS  (DX), Z8, Z0
	VFMADD231PS  64(DX), Z8, Z1
	VFMADD231PS  128(DX), Z8, Z2
	VFMADD231PS  192(DX), Z8, Z3

sc_store:
	VADDPS  Z4, Z0, Z0
	VADDPS  Z5, Z1, Z1
	VADDPS  Z6, Z2, Z2
	VADDPS  Z7, Z3, Z3
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	VZEROUPPER
	RET

// func dotRowsAVX512(s *float32, n int, x *float32, m *float32, stride int, d16 int)
// s[j] = x · m[j*stride : j*stride+16*d16] for j < n.
TEXT ·dotRowsAVX512(SB), NOSPLIT, $0-48
	MOVQ s+0(FP), DI
	MOVQ n+8(FP), CX
	MOVQ x+16(FP), SI
	MOVQ m+24(FP), DX
	MOVQ stride+32(FP), R8
	SHLQ $2, R8
	MOVQ d16+40(FP), R9
	TESTQ CX, CX
	JLE  dot_done

dot_row:
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	MOVQ   SI, R10
	MOVQ   DX, R11
	MOVQ   R9, R12

dot_pair:
	CMPQ        R12, $2
	JLT         dot_single
	VMOVUPS     (R10), Z2
	VMOVUPS     64(R10), Z3
	VFMADD231PS (R11), Z2, Z0
	VFMADD231PS 64(R11), Z3, Z1
	ADDQ        $128, R10
	ADDQ        $128, R11
	SUBQ        $2, R12
	JMP         dot_pair

dot_single:
	TESTQ       R12, R12
	JZ          dot_reduce
	VMOVUPS     (R10), Z2
	VFMADD231PS (R11), Z2, Z0

dot_reduce:
	VADDPS        Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VMOVSS        X0, (DI)
	ADDQ          $4, DI
	ADDQ          R8, DX
	DECQ          CX
	JNZ           dot_row

dot_done:
	VZEROUPPER
	RET


// TAILMASK sets K1 to the low CX bits (0 < CX < 16); clobbers AX.
#define TAILMASK \
	MOVQ  $1, AX; \
	SHLQ  CX, AX; \
	DECQ  AX; \
	KMOVW AX, K1

// HSUM0 leaves the sum of Z0's 16 lanes in X0; clobbers Y1.
#define HSUM0 \
	VEXTRACTF64X4 $1, Z0, Y1; \
	VADDPS        Y1, Y0, Y0; \
	VEXTRACTF128  $1, Y0, X1; \
	VADDPS        X1, X0, X0; \
	VHADDPS       X0, X0, X0; \
	VHADDPS       X0, X0, X0

// func sumSqAVX512(x *float32, n int) float32
// Σ x[i]² over 64 float32 lanes.
TEXT ·sumSqAVX512(SB), NOSPLIT, $0-20
	MOVQ   x+0(FP), SI
	MOVQ   n+8(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3

ss_loop4:
	CMPQ        CX, $64
	JLT         ss_loop1
	VMOVUPS     (SI), Z4
	VMOVUPS     64(SI), Z5
	VMOVUPS     128(SI), Z6
	VMOVUPS     192(SI), Z7
	VFMADD231PS Z4, Z4, Z0
	VFMADD231PS Z5, Z5, Z1
	VFMADD231PS Z6, Z6, Z2
	VFMADD231PS Z7, Z7, Z3
	ADDQ        $256, SI
	SUBQ        $64, CX
	JMP         ss_loop4

ss_loop1:
	CMPQ        CX, $16
	JLT         ss_tail
	VMOVUPS     (SI), Z4
	VFMADD231PS Z4, Z4, Z0
	ADDQ        $64, SI
	SUBQ        $16, CX
	JMP         ss_loop1

ss_tail:
	TESTQ       CX, CX
	JZ          ss_done
	TAILMASK
	VMOVUPS.Z   (SI), K1, Z4
	VFMADD231PS Z4, Z4, Z1

ss_done:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	HSUM0
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func dot3AVX512(a, b, c *float32, n int) float32
// Σ (a[i]·b[i])·c[i].
TEXT ·dot3AVX512(SB), NOSPLIT, $0-36
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DX
	MOVQ   c+16(FP), R8
	MOVQ   n+24(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1

d3_loop2:
	CMPQ        CX, $32
	JLT         d3_loop1
	VMOVUPS     (SI), Z4
	VMOVUPS     64(SI), Z5
	VMULPS      (DX), Z4, Z4
	VMULPS      64(DX), Z5, Z5
	VFMADD231PS (R8), Z4, Z0
	VFMADD231PS 64(R8), Z5, Z1
	ADDQ        $128, SI
	ADDQ        $128, DX
	ADDQ        $128, R8
	SUBQ        $32, CX
	JMP         d3_loop2

d3_loop1:
	CMPQ        CX, $16
	JLT         d3_tail
	VMOVUPS     (SI), Z4
	VMULPS      (DX), Z4, Z4
	VFMADD231PS (R8), Z4, Z0
	ADDQ        $64, SI
	ADDQ        $64, DX
	ADDQ        $64, R8
	SUBQ        $16, CX

d3_tail:
	TESTQ       CX, CX
	JZ          d3_done
	TAILMASK
	VMOVUPS.Z   (SI), K1, Z4
	VMOVUPS.Z   (DX), K1, Z5
	VMOVUPS.Z   (R8), K1, Z6
	VMULPS      Z5, Z4, Z4
	VFMADD231PS Z6, Z4, Z1

d3_done:
	VADDPS Z1, Z0, Z0
	HSUM0
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func mulScaledAVX512(out, x, w *float32, n int, s float32)
// out[i] = (x[i]·s)·w[i]; out may alias x.
TEXT ·mulScaledAVX512(SB), NOSPLIT, $0-36
	MOVQ         out+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         w+16(FP), DX
	MOVQ         n+24(FP), CX
	VBROADCASTSS s+32(FP), Z8

ms_loop:
	CMPQ    CX, $16
	JLT     ms_tail
	VMULPS  (SI), Z8, Z0
	VMULPS  (DX), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     ms_loop

ms_tail:
	TESTQ     CX, CX
	JZ        ms_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z1
	VMULPS    Z8, Z0, Z0
	VMULPS    Z1, Z0, Z0
	VMOVUPS   Z0, K1, (DI)

ms_done:
	VZEROUPPER
	RET

// func rmsBackRowAVX512(dx, d, w, x *float32, n int, rs, k float32, acc bool)
// dx[i] (+)= (rs·d[i])·w[i] − k·x[i].
TEXT ·rmsBackRowAVX512(SB), NOSPLIT, $0-49
	MOVQ         dx+0(FP), DI
	MOVQ         d+8(FP), SI
	MOVQ         w+16(FP), DX
	MOVQ         x+24(FP), R8
	MOVQ         n+32(FP), CX
	VBROADCASTSS rs+40(FP), Z8
	VBROADCASTSS k+44(FP), Z9
	MOVBLZX      acc+48(FP), R9

rb_loop:
	CMPQ    CX, $16
	JLT     rb_tail
	VMULPS  (SI), Z8, Z0
	VMULPS  (DX), Z0, Z0
	VMULPS  (R8), Z9, Z1
	VSUBPS  Z1, Z0, Z0
	TESTQ   R9, R9
	JZ      rb_store
	VADDPS  (DI), Z0, Z0

rb_store:
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, R8
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     rb_loop

rb_tail:
	TESTQ     CX, CX
	JZ        rb_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z2
	VMOVUPS.Z (R8), K1, Z3
	VMULPS    Z8, Z0, Z0
	VMULPS    Z2, Z0, Z0
	VMULPS    Z3, Z9, Z1
	VSUBPS    Z1, Z0, Z0
	TESTQ     R9, R9
	JZ        rb_tstore
	VMOVUPS.Z (DI), K1, Z4
	VADDPS    Z4, Z0, Z0

rb_tstore:
	VMOVUPS Z0, K1, (DI)

rb_done:
	VZEROUPPER
	RET

// func mulAddScaledAVX512(acc, a, b *float32, n int, s float32)
// acc[i] += (a[i]·b[i])·s.
TEXT ·mulAddScaledAVX512(SB), NOSPLIT, $0-36
	MOVQ         acc+0(FP), DI
	MOVQ         a+8(FP), SI
	MOVQ         b+16(FP), DX
	MOVQ         n+24(FP), CX
	VBROADCASTSS s+32(FP), Z8

ma_loop:
	CMPQ    CX, $16
	JLT     ma_tail
	VMOVUPS (SI), Z0
	VMULPS  (DX), Z0, Z0
	VMULPS  Z8, Z0, Z0
	VADDPS  (DI), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     ma_loop

ma_tail:
	TESTQ     CX, CX
	JZ        ma_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z1
	VMOVUPS.Z (DI), K1, Z2
	VMULPS    Z1, Z0, Z0
	VMULPS    Z8, Z0, Z0
	VADDPS    Z2, Z0, Z0
	VMOVUPS   Z0, K1, (DI)

ma_done:
	VZEROUPPER
	RET

// func dotAVX512(a, b *float32, n int) float32
TEXT ·dotAVX512(SB), NOSPLIT, $0-28
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DX
	MOVQ   n+16(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3

dt_loop4:
	CMPQ        CX, $64
	JLT         dt_loop1
	VMOVUPS     (SI), Z4
	VMOVUPS     64(SI), Z5
	VMOVUPS     128(SI), Z6
	VMOVUPS     192(SI), Z7
	VFMADD231PS (DX), Z4, Z0
	VFMADD231PS 64(DX), Z5, Z1
	VFMADD231PS 128(DX), Z6, Z2
	VFMADD231PS 192(DX), Z7, Z3
	ADDQ        $256, SI
	ADDQ        $256, DX
	SUBQ        $64, CX
	JMP         dt_loop4

dt_loop1:
	CMPQ        CX, $16
	JLT         dt_tail
	VMOVUPS     (SI), Z4
	VFMADD231PS (DX), Z4, Z0
	ADDQ        $64, SI
	ADDQ        $64, DX
	SUBQ        $16, CX
	JMP         dt_loop1

dt_tail:
	TESTQ       CX, CX
	JZ          dt_done
	TAILMASK
	VMOVUPS.Z   (SI), K1, Z4
	VMOVUPS.Z   (DX), K1, Z5
	VFMADD231PS Z5, Z4, Z1

dt_done:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	HSUM0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func axpyAVX512(y *float32, a float32, x *float32, n int)
// y[i] += a·x[i] (a = 1 is Add).
TEXT ·axpyAVX512(SB), NOSPLIT, $0-32
	MOVQ         y+0(FP), DI
	VBROADCASTSS a+8(FP), Z8
	MOVQ         x+16(FP), SI
	MOVQ         n+24(FP), CX

ax_loop:
	CMPQ        CX, $16
	JLT         ax_tail
	VMOVUPS     (DI), Z0
	VFMADD231PS (SI), Z8, Z0
	VMOVUPS     Z0, (DI)
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $16, CX
	JMP         ax_loop

ax_tail:
	TESTQ       CX, CX
	JZ          ax_done
	TAILMASK
	VMOVUPS.Z   (DI), K1, Z0
	VMOVUPS.Z   (SI), K1, Z1
	VFMADD231PS Z1, Z8, Z0
	VMOVUPS     Z0, K1, (DI)

ax_done:
	VZEROUPPER
	RET

// func scaleAVX512(x *float32, s float32, n int)
TEXT ·scaleAVX512(SB), NOSPLIT, $0-24
	MOVQ         x+0(FP), DI
	VBROADCASTSS s+8(FP), Z8
	MOVQ         n+16(FP), CX

sl_loop:
	CMPQ    CX, $16
	JLT     sl_tail
	VMULPS  (DI), Z8, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     sl_loop

sl_tail:
	TESTQ     CX, CX
	JZ        sl_done
	TAILMASK
	VMOVUPS.Z (DI), K1, Z0
	VMULPS    Z8, Z0, Z0
	VMOVUPS   Z0, K1, (DI)

sl_done:
	VZEROUPPER
	RET
