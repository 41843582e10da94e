"""PyTorch operators over the rodimus kernels (torch.ops.rodimus.*), with fla- and vLLM-style wrappers.

Loading builds the extension on first import (torch.utils.cpp_extension.load, cached under
build/torch_ext/ of the repository) from ../rodimus_ops.cpp, plus ../rodimus_ops_cuda.cu when
torch has CUDA and a GPU is present. Environment:
  RODIMUS_TORCH_LIB      path of an already built library: loaded instead of building
  RODIMUS_TORCH_BUILD    build folder (default <repo>/build/torch_ext[_cuda])
  RODIMUS_TORCH_INCLUDE  extra include folders (os.pathsep-separated), e.g. Eigen and xsimd
  RODIMUS_TORCH_CUDA     0 builds without CUDA even where a GPU is present
  RODIMUS_TORCH_MARCH    the CPU code's -march (default native; x86-64-v3 with torch 2)

Swapping in for fla:  from rodimus_torch import chunk_gla, fused_recurrent_gla
Layouts are fla's (B, T, H, K); states are float32 (N, H, K, V).
"""

import os
import platform

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
_SRC = os.path.dirname(_HERE)  # examples/torch
_REPO = os.path.dirname(os.path.dirname(_SRC))


def _include_dirs():
    dirs = [os.path.join(_REPO, "include")]
    extra = os.environ.get("RODIMUS_TORCH_INCLUDE", "")
    dirs += [d for d in extra.split(os.pathsep) if d]
    # Debian's Eigen here; the unpacked Debian packages of scripts/gpu_deps.sh on the GPU machine.
    for d in ("/usr/include/eigen3",
              os.path.join(_REPO, ".deps/root/usr/include"),
              os.path.join(_REPO, ".deps/root/usr/include/eigen3")):
        if os.path.isdir(d):
            dirs.append(d)
    return dirs


def _load():
    lib = os.environ.get("RODIMUS_TORCH_LIB")
    if lib:
        torch.ops.load_library(lib)
        return lib
    from torch.utils import cpp_extension

    with_cuda = (os.environ.get("RODIMUS_TORCH_CUDA", "1") != "0" and torch.cuda.is_available()
                 and cpp_extension.CUDA_HOME is not None)
    sources = [os.path.join(_SRC, "rodimus_ops.cpp")]
    if with_cuda:
        sources.append(os.path.join(_SRC, "rodimus_ops_cuda.cu"))
    name = "rodimus_torch_ops_cuda" if with_cuda else "rodimus_torch_ops"
    build = os.environ.get("RODIMUS_TORCH_BUILD", os.path.join(_REPO, "build", "torch_ext"))
    build = os.path.join(build, name)
    os.makedirs(build, exist_ok=True)
    # torch 1.13's loader defaults to C++14 (the library needs 17); torch 2 picks its own standard
    # (17, or 20 from 2.12 on), which must not be lowered. Debian's xsimd fails to compile its
    # AVX-512BW code as C++20, so with torch 2 the CPU code targets AVX2 (x86-64-v3) unless
    # RODIMUS_TORCH_MARCH says otherwise.
    torch2 = int(torch.__version__.split(".")[0]) >= 2
    std = [] if torch2 else ["-std=c++17"]
    march = os.environ.get("RODIMUS_TORCH_MARCH",
                           "x86-64-v3" if torch2 and platform.machine() == "x86_64" else "native")
    return cpp_extension.load(
        name=name,
        sources=sources,
        extra_include_paths=_include_dirs(),
        extra_cflags=["-O2", "-march=" + march] + std,
        extra_cuda_cflags=["-O2"] + std,
        build_directory=build,
        with_cuda=with_cuda,
        is_python_module=False,
        verbose=os.environ.get("RODIMUS_TORCH_VERBOSE", "0") == "1",
    )


library_path = _load()
ops = torch.ops.rodimus


def _default_scale(q, scale):
    return q.shape[-1] ** -0.5 if scale is None else float(scale)


def _offsets(cu_seqlens):
    # The library's offsets are int64 (fla's LongTensor); int32 offsets (vLLM) are converted.
    return None if cu_seqlens is None else cu_seqlens.to(torch.int64)


def _state(initial_state):
    return None if initial_state is None else initial_state.to(torch.float32)


def chunk_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False,
              cu_seqlens=None, head_first=False, chunk_size=64):
    """fla.ops.gla.chunk_gla: (o, final_state); q, k, g (B, T, H, K), v (B, T, H, V) (or
    (B, H, T, *) with head_first, as a stride view); cu_seqlens (N+1) with B = 1."""
    if head_first:
        q, k, v, g = (t.transpose(1, 2) for t in (q, k, v, g))
    o, final_state = ops.chunk_gla(q, k, v, g, _default_scale(q, scale), _state(initial_state),
                                   output_final_state, _offsets(cu_seqlens), chunk_size)
    if head_first:
        o = o.transpose(1, 2)
    return o, final_state if output_final_state else None


def fused_recurrent_gla(q, k, v, gk=None, gv=None, scale=None, initial_state=None,
                        output_final_state=False, reverse=False, cu_seqlens=None,
                        head_first=False):
    """fla.ops.gla.fused_recurrent_gla: the sequential recurrence; gk is the key-channel
    log-decay (required), gv and reverse are not supported."""
    if gk is None or gv is not None or reverse:
        raise NotImplementedError("rodimus fused_recurrent_gla takes gk only, forward order")
    if head_first:
        q, k, v, gk = (t.transpose(1, 2) for t in (q, k, v, gk))
    o, final_state = ops.fused_recurrent_gla(q, k, v, gk, _default_scale(q, scale),
                                             _state(initial_state), output_final_state,
                                             _offsets(cu_seqlens))
    if head_first:
        o = o.transpose(1, 2)
    return o, final_state if output_final_state else None


def chunk_gla_pooled(q, k, v, g, state_pool, slots, cu_seqlens, has_initial_state=None,
                     scale=None, chunk_size=64):
    """Packed chunked prefill into an engine's state pool (num_slots, H, K, V) f32, in place:
    sequence n continues from state_pool[slots[n]] (zeros where has_initial_state[n] is False)
    and leaves its final state there; slots[n] = -1 marks an empty padding sequence. q (1, T, H, K).
    Returns o (1, T, H, V)."""
    return ops.chunk_gla_pooled(q, k, v, g, _default_scale(q, scale), state_pool, slots,
                                has_initial_state, _offsets(cu_seqlens), chunk_size)


def gla_decode(q, k, v, g, state_pool, slots, scale=None):
    """One decode token per row, q (B, H, K) or (B, 1, H, K): row b updates state_pool[slots[b]]
    in place; slots[b] = -1 is a padding row (its o row is left as allocated, no state touched)."""
    squeeze = q.dim() == 4
    if squeeze:
        q, k, v, g = (t.squeeze(1) for t in (q, k, v, g))
    o = ops.gla_decode(q, k, v, g, _default_scale(q, scale), state_pool, slots)
    return o.unsqueeze(1) if squeeze else o


def _silu(activation):
    if activation not in (None, "silu", "swish"):
        raise NotImplementedError(f"activation {activation!r}: None or 'silu'")
    return activation is not None


def causal_conv1d_fn(x, weight, bias=None, conv_states=None, query_start_loc=None,
                     cache_indices=None, has_initial_state=None, activation="silu",
                     pad_slot_id=-1):
    """vLLM's causal_conv1d_fn: x (C, total_tokens) packed by query_start_loc (N+1); conv_states
    (num_slots, C, W) of x's dtype, updated in place (the library keeps W entries, the current
    token included, where vLLM keeps W - 1); cache_indices (N) int32, -1 = an empty padding
    sequence; weight (C, W) and bias (C) are used in float32."""
    if pad_slot_id != -1:
        raise NotImplementedError("pad_slot_id must be -1")
    if query_start_loc is None:
        query_start_loc = torch.tensor([0, x.shape[1]], dtype=torch.int64, device=x.device)
    n = query_start_loc.shape[0] - 1
    if cache_indices is None:
        cache_indices = torch.arange(n, dtype=torch.int32, device=x.device)
    return ops.causal_conv1d_fn(x, weight.to(torch.float32),
                                None if bias is None else bias.to(torch.float32), conv_states,
                                query_start_loc.to(torch.int64), cache_indices.to(torch.int32),
                                has_initial_state, _silu(activation))


def causal_conv1d_update(x, conv_state, weight, bias=None, activation=None, cache_seqlens=None,
                         conv_state_indices=None, pad_slot_id=-1):
    """vLLM's causal_conv1d_update: x (B, C) or (B, C, 1); conv_state (num_slots, C, W) updated
    in place for row b at conv_state_indices[b] (b without them; -1 = padding row, its y row left as allocated)."""
    if cache_seqlens is not None or pad_slot_id != -1:
        raise NotImplementedError("cache_seqlens (circular buffers) and pad_slot_id != -1")
    squeeze = x.dim() == 3
    if squeeze:
        if x.shape[2] != 1:
            raise NotImplementedError("one token per row")
        x = x.squeeze(2)
    idx = None if conv_state_indices is None else conv_state_indices.to(torch.int32)
    y = ops.causal_conv1d_update(x, conv_state, weight.to(torch.float32),
                                 None if bias is None else bias.to(torch.float32), _silu(activation),
                                 idx)
    return y.unsqueeze(2) if squeeze else y


def ddts(gate_preact, k, gate_bias=None, normalize_eps=1e-12):
    """The Rodimus DDTS gate: gate_preact (..., 2N) [selection | temperature], k (..., N) the raw
    key, gate_bias (2N) or None. Returns (k_hat, log_decay), float32 (..., N)."""
    lead = gate_preact.shape[:-1]
    bias = None if gate_bias is None else gate_bias.to(torch.float32)
    k_hat, log_decay = ops.ddts(gate_preact.reshape(-1, gate_preact.shape[-1]), bias,
                                k.reshape(-1, k.shape[-1]), normalize_eps)
    n = k.shape[-1]
    return k_hat.view(*lead, n), log_decay.view(*lead, n)


def gated_rmsnorm(x, gate, weight, eps=1e-5):
    """rmsnorm(x * silu(gate)) * weight over the last dim (the gate before the norm: Mamba-2's
    RMSNormGated with norm_before_gate=False); weight is used in float32."""
    e = x.shape[-1]
    y = ops.gated_rmsnorm(x.reshape(-1, e), gate.reshape(-1, e), weight.to(torch.float32), eps)
    return y.view(x.shape)


def swska_prefill(q, k, v, ring_k, ring_v, slots, history_len, cu_seqlens=None, window_left=-1,
                  scale=None):
    """SW-SKA prefill continuing from rings, rings updated in place. q (B, T, Hq, D), k (B, T, Hk,
    D), v (B, T, Hv, D) (B = 1 with cu_seqlens); rings (num_slots, W, H*, D); slots (N) int32
    (-1: an empty padding sequence); history_len (N) int64 tokens already seen (0: fresh).
    window_left = -1 is unbounded causal; scale None is D^-0.5."""
    return ops.swska_prefill(q, k, v, ring_k, ring_v, slots.to(torch.int32),
                             history_len.to(torch.int64), _offsets(cu_seqlens), window_left,
                             0.0 if scale is None else float(scale))


def swska_decode(q, k, v, ring_k, ring_v, slots, positions, window_left=-1, scale=None):
    """One SW-SKA decode token per row: q (B, Hq, D), k (B, Hk, D), v (B, Hv, D); row b writes its
    key/value into ring slots[b] at positions[b] and attends its window; -1 = padding row."""
    return ops.swska_decode(q, k, v, ring_k, ring_v, slots.to(torch.int32),
                            positions.to(torch.int64), window_left,
                            0.0 if scale is None else float(scale))


__all__ = ["chunk_gla", "fused_recurrent_gla", "chunk_gla_pooled", "gla_decode", "causal_conv1d_fn",
           "causal_conv1d_update", "ddts", "gated_rmsnorm", "swska_prefill", "swska_decode", "ops",
           "library_path"]
