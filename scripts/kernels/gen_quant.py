"""Generates kernels/quant_avx512_amd64.s and kernels/quant_avx2_amd64.s:
the kernels of the quantized weights (quant.go), AVX-512F and AVX2+FMA.
Each has a pure-Go twin in quant.go; quant_test.go compares them. Blocks
are whole: the Go callers do the short last block of a row."""

from asm import Func, header
from gen_gemm import evex, vcvtneps2bf16

# The NF4 codebook (float32 bits of quant.go's nf4Table).
NF4 = [0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0, 0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
       0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a, 0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000]


def vdpbf16(w, base, disp, acc, l512=True):
    """Z<acc> += dot of the bf16 pairs of Z<w> and the 64 bytes at disp(base)
    (Y and 32 bytes when not l512); base a register number."""
    r = "Z" if l512 else "Y"
    return evex(0x52, acc, w, None, l512, mem=(base, disp)) + f" // VDPBF16PS {disp}(R{base}), {r}{w}, {r}{acc}"


def vcvtne2ps2bf16(hi, lo, dst):
    """Y: words 0-15 bf16(Z<lo>), 16-31 bf16(Z<hi>)."""
    return evex(0x72, dst, hi, lo, pp=0b11) + f" // VCVTNE2PS2BF16 Z{lo}, Z{hi}, Z{dst}"


def dot_nf4_rows_bf16():
    name = "dotNF4RowsBF16AVX512"
    f = Func(name, "xh *uint16, q *byte, s *float32, nblk int, y *float32, rows, qstride, sstride int", "0-64",
             "y[r] = Σ_b Σ_{j<64} bf16(x)·bf16(nf4[code j]·s[b]) for row r (q + r·qstride\n"
             "bytes, s + r·sstride scales), x rounded to bfloat16 and permuted by\n"
             "permuteNF4BF16, for rows ≥ 1 rows, nblk ≥ 1: ComputeBF16's decoding, on the\n"
             "weights the bf16 GEMM's dequantized panels hold. VPERMW looks up 32 bfloat16\n"
             "values by bits 4:0 of each word, so the 4 nibbles of the 32 words of a pair of\n"
             "blocks' 64 bytes are 4 lookups (after 3 shifts, and masks that put the block in\n"
             "bit 4) in a table of both blocks' scaled codebooks, and 4 VDPBF16PS: 21\n"
             "instructions where the float32 kernel has 27 (8 VPERMPS, 8 FMAs). Lanes 0-7 are\n"
             "block 2i, 8-15 block 2i+1. An odd last block goes by 256-bit halves (VPERMW on\n"
             "16 words indexes by bits 3:0). Needs AVX512_BF16.")
    rows_prologue(f, "xh")
    f.e("VMOVUPS nf4tab<>(SB), Z31", "VMOVDQU32 nf4wmask<>(SB), Z30", "VMOVDQU32 nf4wblk<>(SB), Z29")
    f.label("dn4b_row")
    f.e("MOVQ DI, R9", "MOVQ SI, R13", "MOVQ DX, R14", "MOVQ R12, CX", "SHRQ $1, CX")
    for z in (0, 9, 10, 11):  # an accumulator per nibble: VDPBF16PS's latency
        f.e(f"VPXORD Z{z}, Z{z}, Z{z}")
    f.e("JZ dn4b_odd")
    f.label("dn4b_pair")
    f.e("VMOVDQU32 (R13), Z1")
    for i in range(1, 4):
        f.e(f"VPSRLW ${4 * i}, Z1, Z{1 + i}")
    for i in range(4):
        f.e(f"VPTERNLOGD $0xea, Z29, Z30, Z{1 + i}")  # (word & 15) | block bit
    f.e("VBROADCASTSS (R14), Z5", "VBROADCASTSS 4(R14), Z6", "VMULPS Z31, Z5, Z5", "VMULPS Z31, Z6, Z6",
        vcvtne2ps2bf16(6, 5, 7))
    for i in range(4):
        f.e(f"VPERMW Z7, Z{1 + i}, Z{1 + i}")
    for i in range(4):
        f.e(vdpbf16(1 + i, 9, 64 * i, (0, 9, 10, 11)[i]))
    f.e("ADDQ $64, R13", "ADDQ $256, R9", "ADDQ $8, R14", "DECQ CX", "JNZ dn4b_pair")
    f.label("dn4b_odd")
    f.e("TESTQ $1, R12", "JZ dn4b_sum", "VMOVDQU (R13), Y1")
    for i in range(1, 4):
        f.e(f"VPSRLW ${4 * i}, Y1, Y{1 + i}")
    f.e("VPXORD Z5, Z5, Z5", "VBROADCASTSS (R14), Z12", "VMULPS Z31, Z12, Z12", vcvtneps2bf16(12, 7))
    for i in range(4):
        f.e(f"VPERMW Y7, Y{1 + i}, Y{1 + i}")
    for i in range(4):
        f.e(vdpbf16(1 + i, 9, 32 * i, 5, False))
    f.e("VADDPS Z5, Z0, Z0")
    f.label("dn4b_sum")
    f.e("VADDPS Z9, Z0, Z0", "VADDPS Z11, Z10, Z10", "VADDPS Z10, Z0, Z0")
    rows_epilogue(f, 16, "dn4b_row")
    return f.text()


def table(name, vals, hexa=True):
    out = [f"DATA {name}<>+{4 * i}(SB)/4, ${v:#010x}" if hexa else f"DATA {name}<>+{4 * i}(SB)/4, ${v}"
           for i, v in enumerate(vals)]
    out.append(f"GLOBL {name}<>(SB), RODATA|NOPTR, ${4 * len(vals)}")
    return "\n".join(out) + "\n"


def hsum(f, w):
    """Sum of the lanes of Z0 (w = 16) or Y0 (w = 8) into X0, stored as ret."""
    if w == 16:
        f.e("VEXTRACTF64X4 $1, Z0, Y1", "VADDPS Y1, Y0, Y0")
    f.e("VEXTRACTF128 $1, Y0, X1", "VADDPS X1, X0, X0", "VHADDPS X0, X0, X0", "VHADDPS X0, X0, X0",
        "VMOVSS X0, ret+32(FP)", "VZEROUPPER", "RET")


def rows_prologue(f, x):
    """Loads the arguments of a rows kernel (x or xp, q, s, nblk, y, rows,
    qstride, sstride) into DI, SI, DX, R12, R8, BX, R10 and R11 (bytes)."""
    f.e(f"MOVQ {x}+0(FP), DI", "MOVQ q+8(FP), SI", "MOVQ s+16(FP), DX", "MOVQ nblk+24(FP), R12",
        "MOVQ y+32(FP), R8", "MOVQ rows+40(FP), BX", "MOVQ qstride+48(FP), R10", "MOVQ sstride+56(FP), R11",
        "SHLQ $2, R11")


def rows_epilogue(f, w, row):
    """Stores the lane sum of Z0 (w = 16) or Y0 (w = 8) at (R8), steps to
    the next row and loops to label row, else returns."""
    if w == 16:
        f.e("VEXTRACTF64X4 $1, Z0, Y1", "VADDPS Y1, Y0, Y0")
    f.e("VEXTRACTF128 $1, Y0, X1", "VADDPS X1, X0, X0", "VHADDPS X0, X0, X0", "VHADDPS X0, X0, X0",
        "VMOVSS X0, (R8)", "ADDQ $4, R8", "ADDQ R10, SI", "ADDQ R11, DX", "DECQ BX", f"JNZ {row}",
        "VZEROUPPER", "RET")


def avx512():
    out = [header("gen_quant.py", __doc__.split("\n\n")[0].replace(
        "Generates kernels/quant_avx512_amd64.s and kernels/quant_avx2_amd64.s:\nt", "T") + "\nThis file: AVX-512F."),
        "// The NF4 codebook, and VPERMT2PS indices that interleave 16 low-nibble\n"
        "// values (even columns) with 16 high-nibble values (odd columns).\n",
        table("nf4tab", NF4), table("nf4ilo", [v for i in range(8) for v in (i, 16 + i)], False),
        table("nf4ihi", [v for i in range(8, 16) for v in (i, 16 + i)], False),
        "// dotNF4RowsBF16AVX512's index masks: the low nibble of each word, and\n"
        "// bit 4 in the words of a pair's second block (words 16-31).\n",
        table("nf4wmask", [0x000f000f] * 16), table("nf4wblk", [0] * 8 + [0x00100010] * 8),
        ""]

    def nf4_decode(f, src, lo, hi, t):
        """Z<lo>, Z<hi>: the 32 values of 16 bytes at src, in column order
        (Z<t>, Z<t+1> scratch)."""
        f.e(f"VPMOVZXBD {src}, Z{lo}", f"VPSRLD $4, Z{lo}, Z{t}", f"VPERMPS Z31, Z{lo}, Z{lo}",
            f"VPERMPS Z31, Z{t}, Z{t}", f"VMOVAPS Z{lo}, Z{hi}", f"VPERMT2PS Z{t}, Z30, Z{hi}",
            f"VPERMT2PS Z{t}, Z29, Z{lo}")

    f = Func("dotNF4AVX512", "x *float32, q *byte, s *float32, nblk int", "0-36",
             "Σ_b s[b] · Σ_{j<64} x[64b+j]·nf4[code j], two codes per byte of q (low\n"
             "nibble first), nblk ≥ 1.")
    f.e("MOVQ x+0(FP), DI", "MOVQ q+8(FP), SI", "MOVQ s+16(FP), DX", "MOVQ nblk+24(FP), CX",
        "VMOVUPS nf4tab<>(SB), Z31", "VMOVUPS nf4ilo<>(SB), Z30", "VMOVUPS nf4ihi<>(SB), Z29",
        "VXORPS Z0, Z0, Z0")
    f.label("dn4_loop")
    # Columns 0-15 in Z5, 16-31 in Z1, 32-47 in Z6, 48-63 in Z2: the two
    # halves' decodes interleaved (independent chains).
    f.e("VPMOVZXBD (SI), Z1", "VPMOVZXBD 16(SI), Z2", "VPSRLD $4, Z1, Z3", "VPSRLD $4, Z2, Z4")
    for r in (1, 3, 2, 4):
        f.e(f"VPERMPS Z31, Z{r}, Z{r}")
    for lo, hi, t in ((1, 5, 3), (2, 6, 4)):
        f.e(f"VMOVAPS Z{lo}, Z{hi}", f"VPERMT2PS Z{t}, Z30, Z{hi}", f"VPERMT2PS Z{t}, Z29, Z{lo}")
    f.e("VMULPS (DI), Z5, Z7", "VFMADD231PS 64(DI), Z1, Z7", "VFMADD231PS 128(DI), Z6, Z7",
        "VFMADD231PS 192(DI), Z2, Z7", "VBROADCASTSS (DX), Z8", "VFMADD231PS Z8, Z7, Z0",
        "ADDQ $32, SI", "ADDQ $256, DI", "ADDQ $4, DX", "DECQ CX", "JNZ dn4_loop")
    hsum(f, 16)
    out.append(f.text())

    f = Func("dotNF4RowsAVX512", "xp *float32, q *byte, s *float32, nblk int, y *float32, rows, qstride, sstride int",
             "0-64",
             "y[r] = dotNF4AVX512 of row r (q + r·qstride bytes, s + r·sstride scales) with x\n"
             "permuted by permuteNF4, for rows ≥ 1 rows, nblk ≥ 1: one call for a run of rows\n"
             "(a Go call per row cost 1/5 of the dot). Pairs of blocks are decoded from\n"
             "one 64-byte load: VPERMPS indexes by bits 3:0 of each dword, so the 8\n"
             "nibbles of the 16 dwords are 8 lookups after 7 shifts, where per block\n"
             "VPMOVZXBD (2 a block, the bottleneck: the kernel ran at the same speed\n"
             "without its lookups) and shifts widened the bytes first. A pair's lanes\n"
             "0-7 are block 2i, lanes 8-15 block 2i+1 (scales merged under K1); an odd\n"
             "last block is decoded per byte as before.")
    rows_prologue(f, "xp")
    f.e("VMOVUPS nf4tab<>(SB), Z31", "MOVL $0xff00, AX", "KMOVW AX, K1")
    f.label("dn4r_row")
    f.e("MOVQ DI, R9", "MOVQ SI, R13", "MOVQ DX, R14", "MOVQ R12, CX", "SHRQ $1, CX",
        "VXORPS Z0, Z0, Z0", "VXORPS Z9, Z9, Z9", "JZ dn4r_odd")
    f.label("dn4r_pair")
    f.e("VMOVDQU32 (R13), Z1")
    for i in range(1, 8):
        f.e(f"VPSRLD ${4 * i}, Z1, Z{1 + i}")
    for i in range(8):
        f.e(f"VPERMPS Z31, Z{1 + i}, Z{1 + i}")
    f.e("VMULPS (R9), Z1, Z10", "VMULPS 64(R9), Z2, Z11")
    for i in range(2, 8):
        f.e(f"VFMADD231PS {64 * i}(R9), Z{1 + i}, Z{10 + i % 2}")
    f.e("VADDPS Z11, Z10, Z10", "VBROADCASTSS (R14), Z12", "VBROADCASTSS 4(R14), K1, Z12",
        "VFMADD231PS Z12, Z10, Z0", "ADDQ $64, R13", "ADDQ $512, R9", "ADDQ $8, R14", "DECQ CX",
        "JNZ dn4r_pair")
    f.label("dn4r_odd")
    f.e("TESTQ $1, R12", "JZ dn4r_sum", "VPMOVZXBD (R13), Z1", "VPMOVZXBD 16(R13), Z2", "VPSRLD $4, Z1, Z3",
        "VPSRLD $4, Z2, Z4")
    for r in (1, 3, 2, 4):
        f.e(f"VPERMPS Z31, Z{r}, Z{r}")
    f.e("VMULPS (R9), Z1, Z7", "VMULPS 64(R9), Z3, Z5", "VFMADD231PS 128(R9), Z2, Z7",
        "VFMADD231PS 192(R9), Z4, Z5", "VADDPS Z5, Z7, Z7", "VBROADCASTSS (R14), Z8",
        "VFMADD231PS Z8, Z7, Z9")
    f.label("dn4r_sum")
    f.e("VADDPS Z9, Z0, Z0")
    rows_epilogue(f, 16, "dn4r_row")
    out.append(f.text())

    out.append(dot_nf4_rows_bf16())

    f = Func("dotQ8RowsAVX512", "x *float32, q *byte, s *float32, nblk int, y *float32, rows, qstride, sstride int",
             "0-64",
             "y[r] = Σ_b s[b] · Σ_{j<32} x[32b+j]·int8(q[32b+j]) for row r (q + r·qstride bytes,\n"
             "s + r·sstride scales), for rows ≥ 1 rows, nblk ≥ 1: one call for a run of rows, as\n"
             "dotNF4RowsAVX512 (a Go call per row of a Q8 LM head cost what its halved bytes\n"
             "saved). Blocks alternate between two accumulators.")
    rows_prologue(f, "x")
    f.label("dq8r_row")
    f.e("MOVQ DI, R9", "MOVQ SI, R13", "MOVQ DX, R14", "MOVQ R12, CX", "VXORPS Z0, Z0, Z0", "VXORPS Z9, Z9, Z9")
    f.label("dq8r_loop")
    for r, acc, last in [(1, 0, "JZ dq8r_sum"), (5, 9, "JNZ dq8r_loop")]:
        f.e(f"VPMOVSXBD (R13), Z{r}", f"VPMOVSXBD 16(R13), Z{r + 1}", f"VCVTDQ2PS Z{r}, Z{r}",
            f"VCVTDQ2PS Z{r + 1}, Z{r + 1}", f"VMULPS (R9), Z{r}, Z{r + 2}",
            f"VFMADD231PS 64(R9), Z{r + 1}, Z{r + 2}", f"VBROADCASTSS (R14), Z{r + 3}",
            f"VFMADD231PS Z{r + 3}, Z{r + 2}, Z{acc}", "ADDQ $32, R13", "ADDQ $128, R9", "ADDQ $4, R14",
            "DECQ CX", last)
    f.label("dq8r_sum")
    f.e("VADDPS Z9, Z0, Z0")
    rows_epilogue(f, 16, "dq8r_row")
    out.append(f.text())

    f = Func("dequantQ8AVX512", "dst *float32, q *byte, s float32, n16 int", "0-32",
             "dst[j] = int8(q[j])·s for j < 16·n16, n16 ≥ 1.")
    f.e("MOVQ dst+0(FP), DI", "MOVQ q+8(FP), SI", "VBROADCASTSS s+16(FP), Z4", "MOVQ n16+24(FP), CX")
    f.label("deq8_loop")
    f.e("VPMOVSXBD (SI), Z1", "VCVTDQ2PS Z1, Z1", "VMULPS Z4, Z1, Z1", "VMOVUPS Z1, (DI)", "ADDQ $16, SI",
        "ADDQ $64, DI", "DECQ CX", "JNZ deq8_loop", "VZEROUPPER", "RET")
    out.append(f.text())

    f = Func("dequantNF4AVX512", "dst *float32, q *byte, s float32, n32 int", "0-32",
             "dst[j] = nf4[code j]·s for j < 32·n32 (16 bytes of q each), n32 ≥ 1.")
    f.e("MOVQ dst+0(FP), DI", "MOVQ q+8(FP), SI", "VBROADCASTSS s+16(FP), Z4", "MOVQ n32+24(FP), CX",
        "VMOVUPS nf4tab<>(SB), Z31", "VMULPS Z4, Z31, Z31", "VMOVUPS nf4ilo<>(SB), Z30",
        "VMOVUPS nf4ihi<>(SB), Z29")
    f.label("deqn4_loop")
    nf4_decode(f, "(SI)", 1, 5, 3)
    f.e("VMOVUPS Z5, (DI)", "VMOVUPS Z1, 64(DI)", "ADDQ $16, SI", "ADDQ $128, DI", "DECQ CX",
        "JNZ deqn4_loop", "VZEROUPPER", "RET")
    out.append(f.text())

    f = Func("dequantNF4BF16AVX512", "dst *uint16, q *byte, s *float32, nblk int", "0-32",
             "dst[j] = bf16(nf4[code j]·s[j/64]) for j < 64·nblk (32 bytes of q and one\n"
             "scale a block), nblk ≥ 1: whole rows of blocks into bfloat16 panels in one\n"
             "call (per-block calls through dequantNF4 cost more than the decode) and\n"
             "no float32 row in between. Needs AVX512_BF16.")
    f.e("MOVQ dst+0(FP), DI", "MOVQ q+8(FP), SI", "MOVQ s+16(FP), DX", "MOVQ nblk+24(FP), CX",
        "VMOVUPS nf4tab<>(SB), Z28", "VMOVUPS nf4ilo<>(SB), Z30", "VMOVUPS nf4ihi<>(SB), Z29")
    f.label("deqb_loop")
    f.e("VBROADCASTSS (DX), Z4", "VMULPS Z4, Z28, Z31")
    nf4_decode(f, "(SI)", 1, 5, 3)
    nf4_decode(f, "16(SI)", 2, 6, 7)
    for i, z in enumerate((5, 1, 6, 2)):
        f.e(vcvtneps2bf16(z, 8 + i))
    for i in range(4):
        f.e(f"VMOVDQU Y{8 + i}, {32 * i}(DI)")
    f.e("ADDQ $32, SI", "ADDQ $128, DI", "ADDQ $4, DX", "DECQ CX", "JNZ deqb_loop", "VZEROUPPER", "RET")
    out.append(f.text())
    return "\n".join(out)


def nf4dec8(f):
    """Decodes the 8 bytes at (SI) into 16 values, in column order, in Y1
    (columns 0-7) and Y2 (columns 8-15), using tables Y14 (codes 0-7) and
    Y15 (codes 8-15) and the nibble mask Y13. VPERMPS on YMM indexes 8
    entries, so a lookup is two VPERMPS blended on bit 3. Clobbers Y3-Y8."""
    f.e("VPMOVZXBD (SI), Y1", "VPSRLD $4, Y1, Y3", "VPAND Y13, Y1, Y1",
        "VPERMPS Y14, Y1, Y4", "VPERMPS Y15, Y1, Y5", "VPSLLD $28, Y1, Y6", "VBLENDVPS Y6, Y5, Y4, Y4",
        "VPERMPS Y14, Y3, Y5", "VPERMPS Y15, Y3, Y7", "VPSLLD $28, Y3, Y6", "VBLENDVPS Y6, Y7, Y5, Y5",
        "VUNPCKLPS Y5, Y4, Y7", "VUNPCKHPS Y5, Y4, Y8", "VPERM2F128 $0x20, Y8, Y7, Y1",
        "VPERM2F128 $0x31, Y8, Y7, Y2")


def avx2():
    out = [header("gen_quant.py", __doc__.split("\n\n")[0].replace(
        "Generates kernels/quant_avx512_amd64.s and kernels/quant_avx2_amd64.s:\nt", "T") +
        "\nThis file: AVX2+FMA, twins of the AVX-512 ones."),
        "// The NF4 codebook (codes 0-7 at +0, 8-15 at +32) and a nibble mask.\n",
        table("nf4tab2", NF4), table("nf4mask2", [15] * 8, False), ""]

    f = Func("dotQ8RowsAVX2", "x *float32, q *byte, s *float32, nblk int, y *float32, rows, qstride, sstride int",
             "0-64",
             "y[r] = Σ_b s[b] · Σ_{j<32} x[32b+j]·int8(q[32b+j]) for row r (q + r·qstride bytes,\n"
             "s + r·sstride scales), for rows ≥ 1 rows, nblk ≥ 1: one call for a run of rows.")
    rows_prologue(f, "x")
    f.label("dq8ar_row")
    f.e("MOVQ DI, R9", "MOVQ SI, R13", "MOVQ DX, R14", "MOVQ R12, CX", "VXORPS Y0, Y0, Y0")
    f.label("dq8ar_loop")
    for i in range(4):
        f.e(f"VPMOVSXBD {8 * i or ''}(R13), Y{i + 1}")
    for i in range(4):
        f.e(f"VCVTDQ2PS Y{i + 1}, Y{i + 1}")
    f.e("VMULPS (R9), Y1, Y5", "VMULPS 32(R9), Y2, Y6", "VFMADD231PS 64(R9), Y3, Y5",
        "VFMADD231PS 96(R9), Y4, Y6", "VADDPS Y6, Y5, Y5", "VBROADCASTSS (R14), Y7", "VFMADD231PS Y7, Y5, Y0",
        "ADDQ $32, R13", "ADDQ $128, R9", "ADDQ $4, R14", "DECQ CX", "JNZ dq8ar_loop")
    rows_epilogue(f, 8, "dq8ar_row")
    out.append(f.text())

    f = Func("dotNF4AVX2", "x *float32, q *byte, s *float32, nblk int", "0-36",
             "Σ_b s[b] · Σ_{j<64} x[64b+j]·nf4[code j], nblk ≥ 1.")
    f.e("MOVQ x+0(FP), DI", "MOVQ q+8(FP), SI", "MOVQ s+16(FP), DX", "MOVQ nblk+24(FP), CX",
        "VMOVUPS nf4tab2<>(SB), Y14", "VMOVUPS nf4tab2<>+32(SB), Y15", "VMOVUPS nf4mask2<>(SB), Y13",
        "VXORPS Y0, Y0, Y0")
    f.label("dn4a_block")
    f.e("VXORPS Y9, Y9, Y9", "MOVQ $4, BX")
    f.label("dn4a_loop")
    nf4dec8(f)
    f.e("VFMADD231PS (DI), Y1, Y9", "VFMADD231PS 32(DI), Y2, Y9", "ADDQ $8, SI", "ADDQ $64, DI", "DECQ BX",
        "JNZ dn4a_loop", "VBROADCASTSS (DX), Y10", "VFMADD231PS Y10, Y9, Y0", "ADDQ $4, DX", "DECQ CX",
        "JNZ dn4a_block")
    hsum(f, 8)
    out.append(f.text())

    f = Func("dequantQ8AVX2", "dst *float32, q *byte, s float32, n8 int", "0-32",
             "dst[j] = int8(q[j])·s for j < 8·n8, n8 ≥ 1.")
    f.e("MOVQ dst+0(FP), DI", "MOVQ q+8(FP), SI", "VBROADCASTSS s+16(FP), Y4", "MOVQ n8+24(FP), CX")
    f.label("deq8a_loop")
    f.e("VPMOVSXBD (SI), Y1", "VCVTDQ2PS Y1, Y1", "VMULPS Y4, Y1, Y1", "VMOVUPS Y1, (DI)", "ADDQ $8, SI",
        "ADDQ $32, DI", "DECQ CX", "JNZ deq8a_loop", "VZEROUPPER", "RET")
    out.append(f.text())

    f = Func("dequantNF4AVX2", "dst *float32, q *byte, s float32, n16 int", "0-32",
             "dst[j] = nf4[code j]·s for j < 16·n16 (8 bytes of q each), n16 ≥ 1.")
    f.e("MOVQ dst+0(FP), DI", "MOVQ q+8(FP), SI", "VBROADCASTSS s+16(FP), Y12", "MOVQ n16+24(FP), CX",
        "VMOVUPS nf4tab2<>(SB), Y14", "VMOVUPS nf4tab2<>+32(SB), Y15", "VMULPS Y12, Y14, Y14",
        "VMULPS Y12, Y15, Y15", "VMOVUPS nf4mask2<>(SB), Y13")
    f.label("deqn4a_loop")
    nf4dec8(f)
    f.e("VMOVUPS Y1, (DI)", "VMOVUPS Y2, 32(DI)", "ADDQ $8, SI", "ADDQ $64, DI", "DECQ CX", "JNZ deqn4a_loop",
        "VZEROUPPER", "RET")
    out.append(f.text())
    return "\n".join(out)
