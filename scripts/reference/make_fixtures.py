#!/usr/bin/python3
"""Writes gotrain's model golden fixtures into model/testdata/ (seeded, deterministic).

    /usr/bin/python3 scripts/reference/make_fixtures.py [--out model/testdata]

For each tiny model (tiny-qwen2-bf16, tiny-llama-f32):
  config.json, model.safetensors          random weights in Hugging Face layout
  adapter/, adapter-rslora/ (llama only)  PEFT LoRA adapters (A and B both nonzero)
  golden.jsonl                            teacher-forced completion log-probs, float64
  debug.safetensors                       intermediate activations of one base-model sequence (F32)
  grad-batch.json, grad.safetensors       loss and d loss / d lora_{A,B} for a batch of 3 (float64 -> F32)
  sgd-step/                               adapter/ after one plain SGD step with lr 1
  generate.jsonl                          greedy continuations (8 tokens) for a KV-cache decoder

Self-checks (the script exits non-zero when one fails): the safetensors written re-read
bit-exactly; float32 and float64 forwards agree; the batched forward matches a token-by-token
KV-cache formulation written differently (refmodel.incremental_logits); a LoRA with B = 0 reproduces the base
logits; logits are far from uniform; llama3 RoPE scaling covers all three frequency
regions; autograd gradients match central finite differences.
"""

import argparse
import json
import math
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refmodel as rm  # noqa: E402

SEED = 20261123

QWEN = {
    "architectures": ["Qwen2ForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 160,
    "max_position_embeddings": 4096,
    "max_window_layers": 2,
    "model_type": "qwen2",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000.0,
    "sliding_window": 4096,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.45.2",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 512,
}

LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    # Llama 3.1 configs list several end tokens.
    "eos_token_id": [2, 3],
    "head_dim": 16,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 96,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 8,
    "num_hidden_layers": 3,
    "num_key_value_heads": 2,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 8.0,
        "high_freq_factor": 4.0,
        "low_freq_factor": 1.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "transformers_version": "4.45.2",
    "use_cache": True,
    "vocab_size": 512,
}

# Qwen3, odd shapes: F32, untied, odd vocabulary, 6 query heads of head_dim 12 over 2 KV heads
# (Hq*D = 72 != H = 40), explicit head_dim, q_norm/k_norm weights away from 1.
QWEN3_ODD = {
    "architectures": ["Qwen3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "head_dim": 12,
    "hidden_act": "silu",
    "hidden_size": 40,
    "initializer_range": 0.02,
    "intermediate_size": 56,
    "max_position_embeddings": 40960,
    "max_window_layers": 3,
    "model_type": "qwen3",
    "num_attention_heads": 6,
    "num_hidden_layers": 3,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000.0,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "transformers_version": "4.51.0",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 211,
}

# Qwen3 as released (BF16, tied), 4 heads of head_dim 32 over one KV head (Hq*D = 128 != H = 64).
QWEN3_BF16 = dict(
    QWEN3_ODD,
    head_dim=32,
    hidden_size=64,
    intermediate_size=96,
    num_attention_heads=4,
    num_hidden_layers=2,
    num_key_value_heads=1,
    tie_word_embeddings=True,
    torch_dtype="bfloat16",
    vocab_size=300,
    max_window_layers=2,
)

# Mistral 7B v0.1's layout: a sliding_window (4096) below max_position_embeddings, no head_dim,
# no bias fields; sequences up to the window are full attention.
MISTRAL = {
    "architectures": ["MistralForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 48,
    "initializer_range": 0.02,
    "intermediate_size": 80,
    "max_position_embeddings": 32768,
    "model_type": "mistral",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    "sliding_window": 4096,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "transformers_version": "4.45.2",
    "use_cache": True,
    "vocab_size": 160,
}

# Qwen3-MoE, odd shapes (F32, untied): 5 experts, top 3 without renormalisation, layer 2
# dense by mlp_only_layers (intermediate 56 there, 20 in each expert), GQA with
# head_dim 12 (Hq*D = 72 != H = 40); output_router_logits on, so the load-balancing
# loss weighs in by router_aux_loss_coef.
QWEN3MOE_ODD = dict(
    QWEN3_ODD,
    architectures=["Qwen3MoeForCausalLM"],
    model_type="qwen3_moe",
    num_hidden_layers=4,
    num_experts=5,
    num_experts_per_tok=3,
    moe_intermediate_size=20,
    norm_topk_prob=False,
    decoder_sparse_step=1,
    mlp_only_layers=[2],
    output_router_logits=True,
    router_aux_loss_coef=0.05,
    max_window_layers=4,
)

# Qwen3-MoE as released (BF16, tied, norm_topk_prob), with decoder_sparse_step 2: layers 1
# and 3 of 4 have 6 experts, top 2.
QWEN3MOE_BF16 = dict(
    QWEN3_BF16,
    architectures=["Qwen3MoeForCausalLM"],
    model_type="qwen3_moe",
    num_hidden_layers=4,
    num_experts=6,
    num_experts_per_tok=2,
    moe_intermediate_size=24,
    norm_topk_prob=True,
    decoder_sparse_step=2,
    mlp_only_layers=[],
    output_router_logits=False,
    router_aux_loss_coef=0.001,
    max_window_layers=4,
)

# (prompt length, completion length) of the golden cases.
LENGTHS = [(1, 1), (1, 20), (2, 5), (5, 3), (7, 1), (13, 8), (20, 20), (31, 2), (40, 12), (47, 17), (59, 4), (60, 20)]

# The gradient batch: 3 sequences of different lengths.
GRAD_LENGTHS = [(5, 7), (12, 3), (30, 10)]


def adapter_config(base, r, alpha, targets, dropout, rslora):
    """adapter_config.json as PEFT 0.13 writes it."""
    return {
        "alpha_pattern": {},
        "auto_mapping": None,
        "base_model_name_or_path": base,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "layer_replication": None,
        "layers_pattern": None,
        "layers_to_transform": None,
        "loftq_config": {},
        "lora_alpha": alpha,
        "lora_dropout": dropout,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": r,
        "rank_pattern": {},
        "revision": None,
        "target_modules": sorted(targets),
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": rslora,
    }


def randn(gen, shape, std, mean=0.0):
    return torch.randn(shape, generator=gen, dtype=torch.float64) * std + mean


def init_weights(c, gen, store_dtype):
    """Random weights, scaled so attention is not uniform and logits are peaked."""
    H, I, V = c.hidden_size, c.intermediate_size, c.vocab_size
    Hq, Hkv, D = c.num_attention_heads, c.num_key_value_heads, c.head_dim
    W = {}
    W["model.embed_tokens.weight"] = randn(gen, [V, H], 0.3)
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = randn(gen, [H], 0.1, 1.0)
        W[p + "post_attention_layernorm.weight"] = randn(gen, [H], 0.1, 1.0)
        W[p + "self_attn.q_proj.weight"] = randn(gen, [Hq * D, H], 0.15)
        W[p + "self_attn.k_proj.weight"] = randn(gen, [Hkv * D, H], 0.15)
        W[p + "self_attn.v_proj.weight"] = randn(gen, [Hkv * D, H], 0.12)
        W[p + "self_attn.o_proj.weight"] = randn(gen, [H, Hq * D], 0.08)
        if c.qk_norm:
            W[p + "self_attn.q_norm.weight"] = randn(gen, [D], 0.2, 1.0)
            W[p + "self_attn.k_norm.weight"] = randn(gen, [D], 0.2, 1.0)
        if c.qkv_bias:
            W[p + "self_attn.q_proj.bias"] = randn(gen, [Hq * D], 0.1)
            W[p + "self_attn.k_proj.bias"] = randn(gen, [Hkv * D], 0.1)
            W[p + "self_attn.v_proj.bias"] = randn(gen, [Hkv * D], 0.1)
        if c.o_bias:
            W[p + "self_attn.o_proj.bias"] = randn(gen, [H], 0.1)
        if c.is_sparse(i):
            # a wide router, so that routing margins survive BF16 rounding
            W[p + "mlp.gate.weight"] = randn(gen, [c.num_experts, H], 0.5)
            Im = c.moe_intermediate_size
            for e in range(c.num_experts):
                q = f"{p}mlp.experts.{e}."
                W[q + "gate_proj.weight"] = randn(gen, [Im, H], 0.15)
                W[q + "up_proj.weight"] = randn(gen, [Im, H], 0.15)
                W[q + "down_proj.weight"] = randn(gen, [H, Im], 0.12)
            continue
        W[p + "mlp.gate_proj.weight"] = randn(gen, [I, H], 0.12)
        W[p + "mlp.up_proj.weight"] = randn(gen, [I, H], 0.12)
        W[p + "mlp.down_proj.weight"] = randn(gen, [H, I], 0.08)
    W["model.norm.weight"] = randn(gen, [H], 0.1, 1.0)
    if not c.tie_word_embeddings:
        W["lm_head.weight"] = randn(gen, [V, H], 0.3)
    return {k: v.to(store_dtype) for k, v in W.items()}


def init_lora(c, gen, r, targets):
    """PEFT-shaped LoRA tensors in float32, A [r,in] and B [out,r], both nonzero."""
    H, I = c.hidden_size, c.intermediate_size
    Hq, Hkv, D = c.num_attention_heads, c.num_key_value_heads, c.head_dim
    shapes = {
        "q_proj": ("self_attn", Hq * D, H),
        "k_proj": ("self_attn", Hkv * D, H),
        "v_proj": ("self_attn", Hkv * D, H),
        "o_proj": ("self_attn", H, Hq * D),
        "gate_proj": ("mlp", I, H),
        "up_proj": ("mlp", I, H),
        "down_proj": ("mlp", H, I),
    }
    out = {}
    for i in range(c.num_hidden_layers):
        for t in rm.ALL_TARGETS:
            if t not in targets:
                continue
            blk, o, inp = shapes[t]
            mods = [(f"model.layers.{i}.{blk}.{t}", o, inp)]
            if blk == "mlp" and c.is_sparse(i):
                # PEFT matches gate_proj/up_proj/down_proj to every expert's module
                Im = c.moe_intermediate_size
                o, inp = (H, Im) if t == "down_proj" else (Im, H)
                mods = [(f"model.layers.{i}.mlp.experts.{e}.{t}", o, inp) for e in range(c.num_experts)]
            for mod, o, inp in mods:
                out[rm.peft_key(mod, "A")] = randn(gen, [r, inp], 0.1).float()
                out[rm.peft_key(mod, "B")] = randn(gen, [o, r], 0.02).float()
    return out


def check_roundtrip(path, tensors):
    back, _ = rm.read_safetensors(path)
    if set(back) != set(tensors):
        raise SystemExit(f"check: {path}: re-read names differ")
    for k, v in tensors.items():
        if back[k].dtype != v.dtype or not torch.equal(back[k], v):
            raise SystemExit(f"check: {path}: tensor {k} did not re-read exactly")


def write_adapter(d, cfg, tensors):
    os.makedirs(d, exist_ok=True)
    rm.write_json(os.path.join(d, "adapter_config.json"), cfg)
    p = os.path.join(d, "adapter_model.safetensors")
    rm.write_safetensors(p, tensors, {"format": "pt"})
    check_roundtrip(p, tensors)


def make_model(out, name, cfgd, store_dtype, adapters, gen, report):
    d = os.path.join(out, name)
    # Other fixtures live beside ours (e.g. the DPO ones): replace only what this script writes.
    for sub in list(adapters) + ["sgd-step"]:
        if os.path.isdir(os.path.join(d, sub)):
            shutil.rmtree(os.path.join(d, sub))
    os.makedirs(d, exist_ok=True)
    c = rm.Config(cfgd)
    rm.write_json(os.path.join(d, "config.json"), cfgd)
    W = init_weights(c, gen, store_dtype)
    mp = os.path.join(d, "model.safetensors")
    rm.write_safetensors(mp, W, {"format": "pt"})
    check_roundtrip(mp, W)
    for aname, (r, alpha, targets, dropout, rslora) in adapters.items():
        acfg = adapter_config(name, r, alpha, targets, dropout, rslora)
        write_adapter(os.path.join(d, aname), acfg, init_lora(c, gen, r, targets))

    # Everything below re-reads the files just written, as a user of reference.py would.
    c = rm.Config.load(d)
    P64 = rm.cast_params(rm.load_weights(d), torch.float64)
    P32 = rm.cast_params(rm.load_weights(d), torch.float32)
    loras = {"": None}
    for aname in adapters:
        loras[aname] = rm.Lora.load(os.path.join(d, aname))

    rep = {"name": name}
    if c.rope_scaling:
        regions = rm.rope_regions(c)
        rep["rope_regions"] = regions
        for want in ("high", "medium", "low"):
            if want not in regions:
                raise SystemExit(f"check: {name}: llama3 rope scaling has no {want}-frequency dims: {regions}")

    # Golden cases.
    names = list(loras)
    cases = []
    max32 = 0.0
    ents = []
    for j, (pl, cl) in enumerate(LENGTHS):
        ids = torch.randint(0, c.vocab_size, (pl + cl,), generator=gen).tolist()
        aname = names[j % len(names)]
        L = loras[aname]
        lp64 = rm.completion_logprobs(c, P64, ids[:pl], ids[pl:], L.to(torch.float64) if L else None)
        lp32 = rm.completion_logprobs(c, P32, ids[:pl], ids[pl:], L.to(torch.float32) if L else None)
        max32 = max(max32, float((lp64 - lp32.double()).abs().max()))
        if L is not None:
            base = rm.completion_logprobs(c, P64, ids[:pl], ids[pl:], None)
            rep.setdefault("lora_effect_max", 0.0)
            rep["lora_effect_max"] = max(rep["lora_effect_max"], float((lp64 - base).abs().max()))
        with torch.no_grad():
            logits = rm.forward(c, P64, torch.tensor(ids), L.to(torch.float64) if L else None)
            p = torch.softmax(logits, -1)
            ents.append(float(-(p * torch.log(p)).sum(-1).mean()))
        cases.append(
            {
                "prompt_ids": ids[:pl],
                "completion_ids": ids[pl:],
                "adapter": aname,
                "logprobs": lp64.tolist(),
                "sum": float(lp64.sum()),
            }
        )
    gp = os.path.join(d, "golden.jsonl")
    with open(gp + ".tmp", "w") as f:
        for cs in cases:
            f.write(json.dumps(cs) + "\n")
    os.replace(gp + ".tmp", gp)
    rep["golden_cases"] = len(cases)
    rep["max_abs_logprob_f32_vs_f64"] = max32
    if max32 > 1e-3:
        raise SystemExit(f"check: {name}: float32 and float64 log-probs differ by {max32}")
    rep["mean_entropy_nats"] = sum(ents) / len(ents)
    rep["log_vocab"] = math.log(c.vocab_size)
    if rep["mean_entropy_nats"] > 0.8 * math.log(c.vocab_size):
        raise SystemExit(f"check: {name}: logits too close to uniform (entropy {rep['mean_entropy_nats']})")

    # The batched forward must match the token-by-token KV-cache formulation.
    worst_inc = 0.0
    for cs in cases[::3]:
        L = loras[cs["adapter"]]
        L = L.to(torch.float64) if L else None
        ids = torch.tensor(cs["prompt_ids"] + cs["completion_ids"])
        with torch.no_grad():
            a = rm.forward(c, P64, ids, L)
            b = rm.incremental_logits(c, P64, ids, L)
        worst_inc = max(worst_inc, float((a - b).abs().max()))
    rep["max_abs_logit_batched_vs_incremental"] = worst_inc
    if worst_inc > 1e-9:
        raise SystemExit(f"check: {name}: batched and incremental forwards differ by {worst_inc}")

    # LoRA with B = 0 must give exactly the base logits.
    for aname in adapters:
        Z = loras[aname].to(torch.float64)
        for k in Z.B:
            Z.B[k] = torch.zeros_like(Z.B[k])
        ids = torch.tensor(cases[-1]["prompt_ids"] + cases[-1]["completion_ids"])
        with torch.no_grad():
            a = rm.forward(c, P64, ids, Z)
            b = rm.forward(c, P64, ids, None)
        if not torch.equal(a, b):
            raise SystemExit(f"check: {name}/{aname}: B=0 LoRA changed the logits by {float((a - b).abs().max())}")

    # Intermediate activations of one base-model sequence, for bisecting a mismatch.
    ids = torch.randint(0, c.vocab_size, (9,), generator=gen)
    tr = {}
    with torch.no_grad():
        logits = rm.forward(c, P64, ids, None, trace=tr)
    dbg = {"ids": ids.to(torch.int64), "logits": logits.float()}
    for k, v in tr.items():
        dbg[k] = v[0].float()
    dp = os.path.join(d, "debug.safetensors")
    dmeta = {
        "format": "pt",
        "note": "base model (no adapter), float64 forward rounded to F32; rows = positions",
        "ids": json.dumps(ids.tolist()),
    }
    rm.write_safetensors(dp, dbg, dmeta)
    check_roundtrip(dp, dbg)

    rep.update(make_grads(d, c, P64, loras["adapter"], gen))
    rep.update(make_generate(d, c, P64, loras, gen))
    report.append(rep)


def make_generate(d, c, P64, loras, gen, cases=4, steps=8, min_margin=1e-2):
    """Greedy continuations (float64, full recompute each step) for checking a KV-cache decoder.

    Only prompts whose top-1/top-2 logit margin stays >= min_margin at every step are kept,
    so a float32 decoder must reproduce the ids exactly.
    """
    names = list(loras)
    out = []
    tries = 0
    while len(out) < cases:
        tries += 1
        if tries > 200:
            raise SystemExit(f"check: {d}: could not find prompts with greedy margins >= {min_margin}")
        aname = names[len(out) % len(names)]
        L = loras[aname].to(torch.float64) if loras[aname] else None
        pl = [3, 17, 33, 50][len(out) % 4]
        ids = torch.randint(0, c.vocab_size, (pl,), generator=gen).tolist()
        seq = list(ids)
        worst = float("inf")
        with torch.no_grad():
            for _ in range(steps):
                logits = rm.forward(c, P64, torch.tensor(seq), L, last_only=True)[-1]
                top = torch.topk(logits, 2)
                worst = min(worst, float(top.values[0] - top.values[1]))
                seq.append(int(top.indices[0]))
        if worst < min_margin:
            continue
        out.append({"prompt_ids": ids, "adapter": aname, "greedy_ids": seq[pl:], "min_logit_margin": worst})
    gp = os.path.join(d, "generate.jsonl")
    with open(gp + ".tmp", "w") as f:
        for cs in out:
            f.write(json.dumps(cs) + "\n")
    os.replace(gp + ".tmp", gp)
    return {"generate_cases": len(out), "generate_tries": tries}


def make_grads(d, c, P64, lora, gen):
    """Gradient of the batch loss wrt every LoRA tensor of adapter/, plus one SGD step (lr 1)."""
    seqs = []
    for pl, cl in GRAD_LENGTHS:
        ids = torch.randint(0, c.vocab_size, (pl + cl,), generator=gen).tolist()
        seqs.append((ids[:pl], ids[pl:]))
    L = lora.to(torch.float64, requires_grad=True)
    loss, n = rm.batch_loss(c, P64, seqs, L)
    loss.backward()
    grads = {}
    for mod in L.A:
        grads[rm.peft_key(mod, "A")] = L.A[mod].grad.clone()
        grads[rm.peft_key(mod, "B")] = L.B[mod].grad.clone()
    for k, g in grads.items():
        if float(g.abs().max()) == 0.0:
            raise SystemExit(f"check: {d}: gradient of {k} is all zero")

    # Central finite differences on a few entries of the float64 loss.
    fd_worst = 0.0
    mods = sorted(L.A)
    picks = [(mods[0], "A", (0, 0)), (mods[-1], "B", (1, 2)), (mods[len(mods) // 2], "A", (3, 5)), (mods[len(mods) // 3], "B", (4, 0))]
    h = 1e-5
    for mod, which, idx in picks:
        vals = []
        for sgn in (1, -1):
            M = lora.to(torch.float64)
            T = M.A[mod] if which == "A" else M.B[mod]
            T[idx] += sgn * h
            with torch.no_grad():
                vals.append(float(rm.batch_loss(c, P64, seqs, M)[0]))
        fd = (vals[0] - vals[1]) / (2 * h)
        an = float(grads[rm.peft_key(mod, which)][idx])
        err = abs(fd - an) / max(abs(an), 1e-8)
        fd_worst = max(fd_worst, err)
        if err > 1e-5:
            raise SystemExit(f"check: {d}: {mod}.lora_{which}{idx}: autograd {an} vs finite difference {fd}")

    gp = os.path.join(d, "grad.safetensors")
    g32 = {k: v.float() for k, v in grads.items()}
    rm.write_safetensors(gp, g32, {"format": "pt", "note": "d loss / d lora tensors, float64 rounded to F32"})
    check_roundtrip(gp, g32)

    lr = 1.0
    stepped = {}
    for mod in L.A:
        stepped[rm.peft_key(mod, "A")] = (lora.A[mod].double() - lr * L.A[mod].grad).float()
        stepped[rm.peft_key(mod, "B")] = (lora.B[mod].double() - lr * L.B[mod].grad).float()
    sd = os.path.join(d, "sgd-step")
    write_adapter(sd, lora.config, stepped)
    S = rm.Lora.load(sd).to(torch.float64)
    with torch.no_grad():
        loss_after = float(rm.batch_loss(c, P64, seqs, S)[0])

    rm.write_json(
        os.path.join(d, "grad-batch.json"),
        {
            "adapter": "adapter",
            "sequences": [{"prompt_ids": p, "completion_ids": q} for p, q in seqs],
            "loss": float(loss),
            "num_completion_tokens": n,
            "lr": lr,
            "loss_after_sgd_step": loss_after,
            "note": "loss = mean over all completion tokens of the batch of -log p(token t | tokens < t); "
            "grad.safetensors = d loss / d lora tensors (float64 rounded to F32); "
            "sgd-step/ = adapter - lr * grad; loss_after_sgd_step is the loss with sgd-step/ (float64)",
        },
    )
    rep = {"grad_loss": float(loss), "grad_tokens": n, "loss_after_sgd_step": loss_after, "fd_worst_rel_err": fd_worst}
    if c.num_experts > 0:
        rep.update(make_aux_grads(d, c, P64, lora, seqs))
    return rep


AUX_COEF = 0.05


def make_aux_grads(d, c, P64, lora, seqs):
    """Qwen3-MoE: the load-balancing loss over the gradient batch (router logits of every
    sparse layer and every token of the 3 sequences, as one padded-free batch) and the
    LoRA gradients of loss + AUX_COEF * aux (experts' LoRA included)."""
    L = lora.to(torch.float64, requires_grad=True)
    router = []
    loss, _ = rm.batch_loss(c, P64, seqs, L, router)
    aux = rm.load_balancing_loss(c, router)
    total = loss + AUX_COEF * aux
    total.backward()
    grads = {}
    for mod in L.A:
        grads[rm.peft_key(mod, "A")] = L.A[mod].grad.float()
        grads[rm.peft_key(mod, "B")] = L.B[mod].grad.float()
    gp = os.path.join(d, "grad-aux.safetensors")
    rm.write_safetensors(gp, grads, {"format": "pt", "note": "d (loss + coef*aux) / d lora tensors, float64 rounded to F32"})
    check_roundtrip(gp, grads)
    rm.write_json(
        os.path.join(d, "grad-aux.json"),
        {
            "router_aux_loss_coef": AUX_COEF,
            "aux_loss": float(aux),
            "loss": float(total),
            "note": "grad-batch.json's batch; aux_loss = load_balancing_loss_func over the concatenated router "
            "logits of every sparse layer and token; loss = mean completion cross-entropy + coef * aux_loss",
        },
    )
    return {"aux_loss": float(aux), "aux_total_loss": float(total)}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.normpath(os.path.join(here, "..", "..", "model", "testdata")))
    ap.add_argument("--models", default="", help="comma-separated fixture names to write (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # deterministic summation order
    os.makedirs(args.out, exist_ok=True)
    report = []
    all7 = rm.ALL_TARGETS
    rslora = (8, 16, ["q_proj", "v_proj"], 0.05, True)
    # Each model has its own seed, so writing one leaves the others' bytes as they are.
    models = [
        ("tiny-qwen2-bf16", QWEN, torch.bfloat16, {"adapter": (4, 8, all7, 0.0, False)}, SEED),
        ("tiny-llama-f32", LLAMA, torch.float32, {"adapter": (4, 8, all7, 0.0, False), "adapter-rslora": rslora}, SEED + 1),
        ("tiny-qwen3-f32", QWEN3_ODD, torch.float32, {"adapter": (4, 8, all7, 0.0, False), "adapter-rslora": rslora}, SEED + 2),
        ("tiny-qwen3-bf16", QWEN3_BF16, torch.bfloat16, {"adapter": (4, 8, all7, 0.0, False)}, SEED + 3),
        ("tiny-mistral-f32", MISTRAL, torch.float32, {"adapter": (4, 8, all7, 0.0, False)}, SEED + 4),
        ("tiny-qwen3moe-f32", QWEN3MOE_ODD, torch.float32, {"adapter": (4, 8, all7, 0.0, False)}, SEED + 5),
        ("tiny-qwen3moe-bf16", QWEN3MOE_BF16, torch.bfloat16, {"adapter": (4, 8, all7, 0.0, False)}, SEED + 6),
    ]
    only = [m for m in args.models.split(",") if m]
    for name, cfgd, dt, adapters, seed in models:
        if only and name not in only:
            continue
        make_model(args.out, name, cfgd, dt, adapters, torch.Generator().manual_seed(seed), report)
    for r in report:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
