"""A Rodimus / Rodimus+ nn.Module built from the torch.ops.rodimus operators (issue 11), loading the
same checkpoint folders as the library (config.json + model.safetensors, the reference's names).

Computed in the weights' dtype with an f32 residual stream, as docs/MODEL.md §1-§5 describes; the
projections are torch matmuls, every Rodimus-specific step is one operator: the short conv
(causal_conv1d_fn / causal_conv1d_update, step 3), ddts (steps 8-9), the GLA (chunk_gla_pooled /
gla_decode, step 10), gated_rmsnorm (step 12) and SW-SKA over key/value rings (swska_prefill /
swska_decode, §5). The recurrent state lives in pools addressed by slot (InferenceState), as an
engine keeps it:
  model(input_ids)                         full sequences (B, T) from position 0 -> logits
  state = model.make_state(num_slots, max_len)
  model.prefill(state, ids, cu_seqlens, slots)   packed chunks, fresh or continuing per slot
  model.decode(state, ids, slots)          one token per row, slot -1 = padding row
"""

import json
import math
import os
import struct

import torch
import torch.nn.functional as F

from . import (causal_conv1d_fn, causal_conv1d_update, chunk_gla_pooled, ddts, gated_rmsnorm,
               gla_decode, swska_decode, swska_prefill)

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

    def make_state(self, num_slots, max_len=None):
        """Empty pools for num_slots sequences; max_len bounds the positions an unbounded window
        keeps (its ring holds every position)."""
        return InferenceState(self, num_slots, max_len)

    def forward(self, input_ids):
        """input_ids (B, T) -> logits (B, T, vocab) f32, every sequence from position 0."""
        B, T = input_ids.shape
        dev = input_ids.device
        state = self.make_state(B, T)
        cu = torch.arange(0, (B + 1) * T, T, dtype=torch.int64, device=dev)
        slots = torch.arange(B, dtype=torch.int32, device=dev)
        return self.prefill(state, input_ids.reshape(-1), cu, slots).reshape(B, T, -1)

    def prefill(self, state, ids, cu_seqlens, slots):
        """Packed tokens ids (M,) split by cu_seqlens (N+1) into sequences, sequence n continuing
        the one in slots[n] after state.seen[slots[n]] tokens (0: fresh). -> logits (M, vocab)."""
        dev = ids.device
        slots = slots.to(torch.int32)
        lengths = cu_seqlens[1:] - cu_seqlens[:-1]
        seen = state.seen[slots.long()]
        seq = torch.repeat_interleave(torch.arange(len(lengths), device=dev), lengths)
        positions = seen[seq] + torch.arange(ids.shape[0], device=dev) - cu_seqlens[seq]
        step = dict(decode=False, cu=cu_seqlens, slots=slots, seen=seen, fresh=seen > 0,
                    positions=positions)
        logits = self.run(state, ids, step)
        state.seen[slots.long()] += lengths
        return logits

    def decode(self, state, ids, slots):
        """One token per row, ids (B,), row b continuing slots[b] (-1: a padding row, whose logits
        are meaningless and whose slot is untouched). -> logits (B, vocab)."""
        slots = slots.to(torch.int32)
        live = slots >= 0
        seen = state.seen[slots.long().clamp(min=0)] * live  # padding rows: position 0
        step = dict(decode=True, slots=slots, positions=seen)
        logits = self.run(state, ids, step)
        state.seen.index_add_(0, slots.long()[live], torch.ones_like(seen[live]))
        return logits

    def run(self, state, ids, step):
        c = self.cfg
        emb = self.w("model.embeddings.weight")
        h = emb[ids].float() * (math.sqrt(c.N) if c.scale_embedding else 1.0)
        if c.norm_embedding:
            h = _rmsnorm(h, self.w("model.embed_norm.weight"), c.eps)
        act = emb.dtype
        h = h.to(act)
        r = None
        for i in range(c.n_layer):
            pre = f"model.layers.{i}."
            r = h.float() if r is None else r + h.float()
            m = self.mixer(pre + "mixer.", _rmsnorm(r, self.w(pre + "mixer_norm.weight"), c.eps)
                           .to(act), state.layers[i], step)
            if c.block_type != "rodimus_plus":
                h = m
                continue
            r = r + m.float()
            z = self.attention(pre + "attn.", _rmsnorm(r, self.w(pre + "attn_norm.weight"), c.eps)
                               .to(act), state.layers[i], step)
            h = self.ffn(pre + "ffn.", _rmsnorm(r + z.float(), self.w(pre + "ffn_norm.weight"),
                                                c.eps).to(act))
        y = _rmsnorm(h.float() + r, self.w("model.norm_f.weight"), c.eps).to(act)
        head = emb if c.tie else self.w("lm_head.weight")
        return (y @ head.t()).float()

    def mixer(self, pre, a, st, step):
        """docs/MODEL.md §2.3, steps 1-13; st holds this layer's pools."""
        c, w = self.cfg, self.w
        fc = w(pre + "fc.weight")
        x, g = a @ fc[:c.E].t(), a @ fc[c.E:].t()  # step 1
        inner = pre + "inner_mixer."
        conv_w = w(inner + "short_conv.conv1d.weight")[:, 0]
        conv_b = w(inner + "short_conv.conv1d.bias")
        if step["decode"]:  # step 3
            cc = causal_conv1d_update(x, st.conv, conv_w, conv_b, "silu",
                                      conv_state_indices=step["slots"])
        else:
            cc = causal_conv1d_fn(x.t(), conv_w, conv_b, st.conv, step["cu"], step["slots"],
                                  step["fresh"], activation="silu").t()
        skip = cc.float() * w(inner + "residual_weight").float()  # step 4
        in_proj = w(inner + "in_proj.weight")
        q, k = cc @ in_proj[:c.N].t(), cc @ in_proj[c.N:].t()  # step 5
        low = (x @ w(inner + "ch_gate_proj.0.weight").t()) @ w(inner + "ch_gate_proj.1.weight").t()
        u = torch.sigmoid(low + w(inner + "ch_gate_proj.1.bias")) * x  # step 6
        psi = cc @ w(inner + "mem_gate_proj.weight").t()  # step 7 (bias added in ddts)
        k_hat, log_decay = ddts(psi, k, w(inner + "mem_gate_proj.bias"), c.eps_k)  # steps 8-9
        M = x.shape[0]
        if step["decode"]:  # step 10
            o = gla_decode(q.float().view(M, 1, c.N), k_hat.view(M, 1, c.N),
                           u.float().view(M, 1, c.E), log_decay.view(M, 1, c.N), st.gla,
                           step["slots"], scale=c.N ** -0.5)
        else:
            o = chunk_gla_pooled(q.float().view(1, M, 1, c.N), k_hat.view(1, M, 1, c.N),
                                 u.float().view(1, M, 1, c.E), log_decay.view(1, M, 1, c.N),
                                 st.gla, step["slots"], step["cu"],
                                 has_initial_state=step["fresh"], scale=c.N ** -0.5)
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

    def attention(self, pre, b, st, step):
        """docs/MODEL.md §5: projections, rotary, sliding-window shared-key attention."""
        c, w = self.cfg, self.w
        M = b.shape[0]
        q = self.rotary((b @ w(pre + "q_proj.weight").t()).view(M, c.H, c.dh), step["positions"])
        k = self.rotary((b @ w(pre + "k_proj.weight").t()).view(M, c.Hk, c.dh), step["positions"])
        v = (b @ w(pre + "v_proj.weight").t()).view(M, c.Hv, c.dh)
        if step["decode"]:
            o = swska_decode(q, k, v, st.ring_k, st.ring_v, step["slots"], step["positions"],
                             window_left=c.window_left)
        else:
            o = swska_prefill(q[None], k[None], v[None], st.ring_k, st.ring_v, step["slots"],
                              step["seen"], step["cu"], window_left=c.window_left)
        return o.reshape(M, c.H * c.dh) @ w(pre + "out_proj.weight").t()

    def ffn(self, pre, x):
        """SwiGLU, SiLU on the second half (docs/MODEL.md §1.6)."""
        h = x @ self.w(pre + "fc.weight").t()
        F_ = self.cfg.F
        y = (F.silu(h[:, F_:].float()) * h[:, :F_].float()).to(x.dtype)
        return y @ self.w(pre + "out_proj.weight").t()


class LayerState:
    def __init__(self, cfg, P, ring, dtype, device):
        self.conv = torch.zeros(P, cfg.E, cfg.W, dtype=dtype, device=device)
        self.gla = torch.zeros(P, 1, cfg.N, cfg.E, device=device)
        if cfg.block_type == "rodimus_plus":
            self.ring_k = torch.zeros(P, ring, cfg.Hk, cfg.dh, dtype=dtype, device=device)
            self.ring_v = torch.zeros(P, ring, cfg.Hv, cfg.dh, dtype=dtype, device=device)


class InferenceState:
    """Per layer: conv pool (P, E, W), GLA pool (P, 1, N, E) f32, key/value rings (P, W_ring, H*,
    d_h) (W_ring = window_left + 1, or max_len for an unbounded window); seen (P) tokens per slot."""

    def __init__(self, model, num_slots, max_len=None):
        c = model.cfg
        emb = model.w("model.embeddings.weight")
        ring = 1
        if c.block_type == "rodimus_plus":
            if c.window_left < 0 and max_len is None:
                raise ValueError("an unbounded window needs max_len")
            ring = c.window_left + 1 if c.window_left >= 0 else max_len
        self.layers = [LayerState(c, num_slots, ring, emb.dtype, emb.device)
                       for _ in range(c.n_layer)]
        self.seen = torch.zeros(num_slots, dtype=torch.int64, device=emb.device)
