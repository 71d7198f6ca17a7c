"""Generates kernels/ops_avx512_amd64.s: the AVX-512F kernels of the fused
ops. Each has a pure-Go twin in ops_kern.go; the twin tests compare them on
awkward sizes. Row kernels need the row length to be a multiple of 16
(d16 = D/16 ≥ 1, checked by the Go caller); vector kernels handle any n
with a masked tail."""

from asm import Func, header

# exp constants (see expf in ops_util.go): register, float32 bits.
EXP_CONSTS = [(22, 0xc2f00000), (23, 0x42c80000), (24, 0x3fb8aa3b), (25, 0x3f318000), (26, 0xb95e8083),
              (27, 0x39506967), (28, 0x3ab743ce), (29, 0x3c088908), (30, 0x3d2aa9c1), (31, 0x3e2aaaaa),
              (19, 0x3f000000), (18, 0x3f800000)]


def macro(name, doc, lines):
    out = [("// " + d).rstrip() for d in doc.strip().splitlines()]
    out.append(f"#define {name} \\")
    for i, ln in enumerate(lines):
        out.append("\t" + ln + ("; \\" if i < len(lines) - 1 else ""))
    return "\n".join(out) + "\n"


def macros_exp():
    expv = macro("EXPV(X, T, P, Z)", """
EXPV computes P = exp(a·X − b) for 16 lanes (X is clobbered, T and Z are
scratch), with a in Z20, b in Z21 and the constants loaded by EXP_CONSTS.
Range reduction as in the Go expf: n = round(t·log2e), r = t − n·ln2 in two
parts, a degree-6 polynomial, then VSCALEFPS multiplies by 2^n, which also
produces +Inf on overflow and 0 (via subnormals) on underflow. The input is
clamped to [-120, 100] first so ±Inf give 0 and +Inf; NaN propagates.""",
                 ["VMULPS X, Z20, X", "VSUBPS Z21, X, X", "VMAXPS X, Z22, X", "VMINPS X, Z23, X",
                  "VMULPS Z24, X, T", "VRNDSCALEPS $0, T, T", "VFNMADD231PS Z25, T, X", "VFNMADD231PS Z26, T, X",
                  "VMOVAPS Z27, P"] + [f"VFMADD213PS Z{r}, X, P" for r in (28, 29, 30, 31, 19)] +
                 ["VMULPS X, X, Z", "VFMADD213PS X, Z, P", "VADDPS Z18, P, P", "VSCALEFPS T, P, P"])
    consts = macro("EXP_CONSTS", "", [f"MOVL ${v:#010x}, AX; VPBROADCASTD AX, Z{r}" for r, v in EXP_CONSTS])
    return expv + "\n" + consts


def tail_macros():
    return macro("TAILMASK", "TAILMASK sets K1 to the low CX bits (0 < CX < 16); clobbers AX.",
                 ["MOVQ $1, AX", "SHLQ CX, AX", "DECQ AX", "KMOVW AX, K1"]) + "\n" + \
        macro("HSUM0", "HSUM0 leaves the sum of Z0's 16 lanes in X0; clobbers Y1.",
              ["VEXTRACTF64X4 $1, Z0, Y1", "VADDPS Y1, Y0, Y0", "VEXTRACTF128 $1, Y0, X1", "VADDPS X1, X0, X0",
               "VHADDPS X0, X0, X0", "VHADDPS X0, X0, X0"])


def axpy_rows():
    f = Func("axpyRowsAVX512", "acc *float32, d16 int, p *float32, n int, m *float32, stride int", "0-48",
             "acc[0:16*d16] += Σ_j p[j] · m[j*stride : j*stride+16*d16].\n"
             "acc is kept in registers 64 floats at a time; rows go two at a time into\n"
             "separate accumulators so the FMA latency chains overlap.")
    f.e("MOVQ acc+0(FP), DI", "MOVQ d16+8(FP), R9", "MOVQ p+16(FP), SI", "MOVQ n+24(FP), CX",
        "MOVQ m+32(FP), DX", "MOVQ stride+40(FP), R8", "SHLQ $2, R8")
    for w, lab, nxt in ((4, "q", "axpy_one"), (1, "o", "axpy_done")):
        head = "axpy_quad" if w == 4 else "axpy_one"
        f.label(head)
        if w == 4:
            f.e("CMPQ R9, $4", f"JLT {nxt}")
        else:
            f.e("TESTQ R9, R9", f"JZ {nxt}")
        for k in range(w):
            f.e(f"VMOVUPS {64 * k or ''}(DI), Z{k}")
        for k in range(w):
            f.e(f"VXORPS Z{4 + k}, Z{4 + k}, Z{4 + k}")
        f.e("MOVQ SI, R10", "MOVQ DX, R11", "MOVQ CX, R12")
        f.label(f"axpy_{lab}2")
        f.e("CMPQ R12, $2", f"JLT axpy_{lab}1", "VBROADCASTSS (R10), Z8", "VBROADCASTSS 4(R10), Z9",
            "LEAQ (R11)(R8*1), R13")
        for k in range(w):
            f.e(f"VFMADD231PS {64 * k or ''}(R11), Z8, Z{k}")
        for k in range(w):
            f.e(f"VFMADD231PS {64 * k or ''}(R13), Z9, Z{4 + k}")
        f.e("ADDQ $8, R10", "LEAQ (R13)(R8*1), R11", "SUBQ $2, R12", f"JMP axpy_{lab}2")
        f.label(f"axpy_{lab}1")
        f.e("TESTQ R12, R12", f"JZ axpy_{lab}store", "VBROADCASTSS (R10), Z8")
        for k in range(w):
            f.e(f"VFMADD231PS {64 * k or ''}(R11), Z8, Z{k}")
        f.label(f"axpy_{lab}store")
        for k in range(w):
            f.e(f"VADDPS Z{4 + k}, Z{k}, Z{k}")
        for k in range(w):
            f.e(f"VMOVUPS Z{k}, {64 * k or ''}(DI)")
        f.e(f"ADDQ ${64 * w}, DI", f"ADDQ ${64 * w}, DX")
        f.e("SUBQ $4, R9" if w == 4 else "DECQ R9", f"JMP {head}")
    f.label("axpy_done")
    f.e("VZEROUPPER", "RET")
    return f.text()


def exp_affine():
    f = Func("expAffineAVX512", "dst, x *float32, n int, a, b float32) float32", "0-36",
             "dst[i] = exp(a·x[i] − b) for i < n; returns Σ dst[i]. dst may equal x.")
    f.lines[0] = "// func expAffineAVX512(dst, x *float32, n int, a, b float32) float32"
    f.e("MOVQ dst+0(FP), DI", "MOVQ x+8(FP), SI", "MOVQ n+16(FP), CX", "VBROADCASTSS a+24(FP), Z20",
        "VBROADCASTSS b+28(FP), Z21", "EXP_CONSTS", "VXORPS Z16, Z16, Z16", "VXORPS Z17, Z17, Z17")
    f.label("exp_loop2")
    f.e("CMPQ CX, $32", "JLT exp_loop1", "VMOVUPS (SI), Z0", "VMOVUPS 64(SI), Z4", "EXPV(Z0, Z1, Z2, Z3)",
        "EXPV(Z4, Z5, Z6, Z7)", "VMOVUPS Z2, (DI)", "VMOVUPS Z6, 64(DI)", "VADDPS Z2, Z16, Z16",
        "VADDPS Z6, Z17, Z17", "ADDQ $128, SI", "ADDQ $128, DI", "SUBQ $32, CX", "JMP exp_loop2")
    f.label("exp_loop1")
    f.e("CMPQ CX, $16", "JLT exp_tail", "VMOVUPS (SI), Z0", "EXPV(Z0, Z1, Z2, Z3)", "VMOVUPS Z2, (DI)",
        "VADDPS Z2, Z16, Z16", "ADDQ $64, SI", "ADDQ $64, DI", "SUBQ $16, CX")
    f.label("exp_tail")
    f.e("TESTQ CX, CX", "JZ exp_done", "TAILMASK", "VMOVUPS.Z (SI), K1, Z0", "EXPV(Z0, Z1, Z2, Z3)",
        "VMOVUPS Z2, K1, (DI)", "VADDPS Z2, Z16, K1, Z16")
    f.label("exp_done")
    f.e("VADDPS Z17, Z16, Z0", "HSUM0", "VMOVSS X0, ret+32(FP)", "VZEROUPPER", "RET")
    return f.text()


def max_kernel():
    f = Func("maxAVX512", "x *float32, n int) float32", "0-20", "max of x[0:n], n ≥ 1.")
    f.lines[0] = "// func maxAVX512(x *float32, n int) float32"
    f.e("MOVQ x+0(FP), SI", "MOVQ n+8(FP), CX", "MOVL $0xff800000, AX", "VPBROADCASTD AX, Z0")
    for k in range(1, 5):
        f.e(f"VMOVAPS Z0, Z{k}")
    f.label("max_loop4")
    f.e("CMPQ CX, $64", "JLT max_loop1")
    for k in range(4):
        f.e(f"VMAXPS {64 * k or ''}(SI), Z{k}, Z{k}")
    f.e("ADDQ $256, SI", "SUBQ $64, CX", "JMP max_loop4")
    f.label("max_loop1")
    f.e("CMPQ CX, $16", "JLT max_tail", "VMAXPS (SI), Z0, Z0", "ADDQ $64, SI", "SUBQ $16, CX", "JMP max_loop1")
    f.label("max_tail")
    # the masked-off lanes keep Z4's -Inf (merge masking)
    f.e("TESTQ CX, CX", "JZ max_reduce", "TAILMASK", "VMOVUPS (SI), K1, Z4", "VMAXPS Z4, Z0, Z0")
    f.label("max_reduce")
    f.e("VMAXPS Z1, Z0, Z0", "VMAXPS Z3, Z2, Z2", "VMAXPS Z2, Z0, Z0", "VEXTRACTF64X4 $1, Z0, Y1",
        "VMAXPS Y1, Y0, Y0", "VEXTRACTF128 $1, Y0, X1", "VMAXPS X1, X0, X0", "VPERMILPS $0x4e, X0, X1",
        "VMAXPS X1, X0, X0", "VPERMILPS $0xb1, X0, X1", "VMAXPS X1, X0, X0", "VMOVSS X0, ret+16(FP)",
        "VZEROUPPER", "RET")
    return f.text()


def swiglu():
    f = Func("swigluAVX512", "out, gate, up *float32, n int", "0-32",
             "out[i] = gate[i] / (1 + exp(−gate[i])) · up[i]; out may alias gate or up.")
    f.e("MOVQ out+0(FP), DI", "MOVQ gate+8(FP), SI", "MOVQ up+16(FP), DX", "MOVQ n+24(FP), CX",
        "MOVL $0xbf800000, AX", "VPBROADCASTD AX, Z20", "VXORPS Z21, Z21, Z21", "EXP_CONSTS")
    f.label("swiglu_loop")
    f.e("CMPQ CX, $16", "JLT swiglu_tail", "VMOVUPS (SI), Z0", "VMOVAPS Z0, Z4", "EXPV(Z4, Z1, Z2, Z3)",
        "VADDPS Z18, Z2, Z2", "VDIVPS Z2, Z0, Z5", "VMULPS (DX), Z5, Z5", "VMOVUPS Z5, (DI)", "ADDQ $64, SI",
        "ADDQ $64, DX", "ADDQ $64, DI", "SUBQ $16, CX", "JMP swiglu_loop")
    f.label("swiglu_tail")
    f.e("TESTQ CX, CX", "JZ swiglu_done", "TAILMASK", "VMOVUPS.Z (SI), K1, Z0", "VMOVUPS.Z (DX), K1, Z6",
        "VMOVAPS Z0, Z4", "EXPV(Z4, Z1, Z2, Z3)", "VADDPS Z18, Z2, Z2", "VDIVPS Z2, Z0, Z5", "VMULPS Z6, Z5, Z5",
        "VMOVUPS Z5, K1, (DI)")
    f.label("swiglu_done")
    f.e("VZEROUPPER", "RET")
    back = macro("SWIGLU_BACK", """
SWIGLU_BACK computes, for g in Z0, u in Z6, d in Z7: dgate in Z1 and dup in
Z8 (see SwiGLUBackward), in the same operation order as the Go twin.""",
                 ["VMOVAPS Z0, Z4", "EXPV(Z4, Z1, Z2, Z3)", "VADDPS Z18, Z2, Z2", "VDIVPS Z2, Z18, Z5",
                  "VMULPS Z5, Z0, Z8", "VSUBPS Z5, Z18, Z9", "VMULPS Z9, Z0, Z9", "VADDPS Z18, Z9, Z9",
                  "VMULPS Z6, Z7, Z1", "VMULPS Z5, Z1, Z1", "VMULPS Z9, Z1, Z1", "VMULPS Z8, Z7, Z8"])
    g = Func("swigluBackAVX512", "dgate, dup, dout, gate, up *float32, n int", "0-48")
    g.e("MOVQ dgate+0(FP), DI", "MOVQ dup+8(FP), R8", "MOVQ dout+16(FP), R9", "MOVQ gate+24(FP), SI",
        "MOVQ up+32(FP), DX", "MOVQ n+40(FP), CX", "MOVL $0xbf800000, AX", "VPBROADCASTD AX, Z20",
        "VXORPS Z21, Z21, Z21", "EXP_CONSTS")
    g.label("swiglub_loop")
    g.e("CMPQ CX, $16", "JLT swiglub_tail", "VMOVUPS (SI), Z0", "VMOVUPS (DX), Z6", "VMOVUPS (R9), Z7",
        "SWIGLU_BACK", "VMOVUPS Z1, (DI)", "VMOVUPS Z8, (R8)")
    for r in ("SI", "DX", "R9", "DI", "R8"):
        g.e(f"ADDQ $64, {r}")
    g.e("SUBQ $16, CX", "JMP swiglub_loop")
    g.label("swiglub_tail")
    g.e("TESTQ CX, CX", "JZ swiglub_done", "TAILMASK", "VMOVUPS.Z (SI), K1, Z0", "VMOVUPS.Z (DX), K1, Z6",
        "VMOVUPS.Z (R9), K1, Z7", "SWIGLU_BACK", "VMOVUPS Z1, K1, (DI)", "VMOVUPS Z8, K1, (R8)")
    g.label("swiglub_done")
    g.e("VZEROUPPER", "RET")
    return f.text() + "\n" + back + "\n" + g.text()


def scores64():
    f = Func("scores64AVX512", "s *float32, q *float32, d int, kt *float32", "0-32",
             "s[0:64] = Σ_{i<d} q[i] · kt[64i : 64i+64] (d ≥ 0): scores of one query\n"
             "against a block of 64 keys stored transposed, so no horizontal sums are\n"
             "needed. Even and odd i go to separate accumulators to overlap FMA latency.")
    f.e("MOVQ s+0(FP), DI", "MOVQ q+8(FP), SI", "MOVQ d+16(FP), CX", "MOVQ kt+24(FP), DX")
    for k in range(8):
        f.e(f"VXORPS Z{k}, Z{k}, Z{k}")
    f.label("sc_loop2")
    f.e("CMPQ CX, $2", "JLT sc_loop1", "VBROADCASTSS (SI), Z8", "VBROADCASTSS 4(SI), Z9")
    for k in range(8):
        f.e(f"VFMADD231PS {64 * k or ''}(DX), Z{8 + k // 4}, Z{k}")
    f.e("ADDQ $8, SI", "ADDQ $512, DX", "SUBQ $2, CX", "JMP sc_loop2")
    f.label("sc_loop1")
    f.e("TESTQ CX, CX", "JZ sc_store", "VBROADCASTSS (SI), Z8")
    for k in range(4):
        f.e(f"VFMADD231PS {64 * k or ''}(DX), Z8, Z{k}")
    f.label("sc_store")
    for k in range(4):
        f.e(f"VADDPS Z{4 + k}, Z{k}, Z{k}")
    for k in range(4):
        f.e(f"VMOVUPS Z{k}, {64 * k or ''}(DI)")
    f.e("VZEROUPPER", "RET")
    return f.text()


def reduce_kernel(name, args, frame, doc, ptrs, unroll, body, tail, ret, lab):
    """Σ over 16-lane blocks: `unroll` accumulators (blocks of 16·unroll),
    then one, then a masked tail into accumulator 1."""
    f = Func(name, args, frame, doc)
    for p, r in ptrs:
        f.e(f"MOVQ {p}, {r}")
    f.e(f"MOVQ n+{8 * len(ptrs)}(FP), CX")
    for k in range(max(unroll, 2)):
        f.e(f"VXORPS Z{k}, Z{k}, Z{k}")
    f.label(f"{lab}_loop{unroll}")
    f.e(f"CMPQ CX, ${16 * unroll}", f"JLT {lab}_loop1")
    body(f, unroll)
    for _, r in ptrs:
        f.e(f"ADDQ ${64 * unroll}, {r}")
    f.e(f"SUBQ ${16 * unroll}, CX", f"JMP {lab}_loop{unroll}")
    f.label(f"{lab}_loop1")
    f.e("CMPQ CX, $16", f"JLT {lab}_tail")
    body(f, 1)
    for _, r in ptrs:
        f.e(f"ADDQ $64, {r}")
    f.e("SUBQ $16, CX")
    if unroll == 4:
        f.e(f"JMP {lab}_loop1")
    f.label(f"{lab}_tail")
    f.e("TESTQ CX, CX", f"JZ {lab}_done", "TAILMASK")
    tail(f)
    f.label(f"{lab}_done")
    if unroll == 4:
        f.e("VADDPS Z1, Z0, Z0", "VADDPS Z3, Z2, Z2", "VADDPS Z2, Z0, Z0")
    else:
        f.e("VADDPS Z1, Z0, Z0")
    f.e("HSUM0", f"VMOVSS X0, {ret}", "VZEROUPPER", "RET")
    return f.text()


def sum_sq():
    def body(f, u):
        for k in range(u):
            f.e(f"VMOVUPS {64 * k or ''}(SI), Z{4 + k}")
        for k in range(u):
            f.e(f"VFMADD231PS Z{4 + k}, Z{4 + k}, Z{k}")
    return reduce_kernel("sumSqAVX512", "x *float32, n int) float32", "0-20", "Σ x[i]² over 64 float32 lanes.",
                         [("x+0(FP)", "SI")], 4, body,
                         lambda f: f.e("VMOVUPS.Z (SI), K1, Z4", "VFMADD231PS Z4, Z4, Z1"), "ret+16(FP)", "ss")


def dot3():
    def body(f, u):
        for k in range(u):
            f.e(f"VMOVUPS {64 * k or ''}(SI), Z{4 + k}")
        for k in range(u):
            f.e(f"VMULPS {64 * k or ''}(DX), Z{4 + k}, Z{4 + k}")
        for k in range(u):
            f.e(f"VFMADD231PS {64 * k or ''}(R8), Z{4 + k}, Z{k}")
    return reduce_kernel("dot3AVX512", "a, b, c *float32, n int) float32", "0-36", "Σ (a[i]·b[i])·c[i].",
                         [("a+0(FP)", "SI"), ("b+8(FP)", "DX"), ("c+16(FP)", "R8")], 2, body,
                         lambda f: f.e("VMOVUPS.Z (SI), K1, Z4", "VMOVUPS.Z (DX), K1, Z5", "VMOVUPS.Z (R8), K1, Z6",
                                       "VMULPS Z5, Z4, Z4", "VFMADD231PS Z6, Z4, Z1"), "ret+32(FP)", "d3")


def dot():
    def body(f, u):
        for k in range(u):
            f.e(f"VMOVUPS {64 * k or ''}(SI), Z{4 + k}")
        for k in range(u):
            f.e(f"VFMADD231PS {64 * k or ''}(DX), Z{4 + k}, Z{k}")
    return reduce_kernel("dotAVX512", "a, b *float32, n int) float32", "0-28", "",
                         [("a+0(FP)", "SI"), ("b+8(FP)", "DX")], 4, body,
                         lambda f: f.e("VMOVUPS.Z (SI), K1, Z4", "VMOVUPS.Z (DX), K1, Z5", "VFMADD231PS Z5, Z4, Z1"),
                         "ret+24(FP)", "dt")


def elementwise(name, args, frame, doc, ptrs, setup, body, tail, lab):
    """A map over 16-lane blocks and a masked tail."""
    f = Func(name, args, frame, doc)
    for p, r in ptrs:
        f.e(f"MOVQ {p}, {r}")
    f.e(*setup)
    f.label(f"{lab}_loop")
    f.e("CMPQ CX, $16", f"JLT {lab}_tail")
    body(f)
    for _, r in ptrs:
        f.e(f"ADDQ $64, {r}")
    f.e("SUBQ $16, CX", f"JMP {lab}_loop")
    f.label(f"{lab}_tail")
    f.e("TESTQ CX, CX", f"JZ {lab}_done", "TAILMASK")
    tail(f)
    f.label(f"{lab}_done")
    f.e("VZEROUPPER", "RET")
    return f.text()


def gen():
    out = [header("gen_ops_avx512.py", __doc__.split("\n\n")[0].replace(
        "Generates kernels/ops_avx512_amd64.s: t", "T")), tail_macros(), macros_exp(), axpy_rows(), exp_affine(),
        max_kernel(), swiglu(), scores64(), sum_sq(), dot3()]
    out.append(elementwise(
        "mulScaledAVX512", "out, x, w *float32, n int, s float32", "0-36", "out[i] = (x[i]·s)·w[i]; out may alias x.",
        [("out+0(FP)", "DI"), ("x+8(FP)", "SI"), ("w+16(FP)", "DX")], ["MOVQ n+24(FP), CX", "VBROADCASTSS s+32(FP), Z8"],
        lambda f: f.e("VMULPS (SI), Z8, Z0", "VMULPS (DX), Z0, Z0", "VMOVUPS Z0, (DI)"),
        lambda f: f.e("VMOVUPS.Z (SI), K1, Z0", "VMOVUPS.Z (DX), K1, Z1", "VMULPS Z8, Z0, Z0", "VMULPS Z1, Z0, Z0",
                      "VMOVUPS Z0, K1, (DI)"), "ms"))
    # rmsBackRow: the acc test inside the loop, as written by hand.
    f = Func("rmsBackRowAVX512", "dx, d, w, x *float32, n int, rs, k float32, acc bool", "0-49",
             "dx[i] (+)= (rs·d[i])·w[i] − k·x[i].")
    f.e("MOVQ dx+0(FP), DI", "MOVQ d+8(FP), SI", "MOVQ w+16(FP), DX", "MOVQ x+24(FP), R8", "MOVQ n+32(FP), CX",
        "VBROADCASTSS rs+40(FP), Z8", "VBROADCASTSS k+44(FP), Z9", "MOVBLZX acc+48(FP), R9")
    f.label("rb_loop")
    f.e("CMPQ CX, $16", "JLT rb_tail", "VMULPS (SI), Z8, Z0", "VMULPS (DX), Z0, Z0", "VMULPS (R8), Z9, Z1",
        "VSUBPS Z1, Z0, Z0", "TESTQ R9, R9", "JZ rb_store", "VADDPS (DI), Z0, Z0")
    f.label("rb_store")
    f.e("VMOVUPS Z0, (DI)", "ADDQ $64, SI", "ADDQ $64, DX", "ADDQ $64, R8", "ADDQ $64, DI", "SUBQ $16, CX",
        "JMP rb_loop")
    f.label("rb_tail")
    f.e("TESTQ CX, CX", "JZ rb_done", "TAILMASK", "VMOVUPS.Z (SI), K1, Z0", "VMOVUPS.Z (DX), K1, Z2",
        "VMOVUPS.Z (R8), K1, Z3", "VMULPS Z8, Z0, Z0", "VMULPS Z2, Z0, Z0", "VMULPS Z3, Z9, Z1", "VSUBPS Z1, Z0, Z0",
        "TESTQ R9, R9", "JZ rb_tstore", "VMOVUPS.Z (DI), K1, Z4", "VADDPS Z4, Z0, Z0")
    f.label("rb_tstore")
    f.e("VMOVUPS Z0, K1, (DI)")
    f.label("rb_done")
    f.e("VZEROUPPER", "RET")
    out.append(f.text())
    out.append(elementwise(
        "mulAddScaledAVX512", "acc, a, b *float32, n int, s float32", "0-36", "acc[i] += (a[i]·b[i])·s.",
        [("acc+0(FP)", "DI"), ("a+8(FP)", "SI"), ("b+16(FP)", "DX")], ["MOVQ n+24(FP), CX", "VBROADCASTSS s+32(FP), Z8"],
        lambda f: f.e("VMOVUPS (SI), Z0", "VMULPS (DX), Z0, Z0", "VMULPS Z8, Z0, Z0", "VADDPS (DI), Z0, Z0",
                      "VMOVUPS Z0, (DI)"),
        lambda f: f.e("VMOVUPS.Z (SI), K1, Z0", "VMOVUPS.Z (DX), K1, Z1", "VMOVUPS.Z (DI), K1, Z2", "VMULPS Z1, Z0, Z0",
                      "VMULPS Z8, Z0, Z0", "VADDPS Z2, Z0, Z0", "VMOVUPS Z0, K1, (DI)"), "ma"))
    out.append(dot())
    out.append(elementwise(
        "axpyAVX512", "y *float32, a float32, x *float32, n int", "0-32", "y[i] += a·x[i] (a = 1 is Add).",
        [("y+0(FP)", "DI")], ["VBROADCASTSS a+8(FP), Z8", "MOVQ x+16(FP), SI", "MOVQ n+24(FP), CX"],
        lambda f: f.e("VMOVUPS (DI), Z0", "VFMADD231PS (SI), Z8, Z0", "VMOVUPS Z0, (DI)", "ADDQ $64, SI"),
        lambda f: f.e("VMOVUPS.Z (DI), K1, Z0", "VMOVUPS.Z (SI), K1, Z1", "VFMADD231PS Z1, Z8, Z0",
                      "VMOVUPS Z0, K1, (DI)"), "ax"))
    out.append(elementwise(
        "scaleAVX512", "x *float32, s float32, n int", "0-24", "x[i] *= s.",
        [("x+0(FP)", "DI")], ["VBROADCASTSS s+8(FP), Z8", "MOVQ n+16(FP), CX"],
        lambda f: f.e("VMULPS (DI), Z8, Z0", "VMOVUPS Z0, (DI)"),
        lambda f: f.e("VMOVUPS.Z (DI), K1, Z0", "VMULPS Z8, Z0, Z0", "VMOVUPS Z0, K1, (DI)"), "sl"))
    return "\n".join(out)
