"""Shared pieces of the PyTorch speed references: a random-weight model of Qwen2.5-0.5B's shape."""

import os
import resource
import statistics
import time

import torch

import refmodel as rm

# Qwen2.5-0.5B's config.json shape (weights are random: only the speed matters here).
QWEN25_05B = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "vocab_size": 151936,
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "rope_scaling": None,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
    "use_sliding_window": False,
}


def config():
    return rm.Config(QWEN25_05B)


def random_weights(c, dtype, seed=0):
    """Random weights (std 0.02, norms 1) in dtype, generated tensor by tensor in float32."""
    g = torch.Generator().manual_seed(seed)
    H, I, V = c.hidden_size, c.intermediate_size, c.vocab_size
    Hq, Hkv, D = c.num_attention_heads, c.num_key_value_heads, c.head_dim

    def r(shape):
        return (torch.randn(shape, generator=g) * 0.02).to(dtype)

    W = {"model.embed_tokens.weight": r([V, H]), "model.norm.weight": torch.ones(H, dtype=dtype)}
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = torch.ones(H, dtype=dtype)
        W[p + "post_attention_layernorm.weight"] = torch.ones(H, dtype=dtype)
        for n, o, inp in (("q", Hq * D, H), ("k", Hkv * D, H), ("v", Hkv * D, H)):
            W[p + f"self_attn.{n}_proj.weight"] = r([o, inp])
            W[p + f"self_attn.{n}_proj.bias"] = r([o])
        W[p + "self_attn.o_proj.weight"] = r([H, Hq * D])
        W[p + "mlp.gate_proj.weight"] = r([I, H])
        W[p + "mlp.up_proj.weight"] = r([I, H])
        W[p + "mlp.down_proj.weight"] = r([H, I])
    return W


def num_params(W):
    return sum(t.numel() for t in W.values())


def peak_rss_gib():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)


def timed(fn, runs):
    """Runs fn once as warm-up, then runs times; returns the list of seconds."""
    fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def load_info():
    return {"loadavg_1m": os.getloadavg()[0], "torch": torch.__version__, "threads": torch.get_num_threads()}


median = statistics.median
