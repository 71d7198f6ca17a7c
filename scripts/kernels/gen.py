#!/usr/bin/python3
"""Writes every generated assembly file of package kernels.

  python3 scripts/kernels/gen.py [outdir]     (go generate ./kernels runs it)

outdir defaults to the kernels directory; TestGeneratedAssembly writes to a
temporary one and compares."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gen_dropout  # noqa: E402
import gen_gemm  # noqa: E402
import gen_ops_avx2  # noqa: E402
import gen_ops_avx512  # noqa: E402
import gen_quant  # noqa: E402

FILES = {
    "gemm_avx512_amd64.s": gen_gemm.avx512,
    "gemm_avx2_amd64.s": gen_gemm.avx2,
    "ops_avx2_amd64.s": gen_ops_avx2.gen,
    "ops_avx512_amd64.s": gen_ops_avx512.gen,
    "quant_avx512_amd64.s": gen_quant.avx512,
    "quant_avx2_amd64.s": gen_quant.avx2,
    "dropout_avx512_amd64.s": gen_dropout.avx512,
    "dropout_avx2_amd64.s": gen_dropout.avx2,
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "kernels")
    for name, gen in FILES.items():
        with open(os.path.join(out, name), "w") as f:
            f.write(gen())


if __name__ == "__main__":
    main()
