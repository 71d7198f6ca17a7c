"""Generates the GEMM assembly: kernels/gemm_avx512_amd64.s (the AVX-512
microkernels for float32, prepacked bfloat16 and bf16-pair panels, GEMV,
conversion and the peak/bandwidth loops) and kernels/gemm_avx2_amd64.s
(the AVX2+FMA ones). Every kernel is fully unrolled over its register tile.

Go's assembler does not know the AVX512_BF16 instructions, so VDPBF16PS and
VCVTNEPS2BF16 are emitted as bytes by evex() below."""

from asm import Func, header


def evex(opcode, dst, src1, src2, l512=True, pp=0b10, mem=None):
    """EVEX.512 (or .256).<pp: 0b10 F3, 0b11 F2>.0F38.W0 <opcode> /r with
    register operands (dst, src1 = vvvv, src2 = r/m), as BYTE directives.
    src1 None means vvvv unused. mem = (base register number, displacement)
    replaces src2 by that memory operand (disp8 scaled by the vector size)."""
    v = 0 if src1 is None else src1
    rm = src2 if mem is None else mem[0]
    x = (~rm >> 4) & 1 if mem is None else 1
    p0 = ((~dst >> 3) & 1) << 7 | x << 6 | ((~rm >> 3) & 1) << 5 | \
        ((~dst >> 4) & 1) << 4 | 0b10
    p1 = (0 << 7) | ((~v) & 15) << 3 | 1 << 2 | pp
    p2 = (0b10 if l512 else 0b01) << 5 | ((~v >> 4) & 1) << 3
    if mem is None:
        tail = [0xc0 | (dst & 7) << 3 | (src2 & 7)]
    else:
        base, disp = mem
        assert base & 7 not in (4, 5), "no SIB or RIP forms"
        n = 64 if l512 else 32
        assert disp % n == 0 and -128 <= disp // n < 128
        tail = [0x40 | (dst & 7) << 3 | (base & 7), (disp // n) & 0xff]
    return "; ".join(f"BYTE ${b:#04x}" for b in [0x62, p0, p1, p2, opcode] + tail)


def vdpbf16ps(b, a, c):
    """c += dot of the bf16 pairs of a and b (Go operand order)."""
    return evex(0x52, c, a, b) + f" // VDPBF16PS Z{b}, Z{a}, Z{c}"


def vcvtneps2bf16(src, dst):
    return evex(0x72, dst, None, src) + f" // VCVTNEPS2BF16 Z{src}, Y{dst}"


# B panel kinds of the tile kernels: (Go type of b, bytes of B per k step).
PANELS = {"f32": ("*float32", 128), "pbf16": ("*uint16", 64), "pairs": ("*uint32", 128)}


def tile_avx512(name, rows, panel):
    """c[rows×32] (+)= a·b over kc steps; a packed 12 per step (the first
    rows used), b one NR=32 panel per step: float32, bfloat16 widened in
    registers, or bf16 pairs multiplied by VDPBF16PS (then a step is a pair
    of k and a holds pairs too, in the grouped layout of tile_pairs_avx512).
    C's rows are prefetched at the start, the next B panel (which follows
    this one when B is prepacked) during the loop."""
    if panel == "pairs":
        return tile_pairs_avx512(name, rows)
    btype, bstep = PANELS[panel]
    doc = {"f32": f"c[{rows}×32] (+)= a·b; a packed 12 per k, b packed 32 per k.",
           "pbf16": f"c[{rows}×32] (+)= a·b; a packed 12 per k, b prepacked bfloat16, 32 per k,\nwidened in registers."}[panel]
    f = Func(name, "kc int, a *float32, b " + btype + ", c *float32, ldc int, acc int", "0-48", doc)
    f.e("MOVQ kc+0(FP), CX", "MOVQ CX, R11",
        f"SHLQ ${bstep.bit_length() - 1}, R11 // one B panel: the next one follows a prepacked one",
        "MOVQ a+8(FP), AX", "MOVQ b+16(FP), BX")
    tile_start(f, rows)
    f.e("PCALIGN $64")
    f.label("loop")
    if panel == "pbf16":
        f.e("VPMOVZXWD (BX), Z24", "VPMOVZXWD 32(BX), Z25", "PREFETCHT0 256(BX)",
            "PREFETCHT1 (BX)(R11*1)", "VPSLLD $16, Z24, Z24", "VPSLLD $16, Z25, Z25")
    else:
        f.e("VMOVUPS (BX), Z24", "VMOVUPS 64(BX), Z25", "PREFETCHT0 512(BX)", "PREFETCHT1 (BX)(R11*1)")
    for r in range(rows):
        bz = 26 + r % 2
        f.e(f"VBROADCASTSS {4 * r}(AX), Z{bz}",
            f"VFMADD231PS Z24, Z{bz}, Z{2 * r}", f"VFMADD231PS Z25, Z{bz}, Z{2 * r + 1}")
    f.e("ADDQ $48, AX", f"ADDQ ${bstep}, BX", "DECQ CX", "JNZ loop")
    tile_end(f, rows)
    return f.text()


def tile_start(f, rows):
    """Loads c and ldc, prefetches C's rows, zeroes the accumulators."""
    f.e("MOVQ c+24(FP), DI", "MOVQ ldc+32(FP), DX", "SHLQ $2, DX", "MOVQ DI, R8")
    for r in range(rows):
        f.e("PREFETCHT0 (R8)", "PREFETCHT0 64(R8)")
        if r < rows - 1:
            f.e("ADDQ DX, R8")
    for z in range(2 * rows):
        f.e(f"VPXORD Z{z}, Z{z}, Z{z}")


def tile_end(f, rows):
    """Adds the accumulators to C (acc ≠ 0) or stores them."""
    f.e("MOVQ acc+40(FP), SI", "TESTQ SI, SI", "JZ store")
    for r in range(rows):
        f.e(f"VADDPS (DI), Z{2 * r}, Z{2 * r}", f"VADDPS 64(DI), Z{2 * r + 1}, Z{2 * r + 1}",
            f"VMOVUPS Z{2 * r}, (DI)", f"VMOVUPS Z{2 * r + 1}, 64(DI)")
        if r < rows - 1:
            f.e("ADDQ DX, DI")
    f.e("VZEROUPPER", "RET")
    f.label("store")
    for r in range(rows):
        f.e(f"VMOVUPS Z{2 * r}, (DI)", f"VMOVUPS Z{2 * r + 1}, 64(DI)")
        if r < rows - 1:
            f.e("ADDQ DX, DI")
    f.e("VZEROUPPER", "RET")


# The A panel of the pair kernels holds 12 rows in groups of PAIR_GROUP pairs:
# pair q = g·8+s of row r at dword (g·12+r)·8+s. Each row's group is 32
# contiguous bytes of that row, so packing A is a copy, or one VCVTNEPS2BF16
# of 16 float32 values, instead of a 12-row transpose (which was 5–12% of
# prefill and of the 14B training step).
PAIR_GROUP = 8


def tile_pairs_avx512(name, rows):
    g = PAIR_GROUP
    f = Func(name, "kc2 int, a *float32, b *float32, c *float32, ldc int, acc int", "0-48",
             f"c[{rows}×32] (+)= a·b over kc2 bf16 pairs: a in 12-row groups of {g} pairs per\n"
             f"row (pair g·{g}+s of row r at dword (g·12+r)·{g}+s), b 32 pairs per step.\n"
             f"The loop is unrolled over a group; a last partial group runs step by step.")
    f.e("MOVQ kc2+0(FP), CX", "MOVQ CX, R11",
        "SHLQ $7, R11 // one B panel: the next one follows a prepacked one",
        "MOVQ CX, R12", f"ANDQ ${g - 1}, R12 // steps of the partial group",
        f"SHRQ ${(g - 1).bit_length()}, CX // whole groups",
        "MOVQ a+8(FP), AX", "MOVQ b+16(FP), BX")
    tile_start(f, rows)
    f.e("TESTQ CX, CX", "JZ tail", "PCALIGN $64")
    f.label("loop")
    for s in range(g):
        b0, b1 = (24, 25) if s % 2 == 0 else (28, 29)
        f.e(f"VMOVUPS {128 * s}(BX), Z{b0}", f"VMOVUPS {128 * s + 64}(BX), Z{b1}",
            f"PREFETCHT0 {128 * s + 512}(BX)", f"PREFETCHT1 {128 * s}(BX)(R11*1)")
        for r in range(rows):
            bz = 26 + r % 2
            f.e(f"VPBROADCASTD {(r * g + s) * 4}(AX), Z{bz}",
                vdpbf16ps(b0, bz, 2 * r), vdpbf16ps(b1, bz, 2 * r + 1))
    f.e(f"ADDQ ${12 * g * 4}, AX", f"ADDQ ${128 * g}, BX", "DECQ CX", "JNZ loop")
    f.label("tail")
    f.e("TESTQ R12, R12", "JZ done")
    f.label("tloop")
    f.e("VMOVUPS (BX), Z24", "VMOVUPS 64(BX), Z25")
    for r in range(rows):
        bz = 26 + r % 2
        f.e(f"VPBROADCASTD {r * g * 4}(AX), Z{bz}",
            vdpbf16ps(24, bz, 2 * r), vdpbf16ps(25, bz, 2 * r + 1))
    f.e("ADDQ $4, AX", "ADDQ $128, BX", "DECQ R12", "JNZ tloop")
    f.label("done")
    tile_end(f, rows)
    return f.text()


def pack_pairs_avx512():
    g = PAIR_GROUP
    f = Func("packPairsAVX512", "dst *float32, src *float32, lds, rows, ng int", "0-40",
             f"Rounds rows of float32 into the A panel of the pair kernels: for r < rows,\n"
             f"g < ng, dst[(g·12+r)·{g}+s] = bf16(src[r·lds+2(g·{g}+s)]) | bf16(src[r·lds+2(g·{g}+s)+1])<<16\n"
             f"(rows, ng ≥ 1).")
    f.e("MOVQ dst+0(FP), DI", "MOVQ src+8(FP), SI", "MOVQ lds+16(FP), R8", "SHLQ $2, R8",
        "MOVQ rows+24(FP), DX")
    f.label("prow")
    f.e("MOVQ ng+32(FP), CX", "MOVQ SI, R9", "MOVQ DI, R10")
    f.label("pgrp")
    f.e("VMOVUPS (R9), Z0", vcvtneps2bf16(0, 1), f"VMOVDQU Y1, (R10)", "ADDQ $64, R9",
        f"ADDQ ${12 * g * 4}, R10", "DECQ CX", "JNZ pgrp",
        "ADDQ R8, SI", f"ADDQ ${g * 4}, DI", "DECQ DX", "JNZ prow", "VZEROUPPER", "RET")
    return f.text()


def hsum_zmm(f, z):
    f.e(f"VEXTRACTF64X4 $1, Z{z}, Y28", f"VADDPS Y28, Y{z}, Y{z}",
        f"VEXTRACTF32X4 $1, Y{z}, X29", f"VADDPS X29, X{z}, X{z}",
        f"VHADDPS X{z}, X{z}, X{z}", f"VHADDPS X{z}, X{z}, X{z}")


def gemv4x4_avx512(name, bf16):
    wtype = "*uint16" if bf16 else "*float32"
    f = Func(name, f"out, x *float32, ldx int, w {wtype}, ldw, k16 int", "0-48",
             "out[r*4+c] = x row r · w row c over k16*16 columns.")
    f.e("MOVQ out+0(FP), DI", "MOVQ x+8(FP), SI", "MOVQ ldx+16(FP), R8", "SHLQ $2, R8",
        "LEAQ (R8)(R8*2), R9", "MOVQ w+24(FP), BX", "MOVQ ldw+32(FP), R10",
        f"SHLQ ${1 if bf16 else 2}, R10", "LEAQ (R10)(R10*2), R11", "MOVQ k16+40(FP), CX")
    for z in range(16):
        f.e(f"VPXORD Z{z}, Z{z}, Z{z}")
    f.label("loop")
    wrows = ["(BX)", "(BX)(R10*1)", "(BX)(R10*2)", "(BX)(R11*1)"]
    for c, m in enumerate(wrows):
        if bf16:
            f.e(f"VPMOVZXWD {m}, Z{16 + c}", f"VPSLLD $16, Z{16 + c}, Z{16 + c}")
        else:
            f.e(f"VMOVUPS {m}, Z{16 + c}")
    for m in wrows:
        f.e(f"PREFETCHT0 {512 if bf16 else 1024}{m}")
    for r, m in enumerate(["(SI)", "(SI)(R8*1)", "(SI)(R8*2)", "(SI)(R9*1)"]):
        f.e(f"VMOVUPS {m}, Z{20 + r}")
    for r in range(4):
        for c in range(4):
            f.e(f"VFMADD231PS Z{16 + c}, Z{20 + r}, Z{4 * r + c}")
    f.e("ADDQ $64, SI", f"ADDQ ${32 if bf16 else 64}, BX", "DECQ CX", "JNZ loop")
    for z in range(16):
        hsum_zmm(f, z)
        f.e(f"VMOVSS X{z}, {4 * z}(DI)")
    f.e("VZEROUPPER", "RET")
    return f.text()


def gemv1x4_avx512(name, bf16):
    wtype = "*uint16" if bf16 else "*float32"
    doc = "out[c] = x · w row c, c < 4, over k16*16 columns (decoding one token).\n"
    if bf16:
        doc += ("The rows are read one after another, not interleaved: one sequential stream\n"
                "is what the hardware prefetcher follows at full memory bandwidth, while\n"
                "four short interleaved streams per call (rows of 896 are 28 cache lines)\n"
                "left it idle at every row start: decoding went from 21 to 32 tokens/s.")
    else:
        doc += "Rows are read one after another: see gemv1x4BF16AVX512."
    f = Func(name, f"out, x *float32, w {wtype}, ldw, k16 int", "0-40", doc)
    f.e("MOVQ out+0(FP), DI", "MOVQ w+16(FP), BX", "MOVQ ldw+24(FP), R10",
        f"SHLQ ${1 if bf16 else 2}, R10", "MOVQ $4, R9")
    f.label("row")
    f.e("MOVQ x+8(FP), SI", "MOVQ BX, DX", "MOVQ k16+32(FP), CX")
    for z in range(4):
        f.e(f"VPXORD Z{z}, Z{z}, Z{z}")
    f.e("CMPQ CX, $4", "JLT tail")
    f.label("loop4")
    for k in range(4):
        f.e(f"VPMOVZXWD {32 * k}(DX), Z{4 + k}" if bf16 else f"VMOVUPS {64 * k}(DX), Z{4 + k}")
    if bf16:
        for k in range(4):
            f.e(f"VPSLLD $16, Z{4 + k}, Z{4 + k}")
    for k in range(4):
        f.e(f"VFMADD231PS {64 * k}(SI), Z{4 + k}, Z{k}")
    f.e("ADDQ $256, SI", f"ADDQ ${128 if bf16 else 256}, DX", "SUBQ $4, CX", "CMPQ CX, $4", "JGE loop4")
    f.label("tail")
    f.e("TESTQ CX, CX", "JZ reduce")
    if bf16:
        f.e("VPMOVZXWD (DX), Z4", "VPSLLD $16, Z4, Z4")
    else:
        f.e("VMOVUPS (DX), Z4")
    f.e("VFMADD231PS (SI), Z4, Z0", "ADDQ $64, SI", f"ADDQ ${32 if bf16 else 64}, DX", "DECQ CX", "JMP tail")
    f.label("reduce")
    f.e("VADDPS Z1, Z0, Z0", "VADDPS Z3, Z2, Z2", "VADDPS Z2, Z0, Z0")
    hsum_zmm(f, 0)
    f.e("VMOVSS X0, 0(DI)", "ADDQ $4, DI", "ADDQ R10, BX", "DECQ R9", "JNZ row", "VZEROUPPER", "RET")
    return f.text()


def peak_loop(name, doc, chains, reg, zero, ins):
    """iters trips of `chains` independent multiply-adds on registers."""
    f = Func(name, "iters int", "0-8", doc)
    f.e("MOVQ iters+0(FP), CX")
    for z in range(chains + 2):
        f.e(f"{zero} {reg}{z}, {reg}{z}, {reg}{z}")
    f.label("peak")
    for z in range(chains):
        f.e(ins(z, chains))
    f.e("DECQ CX", "JNZ peak", "VZEROUPPER", "RET")
    return f.text()


def read_sum_avx512():
    f = Func("readSumAVX512", "p *float32, n64 int", "0-20",
             "Sums n64*64 floats with 4 streams of loads (read bandwidth).")
    f.e("MOVQ p+0(FP), SI", "MOVQ n64+8(FP), CX")
    for z in range(4):
        f.e(f"VPXORD Z{z}, Z{z}, Z{z}")
    f.label("rd")
    for z in range(4):
        f.e(f"VADDPS {64 * z}(SI), Z{z}, Z{z}")
    f.e("ADDQ $256, SI", "DECQ CX", "JNZ rd", "VADDPS Z1, Z0, Z0", "VADDPS Z3, Z2, Z2", "VADDPS Z2, Z0, Z0")
    hsum_zmm(f, 0)
    f.e("VMOVSS X0, ret+16(FP)", "VZEROUPPER", "RET")
    return f.text()


def cvt_bf16_avx512():
    f = Func("cvtBF16AVX512", "dst *uint16, src *float32, n32 int", "0-24",
             "dst[i] = bf16(src[i]) rounded to nearest even, for i < 32*n32.\n"
             "Like all AVX512_BF16 conversions it treats denormal inputs as zero.")
    f.e("MOVQ dst+0(FP), DI", "MOVQ src+8(FP), SI", "MOVQ n32+16(FP), CX")
    f.label("cvt")
    f.e("VMOVUPS (SI), Z0", "VMOVUPS 64(SI), Z2", vcvtneps2bf16(0, 1), vcvtneps2bf16(2, 3),
        "VMOVDQU Y1, (DI)", "VMOVDQU Y3, 32(DI)", "ADDQ $128, SI", "ADDQ $64, DI", "DECQ CX", "JNZ cvt",
        "VZEROUPPER", "RET")
    return f.text()


def pair_rows_avx512():
    f = Func("pairRows32AVX512", "dst *float32, src *uint16, rs, kc2 int", "0-32",
             "dst[q*32+j] = src[2q*rs+j] | src[(2q+1)*rs+j]<<16 for j < 32, q < kc2 (≥ 1):\n"
             "a B panel of bf16 pairs from two rows of a row-major bfloat16 B.")
    f.e("MOVQ dst+0(FP), DI", "MOVQ src+8(FP), SI", "MOVQ rs+16(FP), R8", "SHLQ $1, R8",
        "LEAQ (SI)(R8*1), DX", "SHLQ $1, R8", "MOVQ kc2+24(FP), CX")
    f.label("pr")
    for h in range(2):
        f.e(f"VMOVDQU {32 * h}(SI), Y0", f"VMOVDQU {32 * h}(DX), Y1", "VPUNPCKLWD Y1, Y0, Y2",
            "VPUNPCKHWD Y1, Y0, Y3", "VPERM2I128 $0x20, Y3, Y2, Y4", "VPERM2I128 $0x31, Y3, Y2, Y5",
            f"VMOVDQU Y4, {64 * h}(DI)", f"VMOVDQU Y5, {64 * h + 32}(DI)")
    f.e("ADDQ R8, SI", "ADDQ R8, DX", "ADDQ $128, DI", "DECQ CX", "JNZ pr", "VZEROUPPER", "RET")
    return f.text()


def avx512():
    out = [header("gen_gemm.py", "AVX-512 GEMM microkernels (12×32 tiles and 8-row edge tiles; float32,\n"
                  "prepacked bfloat16 and bf16-pair panels), GEMV kernels, bfloat16\n"
                  "conversion and the peak/bandwidth loops.")]
    for rows in (12, 8):
        out.append(tile_avx512(f"kern{rows}x32AVX512", rows, "f32"))
        out.append(tile_avx512(f"kern{rows}x32PBF16AVX512", rows, "pbf16"))
        out.append(tile_avx512(f"kern{rows}x32BF16AVX512", rows, "pairs"))
    out.append(gemv4x4_avx512("gemv4x4AVX512", False))
    out.append(gemv4x4_avx512("gemv4x4BF16AVX512", True))
    out.append(gemv1x4_avx512("gemv1x4AVX512", False))
    out.append(gemv1x4_avx512("gemv1x4BF16AVX512", True))
    out.append(cvt_bf16_avx512())
    out.append(pair_rows_avx512())
    out.append(pack_pairs_avx512())
    out.append(peak_loop("fmaLoopAVX512", "24 independent FMA chains on ZMM registers; no memory traffic.",
                         24, "Z", "VPXORD", lambda z, n: f"VFMADD231PS Z{n}, Z{n + 1}, Z{z}"))
    out.append(peak_loop("fmaLoopBF16AVX512",
                         "24 independent VDPBF16PS chains on ZMM registers (32 multiply-adds\n"
                         "each); no memory traffic.",
                         24, "Z", "VPXORD", lambda z, n: vdpbf16ps(n, n + 1, z)))
    out.append(read_sum_avx512())
    return "\n".join(out)


def tile_avx2(name, bf16):
    """c[6×16] (+)= a·b; a packed 6 per k, b packed 16 per k (float32, or
    bfloat16 widened in registers)."""
    btype = "*uint16" if bf16 else "*float32"
    doc = ("kern6x16AVX2 with b prepacked bfloat16, widened in registers." if bf16 else
           "c[6×16] (+)= a·b; a packed 6 per k, b packed 16 per k.")
    f = Func(name, f"kc int, a *float32, b {btype}, c *float32, ldc int, acc int", "0-48", doc)
    f.e("MOVQ kc+0(FP), CX", "MOVQ a+8(FP), AX", "MOVQ b+16(FP), BX", "MOVQ c+24(FP), DI",
        "MOVQ ldc+32(FP), DX", "SHLQ $2, DX")
    for y in range(12):
        f.e(f"VXORPS Y{y}, Y{y}, Y{y}")
    f.e("PCALIGN $64")
    f.label("loop")
    if bf16:
        f.e("VPMOVZXWD (BX), Y12", "VPMOVZXWD 16(BX), Y13", "VPSLLD $16, Y12, Y12", "VPSLLD $16, Y13, Y13")
    else:
        f.e("VMOVUPS (BX), Y12", "VMOVUPS 32(BX), Y13")
    for r in range(6):
        by = 14 + r % 2
        f.e(f"VBROADCASTSS {4 * r}(AX), Y{by}", f"VFMADD231PS Y12, Y{by}, Y{2 * r}",
            f"VFMADD231PS Y13, Y{by}, Y{2 * r + 1}")
    f.e("ADDQ $24, AX", f"ADDQ ${32 if bf16 else 64}, BX", "DECQ CX", "JNZ loop",
        "MOVQ acc+40(FP), SI", "TESTQ SI, SI", "JZ store")
    for r in range(6):
        f.e(f"VADDPS (DI), Y{2 * r}, Y{2 * r}", f"VADDPS 32(DI), Y{2 * r + 1}, Y{2 * r + 1}",
            f"VMOVUPS Y{2 * r}, (DI)", f"VMOVUPS Y{2 * r + 1}, 32(DI)")
        if r < 5:
            f.e("ADDQ DX, DI")
    f.e("VZEROUPPER", "RET")
    f.label("store")
    for r in range(6):
        f.e(f"VMOVUPS Y{2 * r}, (DI)", f"VMOVUPS Y{2 * r + 1}, 32(DI)")
        if r < 5:
            f.e("ADDQ DX, DI")
    f.e("VZEROUPPER", "RET")
    return f.text()


def transpose8_avx2(name, bf16):
    stype = "*uint16" if bf16 else "*float32"
    f = Func(name, f"dst *float32, ldd int, src {stype}, lds, nblk int", "0-40",
             "dst[p*ldd+r] = src[r*lds+p] for r < 8, p < 8*nblk (8×8 blocks)." +
             ("\nThe bfloat16 source is widened on load." if bf16 else ""))
    f.e("MOVQ dst+0(FP), DI", "MOVQ ldd+8(FP), R9", "SHLQ $2, R9", "LEAQ (R9)(R9*2), R12",
        "MOVQ src+16(FP), SI", "MOVQ lds+24(FP), R8", f"SHLQ ${1 if bf16 else 2}, R8",
        "LEAQ (R8)(R8*2), R10", "LEAQ (SI)(R8*4), R11", "MOVQ nblk+32(FP), CX",
        "// AX, BX: the next 8 rows, prefetched while these are transposed (their",
        "// streams are short, 1 KiB, so the hardware prefetcher starts too late).",
        "LEAQ (R11)(R8*4), AX", "LEAQ (AX)(R8*4), BX")
    f.label("tloop")
    for base in ("AX", "BX"):
        f.e(f"PREFETCHT0 ({base})", f"PREFETCHT0 ({base})(R8*1)", f"PREFETCHT0 ({base})(R8*2)",
            f"PREFETCHT0 ({base})(R10*1)")
    srcs = ["(SI)", "(SI)(R8*1)", "(SI)(R8*2)", "(SI)(R10*1)",
            "(R11)", "(R11)(R8*1)", "(R11)(R8*2)", "(R11)(R10*1)"]
    for y, m in enumerate(srcs):
        if bf16:
            f.e(f"VPMOVZXWD {m}, Y{y}", f"VPSLLD $16, Y{y}, Y{y}")
        else:
            f.e(f"VMOVUPS {m}, Y{y}")
    for i in range(4):
        f.e(f"VUNPCKLPS Y{2 * i + 1}, Y{2 * i}, Y{8 + 2 * i}", f"VUNPCKHPS Y{2 * i + 1}, Y{2 * i}, Y{9 + 2 * i}")
    for i, (a, b) in enumerate([(8, 10), (9, 11), (12, 14), (13, 15)]):
        f.e(f"VSHUFPS $0x44, Y{b}, Y{a}, Y{2 * i}", f"VSHUFPS $0xEE, Y{b}, Y{a}, Y{2 * i + 1}")
    for i in range(4):
        f.e(f"VPERM2F128 $0x20, Y{4 + i}, Y{i}, Y{8 + i}", f"VPERM2F128 $0x31, Y{4 + i}, Y{i}, Y{12 + i}")
    f.e("LEAQ (DI)(R9*4), R13")
    dsts = ["(DI)", "(DI)(R9*1)", "(DI)(R9*2)", "(DI)(R12*1)",
            "(R13)", "(R13)(R9*1)", "(R13)(R9*2)", "(R13)(R12*1)"]
    for i, m in enumerate(dsts):
        f.e(f"VMOVUPS Y{8 + i}, {m}")
    step = 16 if bf16 else 32
    f.e("LEAQ (R13)(R9*4), DI", f"ADDQ ${step}, AX", f"ADDQ ${step}, BX", f"ADDQ ${step}, SI",
        f"ADDQ ${step}, R11", "DECQ CX", "JNZ tloop", "VZEROUPPER", "RET")
    return f.text()


def gemv2x4_avx2(name, bf16):
    wtype = "*uint16" if bf16 else "*float32"
    f = Func(name, f"out, x *float32, ldx int, w {wtype}, ldw, k16 int", "0-48",
             "out[r*4+c] = x row r · w row c, r < 2, c < 4, over k16*16 columns.")
    f.e("MOVQ out+0(FP), DI", "MOVQ x+8(FP), SI", "MOVQ ldx+16(FP), R8", "SHLQ $2, R8",
        "MOVQ w+24(FP), BX", "MOVQ ldw+32(FP), R10", f"SHLQ ${1 if bf16 else 2}, R10",
        "LEAQ (R10)(R10*2), R11", "MOVQ k16+40(FP), CX")
    for y in range(8):
        f.e(f"VXORPS Y{y}, Y{y}, Y{y}")
    f.label("loop")
    for half in range(2):
        wo, xo = (16 if bf16 else 32) * half, 32 * half
        for c, m in enumerate(["(BX)", "(BX)(R10*1)", "(BX)(R10*2)", "(BX)(R11*1)"]):
            if bf16:
                f.e(f"VPMOVZXWD {wo}{m}, Y{8 + c}", f"VPSLLD $16, Y{8 + c}, Y{8 + c}")
            else:
                f.e(f"VMOVUPS {wo}{m}, Y{8 + c}")
        f.e(f"VMOVUPS {xo}(SI), Y12", f"VMOVUPS {xo}(SI)(R8*1), Y13")
        for r in range(2):
            for c in range(4):
                f.e(f"VFMADD231PS Y{8 + c}, Y{12 + r}, Y{4 * r + c}")
    f.e("ADDQ $64, SI", f"ADDQ ${32 if bf16 else 64}, BX", "DECQ CX", "JNZ loop")
    for y in range(8):
        f.e(f"VEXTRACTF128 $1, Y{y}, X14", f"VADDPS X14, X{y}, X{y}", f"VHADDPS X{y}, X{y}, X{y}",
            f"VHADDPS X{y}, X{y}, X{y}", f"VMOVSS X{y}, {4 * y}(DI)")
    f.e("VZEROUPPER", "RET")
    return f.text()


def widen_bf16_avx2():
    f = Func("widenBF16AVX2", "dst *float32, ldd int, src *uint16, lds, rows, n8 int", "0-48",
             "dst[r*ldd+j] = float32(src[r*lds+j]) for r < rows, j < 8*n8 (rows, n8 ≥ 1).")
    f.e("MOVQ dst+0(FP), DI", "MOVQ ldd+8(FP), R9", "SHLQ $2, R9", "MOVQ src+16(FP), SI",
        "MOVQ lds+24(FP), R8", "SHLQ $1, R8", "MOVQ rows+32(FP), DX", "MOVQ n8+40(FP), R10")
    f.label("wrow")
    f.e("MOVQ R10, CX", "XORQ AX, AX", "XORQ BX, BX")
    f.label("wcol")
    f.e("VPMOVZXWD (SI)(AX*1), Y0", "VPSLLD $16, Y0, Y0", "VMOVUPS Y0, (DI)(BX*1)", "ADDQ $16, AX",
        "ADDQ $32, BX", "DECQ CX", "JNZ wcol", "ADDQ R8, SI", "ADDQ R9, DI", "DECQ DX", "JNZ wrow",
        "VZEROUPPER", "RET")
    return f.text()


def avx2():
    out = [header("gen_gemm.py", "AVX2+FMA GEMM microkernels (6×16 tiles, float32 and prepacked bfloat16\n"
                  "panels), 8×8 transposing packs, GEMV kernels, bfloat16 widening and the\n"
                  "peak loop.")]
    out.append(tile_avx2("kern6x16AVX2", False))
    out.append(tile_avx2("kern6x16PBF16AVX2", True))
    out.append(transpose8_avx2("transpose8AVX2", False))
    out.append(transpose8_avx2("transpose8BF16AVX2", True))
    out.append(gemv2x4_avx2("gemv2x4AVX2", False))
    out.append(gemv2x4_avx2("gemv2x4BF16AVX2", True))
    out.append(peak_loop("fmaLoopAVX2", "12 independent FMA chains on YMM registers; no memory traffic.",
                         12, "Y", "VXORPS", lambda z, n: f"VFMADD231PS Y{n}, Y{n + 1}, Y{z}"))
    out.append(widen_bf16_avx2())
    return "\n".join(out)
