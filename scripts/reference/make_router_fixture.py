#!/usr/bin/python3
"""Router LoRA fixtures for the Qwen3-MoE checkpoints of model/testdata.

PEFT's target_modules="all-linear" on Qwen3-MoE adapts every nn.Linear but the LM head: the seven
projections, every expert's, and each sparse layer's router mlp.gate [num_experts x hidden]. This
writes, for tiny-qwen3moe-f32 and tiny-qwen3moe-bf16 (made by make_fixtures.py, whose files it
only reads), a directory router-lora/ holding

  adapter_config.json, adapter_model.safetensors  the fixture's adapter/ plus router LoRA (r 4,
                                                   target_modules as PEFT saves all-linear)
  golden.jsonl                                     completion log-probs (float64) with it
  grad-batch.json, grad.safetensors                d mean completion loss / d every LoRA tensor
  grad-aux.json, grad-aux.safetensors              the same with coef * load-balancing loss

checked against central finite differences on router entries. Deterministic (seeded, one thread).

    /usr/bin/python3 scripts/reference/make_router_fixture.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refmodel as rm  # noqa: E402
import make_fixtures as mf  # noqa: E402

SEED = 20261207
AUX_COEF = 0.05
CASES = [(1, 1), (3, 9), (12, 4), (25, 10)]


def make(d):
    gen = torch.Generator().manual_seed(SEED)
    c = rm.Config.load(d)
    P64 = rm.cast_params(rm.load_weights(d), torch.float64)
    base = rm.Lora.load(os.path.join(d, "adapter"))
    tensors = {k: v.float() for k, v in base.peft_tensors().items()}
    r, H, E = base.r, c.hidden_size, c.num_experts
    routers = []
    for i in range(c.num_hidden_layers):
        if c.is_sparse(i):
            mod = f"model.layers.{i}.mlp.gate"
            routers.append(mod)
            tensors[rm.peft_key(mod, "A")] = mf.randn(gen, [r, H], 0.1).float()
            tensors[rm.peft_key(mod, "B")] = mf.randn(gen, [E, r], 0.3).float()
    out = os.path.join(d, "router-lora")
    targets = sorted(set(base.config["target_modules"]) | {"gate"})
    cfg = mf.adapter_config(os.path.basename(d), r, base.config["lora_alpha"], targets, 0.0, False)
    mf.write_adapter(out, cfg, tensors)
    L = rm.Lora.load(out)

    cases = []
    effect = 0.0
    without = rm.Lora(base.config, {k: v for k, v in L.peft_tensors().items() if ".mlp.gate." not in k})
    for pl, cl in CASES:
        ids = torch.randint(0, c.vocab_size, (pl + cl,), generator=gen).tolist()
        lp = rm.completion_logprobs(c, P64, ids[:pl], ids[pl:], L.to(torch.float64))
        lp0 = rm.completion_logprobs(c, P64, ids[:pl], ids[pl:], without.to(torch.float64))
        effect = max(effect, float((lp - lp0).abs().max()))
        cases.append({"prompt_ids": ids[:pl], "completion_ids": ids[pl:], "adapter": "router-lora", "logprobs": lp.tolist(), "sum": float(lp.sum())})
    if effect < 1e-3:
        raise SystemExit(f"check: {d}: the router LoRA changes log-probs by only {effect}")
    with open(os.path.join(out, "golden.jsonl"), "w") as f:
        for cs in cases:
            f.write(json.dumps(cs) + "\n")

    seqs = []
    for pl, cl in mf.GRAD_LENGTHS:
        ids = torch.randint(0, c.vocab_size, (pl + cl,), generator=gen).tolist()
        seqs.append((ids[:pl], ids[pl:]))

    def loss_of(M, coef):
        router = []
        loss, n = rm.batch_loss(c, P64, seqs, M, router)
        aux = rm.load_balancing_loss(c, router)
        return loss + coef * aux, loss, aux, n

    rep = {"dir": d, "router_logprob_effect": effect}
    for name, coef in (("grad", 0.0), ("grad-aux", AUX_COEF)):
        G = L.to(torch.float64, requires_grad=True)
        total, loss, aux, n = loss_of(G, coef)
        total.backward()
        grads = {}
        for mod in G.A:
            grads[rm.peft_key(mod, "A")] = G.A[mod].grad.float()
            grads[rm.peft_key(mod, "B")] = G.B[mod].grad.float()
        # central differences on router entries (top-k is piecewise constant: a small step)
        worst = 0.0
        for mod in routers:
            for which, idx in (("A", (1, 3)), ("B", (2, 1))):
                vals = []
                for sgn in (1, -1):
                    M = L.to(torch.float64)
                    T = M.A[mod] if which == "A" else M.B[mod]
                    T[idx] += sgn * 1e-6
                    with torch.no_grad():
                        vals.append(float(loss_of(M, coef)[0]))
                fd = (vals[0] - vals[1]) / 2e-6
                an = float(grads[rm.peft_key(mod, which)][idx])
                err = abs(fd - an) / max(abs(an), 1e-6)
                worst = max(worst, err)
                if err > 1e-4:
                    raise SystemExit(f"check: {d}: {name} {mod}.lora_{which}{idx}: autograd {an} vs finite difference {fd}")
        p = os.path.join(out, name + ".safetensors")
        rm.write_safetensors(p, grads, {"format": "pt", "note": "d loss / d lora tensors, float64 rounded to F32"})
        mf.check_roundtrip(p, grads)
        rep[name + "_fd_worst_rel_err"] = worst
        if name == "grad":
            rm.write_json(os.path.join(out, "grad-batch.json"), {
                "adapter": ".",
                "sequences": [{"prompt_ids": a, "completion_ids": b} for a, b in seqs],
                "loss": float(loss), "num_completion_tokens": n,
                "note": "loss = mean over all completion tokens of -log p(token | tokens before); "
                "grad.safetensors = d loss / d lora tensors (router LoRA included)"})
        else:
            rm.write_json(os.path.join(out, "grad-aux.json"), {
                "router_aux_loss_coef": coef, "aux_loss": float(aux), "loss": float(total),
                "note": "grad-batch.json's batch; loss = mean completion cross-entropy + coef * aux_loss"})
    print(json.dumps(rep))


def main():
    torch.set_num_threads(1)
    here = os.path.dirname(os.path.abspath(__file__))
    td = os.path.normpath(os.path.join(here, "..", "..", "model", "testdata"))
    for name in ("tiny-qwen3moe-f32", "tiny-qwen3moe-bf16"):
        make(os.path.join(td, name))


if __name__ == "__main__":
    main()
