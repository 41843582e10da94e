// The SW-SKA layer of a Rodimus+ block (docs/MODEL.md §5, §11.2, §11.3), composed of the
// primitives:
//
//   q = b . q_proj^T (M, H, d_h),  k = b . k_proj^T (M, Hk, d_h),  v = b . v_proj^T (M, Hv, d_h)
//   RoPE (NeoX rotate-half over rotary_dim channels, base) on q and k at absolute positions
//   o = softmax-attention of query head h over key head h % Hk and value head h % Hv, keys at
//       positions [p - window_left, p] (window_left = window_size // 2; -1 unbounded), scale
//       d_h^-1/2
//   out = o (M, H d_h) . out_proj^T (M, D)
//
// The per-sequence window ring (P, Wr, Hk, d_h) / (P, Wr, Hv, d_h), Wr = window_left + 1, holds the
// rotated keys and the values of the last Wr positions (position p in ring slot p % Wr). Prefill
// rotates q and k (rotary), attends the ring as history, then stores its own last Wr keys/values;
// decode hands the unrotated q and k to swska_decode, which rotates them itself (rotary_dim > 0:
// one launch less per layer on CUDA), writes the new token into the ring and attends it, so
// decoding equals the full forward at every position.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "rodimus/blocks/common.hpp"
#include "rodimus/model/config.hpp"
#include "rodimus/model/weight_views.hpp"
#include "rodimus/primitives/linear.hpp"
#include "rodimus/primitives/rotary.hpp"
#include "rodimus/primitives/swska.hpp"

namespace rodimus {

/// The attention window ring pools (one layer).
struct attn_state {
  tensor_view<float, 4> ring_k; // (P, Wr, Hk, d_h) rotated keys
  tensor_view<float, 4> ring_v; // (P, Wr, Hv, d_h)
};

template <class Backend>
std::size_t swska_layer_workspace_bytes(const Backend& be, const model_config& cfg, index_t tokens,
                                        bool decode) noexcept {
  const index_t M = tokens, H = cfg.heads(), Hk = cfg.heads_k(), Hv = cfg.heads_v(),
                dh = cfg.head_dim();
  std::size_t b = block_arena::bytes(M * (H + Hk + Hv) * dh) + block_arena::bytes(M * H * dh);
  std::size_t attn = 0;
  if (decode) {
    // The ring's shape too: a backend may size its scores by the ring length (cpu: M x H x Wr).
    // rotary_dim and k too: a host backend's rotated copies of q and k live in the workspace.
    swska_decode_args<float> a;
    const index_t q[3] = {M, H, dh}, k[3] = {M, Hk, dh};
    const index_t ring[4] = {M, index_t(cfg.attn_ring_size()), Hk, dh};
    a.q = tensor_view<const float, 3>::contiguous(nullptr, q);
    a.k = tensor_view<const float, 3>::contiguous(nullptr, k);
    a.ring_k = tensor_view<float, 4>::contiguous(nullptr, ring);
    a.rotary_dim = int(cfg.rotary_dim());
    attn = swska_decode_workspace_bytes(be, a);
  } else {
    swska_args<float> a;
    const index_t q[4] = {1, M, H, dh};
    a.q = tensor_view<const float, 4>::contiguous(nullptr, q);
    attn = swska_prefill_workspace_bytes(be, a);
  }
  const std::size_t lin = linear_weight_workspace_bytes(be, M, std::max(cfg.d_model, H * dh),
                                                        std::max(cfg.d_model, (H + Hk + Hv) * dh));
  return b + std::max(attn, lin) + workspace::alignment;
}

/// out (M, D) = SWSKA(b (M, D)), reading and updating the rings of the layout's slots.
template <class Backend>
[[nodiscard]] status swska_layer(const Backend& be, const model_config& cfg, const attn_weights& w,
                                 const attn_state& st, const batch_layout& lay,
                                 normed_input in,           // (M, D)
                                 tensor_view<float, 2> out, // (M, D)
                                 workspace ws) noexcept {
  const index_t M = lay.tokens, H = cfg.heads(), Hk = cfg.heads_k(), Hv = cfg.heads_v(),
                dh = cfg.head_dim();
  RODIMUS_REQUIRE(in.rows() == M && out.shape[0] == M, bad_shape, "in");
  if (M == 0) return status::success();
  block_arena ar{ws};
  // Row m of qkv is [q_m | k_m | v_m] (H + Hk + Hv heads of d_h): the projections of the normed
  // input in one call where the three weights lie back to back (one read and, on CUDA, one
  // norm and one GEMM operand for all three), else three calls into the same rows.
  const index_t ld = (H + Hk + Hv) * dh;
  float* qkv = ar.floats(M * ld);   // (M, H + Hk + Hv, d_h)
  float* o = ar.floats(M * H * dh); // (M, H, d_h)
  RODIMUS_REQUIRE(ar.ok, workspace_too_small, "workspace");
  float* const q = qkv;
  float* const k = qkv + H * dh;
  float* const v = k + Hk * dh;
  auto cols = [&](float* first, index_t n) {
    return tensor_view<float, 2>::strided(first, {M, n}, {ld, 1});
  };
  const weight_matrix stacked = stacked_rows(stacked_rows(w.q_proj, w.k_proj), w.v_proj);
  if (stacked.data != nullptr) {
    RODIMUS_TRY(linear_normed(be, in, stacked, make_view(qkv, M, ld), ar.rest()));
  } else {
    RODIMUS_TRY(linear_normed(be, in, w.q_proj, cols(q, H * dh), ar.rest()));
    RODIMUS_TRY(linear_normed(be, in, w.k_proj, cols(k, Hk * dh), ar.rest()));
    RODIMUS_TRY(linear_normed(be, in, w.v_proj, cols(v, Hv * dh), ar.rest()));
  }
  // The heads of q, k, v as (M, heads, d_h) and (1, M, heads, d_h) views of qkv's rows.
  auto heads3 = [&](const float* first, index_t heads) {
    return tensor_view<const float, 3>::strided(first, {M, heads, dh}, {ld, dh, 1});
  };
  auto heads4 = [&](float* first, index_t heads) {
    return tensor_view<float, 4>::strided(first, {1, M, heads, dh}, {M * ld, ld, dh, 1});
  };

  const int rdim = int(cfg.rotary_dim());
  if (lay.decode) {
    swska_decode_args<float> da;
    da.q = heads3(q, H);
    da.k = heads3(k, Hk);
    da.v = heads3(v, Hv);
    da.o = make_view(o, M, H, dh);
    da.ring_k = st.ring_k;
    da.ring_v = st.ring_v;
    da.slot = lay.slot;
    da.position = lay.position;
    da.window_left = int(cfg.window_left());
    da.scale = cfg.attn_scale();
    da.rotary_dim = rdim; // RoPE on q and k at each row's position, inside the step
    da.rotary_base = float(cfg.rotary_emb_base);
    RODIMUS_TRY(swska_decode(be, da, ar.rest()));
  } else {
    // RoPE on q and k at absolute positions (packed sequences: token t of sequence n at
    // position[n] + t).
    if (rdim != 0) {
      const std::pair<float*, index_t> parts[2] = {{q, H}, {k, Hk}};
      for (const auto& [ptr, heads] : parts) {
        rotary_args<float> ra;
        ra.x = heads4(ptr, heads);
        ra.position_offset = lay.position;
        ra.rotary_dim = rdim;
        ra.base = float(cfg.rotary_emb_base);
        ra.cu_seqlens = lay.cu_seqlens;
        ra.num_seqs = lay.num_seqs;
        RODIMUS_TRY(rotary(be, ra));
      }
    }
    swska_args<float> pa;
    pa.q = heads4(q, H);
    pa.k = heads4(k, Hk);
    pa.v = heads4(v, Hv);
    pa.o = make_view(o, index_t(1), M, H, dh);
    pa.window_left = int(cfg.window_left());
    pa.scale = cfg.attn_scale();
    pa.cu_seqlens = lay.cu_seqlens;
    pa.num_seqs = lay.num_seqs;
    if (!lay.fresh) {
      pa.history_k = st.ring_k;
      pa.history_v = st.ring_v;
      pa.slot = lay.slot;
      pa.history_len = lay.position;
    }
    RODIMUS_TRY(swska_prefill(be, pa, ar.rest()));
    swska_ring_store_args<float> sa;
    sa.k = pa.k;
    sa.v = pa.v;
    sa.ring_k = st.ring_k;
    sa.ring_v = st.ring_v;
    sa.slot = lay.slot;
    sa.start_position = lay.position;
    sa.cu_seqlens = lay.cu_seqlens;
    sa.num_seqs = lay.num_seqs;
    RODIMUS_TRY(swska_ring_store(be, sa));
  }
  return linear_weight(be, make_view(static_cast<const float*>(o), M, H * dh), w.out_proj, out,
                       ar.rest());
}

} // namespace rodimus
