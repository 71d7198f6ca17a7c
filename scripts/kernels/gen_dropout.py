"""Generates kernels/dropout_avx512_amd64.s and kernels/dropout_avx2_amd64.s:
LoRA dropout's masking pass, 16 (AVX-512) or 8 (AVX2) lanes at a time. The
mask is a counter-based hash of each element's index (ops_dropout.go has the
pure-Go twin, dropoutGo, and the definition): x = idx ^ k1, lowbias32, x ^=
k2, lowbias32; the element is kept when x>>8 ≥ thr. The assembly handles
whole blocks; the Go wrappers finish the tail with the twin."""

from asm import Func, header

# lowbias32 (C. Wellons' hash-prospector): x ^= x>>16; x *= C1; x ^= x>>15; x *= C2; x ^= x>>15
C1, C2 = 0x21f0aaad, 0x735a2d97

FILEDOC = """LoRA dropout's masking pass; dropoutGo in ops_dropout.go is the twin and
defines the mask."""
ARGS = "dst, src *float32, n int, idx0, k1, k2, thr uint32, scale float32, acc bool"
FRAME = "0-45"
DOC = ("dst[i] (+)= src[i]·scale where element idx0+i is kept, else dst[i] (+)= 0,\n"
       "over the whole blocks of n (n ≥ 0).")


def lowbias(f, x, t, c1, c2, xor):
    for sh, c in ((16, c1), (15, c2), (15, None)):
        f.e(f"VPSRLD ${sh}, {x}, {t}", f"{xor} {t}, {x}, {x}")
        if c:
            f.e(f"VPMULLD {c}, {x}, {x}")


def iota(name, lanes):
    out = [f"DATA {name}<>+{4 * i}(SB)/4, ${i}" for i in range(lanes)]
    out.append(f"GLOBL {name}<>(SB), RODATA|NOPTR, ${4 * lanes}")
    return "\n".join(out) + "\n"


def bcast(f, v, reg, src):
    """Broadcasts a 32-bit general register (or immediate via AX) to v+reg."""
    if src.startswith("$"):
        f.e(f"MOVL {src}, AX")
    if v == "Z":
        f.e(f"VPBROADCASTD AX, Z{reg}")
    else:
        f.e(f"MOVQ AX, X{reg}", f"VPBROADCASTD X{reg}, Y{reg}")


def dropout(name, v, lanes, r, xor, doc, mask):
    """The kernel for vector registers v (Z or Y) of lanes lanes; r names
    the constant registers: idx, lanes, k1, k2, c1, c2, thr−1, scale."""
    idx, step, k1, k2, c1, c2, thr, scale = (f"{v}{i}" for i in r)
    f = Func(name, ARGS, FRAME, DOC + "\n" + doc)
    f.e("MOVQ dst+0(FP), DI", "MOVQ src+8(FP), SI", "MOVQ n+16(FP), CX", f"SHRQ ${lanes.bit_length() - 1}, CX",
        f"VBROADCASTSS idx0+24(FP), {idx}", f"VPADDD dropIota{lanes}<>(SB), {idx}, {idx}")
    bcast(f, v, r[1], f"${lanes}")
    f.e(f"VBROADCASTSS k1+28(FP), {k1}", f"VBROADCASTSS k2+32(FP), {k2}")
    bcast(f, v, r[4], f"${C1:#x}")
    bcast(f, v, r[5], f"${C2:#x}")
    # kept when x>>8 > thr−1 (signed: x>>8 < 2²⁴)
    f.e("MOVL thr+36(FP), AX", "DECL AX")
    bcast(f, v, r[6], "AX")
    f.e(f"VBROADCASTSS scale+40(FP), {scale}", "MOVBLZX acc+44(FP), R9",
        "TESTQ CX, CX", "JZ dr_done", "TESTQ R9, R9", "JNZ dr_acc")
    for lab, acc in (("dr_set", False), ("dr_acc", True)):
        f.label(lab)
        f.e(f"{xor} {idx}, {k1}, {v}0")
        lowbias(f, f"{v}0", f"{v}1", c1, c2, xor)
        f.e(f"{xor} {k2}, {v}0, {v}0")
        lowbias(f, f"{v}0", f"{v}1", c1, c2, xor)
        f.e(f"VPSRLD $8, {v}0, {v}0", *mask(thr, scale))
        if acc:
            f.e(f"VADDPS (DI), {v}2, {v}2")
        f.e(f"VMOVUPS {v}2, (DI)", f"VPADDD {step}, {idx}, {idx}", f"ADDQ ${4 * lanes}, SI",
            f"ADDQ ${4 * lanes}, DI", "DECQ CX", f"JNZ {lab}")
        if not acc:
            f.e("JMP dr_done")
    f.label("dr_done")
    f.e("VZEROUPPER", "RET")
    return header("gen_dropout.py", FILEDOC) + iota(f"dropIota{lanes}", lanes) + "\n" + f.text()


def avx512():
    return dropout("dropoutAVX512", "Z", 16, range(16, 24), "VPXORD",
                   "AVX-512F; VPCMPGTD into K1 and a zeroing multiply apply the mask.",
                   lambda thr, scale: [f"VPCMPGTD {thr}, Z0, K1", f"VMULPS.Z (SI), {scale}, K1, Z2"])


def avx2():
    return dropout("dropoutAVX2", "Y", 8, range(15, 7, -1), "VPXOR",
                   "AVX2; VPCMPGTD makes the mask, VANDPS applies it.",
                   lambda thr, scale: [f"VPCMPGTD {thr}, Y0, Y0", f"VMULPS (SI), {scale}, Y2", "VANDPS Y0, Y2, Y2"])
