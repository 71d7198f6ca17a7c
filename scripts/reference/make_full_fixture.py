#!/usr/bin/python3
"""Writes the full-finetuning gradient fixtures into model/testdata/ (seeded, deterministic).

    /usr/bin/python3 scripts/reference/make_full_fixture.py [--out model/testdata]

tiny-odd-llama/ is a new checkpoint of shapes no other test uses: Llama, F32, untied lm_head,
attention and MLP biases, V 211, H 40, 5 heads of head_dim 12 over 1 KV head (Hq*D = 60 != H),
I 56, 3 layers. For it, for tiny-qwen2-bf16 (tied, BF16, q/k/v biases; make_fixtures.py's) and
for make_fixtures.py's tiny-qwen3-f32 and tiny-qwen3-bf16 (q_norm, k_norm) and tiny-qwen3moe-f32 and
tiny-qwen3moe-bf16 (routers, experts):

  full-batch.json        3 sequences and the loss: the mean over all completion tokens of
                         -log p(token t | tokens < t), computed in float64 from the stored weights
  full-grad.safetensors  d loss / d every stored tensor (Hugging Face names; a tied head's
                         gradient is part of the embedding's), float64 rounded to F32

Self-checks: autograd matches central finite differences (h = 1e-6) on an entry of every
kind of tensor to a relative 1e-6; no gradient is all zero.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refmodel as rm  # noqa: E402
import make_fixtures as mf  # noqa: E402

SEED = 20261207

ODD = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": True,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "head_dim": 12,
    "hidden_act": "silu",
    "hidden_size": 40,
    "initializer_range": 0.02,
    "intermediate_size": 56,
    "max_position_embeddings": 2048,
    "mlp_bias": True,
    "model_type": "llama",
    "num_attention_heads": 5,
    "num_hidden_layers": 3,
    "num_key_value_heads": 1,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "transformers_version": "4.45.2",
    "use_cache": True,
    "vocab_size": 211,
}

LENGTHS = [(4, 6), (11, 3), (23, 9)]


def full_grads(d, gen):
    c = rm.Config.load(d)
    P = {k: v.requires_grad_(True) for k, v in rm.cast_params(rm.load_weights(d), torch.float64).items()}
    seqs = []
    for pl, cl in LENGTHS:
        ids = torch.randint(0, c.vocab_size, (pl + cl,), generator=gen).tolist()
        seqs.append((ids[:pl], ids[pl:]))
    loss, n = rm.batch_loss(c, P, seqs)
    loss.backward()
    grads = {k: v.grad.detach().clone() for k, v in P.items()}
    for k, g in grads.items():
        if float(g.abs().max()) == 0.0:
            raise SystemExit(f"check: {d}: gradient of {k} is all zero")
    # finite differences: the largest entry of one tensor of each kind
    worst = 0.0
    kinds = {}
    for k in grads:
        kind = k.split(".", 3)[-1] if k.startswith("model.layers.") else k
        kinds.setdefault(kind, k)
    h = 1e-6
    for k in kinds.values():
        idx = int(grads[k].abs().argmax())
        vals = []
        for sgn in (1, -1):
            Q = {n: v.detach().clone() for n, v in P.items()}
            Q[k].view(-1)[idx] += sgn * h
            with torch.no_grad():
                vals.append(float(rm.batch_loss(c, Q, seqs)[0]))
        fd = (vals[0] - vals[1]) / (2 * h)
        an = float(grads[k].view(-1)[idx])
        err = abs(fd - an) / max(abs(an), 1e-8)
        worst = max(worst, err)
        if err > 1e-6:
            raise SystemExit(f"check: {d}: {k}[{idx}]: autograd {an} vs finite difference {fd}")
    gp = os.path.join(d, "full-grad.safetensors")
    g32 = {k: v.float() for k, v in grads.items()}
    rm.write_safetensors(gp, g32, {"format": "pt", "note": "d loss / d every stored tensor, float64 rounded to F32"})
    mf.check_roundtrip(gp, g32)
    rm.write_json(
        os.path.join(d, "full-batch.json"),
        {
            "sequences": [{"prompt_ids": p, "completion_ids": q} for p, q in seqs],
            "loss": float(loss),
            "num_completion_tokens": n,
            "note": "loss = mean over all completion tokens of the batch of -log p(token t | tokens < t), "
            "float64 from the stored weights; full-grad.safetensors = d loss / d every stored tensor (F32)",
        },
    )
    return {"name": os.path.basename(d), "loss": float(loss), "tensors": len(grads), "fd_worst_rel_err": worst}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.normpath(os.path.join(here, "..", "..", "model", "testdata")))
    ap.add_argument("--models", default="", help="comma-separated fixture names to write (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    only = [m for m in args.models.split(",") if m]
    # make_fixtures.py's Qwen3-MoE checkpoints (router and every expert's gradients)
    gen = torch.Generator().manual_seed(SEED + 2)
    for name in ("tiny-qwen3moe-f32", "tiny-qwen3moe-bf16"):
        if not only or name in only:
            print(json.dumps(full_grads(os.path.join(args.out, name), gen)))
    if only:
        return
    gen = torch.Generator().manual_seed(SEED)
    d = os.path.join(args.out, "tiny-odd-llama")
    os.makedirs(d, exist_ok=True)
    rm.write_json(os.path.join(d, "config.json"), ODD)
    c = rm.Config(ODD)
    W = mf.init_weights(c, gen, torch.float32)
    for i in range(c.num_hidden_layers):  # init_weights makes no MLP biases
        p = f"model.layers.{i}.mlp."
        for mod, n in (("gate_proj", c.intermediate_size), ("up_proj", c.intermediate_size), ("down_proj", c.hidden_size)):
            W[p + mod + ".bias"] = mf.randn(gen, [n], 0.1).float()
    mp = os.path.join(d, "model.safetensors")
    rm.write_safetensors(mp, W, {"format": "pt"})
    mf.check_roundtrip(mp, W)
    for name in ("tiny-odd-llama", "tiny-qwen2-bf16"):
        print(json.dumps(full_grads(os.path.join(args.out, name), gen)))
    # make_fixtures.py's Qwen3 checkpoints (q_norm/k_norm gradients), with a generator of their own
    gen = torch.Generator().manual_seed(SEED + 1)
    for name in ("tiny-qwen3-f32", "tiny-qwen3-bf16"):
        print(json.dumps(full_grads(os.path.join(args.out, name), gen)))


if __name__ == "__main__":
    main()
