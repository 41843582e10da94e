// The Rodimus and Rodimus+ blocks (docs/MODEL.md §1.2-§1.4), composed of the primitives and the
// sub-blocks. hidden (M, D) is the previous block's output (the embedding at layer 0); residual
// (M, D) is the f32 stream, updated in place (absent at layer 0: first_layer = true).
//
//   "rodimus":       (a, r1) = MixerNorm(hidden, r);  hidden' = Mixer(a);  r' = r1
//   "rodimus_plus":  (a, r1) = MixerNorm(hidden, r);  m = Mixer(a)
//                    (b, r2) = AttnNorm(m, r1);       z = SWSKA(b)
//                    c = FFNNorm(z + r2)              (the sum is NOT kept: MODEL.md pitfall 1)
//                    hidden' = FFN(c);                r' = r2
// Every norm is RMSNorm over D with eps = norm_epsilon and the residual add in f32.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "rodimus/blocks/common.hpp"
#include "rodimus/blocks/ffn.hpp"
#include "rodimus/blocks/mixer.hpp"
#include "rodimus/blocks/swska_layer.hpp"
#include "rodimus/core/memory.hpp"
#include "rodimus/model/config.hpp"
#include "rodimus/model/weight_views.hpp"
#include "rodimus/primitives/rmsnorm.hpp"

namespace rodimus {

/// One layer's state pools.
struct layer_state {
  mixer_state mixer;
  attn_state attn; // rodimus_plus only
};

/// Optional copies of a block's sub-module outputs, (M, D) f32 each (nullptr: not kept).
struct block_capture {
  float* mixer_out = nullptr;
  float* attn_out = nullptr;
  float* ffn_out = nullptr;
};

/// Whether a Rodimus+ block of M rows applies its three norms inside the projections that read
/// them (rmsnorm_linear; the backend says for which M). The stream then goes through a second
/// buffer: the mixer norm writes s = hidden + residual there (a fused kernel cannot write the
/// stream it reads in every CTA), the attention norm writes s + m back into `residual`.
template <class Backend>
bool rodimus_block_fuses_norms(const Backend& be, const model_config& cfg, index_t M) noexcept {
  return cfg.is_plus() && linear_fuses_input(be, M);
}

template <class Backend>
std::size_t rodimus_block_workspace_bytes(const Backend& be, const model_config& cfg,
                                          index_t tokens, index_t num_seqs, bool decode) noexcept {
  const index_t M = tokens, D = cfg.d_model;
  std::size_t inner = rodimus_mixer_workspace_bytes(be, cfg, M, num_seqs, decode);
  if (cfg.is_plus()) {
    inner = std::max(inner, swska_layer_workspace_bytes(be, cfg, M, decode));
    inner = std::max(inner, swiglu_ffn_workspace_bytes(be, cfg, M));
  }
  std::size_t own = 3 * block_arena::bytes(M * D);
  if (rodimus_block_fuses_norms(be, cfg, M)) // the stream's second copy, and the normed rows of a
    own += block_arena::bytes(M * D) +       // call whose rows rule out the fused kernel
           block_arena::bytes(M * std::max({D, cfg.d_inner(), cfg.ffn_hidden()}));
  return own + inner + workspace::alignment;
}

template <class Backend>
[[nodiscard]] status
rodimus_block(const Backend& be, const model_config& cfg, const layer_weights& w,
              const layer_state& st, const batch_layout& lay,
              tensor_view<float, 2> hidden,   // (M, D) in: block input, out: block output
              tensor_view<float, 2> residual, // (M, D) f32 stream, updated
              bool first_layer, const block_capture* capture, workspace ws) noexcept {
  const index_t M = lay.tokens, D = cfg.d_model;
  RODIMUS_REQUIRE(hidden.shape[0] == M && hidden.shape[1] == D, bad_shape, "hidden");
  RODIMUS_REQUIRE(residual.shape[0] == M && residual.shape[1] == D, bad_shape, "residual");
  if (M == 0) return status::success();
  block_arena ar{ws};
  float* a = ar.floats(M * D); // (M, D) normed input of each branch
  float* m = ar.floats(M * D); // (M, D) mixer output
  float* z = ar.floats(M * D); // (M, D) attention output
  RODIMUS_REQUIRE(ar.ok, workspace_too_small, "workspace");
  const float eps = float(cfg.norm_epsilon);
  auto keep = [&](float* dst, const float* src) {
    return dst ? copy_within(be, dst, src, std::size_t(M * D) * sizeof(float)) : status::success();
  };
  auto norm = [&](const float* x, bool add_residual, bool keep_sum, weight_vector weight) {
    rmsnorm_args<float, float> na;
    na.x = make_view(x, M, D);
    if (add_residual) na.residual = residual;
    if (keep_sum) na.residual_out = residual;
    na.weight = weight;
    na.y = make_view(a, M, D);
    na.eps = eps;
    return rmsnorm(be, na);
  };

  if (rodimus_block_fuses_norms(be, cfg, M)) {
    float* r1 = ar.floats(M * D); // the stream after the mixer norm
    RODIMUS_REQUIRE(ar.ok, workspace_too_small, "workspace");
    auto pending = [&](const float* x, const float* res, float* sum_out, weight_vector weight) {
      normed_input in;
      in.pending = true;
      in.x = make_view(x, M, D);
      if (res) in.residual = make_view(res, M, D);
      if (sum_out) in.sum_out = make_view(sum_out, M, D);
      in.weight = weight;
      in.eps = eps;
      return in;
    };
    const auto mixer_in =
        pending(hidden.data, first_layer ? nullptr : residual.data, r1, w.mixer_norm);
    RODIMUS_TRY(
        rodimus_mixer(be, cfg, w.mixer, st.mixer, lay, mixer_in, make_view(m, M, D), ar.rest()));
    if (capture) RODIMUS_TRY(keep(capture->mixer_out, m));
    const auto attn_in = pending(m, r1, residual.data, w.attn_norm);
    RODIMUS_TRY(swska_layer(be, cfg, w.attn, st.attn, lay, attn_in, make_view(z, M, D), ar.rest()));
    if (capture) RODIMUS_TRY(keep(capture->attn_out, z));
    RODIMUS_TRY(swiglu_ffn(be, cfg, w.ffn, pending(z, residual.data, nullptr, w.ffn_norm), hidden,
                           ar.rest()));
    if (capture) RODIMUS_TRY(keep(capture->ffn_out, hidden.data));
    return status::success();
  }

  RODIMUS_TRY(norm(hidden.data, !first_layer, true, w.mixer_norm));
  const auto av = make_view(static_cast<const float*>(a), M, D);
  if (!cfg.is_plus()) {
    RODIMUS_TRY(rodimus_mixer(be, cfg, w.mixer, st.mixer, lay, av, hidden, ar.rest()));
    if (capture) RODIMUS_TRY(keep(capture->mixer_out, hidden.data));
    return status::success();
  }
  RODIMUS_TRY(rodimus_mixer(be, cfg, w.mixer, st.mixer, lay, av, make_view(m, M, D), ar.rest()));
  if (capture) RODIMUS_TRY(keep(capture->mixer_out, m));
  RODIMUS_TRY(norm(m, true, true, w.attn_norm));
  RODIMUS_TRY(swska_layer(be, cfg, w.attn, st.attn, lay, av, make_view(z, M, D), ar.rest()));
  if (capture) RODIMUS_TRY(keep(capture->attn_out, z));
  RODIMUS_TRY(norm(z, true, false, w.ffn_norm));
  RODIMUS_TRY(swiglu_ffn(be, cfg, w.ffn, av, hidden, ar.rest()));
  if (capture) RODIMUS_TRY(keep(capture->ffn_out, hidden.data));
  return status::success();
}

} // namespace rodimus
