"""DPO golden fixture: loss, TRL-named metrics and LoRA gradients for a batch of preference pairs.

The reference policy is the tiny model with its adapter/ (A and B nonzero), frozen; the trained policy
starts from sgd-step/ (a different adapter), so the sigmoid weights are not all 1/2. Computed in float64.

    /usr/bin/python3 scripts/reference/make_dpo_fixture.py model/testdata/tiny-llama-f32
"""
import json
import os
import sys

import torch

import refmodel as rm

BETA, SMOOTH = 0.1, 0.1
PAIRS = [(6, 3, 2), (11, 1, 4), (4, 2, 2)]  # prompt, chosen, rejected lengths


def seq_logp(c, P, prompt, answer, lora):
    return rm.completion_logprobs(c, P, prompt, answer, lora).sum()


def main():
    d = sys.argv[1]
    c = rm.Config.load(d)
    P = rm.cast_params(rm.load_weights(d), torch.float64)
    ref = rm.Lora.load(os.path.join(d, "adapter")).to(torch.float64)
    pol0 = rm.Lora.load(os.path.join(d, "sgd-step"))
    gen = torch.Generator().manual_seed(1234)
    pairs = []
    for pl, cl, rl in PAIRS:
        ids = torch.randint(0, c.vocab_size, (pl + cl + rl,), generator=gen).tolist()
        pairs.append((ids[:pl], ids[pl : pl + cl], ids[pl + cl :]))
    with torch.no_grad():
        refs = [(float(seq_logp(c, P, p, ch, ref)), float(seq_logp(c, P, p, rj, ref))) for p, ch, rj in pairs]
    out = {"beta": BETA, "label_smoothing": SMOOTH, "reference_adapter": "adapter", "policy_adapter": "sgd-step",
           "pairs": [{"prompt_ids": p, "chosen_ids": ch, "rejected_ids": rj} for p, ch, rj in pairs],
           "reference_logps": refs}
    for loss_type in ("sigmoid", "ipo"):
        L = pol0.to(torch.float64, requires_grad=True)
        total = 0.0
        m = {"rewards/chosen": 0.0, "rewards/rejected": 0.0, "rewards/accuracies": 0.0, "logps/chosen": 0.0, "logps/rejected": 0.0}
        for (p, ch, rj), (rc, rr) in zip(pairs, refs):
            pc, pr = seq_logp(c, P, p, ch, L), seq_logp(c, P, p, rj, L)
            logits = (pc - rc) - (pr - rr)
            if loss_type == "sigmoid":  # TRL: -(1-ε) logσ(βx) - ε logσ(-βx)
                l = -(1 - SMOOTH) * torch.nn.functional.logsigmoid(BETA * logits) - SMOOTH * torch.nn.functional.logsigmoid(-BETA * logits)
            else:  # TRL IPO: (x - 1/(2β))²
                l = (logits - 1 / (2 * BETA)) ** 2
            total = total + l / len(pairs)
            m["rewards/chosen"] += float(BETA * (pc - rc)) / len(pairs)
            m["rewards/rejected"] += float(BETA * (pr - rr)) / len(pairs)
            m["rewards/accuracies"] += float(pc - rc > pr - rr) / len(pairs)
            m["logps/chosen"] += float(pc) / len(pairs)
            m["logps/rejected"] += float(pr) / len(pairs)
        total.backward()
        grads = {}
        for mod in L.A:
            grads[rm.peft_key(mod, "A")] = L.A[mod].grad.float()
            grads[rm.peft_key(mod, "B")] = L.B[mod].grad.float()
        rm.write_safetensors(os.path.join(d, f"dpo-{loss_type}-grad.safetensors"), grads, {"format": "pt"})
        out[loss_type] = {"loss": float(total), "metrics": m}
    rm.write_json(os.path.join(d, "dpo-batch.json"), out)
    print(d, {k: out[k]["loss"] for k in ("sigmoid", "ipo")})


if __name__ == "__main__":
    main()
