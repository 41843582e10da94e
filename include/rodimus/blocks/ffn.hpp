// The SwiGLU FFN of a Rodimus+ block (docs/MODEL.md §1.6), composed of the primitives:
//
//   fc  = c . ffn.fc^T                 (M, 2F) [value | gate]
//   y   = silu(fc[:, F:]) * fc[:, :F]  (M, F)  SiLU on the SECOND half (MODEL.md pitfall 3)
//   out = y . ffn.out_proj^T           (M, D)
// Where the backend fuses a linear's input (linear_fuses_input: on CUDA the GEMV at one or two
// rows, cuBLAS's operand past them), the last two are one swiglu_linear call.
#pragma once

#include <algorithm>

#include <cstddef>

#include "rodimus/blocks/common.hpp"
#include "rodimus/model/config.hpp"
#include "rodimus/model/weight_views.hpp"
#include "rodimus/primitives/linear.hpp"
#include "rodimus/primitives/swiglu.hpp"
#include "rodimus/primitives/swiglu_linear.hpp"

namespace rodimus {

template <class Backend>
std::size_t swiglu_ffn_workspace_bytes(const Backend& be, const model_config& cfg,
                                       index_t tokens) noexcept {
  const index_t F = cfg.ffn_hidden();
  return block_arena::bytes(tokens * 2 * F) + block_arena::bytes(tokens * F) +
         linear_weight_workspace_bytes(be, tokens, std::max(cfg.d_model, F),
                                       std::max(cfg.d_model, 2 * F)) +
         workspace::alignment;
}

/// out (M, D) = FFN(in (M, D)).
template <class Backend>
[[nodiscard]] status swiglu_ffn(const Backend& be, const model_config& cfg, const ffn_weights& w,
                                normed_input in,           // (M, D)
                                tensor_view<float, 2> out, // (M, D)
                                workspace ws) noexcept {
  const index_t M = in.rows(), F = cfg.ffn_hidden();
  if (M == 0) return status::success();
  block_arena ar{ws};
  float* fc = ar.floats(M * 2 * F); // (M, 2F)
  float* y = ar.floats(M * F);      // (M, F)
  RODIMUS_REQUIRE(ar.ok, workspace_too_small, "workspace");
  RODIMUS_TRY(linear_normed(be, in, w.fc, make_view(fc, M, 2 * F), ar.rest()));
  const auto fcv = make_view(static_cast<const float*>(fc), M, 2 * F);
  if (linear_fuses_input(be, M) && !w.out_proj.quantised()) // the gate on the product's way in
    return swiglu_linear_weight(be, fcv, w.out_proj, out, ar.rest());
  RODIMUS_TRY(swiglu(be, swiglu_args<float>{fcv, make_view(y, M, F)}));
  return linear_weight(be, make_view(static_cast<const float*>(y), M, F), w.out_proj, out,
                       ar.rest());
}

} // namespace rodimus
