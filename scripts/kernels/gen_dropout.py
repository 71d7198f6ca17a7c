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


def avx512():
    f = Func("dropoutAVX512", ARGS, FRAME, DOC + "\nAVX-512F; VPCMPGTD into K1 and a zeroing multiply apply the mask.")
    f.e("MOVQ dst+0(FP), DI", "MOVQ src+8(FP), SI", "MOVQ n+16(FP), CX", "SHRQ $4, CX",
        "VBROADCASTSS idx0+24(FP), Z16", "VPADDD dropIota16<>(SB), Z16, Z16",
        "MOVL $16, AX", "VPBROADCASTD AX, Z17",
        "VBROADCASTSS k1+28(FP), Z18", "VBROADCASTSS k2+32(FP), Z19",
        f"MOVL ${C1:#x}, AX", "VPBROADCASTD AX, Z20", f"MOVL ${C2:#x}, AX", "VPBROADCASTD AX, Z21",
        # kept when x>>8 > thr−1 (signed: x>>8 < 2²⁴)
        "MOVL thr+36(FP), AX", "DECL AX", "VPBROADCASTD AX, Z22",
        "VBROADCASTSS scale+40(FP), Z23", "MOVBLZX acc+44(FP), R9",
        "TESTQ CX, CX", "JZ dr_done", "TESTQ R9, R9", "JNZ dr_acc")
    for lab, acc in (("dr_set", False), ("dr_acc", True)):
        f.label(lab)
        f.e("VPXORD Z16, Z18, Z0")
        lowbias(f, "Z0", "Z1", "Z20", "Z21", "VPXORD")
        f.e("VPXORD Z19, Z0, Z0")
        lowbias(f, "Z0", "Z1", "Z20", "Z21", "VPXORD")
        f.e("VPSRLD $8, Z0, Z0", "VPCMPGTD Z22, Z0, K1", "VMULPS.Z (SI), Z23, K1, Z2")
        if acc:
            f.e("VADDPS (DI), Z2, Z2")
        f.e("VMOVUPS Z2, (DI)", "VPADDD Z17, Z16, Z16", "ADDQ $64, SI", "ADDQ $64, DI", "DECQ CX", f"JNZ {lab}")
        if not acc:
            f.e("JMP dr_done")
    f.label("dr_done")
    f.e("VZEROUPPER", "RET")
    return header("gen_dropout.py", FILEDOC) + \
        iota("dropIota16", 16) + "\n" + f.text()


def avx2():
    f = Func("dropoutAVX2", ARGS, FRAME, DOC + "\nAVX2; VPCMPGTD makes the mask, VANDPS applies it.")
    f.e("MOVQ dst+0(FP), DI", "MOVQ src+8(FP), SI", "MOVQ n+16(FP), CX", "SHRQ $3, CX",
        "VBROADCASTSS idx0+24(FP), Y15", "VPADDD dropIota8<>(SB), Y15, Y15",
        "MOVL $8, AX", "MOVQ AX, X14", "VPBROADCASTD X14, Y14",
        "VBROADCASTSS k1+28(FP), Y13", "VBROADCASTSS k2+32(FP), Y12",
        f"MOVL ${C1:#x}, AX", "MOVQ AX, X11", "VPBROADCASTD X11, Y11",
        f"MOVL ${C2:#x}, AX", "MOVQ AX, X10", "VPBROADCASTD X10, Y10",
        "MOVL thr+36(FP), AX", "DECL AX", "MOVQ AX, X9", "VPBROADCASTD X9, Y9",
        "VBROADCASTSS scale+40(FP), Y8", "MOVBLZX acc+44(FP), R9",
        "TESTQ CX, CX", "JZ dr_done", "TESTQ R9, R9", "JNZ dr_acc")
    for lab, acc in (("dr_set", False), ("dr_acc", True)):
        f.label(lab)
        f.e("VPXOR Y15, Y13, Y0")
        lowbias(f, "Y0", "Y1", "Y11", "Y10", "VPXOR")
        f.e("VPXOR Y12, Y0, Y0")
        lowbias(f, "Y0", "Y1", "Y11", "Y10", "VPXOR")
        f.e("VPSRLD $8, Y0, Y0", "VPCMPGTD Y9, Y0, Y0", "VMULPS (SI), Y8, Y2", "VANDPS Y0, Y2, Y2")
        if acc:
            f.e("VADDPS (DI), Y2, Y2")
        f.e("VMOVUPS Y2, (DI)", "VPADDD Y14, Y15, Y15", "ADDQ $32, SI", "ADDQ $32, DI", "DECQ CX", f"JNZ {lab}")
        if not acc:
            f.e("JMP dr_done")
    f.label("dr_done")
    f.e("VZEROUPPER", "RET")
    return header("gen_dropout.py", FILEDOC) + \
        iota("dropIota8", 8) + "\n" + f.text()
