#!/usr/bin/python3
"""Independent PyTorch reference scorer for Hugging Face Qwen2/Llama checkpoints (+ PEFT LoRA).

    /usr/bin/python3 scripts/reference/reference.py score --model DIR [--adapter DIR] --data FILE
        [--out FILE] [--dtype float64|float32]

--data is JSON lines {"prompt_ids": [...], "completion_ids": [...], ...}; each line is written
back (to --out, default stdout) with "logprobs" (one per completion token: log p(token t |
tokens < t)) and "sum" added. Other fields are kept. Computation is float64 by default, with
BF16/F16 weights widened exactly. Use it to cross-check any checkpoint gotrain writes.

    /usr/bin/python3 scripts/reference/reference.py loss --model DIR --adapter DIR --data FILE
        [--grad-out FILE.safetensors]

prints {"loss", "num_completion_tokens"} for the mean token cross-entropy over all completion
tokens of all lines, and optionally writes d loss / d lora tensors (F32, PEFT key names).
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refmodel as rm  # noqa: E402


def read_lines(path):
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"reference: {path}:{n}: {e}")
            if "prompt_ids" not in row or "completion_ids" not in row:
                raise SystemExit(f"reference: {path}:{n}: need prompt_ids and completion_ids")
            out.append(row)
    return out


def load(args, dtype):
    try:
        cfg = rm.Config.load(args.model)
        P = rm.cast_params(rm.load_weights(args.model), dtype)
        lora = rm.Lora.load(args.adapter) if args.adapter else None
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f"reference: {e}")
    return cfg, P, lora


def cmd_score(args):
    dtype = {"float64": torch.float64, "float32": torch.float32}[args.dtype]
    cfg, P, lora = load(args, dtype)
    if lora is not None:
        lora = lora.to(dtype)
    rows = read_lines(args.data)
    out = open(args.out + ".tmp", "w") if args.out else sys.stdout
    with torch.no_grad():
        for n, row in enumerate(rows, 1):
            try:
                lp = rm.completion_logprobs(cfg, P, row["prompt_ids"], row["completion_ids"], lora)
            except (ValueError, IndexError, KeyError) as e:
                raise SystemExit(f"reference: {args.data}:{n}: {e}")
            row["logprobs"] = lp.tolist()
            row["sum"] = float(lp.sum())
            out.write(json.dumps(row) + "\n")
    if args.out:
        out.close()
        os.replace(args.out + ".tmp", args.out)


def cmd_loss(args):
    cfg, P, lora = load(args, torch.float64)
    if lora is None:
        raise SystemExit("reference: loss needs --adapter")
    L = lora.to(torch.float64, requires_grad=True)
    seqs = [(r["prompt_ids"], r["completion_ids"]) for r in read_lines(args.data)]
    loss, n = rm.batch_loss(cfg, P, seqs, L)
    loss.backward()
    print(json.dumps({"loss": float(loss), "num_completion_tokens": n}))
    if args.grad_out:
        g = {}
        for mod in L.A:
            g[rm.peft_key(mod, "A")] = L.A[mod].grad.float()
            g[rm.peft_key(mod, "B")] = L.B[mod].grad.float()
        rm.write_safetensors(args.grad_out, g, {"format": "pt"})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("score", help="completion log-probs for JSON lines")
    s.add_argument("--model", required=True)
    s.add_argument("--adapter", default="")
    s.add_argument("--data", required=True)
    s.add_argument("--out", default="")
    s.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    s.set_defaults(fn=cmd_score)
    lo = sub.add_parser("loss", help="batch loss and LoRA gradients for JSON lines")
    lo.add_argument("--model", required=True)
    lo.add_argument("--adapter", required=True)
    lo.add_argument("--data", required=True)
    lo.add_argument("--grad-out", default="")
    lo.set_defaults(fn=cmd_loss)
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.fn(args)


if __name__ == "__main__":
    main()
