"""Independent PyTorch reference of Hugging Face Qwen2 / Qwen3 / Llama / Mistral causal LMs plus PEFT LoRA.

Written from scratch (no transformers, no peft, no safetensors package) so that it
can check gotrain's Go engine without sharing any code with it. Semantics follow
transformers' modeling_qwen2.py / modeling_llama.py and peft's lora.Linear:

  RMSNorm   y = w * (x * rsqrt(mean(x^2) + eps))        (float32 or wider)
  RoPE      rotate_half, inv_freq = 1/theta^(2i/D), optional llama3 scaling
  Qwen3     q_norm / k_norm: RMSNorm [head_dim] of every query and key head, before RoPE
  attention causal, grouped-query (q head h uses kv head h // (Hq/Hkv)), scale 1/sqrt(D)
  MLP       down(silu(gate(x)) * up(x))
  LoRA      y = W x (+ b) + scaling * B(A(x)), scaling = alpha/r or alpha/sqrt(r) (rsLoRA)

Everything works on explicit dicts of tensors (no nn.Module) so that gradients
with respect to the LoRA tensors are plain autograd leaves.
"""

import json
import math
import os
import struct

import torch

# safetensors dtype names -> torch dtypes.
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}

# The seven projection names PEFT can target in these architectures.
ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# ---------------------------------------------------------------- safetensors


def read_safetensors(path):
    """Returns (tensors, metadata) from a .safetensors file, parsed by hand.

    Layout: u64 little-endian header length N, N bytes of JSON
    {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
    then the raw little-endian data; offsets are relative to the end of the header.
    BF16 is read as int16 and re-viewed as bfloat16 (numpy has no bfloat16).
    """
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: file too short for a safetensors header")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} exceeds file size {len(blob)}")
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    meta = header.pop("__metadata__", None) or {}
    out = {}
    for name, info in header.items():
        dt = info["dtype"]
        if dt not in _DTYPES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        shape = list(info["shape"])
        begin, end = info["data_offsets"]
        numel = 1
        for s in shape:
            numel *= s
        esize = torch.empty(0, dtype=_DTYPES[dt]).element_size()
        if end - begin != numel * esize or base + end > len(blob):
            raise ValueError(f"{path}: tensor {name}: bad data_offsets {begin},{end} for shape {shape} {dt}")
        if numel == 0:
            out[name] = torch.empty(shape, dtype=_DTYPES[dt])
            continue
        raw = bytearray(blob[base + begin : base + end])
        if dt == "BF16":
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(raw, dtype=_DTYPES[dt])
        out[name] = t.reshape(shape).clone()
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """Writes tensors (name -> tensor, each in the dtype to store) as a .safetensors file.

    Names are written sorted, data packed in that order, the JSON header padded with
    spaces to a multiple of 8 bytes (as the Rust library does). Written to a
    temporary name and renamed so a reader never sees half a file.
    """
    header = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype not in _NAMES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {t.dtype}")
        if t.dtype == torch.bfloat16:
            data = t.view(torch.int16).numpy().tobytes()
        else:
            data = t.numpy().tobytes()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        chunks.append(data)
        off += len(data)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def write_json(path, obj, indent=2):
    """Writes obj as JSON via a temporary file and rename."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=indent)
        f.write("\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------- config


class Config:
    """The config.json fields the forward pass needs, with Hugging Face defaults."""

    def __init__(self, d):
        self.raw = d
        self.model_type = d.get("model_type", "")
        if self.model_type not in ("qwen2", "llama", "qwen3", "mistral", "qwen3_moe"):
            raise ValueError(f"config: unsupported model_type {self.model_type!r}")
        self.vocab_size = int(d["vocab_size"])
        self.hidden_size = int(d["hidden_size"])
        self.intermediate_size = int(d["intermediate_size"])
        self.num_hidden_layers = int(d["num_hidden_layers"])
        self.num_attention_heads = int(d["num_attention_heads"])
        self.num_key_value_heads = int(d.get("num_key_value_heads") or self.num_attention_heads)
        # Qwen3Config defaults head_dim to 128; the others to hidden/heads.
        hd_default = 128 if self.model_type == "qwen3" else self.hidden_size // self.num_attention_heads
        self.head_dim = int(d.get("head_dim") or hd_default)
        # Qwen3: RMSNorm (q_norm, k_norm, weight [head_dim]) of every query and key head before RoPE.
        self.qk_norm = self.model_type in ("qwen3", "qwen3_moe")
        # Qwen3-MoE (Qwen3MoeConfig defaults): sparse layers, see is_sparse and moe_block.
        moe = self.model_type == "qwen3_moe"
        self.num_experts = int(d.get("num_experts", 128)) if moe else 0
        self.num_experts_per_tok = int(d.get("num_experts_per_tok", 8))
        self.moe_intermediate_size = int(d.get("moe_intermediate_size", 768))
        self.norm_topk_prob = bool(d.get("norm_topk_prob", False))
        self.decoder_sparse_step = int(d.get("decoder_sparse_step", 1))
        self.mlp_only_layers = list(d.get("mlp_only_layers") or [])
        self.router_aux_loss_coef = float(d.get("router_aux_loss_coef", 0.001))
        self.output_router_logits = bool(d.get("output_router_logits", False))
        self.rms_norm_eps = float(d.get("rms_norm_eps", 1e-6))
        self.rope_theta = float(d.get("rope_theta", 10000.0))
        self.rope_scaling = d.get("rope_scaling")
        self.tie_word_embeddings = bool(d.get("tie_word_embeddings", False))
        act = d.get("hidden_act", "silu")
        if act != "silu":
            raise ValueError(f"config: unsupported hidden_act {act!r}")
        if self.num_attention_heads % self.num_key_value_heads != 0:
            raise ValueError("config: num_attention_heads not a multiple of num_key_value_heads")
        if self.model_type == "qwen2":
            # Qwen2: q/k/v always biased, o never.
            self.qkv_bias, self.o_bias = True, False
            if d.get("use_sliding_window"):
                raise ValueError("config: use_sliding_window is not supported")
        elif self.model_type == "mistral":
            # MistralAttention / MistralMLP: no biases, no such config fields.
            self.qkv_bias, self.o_bias = False, False
            # A window at least as long as the sequence is full attention (forward checks).
            self.sliding_window = d.get("sliding_window")
        else:
            b = bool(d.get("attention_bias", False))
            self.qkv_bias, self.o_bias = b, b
            if self.model_type in ("qwen3", "qwen3_moe") and (b or d.get("use_sliding_window")):
                raise ValueError("config: qwen3 attention_bias / use_sliding_window are not supported")
        self.mlp_bias = bool(d.get("mlp_bias", False)) and self.model_type == "llama"
        if self.model_type != "mistral":
            self.sliding_window = None

    def is_sparse(self, i):
        """Qwen3MoeDecoderLayer: layer i has experts unless in mlp_only_layers, when
        num_experts > 0 and (i + 1) % decoder_sparse_step == 0."""
        return i not in self.mlp_only_layers and self.num_experts > 0 and (i + 1) % self.decoder_sparse_step == 0

    @staticmethod
    def load(model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            return Config(json.load(f))


def load_weights(model_dir):
    """Reads model.safetensors or the shards listed in model.safetensors.index.json."""
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)[0]
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    with open(idx) as f:
        wm = json.load(f)["weight_map"]
    out = {}
    for shard in sorted(set(wm.values())):
        out.update(read_safetensors(os.path.join(model_dir, shard))[0])
    return out


# ---------------------------------------------------------------- LoRA


class Lora:
    """A PEFT LoRA adapter: per module path (e.g. model.layers.0.self_attn.q_proj) A [r,in], B [out,r]."""

    def __init__(self, config, weights):
        self.config = config
        self.r = int(config["r"])
        alpha = float(config["lora_alpha"])
        if config.get("use_rslora"):
            self.scaling = alpha / math.sqrt(self.r)
        else:
            self.scaling = alpha / self.r
        if config.get("use_dora"):
            raise ValueError("adapter: DoRA is not supported")
        if config.get("fan_in_fan_out"):
            raise ValueError("adapter: fan_in_fan_out is not supported")
        self.A, self.B = {}, {}
        for key, t in weights.items():
            mod, which = peft_key_split(key)
            (self.A if which == "A" else self.B)[mod] = t
        if set(self.A) != set(self.B):
            raise ValueError("adapter: lora_A and lora_B module sets differ")

    @staticmethod
    def load(adapter_dir):
        with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
            cfg = json.load(f)
        if cfg.get("peft_type", "LORA") != "LORA":
            raise ValueError(f"adapter: peft_type {cfg.get('peft_type')!r} is not LORA")
        w, _ = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
        return Lora(cfg, w)

    def to(self, dtype, requires_grad=False):
        """Returns a copy whose tensors are converted to dtype (fresh autograd leaves if requires_grad)."""
        c = Lora.__new__(Lora)
        c.config, c.r, c.scaling = self.config, self.r, self.scaling
        c.A = {k: v.detach().to(dtype).clone().requires_grad_(requires_grad) for k, v in self.A.items()}
        c.B = {k: v.detach().to(dtype).clone().requires_grad_(requires_grad) for k, v in self.B.items()}
        return c

    def peft_tensors(self, which=None):
        """Name -> tensor with PEFT's saved key names."""
        out = {}
        for mod in self.A:
            out[peft_key(mod, "A")] = self.A[mod]
            out[peft_key(mod, "B")] = self.B[mod]
        return out


def peft_key(module, which):
    """model.layers.0.self_attn.q_proj, "A" -> base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"""
    return f"base_model.model.{module}.lora_{which}.weight"


def peft_key_split(key):
    """Inverse of peft_key; also accepts the in-memory form with an adapter name (.lora_A.default.weight)."""
    pre = "base_model.model."
    if not key.startswith(pre):
        raise ValueError(f"adapter: unexpected key {key}")
    rest = key[len(pre) :]
    for which in ("A", "B"):
        for suf in (f".lora_{which}.weight", f".lora_{which}.default.weight"):
            if rest.endswith(suf):
                return rest[: -len(suf)], which
    raise ValueError(f"adapter: unexpected key {key}")


# ---------------------------------------------------------------- forward


def rope_inv_freq(cfg):
    """inv_freq [D/2] in float64, with llama3 scaling as transformers' _compute_llama3_parameters."""
    D = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    rs = cfg.rope_scaling
    if not rs:
        return inv
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind == "default":
        return inv
    if kind != "llama3":
        raise ValueError(f"config: unsupported rope_scaling type {kind!r}")
    factor = float(rs["factor"])
    low = float(rs["low_freq_factor"])
    high = float(rs["high_freq_factor"])
    old = float(rs["original_max_position_embeddings"])
    low_wl = old / low
    high_wl = old / high
    wl = 2 * math.pi / inv
    out = torch.where(wl > low_wl, inv / factor, inv)
    smooth = (old / wl - low) / (high - low)
    smoothed = (1 - smooth) * out / factor + smooth * out
    medium = ~(wl < high_wl) & ~(wl > low_wl)
    return torch.where(medium, smoothed, out)


def rope_regions(cfg):
    """For llama3 scaling: list of "high"/"medium"/"low" per frequency (to check coverage)."""
    D = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    rs = cfg.rope_scaling
    old = float(rs["original_max_position_embeddings"])
    low_wl = old / float(rs["low_freq_factor"])
    high_wl = old / float(rs["high_freq_factor"])
    out = []
    for w in (2 * math.pi / inv).tolist():
        out.append("high" if w < high_wl else ("low" if w > low_wl else "medium"))
    return out


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rms_norm(x, w, eps):
    # HF computes the statistics in float32 and casts back before the weight multiply.
    dt = x.dtype
    xf = x.float() if dt in (torch.float16, torch.bfloat16) else x
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return w * y.to(dt)


def linear(x, W, b, lora, module):
    """x [..., in] @ W[out,in]^T (+ b) (+ scaling * B(A x)) -> [..., out]"""
    F = torch.nn.functional
    y = F.linear(x, W, b)
    if lora is not None and module in lora.A:
        y = y + lora.scaling * F.linear(F.linear(x, lora.A[module]), lora.B[module])
    return y


def cast_params(weights, dtype):
    """Converts every floating tensor to dtype (BF16 -> float64 is exact)."""
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in weights.items()}


def moe_block(cfg, P, m, h, lora, router=None):
    """Qwen3MoeSparseMoeBlock on h [B,T,H] (prefix m = "model.layers.i.mlp."): router logits
    (mlp.gate, no bias), softmax, top-k, renormalised when norm_topk_prob, then each expert
    e's SwiGLU on the tokens that chose it, weighted and index-added. router, if a list,
    receives the logits [B*T, E] (as output_router_logits)."""
    B, T, H = h.shape
    E, K = cfg.num_experts, cfg.num_experts_per_tok
    hs = h.reshape(-1, H)
    # the router is an nn.Linear: PEFT's "all-linear" adapts it like the others
    logits = linear(hs, P[m + "gate.weight"], None, lora, m + "gate")
    if router is not None:
        router.append(logits)
    # transformers: softmax(dtype=torch.float); here in the compute dtype (float64 goldens)
    wdt = torch.float32 if hs.dtype in (torch.float16, torch.bfloat16) else hs.dtype
    probs = torch.softmax(logits.to(wdt), dim=1)
    w, sel = torch.topk(probs, K, dim=-1)
    if cfg.norm_topk_prob:
        w = w / w.sum(dim=-1, keepdim=True)
    w = w.to(hs.dtype)
    out = torch.zeros_like(hs)
    mask = torch.nn.functional.one_hot(sel, num_classes=E).permute(2, 1, 0)  # [E, K, N]
    for e in range(E):
        slot, tok = torch.where(mask[e])
        if tok.numel() == 0:
            continue
        q = f"{m}experts.{e}."
        xs = hs[tok]
        g = linear(xs, P[q + "gate_proj.weight"], None, lora, q + "gate_proj")
        u = linear(xs, P[q + "up_proj.weight"], None, lora, q + "up_proj")
        y = linear(torch.nn.functional.silu(g) * u, P[q + "down_proj.weight"], None, lora, q + "down_proj")
        out = out.index_add(0, tok, y * w[tok, slot, None])
    return out.reshape(B, T, H)


def load_balancing_loss(cfg, router_logits):
    """transformers' load_balancing_loss_func (no attention mask): over the concatenated
    router logits of every sparse layer, E * sum_e mean_k(tokens_per_expert) * mean(prob_e)
    summed over the k slots."""
    E, K = cfg.num_experts, cfg.num_experts_per_tok
    cat = torch.cat(router_logits, dim=0)
    probs = torch.softmax(cat, dim=-1)
    _, sel = torch.topk(probs, K, dim=-1)
    mask = torch.nn.functional.one_hot(sel, E).to(probs.dtype)  # [N, K, E]
    tokens_per_expert = mask.mean(dim=0)  # [K, E]
    prob_per_expert = probs.mean(dim=0)  # [E]
    return (tokens_per_expert * prob_per_expert[None]).sum() * E


def forward(cfg, P, ids, lora=None, trace=None, last_only=False, router=None):
    """Logits for token ids.

    cfg: Config; P: weights dict in the compute dtype; ids: LongTensor [T] or [B,T]
    (rows of a batch have equal length, no padding; positions 0..T-1).
    Returns logits [T,V] or [B,T,V] in the compute dtype. If trace is a dict it receives
    intermediate activations [B,T,*] (embed, layer.i.attn, layer.i, norm) for debugging.
    With last_only, only the last position's logits are computed ([1,V] or [B,1,V]), as a
    generation prefill needs.
    """
    squeeze = ids.dim() == 1
    if squeeze:
        ids = ids[None]
    B, T = ids.shape
    if cfg.sliding_window is not None and T > cfg.sliding_window:
        raise ValueError(f"forward: {T} tokens exceed sliding_window {cfg.sliding_window} (not implemented)")
    Hq, Hkv, D = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    rep = Hq // Hkv
    dt = P["model.embed_tokens.weight"].dtype

    # RoPE tables in float64, cast to the compute dtype (HF computes them in float32).
    inv = rope_inv_freq(cfg)
    pos = torch.arange(T, dtype=torch.float64)
    freqs = pos[:, None] * inv[None, :]  # [T, D/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [T, D]
    cos, sin = emb.cos().to(dt), emb.sin().to(dt)

    mask = torch.full((T, T), float("-inf"), dtype=dt).triu(1)  # [T,T], -inf above the diagonal

    x = P["model.embed_tokens.weight"][ids]  # [B,T,H]
    if trace is not None:
        trace["embed"] = x
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        h = rms_norm(x, P[p + "input_layernorm.weight"], cfg.rms_norm_eps)
        a = p + "self_attn."
        q = linear(h, P[a + "q_proj.weight"], P.get(a + "q_proj.bias") if cfg.qkv_bias else None, lora, a + "q_proj")
        k = linear(h, P[a + "k_proj.weight"], P.get(a + "k_proj.bias") if cfg.qkv_bias else None, lora, a + "k_proj")
        v = linear(h, P[a + "v_proj.weight"], P.get(a + "v_proj.bias") if cfg.qkv_bias else None, lora, a + "v_proj")
        q = q.view(B, T, Hq, D)
        k = k.view(B, T, Hkv, D)
        if cfg.qk_norm:  # modeling_qwen3: q_norm(q_proj(x).view(..., D)) before the rotation
            q = rms_norm(q, P[a + "q_norm.weight"], cfg.rms_norm_eps)
            k = rms_norm(k, P[a + "k_norm.weight"], cfg.rms_norm_eps)
        q = q.transpose(1, 2)  # [B,Hq,T,D]
        k = k.transpose(1, 2)  # [B,Hkv,T,D]
        v = v.view(B, T, Hkv, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: kv head j serves q heads j*rep .. j*rep+rep-1.
        k = k[:, :, None].expand(B, Hkv, rep, T, D).reshape(B, Hq, T, D)
        v = v[:, :, None].expand(B, Hkv, rep, T, D).reshape(B, Hq, T, D)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(D) + mask  # [B,Hq,T,T]
        if dt in (torch.float16, torch.bfloat16):
            s = torch.softmax(s.float(), dim=-1).to(dt)
        else:
            s = torch.softmax(s, dim=-1)
        o = torch.matmul(s, v).transpose(1, 2).reshape(B, T, Hq * D)
        o = linear(o, P[a + "o_proj.weight"], P.get(a + "o_proj.bias") if cfg.o_bias else None, lora, a + "o_proj")
        x = x + o
        if trace is not None:
            trace[f"layer.{i}.attn"] = o

        h = rms_norm(x, P[p + "post_attention_layernorm.weight"], cfg.rms_norm_eps)
        m = p + "mlp."
        if cfg.is_sparse(i):
            x = x + moe_block(cfg, P, m, h, lora, router)
            if trace is not None:
                trace[f"layer.{i}"] = x
            continue
        mb = cfg.mlp_bias
        g = linear(h, P[m + "gate_proj.weight"], P.get(m + "gate_proj.bias") if mb else None, lora, m + "gate_proj")
        u = linear(h, P[m + "up_proj.weight"], P.get(m + "up_proj.bias") if mb else None, lora, m + "up_proj")
        d = linear(torch.nn.functional.silu(g) * u, P[m + "down_proj.weight"], P.get(m + "down_proj.bias") if mb else None, lora, m + "down_proj")
        x = x + d
        if trace is not None:
            trace[f"layer.{i}"] = x

    if last_only:
        x = x[:, -1:]
    x = rms_norm(x, P["model.norm.weight"], cfg.rms_norm_eps)
    if trace is not None:
        trace["norm"] = x
    head = P.get("lm_head.weight")
    if head is None or cfg.tie_word_embeddings:
        head = P["model.embed_tokens.weight"]
    logits = torch.nn.functional.linear(x, head)  # [B,T,V]
    return logits[0] if squeeze else logits


def completion_logprobs(cfg, P, prompt_ids, completion_ids, lora=None, router=None):
    """Log-probabilities [C] of completion_ids given prompt_ids (token t is predicted from position t-1)."""
    if len(prompt_ids) < 1:
        raise ValueError("score: prompt_ids must be non-empty")
    if len(completion_ids) < 1:
        raise ValueError("score: completion_ids must be non-empty")
    ids = torch.tensor(list(prompt_ids) + list(completion_ids), dtype=torch.long)
    if int(ids.min()) < 0 or int(ids.max()) >= cfg.vocab_size:
        raise ValueError("score: token id out of range")
    logits = forward(cfg, P, ids, lora, router=router)  # [T,V]
    lp = torch.log_softmax(logits, dim=-1)
    n = len(prompt_ids)
    tgt = ids[n:]
    return lp[n - 1 : -1].gather(1, tgt[:, None])[:, 0]


def batch_loss(cfg, P, seqs, lora=None, router=None):
    """Mean token cross-entropy over ALL completion tokens of the batch (prompt tokens masked).

    seqs: list of (prompt_ids, completion_ids). Returns (loss, number of completion tokens).
    """
    total = None
    n = 0
    for pr, co in seqs:
        lp = completion_logprobs(cfg, P, pr, co, lora, router)
        s = -lp.sum()
        total = s if total is None else total + s
        n += len(co)
    return total / n, n


def incremental_logits(cfg, P, ids, lora=None):
    """A second, deliberately different formulation of forward, used as a self-check.

    Processes one token at a time with a KV cache (lists of past rotated keys and values per
    layer and kv head), rotates each (i, i+D/2) pair by pos*inv_freq[i] explicitly, and loops
    over heads. Returns logits [T,V]; must match forward(cfg, P, ids, lora) to rounding.
    """
    Hq, Hkv, D = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    rep = Hq // Hkv
    half = D // 2
    inv = rope_inv_freq(cfg).to(P["model.embed_tokens.weight"].dtype)
    head = P.get("lm_head.weight")
    if head is None or cfg.tie_word_embeddings:
        head = P["model.embed_tokens.weight"]

    def rot(vec, pos):  # vec [D]
        c, s = torch.cos(pos * inv), torch.sin(pos * inv)  # [D/2]
        a, b = vec[:half], vec[half:]
        return torch.cat((a * c - b * s, b * c + a * s))

    def lin(x, name, bias, mod):
        y = P[name + ".weight"] @ x
        if bias:
            y = y + P[name + ".bias"]
        if lora is not None and mod in lora.A:
            y = y + lora.scaling * (lora.B[mod] @ (lora.A[mod] @ x))
        return y

    def norm(x, w):
        return w * (x / torch.sqrt((x * x).mean() + cfg.rms_norm_eps))

    cache_k = [[[] for _ in range(Hkv)] for _ in range(cfg.num_hidden_layers)]
    cache_v = [[[] for _ in range(Hkv)] for _ in range(cfg.num_hidden_layers)]
    rows = []
    for pos, tok in enumerate(list(ids)):
        x = P["model.embed_tokens.weight"][int(tok)].clone()  # [H]
        for i in range(cfg.num_hidden_layers):
            p = f"model.layers.{i}."
            h = norm(x, P[p + "input_layernorm.weight"])
            q = lin(h, p + "self_attn.q_proj", cfg.qkv_bias, p + "self_attn.q_proj")
            k = lin(h, p + "self_attn.k_proj", cfg.qkv_bias, p + "self_attn.k_proj")
            v = lin(h, p + "self_attn.v_proj", cfg.qkv_bias, p + "self_attn.v_proj")
            if cfg.qk_norm:
                q = torch.cat([norm(q[hh * D : (hh + 1) * D], P[p + "self_attn.q_norm.weight"]) for hh in range(Hq)])
                k = torch.cat([norm(k[j * D : (j + 1) * D], P[p + "self_attn.k_norm.weight"]) for j in range(Hkv)])
            for j in range(Hkv):
                cache_k[i][j].append(rot(k[j * D : (j + 1) * D], pos))
                cache_v[i][j].append(v[j * D : (j + 1) * D])
            outs = []
            for hh in range(Hq):
                j = hh // rep
                qh = rot(q[hh * D : (hh + 1) * D], pos)
                K = torch.stack(cache_k[i][j])  # [pos+1, D]
                V = torch.stack(cache_v[i][j])
                w = torch.softmax((K @ qh) / math.sqrt(D), dim=0)
                outs.append(w @ V)
            o = lin(torch.cat(outs), p + "self_attn.o_proj", cfg.o_bias, p + "self_attn.o_proj")
            x = x + o
            h = norm(x, P[p + "post_attention_layernorm.weight"])
            if cfg.is_sparse(i):
                # one token: rank the experts, sum the k best's outputs
                pr = torch.softmax(P[p + "mlp.gate.weight"] @ h, dim=0)
                order = sorted(range(cfg.num_experts), key=lambda e: -float(pr[e]))[: cfg.num_experts_per_tok]
                tot = sum(float(pr[e]) for e in order) if cfg.norm_topk_prob else 1.0
                for e in order:
                    q = f"{p}mlp.experts.{e}."
                    g = lin(h, q + "gate_proj", False, q + "gate_proj")
                    u = lin(h, q + "up_proj", False, q + "up_proj")
                    x = x + (pr[e] / tot) * lin(g * torch.sigmoid(g) * u, q + "down_proj", False, q + "down_proj")
                continue
            g = lin(h, p + "mlp.gate_proj", cfg.mlp_bias, p + "mlp.gate_proj")
            u = lin(h, p + "mlp.up_proj", cfg.mlp_bias, p + "mlp.up_proj")
            x = x + lin(g * torch.sigmoid(g) * u, p + "mlp.down_proj", cfg.mlp_bias, p + "mlp.down_proj")
        rows.append(head @ norm(x, P["model.norm.weight"]))
    return torch.stack(rows)
