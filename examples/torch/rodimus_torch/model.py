"""A Rodimus / Rodimus+ nn.Module built from the torch.ops.rodimus operators (issue 11), loading the
same checkpoint folders as the library (config.json + model.safetensors, the reference's names).

Scope: the full-sequence forward of a batch (every sequence from position 0), computed in the
weights' dtype with an f32 residual stream, as docs/MODEL.md §1-§5 describes; the projections are
torch matmuls, every Rodimus-specific step is one operator: causal_conv1d_fn (step 3), ddts
(steps 8-9), chunk_gla_pooled (step 10), gated_rmsnorm (step 12), swska_prefill (§5.3). Sequences are
packed (cu_seqlens) into one row, with state pools of one slot per sequence. Decoding from the pools
is not wired up here (the operators for it are gla_decode, causal_conv1d_update, swska_decode).
"""

import json
import math
import os
import struct

import torch
import torch.nn.functional as F

from . import causal_conv1d_fn, chunk_gla_pooled, ddts, gated_rmsnorm, swska_prefill

_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16,
           "I64": torch.int64, "I32": torch.int32, "F64": torch.float64}


def load_safetensors(path):
    """The tensors of one safetensors file (an 8-byte header length, a JSON header, the data)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = bytearray(f.read())
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        t = torch.frombuffer(data, dtype=_DTYPES[meta["dtype"]], count=(b - a) // _size(meta),
                             offset=a) if b > a else torch.empty(0, dtype=_DTYPES[meta["dtype"]])
        out[name] = t.reshape(meta["shape"]).clone()
    return out


def _size(meta):
    return torch.empty(0, dtype=_DTYPES[meta["dtype"]]).element_size()


def _align8(x):
    return (int(x) + 7) // 8 * 8


class Config:
    """config.json with the reference config class's defaults for missing keys (docs/MODEL.md
    §2.1, §5, §11.4)."""

    def __init__(self, d):
        self.D = d["d_model"]
        self.n_layer = d["n_layer"]
        self.vocab = d["vocab_size"]
        self.block_type = d.get("block_type", "rodimus")
        self.eps = d.get("norm_epsilon", 1e-5)
        self.tie = d.get("tie_word_embeddings", False)
        self.scale_embedding = d.get("use_scale_embedding", False)
        self.norm_embedding = d.get("use_norm_embedding", False)
        m = d.get("mixer_cfg") or {}
        self.E = _align8(self.D * m.get("expand_ratio", 2))
        self.N = m.get("mem_size", 64)
        rank = m.get("input_gate_low_rank", "auto")
        self.R = max(self.D // 64, 16) if rank == "auto" else int(rank)
        self.W = m.get("d_conv", 4)
        self.eps_k = m.get("normalize_epsilon") or 1e-12
        a = d.get("attn_cfg") or {}
        if self.block_type != "rodimus_plus":
            return  # attn_cfg is present but unused in "rodimus" checkpoints (§7.1)
        self.H = a.get("num_heads") or self.D // 128
        self.Hk, self.Hv = a.get("num_heads_k", 1), a.get("num_heads_v", self.H)
        self.dh = self.D // self.H
        rot = a.get("rotary_emb_dim", -1)
        self.rot = self.dh if rot is None or rot < 0 else rot
        self.rot_base = a.get("rotary_emb_base", 10000.0)
        window = a.get("window_size")
        self.window_left = window // 2 if window and window > 0 else -1
        self.F = _align8(self.D * a.get("ffn_expand_ratio", 4.0 / 3.0))


def _rmsnorm(x, w, eps):
    x = x.float()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w.float()


class RodimusForCausalLM(torch.nn.Module):
    def __init__(self, cfg, tensors):
        super().__init__()
        self.cfg = cfg
        # checkpoint names contain dots: kept in a dict of parameters under escaped names
        self.p = torch.nn.ParameterDict(
            {k.replace(".", "__"): torch.nn.Parameter(v, requires_grad=False)
             for k, v in tensors.items()})

    @classmethod
    def from_pretrained(cls, folder, device="cpu", dtype=None):
        with open(os.path.join(folder, "config.json")) as f:
            cfg = Config(json.load(f))
        tensors = load_safetensors(os.path.join(folder, "model.safetensors"))
        if dtype is not None:
            tensors = {k: v.to(dtype) for k, v in tensors.items()}
        return cls(cfg, tensors).to(device)

    def w(self, name):
        return self.p[name.replace(".", "__")]

    def forward(self, input_ids):
        """input_ids (B, T) -> logits (B, T, vocab) f32, every sequence from position 0."""
        c = self.cfg
        B, T = input_ids.shape
        dev = input_ids.device
        cu = torch.arange(0, (B + 1) * T, T, dtype=torch.int64, device=dev)
        slots = torch.arange(B, dtype=torch.int32, device=dev)
        fresh = torch.zeros(B, dtype=torch.bool, device=dev)
        emb = self.w("model.embeddings.weight")
        h = emb[input_ids.reshape(-1)].float() * (math.sqrt(c.N) if c.scale_embedding else 1.0)
        if c.norm_embedding:
            h = _rmsnorm(h, self.w("model.embed_norm.weight"), c.eps)
        act = emb.dtype
        h = h.to(act)
        r = None
        positions = torch.arange(T, device=dev).repeat(B)
        for i in range(c.n_layer):
            pre = f"model.layers.{i}."
            r = h.float() if r is None else r + h.float()
            m = self.mixer(pre + "mixer.", _rmsnorm(r, self.w(pre + "mixer_norm.weight"), c.eps)
                           .to(act), cu, slots, fresh, B)
            if c.block_type != "rodimus_plus":
                h = m
                continue
            r = r + m.float()
            z = self.attention(pre + "attn.", _rmsnorm(r, self.w(pre + "attn_norm.weight"), c.eps)
                               .to(act), cu, slots, positions, B)
            h = self.ffn(pre + "ffn.", _rmsnorm(r + z.float(), self.w(pre + "ffn_norm.weight"),
                                                c.eps).to(act))
        y = _rmsnorm(h.float() + r, self.w("model.norm_f.weight"), c.eps).to(act)
        head = emb if c.tie else self.w("lm_head.weight")
        return (y @ head.t()).float().reshape(B, T, -1)

    def mixer(self, pre, a, cu, slots, fresh, B):
        """docs/MODEL.md §2.3, steps 1-13."""
        c, w = self.cfg, self.w
        fc = w(pre + "fc.weight")
        x, g = a @ fc[:c.E].t(), a @ fc[c.E:].t()  # step 1
        inner = pre + "inner_mixer."
        conv_states = torch.empty(B, c.E, c.W, dtype=x.dtype, device=x.device)
        cc = causal_conv1d_fn(x.t(), w(inner + "short_conv.conv1d.weight")[:, 0],
                              w(inner + "short_conv.conv1d.bias"), conv_states, cu, slots, fresh,
                              activation="silu").t()  # step 3
        skip = cc.float() * w(inner + "residual_weight").float()  # step 4
        in_proj = w(inner + "in_proj.weight")
        q, k = cc @ in_proj[:c.N].t(), cc @ in_proj[c.N:].t()  # step 5
        low = (x @ w(inner + "ch_gate_proj.0.weight").t()) @ w(inner + "ch_gate_proj.1.weight").t()
        u = torch.sigmoid(low + w(inner + "ch_gate_proj.1.bias")) * x  # step 6
        psi = cc @ w(inner + "mem_gate_proj.weight").t()  # step 7 (bias added in ddts)
        k_hat, log_decay = ddts(psi, k, w(inner + "mem_gate_proj.bias"), c.eps_k)  # steps 8-9
        pool = torch.empty(B, 1, c.N, c.E, device=x.device)
        M = x.shape[0]
        o = chunk_gla_pooled(q.float().view(1, M, 1, c.N), k_hat.view(1, M, 1, c.N),
                             u.float().view(1, M, 1, c.E), log_decay.view(1, M, 1, c.N), pool,
                             slots, cu, has_initial_state=fresh, scale=c.N ** -0.5)  # step 10
        o = (o.view(M, c.E) + skip).to(x.dtype)  # step 11
        y = gated_rmsnorm(o, g, w(pre + "act_norm.weight"), c.eps)  # step 12
        return y @ w(pre + "out_proj.weight").t()  # step 13

    def rotary(self, x, positions):
        """GPT-NeoX rotate-half over the first `rot` channels (docs/MODEL.md §5.2)."""
        c = self.cfg
        half = c.rot // 2
        if half == 0:
            return x
        theta = c.rot_base ** (-2.0 * torch.arange(half, device=x.device, dtype=torch.float32)
                               / c.rot)
        angle = positions.float()[:, None] * theta
        cos = torch.cos(angle).to(x.dtype).float()[:, None, :]
        sin = torch.sin(angle).to(x.dtype).float()[:, None, :]
        xf = x.float()
        a, b = xf[..., :half], xf[..., half:c.rot]
        return torch.cat([a * cos - b * sin, a * sin + b * cos, xf[..., c.rot:]], -1).to(x.dtype)

    def attention(self, pre, b, cu, slots, positions, B):
        """docs/MODEL.md §5: projections, rotary, sliding-window shared-key attention."""
        c, w = self.cfg, self.w
        M = b.shape[0]
        q = self.rotary((b @ w(pre + "q_proj.weight").t()).view(M, c.H, c.dh), positions)
        k = self.rotary((b @ w(pre + "k_proj.weight").t()).view(M, c.Hk, c.dh), positions)
        v = (b @ w(pre + "v_proj.weight").t()).view(M, c.Hv, c.dh)
        ring = c.window_left + 1 if c.window_left >= 0 else int(positions.max()) + 1
        ring_k = torch.empty(B, ring, c.Hk, c.dh, dtype=b.dtype, device=b.device)
        ring_v = torch.empty(B, ring, c.Hv, c.dh, dtype=b.dtype, device=b.device)
        hist = torch.zeros(B, dtype=torch.int64, device=b.device)
        o = swska_prefill(q[None], k[None], v[None], ring_k, ring_v, slots, hist, cu,
                          window_left=c.window_left)
        return o.reshape(M, c.H * c.dh) @ w(pre + "out_proj.weight").t()

    def ffn(self, pre, x):
        """SwiGLU, SiLU on the second half (docs/MODEL.md §1.6)."""
        h = x @ self.w(pre + "fc.weight").t()
        F_ = self.cfg.F
        y = (F.silu(h[:, F_:].float()) * h[:, :F_].float()).to(x.dtype)
        return y @ self.w(pre + "out_proj.weight").t()
