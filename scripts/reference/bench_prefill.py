#!/usr/bin/python3
"""PyTorch speed reference: prefill of one prompt on a random Qwen2.5-0.5B-shaped model.

    /usr/bin/python3 scripts/reference/bench_prefill.py [--tokens 512] [--dtype float32|bfloat16|both]
        [--runs 3] [--threads 2]

Prints one JSON line per dtype: {"tokens_per_s" (all-position logits, as scoring needs),
"tokens_per_s_last_logits" (only the last position's logits, as generation needs), ...}.
Each number is the median of --runs timed runs after one warm-up run, under inference_mode.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchcommon as bc  # noqa: E402
import refmodel as rm  # noqa: E402


def bench(c, dtype, T, runs):
    W = bc.random_weights(c, dtype)
    ids = torch.randint(0, c.vocab_size, (1, T), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        full = bc.timed(lambda: rm.forward(c, W, ids), runs)
        last = bc.timed(lambda: rm.forward(c, W, ids, last_only=True), runs)
    res = {
        "bench": "prefill",
        "impl": "pytorch-reference",
        "dtype": str(dtype).replace("torch.", ""),
        "tokens": T,
        "params": bc.num_params(W),
        "tokens_per_s": T / bc.median(full),
        "tokens_per_s_last_logits": T / bc.median(last),
        "seconds": full,
        "seconds_last_logits": last,
        "peak_rss_gib": bc.peak_rss_gib(),
    }
    res.update(bc.load_info())
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--dtype", default="both", choices=["float32", "bfloat16", "both"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    c = bc.config()
    dts = {"float32": [torch.float32], "bfloat16": [torch.bfloat16], "both": [torch.float32, torch.bfloat16]}[args.dtype]
    for dt in dts:
        print(json.dumps(bench(c, dt, args.tokens, args.runs)), flush=True)


if __name__ == "__main__":
    main()
