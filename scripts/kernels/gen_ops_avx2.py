"""Generates kernels/ops_avx2_amd64.s: the AVX2+FMA kernels of the fused ops,
twins of ops_avx512_amd64.s on 8-lane YMM registers. AVX2 has no mask
registers, so every kernel works on whole blocks of 8 (n8 = n/8 ≥ 1, rows
of d8·8) and the Go wrappers (ops_avx2_amd64.go) finish the tails with the
pure-Go twins. Operation order follows the Go twins so that the elementwise
kernels agree with them bit for bit."""

from asm import Func, header, hsum_y

# The exp constants, 8 lanes each (see EXPV in ops_avx512_amd64.s and expf
# in ops_util.go): clamp range, log2(e), ln2 in two parts, the polynomial,
# 1.0 (also the float32 bits of 2^0 for building 2^n).
EXP_CONSTS = [
    ("lo", 0xc2f00000), ("hi", 0x42c80000), ("log2e", 0x3fb8aa3b),
    ("ln2hi", 0x3f318000), ("ln2lo", 0xb95e8083),
    ("p0", 0x39506967), ("p1", 0x3ab743ce), ("p2", 0x3c088908),
    ("p3", 0x3d2aa9c1), ("p4", 0x3e2aaaaa), ("p5", 0x3f000000), ("one", 0x3f800000),
]


def c(name):
    i = [n for n, _ in EXP_CONSTS].index(name)
    return f"expc8<>+{32 * i}(SB)"


def exp_table():
    out = []
    for i, (_, v) in enumerate(EXP_CONSTS):
        for lane in range(8):
            out.append(f"DATA expc8<>+{32 * i + 4 * lane}(SB)/4, ${v:#010x}")
    out.append(f"GLOBL expc8<>(SB), RODATA|NOPTR, ${32 * len(EXP_CONSTS)}")
    return "\n".join(out) + "\n\n"


def expv(f, x, t, p, z, ya, yb):
    """Y<p> = exp(Y<ya>·Y<x> − Y<yb>); clobbers Y<x>, Y<t>, Y<z>. As the
    AVX-512 EXPV, but 2^n is built from exponent bits in two halves (no
    VSCALEFPS): n ∈ [−173, 144] after the clamp, each half a normal float,
    so overflow still gives +Inf and underflow subnormals or 0. A NaN input
    stays NaN through the clamp (VMAXPS/VMINPS return their second source)."""
    X, T, P, Z = f"Y{x}", f"Y{t}", f"Y{p}", f"Y{z}"
    f.e(f"VMULPS {X}, Y{ya}, {X}",
        f"VSUBPS Y{yb}, {X}, {X}",
        f"VMOVUPS {c('lo')}, {T}",
        f"VMAXPS {X}, {T}, {X}",
        f"VMOVUPS {c('hi')}, {T}",
        f"VMINPS {X}, {T}, {X}",
        f"VMULPS {c('log2e')}, {X}, {T}",
        f"VROUNDPS $0, {T}, {T}",
        f"VFNMADD231PS {c('ln2hi')}, {T}, {X}",
        f"VFNMADD231PS {c('ln2lo')}, {T}, {X}",
        f"VMOVUPS {c('p0')}, {P}")
    for k in ("p1", "p2", "p3", "p4", "p5"):
        f.e(f"VFMADD213PS {c(k)}, {X}, {P}")
    f.e(f"VMULPS {X}, {X}, {Z}",
        f"VFMADD213PS {X}, {Z}, {P}",
        f"VADDPS {c('one')}, {P}, {P}",
        f"VCVTPS2DQ {T}, {T}",
        f"VPSRAD $1, {T}, {Z}",
        f"VPSUBD {Z}, {T}, {T}",
        f"VPSLLD $23, {Z}, {Z}",
        f"VPADDD {c('one')}, {Z}, {Z}",
        f"VMULPS {Z}, {P}, {P}",
        f"VPSLLD $23, {T}, {T}",
        f"VPADDD {c('one')}, {T}, {T}",
        f"VMULPS {T}, {P}, {P}")


def loop_head(f, lab, reg, n):
    f.label(lab)
    f.e(f"CMPQ {reg}, ${n}", )


def reduce_kernel(name, args, frame, ptrs, body, unroll, doc, ret):
    """A sum over n8 blocks: body(f, k, off) adds block k (at byte offset off)
    into accumulator Y<k>; four accumulators, then one."""
    f = Func(name, args, frame, doc)
    for i, p in enumerate(ptrs):
        f.e(f"MOVQ {p[0]}, {p[1]}")
    f.e("MOVQ n8+%d(FP), CX" % (8 * len(ptrs)))
    for k in range(unroll):
        f.e(f"VXORPS Y{k}, Y{k}, Y{k}")
    f.label(f"{name}_loop4")
    f.e(f"CMPQ CX, ${unroll}", f"JLT {name}_loop1")
    for k in range(unroll):
        body(f, k, 32 * k)
    for p in ptrs:
        f.e(f"ADDQ ${32 * unroll}, {p[1]}")
    f.e(f"SUBQ ${unroll}, CX", f"JMP {name}_loop4")
    f.label(f"{name}_loop1")
    f.e("TESTQ CX, CX", f"JZ {name}_done")
    body(f, 0, 0)
    for p in ptrs:
        f.e(f"ADDQ $32, {p[1]}")
    f.e("DECQ CX", f"JMP {name}_loop1")
    f.label(f"{name}_done")
    for k in range(1, unroll):
        f.e(f"VADDPS Y{k}, Y0, Y0")
    hsum_y(f, 0, 1)
    f.e(f"VMOVSS X0, {ret}", "VZEROUPPER", "RET")
    return f.text()


def elementwise(name, args, frame, ptrs, nslot, setup, body, doc):
    """A map over n8 blocks: body(f, off) handles the block at byte offset
    off (registers Y0–Y7 free)."""
    f = Func(name, args, frame, doc)
    for p in ptrs:
        f.e(f"MOVQ {p[0]}, {p[1]}")
    f.e(f"MOVQ {nslot}, CX")
    for s in setup:
        f.e(s)
    f.label(f"{name}_loop")
    body(f, 0)
    for p in ptrs:
        f.e(f"ADDQ $32, {p[1]}")
    f.e("DECQ CX", f"JNZ {name}_loop", "VZEROUPPER", "RET")
    return f.text()


def gen():
    out = [header("gen_ops_avx2.py", __doc__.split("\n\n")[0].replace("Generates kernels/ops_avx2_amd64.s: t", "T")), exp_table()]

    # dot, sumSq, dot3: four accumulators over blocks of 32, as the AVX-512 ones.
    out.append(reduce_kernel(
        "dotAVX2", "a, b *float32, n8 int", "0-28", [("a+0(FP)", "SI"), ("b+8(FP)", "DX")],
        lambda f, k, o: f.e(f"VMOVUPS {o}(SI), Y{4 + k}", f"VFMADD231PS {o}(DX), Y{4 + k}, Y{k}"),
        4, "Σ a[i]·b[i] over 8·n8 values.", "ret+24(FP)"))
    out.append(reduce_kernel(
        "sumSqAVX2", "x *float32, n8 int", "0-20", [("x+0(FP)", "SI")],
        lambda f, k, o: f.e(f"VMOVUPS {o}(SI), Y{4 + k}", f"VFMADD231PS Y{4 + k}, Y{4 + k}, Y{k}"),
        4, "Σ x[i]² over 8·n8 values.", "ret+16(FP)"))
    out.append(reduce_kernel(
        "dot3AVX2", "a, b, c *float32, n8 int", "0-36",
        [("a+0(FP)", "SI"), ("b+8(FP)", "DX"), ("c+16(FP)", "R8")],
        lambda f, k, o: f.e(f"VMOVUPS {o}(SI), Y{4 + k}", f"VMULPS {o}(DX), Y{4 + k}, Y{4 + k}",
                            f"VFMADD231PS {o}(R8), Y{4 + k}, Y{k}"),
        4, "Σ (a[i]·b[i])·c[i] over 8·n8 values.", "ret+32(FP)"))

    # max: four running maxima.
    f = Func("maxAVX2", "x *float32, n8 int", "0-20", "max of x[0:8·n8], n8 ≥ 1.")
    f.e("MOVQ x+0(FP), SI", "MOVQ n8+8(FP), CX", "VMOVUPS (SI), Y0", "VMOVAPS Y0, Y1",
        "VMOVAPS Y0, Y2", "VMOVAPS Y0, Y3")
    f.label("max_loop4")
    f.e("CMPQ CX, $4", "JLT max_loop1")
    for k in range(4):
        f.e(f"VMAXPS {32 * k}(SI), Y{k}, Y{k}")
    f.e("ADDQ $128, SI", "SUBQ $4, CX", "JMP max_loop4")
    f.label("max_loop1")
    f.e("TESTQ CX, CX", "JZ max_done", "VMAXPS (SI), Y0, Y0", "ADDQ $32, SI", "DECQ CX", "JMP max_loop1")
    f.label("max_done")
    f.e("VMAXPS Y1, Y0, Y0", "VMAXPS Y3, Y2, Y2", "VMAXPS Y2, Y0, Y0",
        "VEXTRACTF128 $1, Y0, X1", "VMAXPS X1, X0, X0",
        "VPERMILPS $0x4e, X0, X1", "VMAXPS X1, X0, X0",
        "VPERMILPS $0xb1, X0, X1", "VMAXPS X1, X0, X0",
        "VMOVSS X0, ret+16(FP)", "VZEROUPPER", "RET")
    out.append(f.text())

    out.append(elementwise(
        "axpyAVX2", "y *float32, a float32, x *float32, n8 int", "0-32",
        [("y+0(FP)", "DI"), ("x+16(FP)", "SI")], "n8+24(FP)", ["VBROADCASTSS a+8(FP), Y8"],
        lambda f, o: f.e("VMOVUPS (DI), Y0", "VFMADD231PS (SI), Y8, Y0", "VMOVUPS Y0, (DI)"),
        "y[i] += a·x[i] over 8·n8 values (a = 1 is Add)."))
    out.append(elementwise(
        "scaleAVX2", "x *float32, s float32, n8 int", "0-24",
        [("x+0(FP)", "DI")], "n8+16(FP)", ["VBROADCASTSS s+8(FP), Y8"],
        lambda f, o: f.e("VMULPS (DI), Y8, Y0", "VMOVUPS Y0, (DI)"),
        "x[i] *= s over 8·n8 values."))
    out.append(elementwise(
        "mulScaledAVX2", "out, x, w *float32, n8 int, s float32", "0-36",
        [("out+0(FP)", "DI"), ("x+8(FP)", "SI"), ("w+16(FP)", "DX")], "n8+24(FP)",
        ["VBROADCASTSS s+32(FP), Y8"],
        lambda f, o: f.e("VMULPS (SI), Y8, Y0", "VMULPS (DX), Y0, Y0", "VMOVUPS Y0, (DI)"),
        "out[i] = (x[i]·s)·w[i]; out may alias x."))
    out.append(elementwise(
        "mulAddScaledAVX2", "acc, a, b *float32, n8 int, s float32", "0-36",
        [("acc+0(FP)", "DI"), ("a+8(FP)", "SI"), ("b+16(FP)", "DX")], "n8+24(FP)",
        ["VBROADCASTSS s+32(FP), Y8"],
        lambda f, o: f.e("VMOVUPS (SI), Y0", "VMULPS (DX), Y0, Y0", "VMULPS Y8, Y0, Y0",
                         "VADDPS (DI), Y0, Y0", "VMOVUPS Y0, (DI)"),
        "acc[i] += (a[i]·b[i])·s."))

    # rmsBackRow: the acc test hoisted out of the loop as two loops.
    f = Func("rmsBackRowAVX2", "dx, d, w, x *float32, n8 int, rs, k float32, acc bool", "0-49",
             "dx[i] (+)= (rs·d[i])·w[i] − k·x[i].")
    f.e("MOVQ dx+0(FP), DI", "MOVQ d+8(FP), SI", "MOVQ w+16(FP), DX", "MOVQ x+24(FP), R8",
        "MOVQ n8+32(FP), CX", "VBROADCASTSS rs+40(FP), Y8", "VBROADCASTSS k+44(FP), Y9",
        "MOVBLZX acc+48(FP), R9")
    for acc in (False, True):
        lab = "rb_acc" if acc else "rb_set"
        if not acc:
            f.e("TESTQ R9, R9", "JNZ rb_acc")
        f.label(lab)
        f.e("VMULPS (SI), Y8, Y0", "VMULPS (DX), Y0, Y0", "VMULPS (R8), Y9, Y1", "VSUBPS Y1, Y0, Y0")
        if acc:
            f.e("VADDPS (DI), Y0, Y0")
        f.e("VMOVUPS Y0, (DI)", "ADDQ $32, SI", "ADDQ $32, DX", "ADDQ $32, R8", "ADDQ $32, DI",
            "DECQ CX", f"JNZ {lab}", "VZEROUPPER", "RET")
    out.append(f.text())

    # scores64: 64 outputs in Y0–Y7.
    f = Func("scores64AVX2", "s *float32, q *float32, d int, kt *float32", "0-32",
             "s[0:64] = Σ_{i<d} q[i] · kt[64i : 64i+64] (d ≥ 0), as scores64AVX512.")
    f.e("MOVQ s+0(FP), DI", "MOVQ q+8(FP), SI", "MOVQ d+16(FP), CX", "MOVQ kt+24(FP), DX")
    for k in range(8):
        f.e(f"VXORPS Y{k}, Y{k}, Y{k}")
    f.e("TESTQ CX, CX", "JZ sc_store")
    f.label("sc_loop")
    f.e("VBROADCASTSS (SI), Y8")
    for k in range(8):
        f.e(f"VFMADD231PS {32 * k}(DX), Y8, Y{k}")
    f.e("ADDQ $4, SI", "ADDQ $256, DX", "DECQ CX", "JNZ sc_loop")
    f.label("sc_store")
    for k in range(8):
        f.e(f"VMOVUPS Y{k}, {32 * k}(DI)")
    f.e("VZEROUPPER", "RET")
    out.append(f.text())

    # axpyRows: 32 columns of acc in registers, rows two at a time.
    f = Func("axpyRowsAVX2", "acc *float32, d8 int, p *float32, n int, m *float32, stride int", "0-48",
             "acc[0:8*d8] += Σ_j p[j] · m[j*stride : j*stride+8*d8] (n ≥ 1, d8 ≥ 1).\n"
             "32 columns (then 8) are kept in registers while the rows stream past.")
    f.e("MOVQ acc+0(FP), DI", "MOVQ d8+8(FP), R9", "MOVQ p+16(FP), SI", "MOVQ n+24(FP), CX",
        "MOVQ m+32(FP), DX", "MOVQ stride+40(FP), R8", "SHLQ $2, R8")
    for w in (4, 1):
        lab = f"ar_blk{w}"
        f.label(lab)
        f.e(f"CMPQ R9, ${w}", f"JLT {'ar_blk1' if w == 4 else 'ar_done'}")
        for k in range(w):
            f.e(f"VMOVUPS {32 * k}(DI), Y{k}")
        f.e("MOVQ SI, R10", "MOVQ DX, R11", "MOVQ CX, R12")
        f.label(f"ar_row{w}")
        f.e("VBROADCASTSS (R10), Y8")
        for k in range(w):
            f.e(f"VFMADD231PS {32 * k}(R11), Y8, Y{k}")
        f.e("ADDQ $4, R10", "ADDQ R8, R11", "DECQ R12", f"JNZ ar_row{w}")
        for k in range(w):
            f.e(f"VMOVUPS Y{k}, {32 * k}(DI)")
        f.e(f"ADDQ ${32 * w}, DI", f"ADDQ ${32 * w}, DX", f"SUBQ ${w}, R9", f"JMP {lab}")
    f.label("ar_done")
    f.e("VZEROUPPER", "RET")
    out.append(f.text())

    # expAffine: two blocks of 8 per trip when there are.
    f = Func("expAffineAVX2", "dst, x *float32, n8 int, a, b float32", "0-36",
             "dst[i] = exp(a·x[i] − b) for i < 8·n8; returns Σ dst[i]. dst may equal x.")
    f.e("MOVQ dst+0(FP), DI", "MOVQ x+8(FP), SI", "MOVQ n8+16(FP), CX",
        "VBROADCASTSS a+24(FP), Y14", "VBROADCASTSS b+28(FP), Y15",
        "VXORPS Y12, Y12, Y12", "VXORPS Y13, Y13, Y13")
    f.label("ea_loop2")
    f.e("CMPQ CX, $2", "JLT ea_loop1", "VMOVUPS (SI), Y0", "VMOVUPS 32(SI), Y4")
    expv(f, 0, 1, 2, 3, 14, 15)
    expv(f, 4, 5, 6, 7, 14, 15)
    f.e("VMOVUPS Y2, (DI)", "VMOVUPS Y6, 32(DI)", "VADDPS Y2, Y12, Y12", "VADDPS Y6, Y13, Y13",
        "ADDQ $64, SI", "ADDQ $64, DI", "SUBQ $2, CX", "JMP ea_loop2")
    f.label("ea_loop1")
    f.e("TESTQ CX, CX", "JZ ea_done", "VMOVUPS (SI), Y0")
    expv(f, 0, 1, 2, 3, 14, 15)
    f.e("VMOVUPS Y2, (DI)", "VADDPS Y2, Y12, Y12")
    f.label("ea_done")
    f.e("VADDPS Y13, Y12, Y0")
    hsum_y(f, 0, 1)
    f.e("VMOVSS X0, ret+32(FP)", "VZEROUPPER", "RET")
    out.append(f.text())

    def swiglu_setup(f):
        f.e("MOVL $0xbf800000, AX", "MOVQ AX, X14", "VPBROADCASTD X14, Y14",
            "VXORPS Y15, Y15, Y15", f"VMOVUPS {c('one')}, Y13")

    f = Func("swigluAVX2", "out, gate, up *float32, n8 int", "0-32",
             "out[i] = gate[i] / (1 + exp(−gate[i])) · up[i] over 8·n8 values; out may\n"
             "alias gate or up.")
    f.e("MOVQ out+0(FP), DI", "MOVQ gate+8(FP), SI", "MOVQ up+16(FP), DX", "MOVQ n8+24(FP), CX")
    swiglu_setup(f)
    f.label("sw_loop")
    f.e("VMOVUPS (SI), Y0", "VMOVAPS Y0, Y4")
    expv(f, 4, 1, 2, 3, 14, 15)
    f.e("VADDPS Y13, Y2, Y2", "VDIVPS Y2, Y0, Y5", "VMULPS (DX), Y5, Y5", "VMOVUPS Y5, (DI)",
        "ADDQ $32, SI", "ADDQ $32, DX", "ADDQ $32, DI", "DECQ CX", "JNZ sw_loop", "VZEROUPPER", "RET")
    out.append(f.text())

    f = Func("swigluBackAVX2", "dgate, dup, dout, gate, up *float32, n8 int", "0-48",
             "SwiGLUBackward over 8·n8 values, in the Go twin's operation order.")
    f.e("MOVQ dgate+0(FP), DI", "MOVQ dup+8(FP), R8", "MOVQ dout+16(FP), R9", "MOVQ gate+24(FP), SI",
        "MOVQ up+32(FP), DX", "MOVQ n8+40(FP), CX")
    swiglu_setup(f)
    f.label("swb_loop")
    f.e("VMOVUPS (SI), Y0", "VMOVUPS (DX), Y6", "VMOVUPS (R9), Y7", "VMOVAPS Y0, Y4")
    expv(f, 4, 1, 2, 3, 14, 15)
    f.e("VADDPS Y13, Y2, Y2", "VDIVPS Y2, Y13, Y5", "VMULPS Y5, Y0, Y8", "VSUBPS Y5, Y13, Y9",
        "VMULPS Y9, Y0, Y9", "VADDPS Y13, Y9, Y9", "VMULPS Y6, Y7, Y1", "VMULPS Y5, Y1, Y1",
        "VMULPS Y9, Y1, Y1", "VMULPS Y8, Y7, Y8",
        "VMOVUPS Y1, (DI)", "VMOVUPS Y8, (R8)",
        "ADDQ $32, SI", "ADDQ $32, DX", "ADDQ $32, R9", "ADDQ $32, DI", "ADDQ $32, R8",
        "DECQ CX", "JNZ swb_loop", "VZEROUPPER", "RET")
    out.append(f.text())
    return "\n".join(out)


if __name__ == "__main__":
    print(gen(), end="")
