// SwiGLU followed by a linear layer, as one call (the second half of the Rodimus+ FFN,
// docs/MODEL.md §1.6):
//
//   h[m, f] = silu(fc[m, F + f]) * fc[m, f]      f < F   (swiglu.hpp: SiLU on the SECOND half)
//   y = h . w^T                                          (linear.hpp)
//
// fc: (M, 2F) f32 [value | gate]; w: (N, F) Weight; y: (M, N) f32, not overlapping fc.
//
// Why: at batch-1 decode the SwiGLU is a kernel over one row of a few thousand values, almost all
// launch and latency; the CUDA GEMV reads the row anyway and applies the gate on its way in
// (backend/cuda/swiglu_linear.cuh). Every other case and backend runs swiglu then linear
// (swiglu_linear_composed), which is also the reference.
#pragma once

#include <cstddef>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/primitives/linear.hpp"
#include "rodimus/primitives/swiglu.hpp"

namespace rodimus {

template <class Weight> struct swiglu_linear_args {
  tensor_view<const float, 2> fc; // (M, 2F) [value | gate]
  tensor_view<const Weight, 2> w; // (N, F)
  tensor_view<float, 2> y;        // (M, N) written
  /// As linear_args::w_constant: no kernel writes w while this call may run.
  bool w_constant = false;
};

/// Validation shared by every backend.
template <class Weight>
[[nodiscard]] status swiglu_linear_check(const swiglu_linear_args<Weight>& a) noexcept {
  RODIMUS_REQUIRE(a.fc.data || a.fc.numel() == 0, null_pointer, "fc");
  RODIMUS_REQUIRE(a.w.data || a.w.numel() == 0, null_pointer, "w");
  RODIMUS_REQUIRE(a.y.data || a.y.numel() == 0, null_pointer, "y");
  RODIMUS_REQUIRE(a.fc.shape[0] >= 0 && a.fc.shape[1] > 0 && a.fc.shape[1] % 2 == 0, bad_shape,
                  "fc");
  RODIMUS_REQUIRE(a.w.shape[0] >= 0 && a.w.shape[1] == a.fc.shape[1] / 2, bad_shape, "w");
  RODIMUS_REQUIRE(has_shape(a.y, {a.fc.shape[0], a.w.shape[0]}), bad_shape, "y");
  RODIMUS_REQUIRE(!views_overlap(a.y, a.fc), bad_argument, "y");
  return status::success();
}

/// The gated rows h (M, F) . w^T -> y: the linear part of a call.
template <class Weight>
linear_args<float, Weight> swiglu_linear_product(const swiglu_linear_args<Weight>& a,
                                                 tensor_view<const float, 2> h) noexcept {
  return linear_args<float, Weight>{h, a.w, a.y, a.w_constant};
}

/// Workspace of swiglu_linear_composed: h (M, F) f32, then linear's own.
template <class Backend, class Weight>
std::size_t swiglu_linear_composed_workspace_bytes(const Backend& be,
                                                   const swiglu_linear_args<Weight>& a) noexcept {
  if (!swiglu_linear_check(a).ok()) return 0;
  const index_t M = a.fc.shape[0], F = a.fc.shape[1] / 2;
  const std::size_t n = workspace::product(std::size_t(M), std::size_t(F));
  // linear's workspace depends on the shapes only (any non-null rows stand in for h).
  const auto lin = swiglu_linear_product(a, make_view(a.fc.data, M, F));
  return workspace::sum(workspace::alignment, workspace::bytes_for<float>(n > 0 ? n : 1),
                        linear_workspace_bytes(be, lin));
}

/// swiglu into the workspace, then linear: the reference of every backend, and every backend's
/// path where it has no fused one.
template <class Backend, class Weight>
[[nodiscard]] status swiglu_linear_composed(const Backend& be, const swiglu_linear_args<Weight>& a,
                                            workspace ws) noexcept {
  RODIMUS_TRY(swiglu_linear_check(a));
  const index_t M = a.fc.shape[0], F = a.fc.shape[1] / 2;
  if (M == 0) return status::success();
  float* h = ws.take<float>(std::size_t(M) * std::size_t(F));
  RODIMUS_REQUIRE(h != nullptr, workspace_too_small, "ws");
  RODIMUS_TRY(swiglu(be, swiglu_args<float>{a.fc, make_view(h, M, F)}));
  return linear(be, swiglu_linear_product(a, make_view(static_cast<const float*>(h), M, F)), ws);
}

/// Workspace of swiglu_linear on a backend without a fused path.
template <class Backend, class Weight>
std::size_t swiglu_linear_workspace_bytes(const Backend& be,
                                          const swiglu_linear_args<Weight>& a) noexcept {
  return swiglu_linear_composed_workspace_bytes(be, a);
}

/// y = swiglu(fc) . w^T on a backend without a fused path.
template <class Backend, class Weight>
[[nodiscard]] status swiglu_linear(const Backend& be, const swiglu_linear_args<Weight>& a,
                                   workspace ws = {}) noexcept {
  return swiglu_linear_composed(be, a, ws);
}

} // namespace rodimus
