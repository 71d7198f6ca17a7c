#!/usr/bin/python3
"""PyTorch speed reference: one LoRA training step on a random Qwen2.5-0.5B-shaped model.

    /usr/bin/python3 scripts/reference/bench_lora_step.py [--batch 8] [--seq 256] [--rank 16]
        [--steps 3] [--threads 2]

LoRA r=16, alpha=32 on all seven projections of every layer (PEFT init: A Kaiming-uniform,
B zero), base weights frozen, float32, AdamW (lr 1e-4) on the LoRA tensors only. Loss = mean
next-token cross-entropy over all positions. One step = forward + backward + optimizer step.
Prints {"tokens_per_s" (batch*seq / median step time after one warm-up step),
"peak_rss_gib", ...}.
"""

import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchcommon as bc  # noqa: E402
import refmodel as rm  # noqa: E402


def make_lora(c, r, alpha, gen):
    H, I = c.hidden_size, c.intermediate_size
    Hq, Hkv, D = c.num_attention_heads, c.num_key_value_heads, c.head_dim
    shapes = {
        "self_attn.q_proj": (Hq * D, H),
        "self_attn.k_proj": (Hkv * D, H),
        "self_attn.v_proj": (Hkv * D, H),
        "self_attn.o_proj": (H, Hq * D),
        "mlp.gate_proj": (I, H),
        "mlp.up_proj": (I, H),
        "mlp.down_proj": (H, I),
    }
    w = {}
    for i in range(c.num_hidden_layers):
        for name, (o, inp) in shapes.items():
            mod = f"model.layers.{i}.{name}"
            bound = 1 / math.sqrt(inp)  # kaiming_uniform_(a=sqrt(5)) on [r, in]
            w[rm.peft_key(mod, "A")] = (torch.rand([r, inp], generator=gen) * 2 - 1) * bound
            w[rm.peft_key(mod, "B")] = torch.zeros([o, r])
    cfg = {"r": r, "lora_alpha": alpha, "use_rslora": False, "target_modules": rm.ALL_TARGETS}
    return rm.Lora(cfg, w).to(torch.float32, requires_grad=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    c = bc.config()
    gen = torch.Generator().manual_seed(2)
    W = bc.random_weights(c, torch.float32)
    L = make_lora(c, args.rank, 2 * args.rank, gen)
    params = list(L.A.values()) + list(L.B.values())
    opt = torch.optim.AdamW(params, lr=1e-4)
    ids = torch.randint(0, c.vocab_size, (args.batch, args.seq), generator=gen)
    tgt = torch.cat([ids[:, 1:], torch.full((args.batch, 1), -100)], dim=1)  # last position predicts nothing

    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        logits = rm.forward(c, W, ids, L)  # [B,T,V]
        loss = torch.nn.functional.cross_entropy(logits.view(-1, c.vocab_size), tgt.view(-1), ignore_index=-100)
        loss.backward()
        opt.step()
        losses.append(float(loss))

    cpu0 = time.process_time()
    secs = bc.timed(step, args.steps)
    cpu = time.process_time() - cpu0
    tokens = args.batch * args.seq
    res = {
        "bench": "lora_step",
        "impl": "pytorch-reference",
        "dtype": "float32",
        "batch": args.batch,
        "seq": args.seq,
        "rank": args.rank,
        "lora_params": sum(p.numel() for p in params),
        "tokens_per_s": tokens / bc.median(secs),
        "peak_rss_gib": bc.peak_rss_gib(),
        "seconds": secs,
        "cpu_seconds_all_steps": cpu,
        "losses": losses,
    }
    res.update(bc.load_info())
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
