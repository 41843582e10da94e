// The SwiGLU FFN of a Rodimus+ block (docs/MODEL.md §1.6), composed of the primitives:
//
//   fc  = c . ffn.fc^T                 (M, 2F) [value | gate]
//   y   = silu(fc[:, F:]) * fc[:, :F]  (M, F)  SiLU on the SECOND half (MODEL.md pitfall 3)
//   out = y . ffn.out_proj^T           (M, D)
#pragma once

#include <algorithm>

#include <cstddef>

#include "rodimus/blocks/common.hpp"
#include "rodimus/model/config.hpp"
#include "rodimus/model/weight_views.hpp"
#include "rodimus/primitives/linear.hpp"
#include "rodimus/primitives/swiglu.hpp"

namespace rodimus {

template <class Backend>
std::size_t swiglu_ffn_workspace_bytes(const Backend& be, const model_config& cfg,
                                       index_t tokens) noexcept {
  const index_t F = cfg.ffn_hidden();
  return block_arena::bytes(tokens * 2 * F) + block_arena::bytes(tokens * F) +
         linear_weight_workspace_bytes(be, tokens, std::max(cfg.d_model, F)) + workspace::alignment;
}

/// out (M, D) = FFN(in (M, D)).
template <class Backend>
[[nodiscard]] status swiglu_ffn(const Backend& be, const model_config& cfg, const ffn_weights& w,
                                tensor_view<const float, 2> in, // (M, D)
                                tensor_view<float, 2> out,      // (M, D)
                                workspace ws) noexcept {
  const index_t M = in.shape[0], F = cfg.ffn_hidden();
  if (M == 0) return status::success();
  block_arena ar{ws};
  float* fc = ar.floats(M * 2 * F); // (M, 2F)
  float* y = ar.floats(M * F);      // (M, F)
  RODIMUS_REQUIRE(ar.ok, workspace_too_small, "workspace");
  RODIMUS_TRY(linear_weight(be, in, w.fc, make_view(fc, M, 2 * F), ar.rest()));
  RODIMUS_TRY(swiglu(be, swiglu_args<float>{make_view(static_cast<const float*>(fc), M, 2 * F),
                                            make_view(y, M, F)}));
  return linear_weight(be, make_view(static_cast<const float*>(y), M, F), w.out_proj, out,
                       ar.rest());
}

} // namespace rodimus
