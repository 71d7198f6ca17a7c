#!/usr/bin/python3
"""PyTorch speed reference: naive multiple-choice prediction on a random Qwen2.5-0.5B-shaped model.

    /usr/bin/python3 scripts/reference/bench_predict.py [--rows 4] [--prompt 200] [--options 5]
        [--completion 4] [--dtype float32|bfloat16] [--threads 2]

A SocSci210 row is a prompt (~200 tokens with the chat template: the median row is ~750
characters) and a few answer options ("Response: 1" .. "Response: 5" plus end-of-turn, ~4
tokens each). The naive way scores each option as a separate full sequence (prompt + option,
batch 1, no shared prefix or KV cache) and sums the option tokens' log-probs; the prediction is
the distribution over options. Prints {"rows_per_s", ...} after one warm-up row.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchcommon as bc  # noqa: E402
import refmodel as rm  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--prompt", type=int, default=200)
    ap.add_argument("--options", type=int, default=5)
    ap.add_argument("--completion", type=int, default=4)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dt = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    c = bc.config()
    W = bc.random_weights(c, dt)
    gen = torch.Generator().manual_seed(3)
    prompt = torch.randint(0, c.vocab_size, (args.prompt,), generator=gen).tolist()
    opts = [torch.randint(0, c.vocab_size, (args.completion,), generator=gen).tolist() for _ in range(args.options)]

    dists = []

    def row():
        with torch.inference_mode():
            sums = torch.tensor([float(rm.completion_logprobs(c, W, prompt, o).sum()) for o in opts], dtype=torch.float64)
        dists.append(torch.softmax(sums, 0).tolist())

    secs = bc.timed(row, args.rows)
    res = {
        "bench": "predict_naive",
        "impl": "pytorch-reference",
        "dtype": args.dtype,
        "prompt_tokens": args.prompt,
        "options": args.options,
        "completion_tokens": args.completion,
        "rows_per_s": 1 / bc.median(secs),
        "tokens_per_s": args.options * (args.prompt + args.completion) / bc.median(secs),
        "seconds": secs,
        "peak_rss_gib": bc.peak_rss_gib(),
    }
    res.update(bc.load_info())
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
