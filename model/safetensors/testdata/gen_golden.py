#!/usr/bin/python3
"""Writes golden.safetensors: conversion goldens from numpy/torch, serialised
by this independent writer (struct + json, the layout of Hugging Face's
safetensors: tensors by dtype size descending then name, header padded with
spaces to a multiple of 8). The Go tests read it; CI never runs this.

Run: /usr/bin/python3 model/safetensors/testdata/gen_golden.py
(needs Debian's python3-numpy and python3-torch)."""
import json, os, struct
import numpy as np
import torch

rng = np.random.default_rng(2026)
n = 1024
parts = [
    rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32),  # any bit pattern
    rng.uniform(-70000, 70000, n).astype(np.float32).view(np.uint32),  # f16 range and overflow
    (rng.uniform(-1, 1, n) * 10.0 ** rng.uniform(-9, -4, n)).astype(np.float32).view(np.uint32),  # f16 subnormals
    # exact ties for bf16 (low 16 bits 0x8000) and f16 (low 13 bits 0x1000)
    (rng.integers(0, 2**16, n // 2, dtype=np.uint32) << 16 | 0x8000).astype(np.uint32),
    ((rng.integers(0x3800, 0x4800, n // 2, dtype=np.uint32) << 13) | 0x1000).astype(np.uint32),
    np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x477FE000, 0x477FF000, 0x477FEFFF,
              0x33000000, 0x33000001, 0x387FC000, 0x387FE000, 0x7F7FFFFF, 0x00000001], dtype=np.uint32),
]
bits = np.concatenate(parts).astype(np.uint32)
f32 = bits.view(np.float32)
with np.errstate(all="ignore"):
    f16 = f32.astype(np.float16).view(np.uint16)
bf16 = torch.from_numpy(f32.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
h = np.arange(0, 65536, 37, dtype=np.uint32).astype(np.uint16)  # f16 bit patterns, sampled
h_f32 = h.view(np.float16).astype(np.float32)
bf_f32 = torch.from_numpy(h.view(np.int16).copy()).view(torch.bfloat16).to(torch.float32).numpy()

tensors = {
    "f32_in": ("F32", f32),
    "f16_numpy": ("F16", f16),
    "bf16_torch": ("BF16", bf16),
    "h_bits": ("U16", h),
    "h_as_f16_to_f32": ("F32", h_f32),
    "h_as_bf16_to_f32": ("F32", bf_f32),
    "matrix_f32": ("F32", np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5),
    "scalar_bf16": ("BF16", torch.tensor(3.140625, dtype=torch.bfloat16).view(torch.int16).numpy().view(np.uint16)),
    "ids_i64": ("I64", np.array([[1, -2], [3, 2**40]], dtype=np.int64)),
}
size = {"F32": 4, "F16": 2, "BF16": 2, "U16": 2, "I64": 8}
order = sorted(tensors, key=lambda k: (-size[tensors[k][0]], k))
header, data, off = {"__metadata__": {"format": "pt", "writer": "gen_golden.py"}}, b"", 0
for k in order:
    dt, a = tensors[k]
    b = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
    header[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
    data += b
    off += len(b)
hb = json.dumps(header, separators=(",", ":")).encode()
hb += b" " * (-len(hb) % 8)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.safetensors")
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(hb)) + hb + data)
print(out, 8 + len(hb) + len(data), "bytes")
