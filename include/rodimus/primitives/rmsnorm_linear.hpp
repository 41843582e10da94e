// RMSNorm followed by a linear layer, as one call (the pre-norm of every Rodimus sub-block and the
// mixer's gated norm before out_proj, docs/MODEL.md §1.2 and §2.3 step 12):
//
//   s = x + residual            (residual given; the stream of rmsnorm.hpp)
//   s = x * silu(gate)          (gate given: the gated RMSNorm of gated_rmsnorm.hpp)
//   s = x                       (neither)
//   n = s * rsqrt(mean_K(s^2) + eps) * norm_weight
//   y = n . w^T                 (linear.hpp)
//   sum_out = s                 (optional: the stream kept, as rmsnorm's residual_out)
//
// x, residual, gate, sum_out: (M, K) f32; norm_weight: (K) f32; w: (N, K) Weight; y: (M, N) f32.
// residual and gate are not given together, nor gate and sum_out. sum_out must not alias x,
// residual or gate (a fused kernel reads them in every CTA while one of them writes it); y aliases
// none of the inputs.
//
// Why: at batch-1 decode a norm is a separate kernel over one row of a few thousand values whose
// cost is almost all launch and latency. The CUDA GEMV reads the whole x row anyway, so it can
// compute the row's sum of squares on the way and scale each output by rsqrt at the end:
// y = rsqrt(mean(s^2) + eps) * ((s * norm_weight) . w^T), one kernel instead of two
// (backend/cuda/linear.cuh, `linear_fuses_input`). Past the GEMV's rows, CUDA writes the normed
// rows straight as cuBLAS's 16-bit operand (backend/cuda/linear_operand.cuh). Every other case,
// and every other backend, runs the two primitives (rmsnorm_linear_composed below), which is also
// the reference.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/primitives/gated_rmsnorm.hpp"
#include "rodimus/primitives/linear.hpp"
#include "rodimus/primitives/rmsnorm.hpp"

namespace rodimus {

template <class Weight> struct rmsnorm_linear_args {
  tensor_view<const float, 2> x;           // (M, K)
  tensor_view<const float, 2> residual;    // (M, K) or data == nullptr
  tensor_view<const float, 2> gate;        // (M, K) or data == nullptr
  tensor_view<float, 2> sum_out;           // (M, K) s written, or data == nullptr
  tensor_view<const float, 1> norm_weight; // (K)
  float eps = 1e-5f;
  tensor_view<const Weight, 2> w; // (N, K)
  tensor_view<float, 2> y;        // (M, N) written
  /// As linear_args::w_constant: no kernel writes w while this call may run.
  bool w_constant = false;
};

/// Validation shared by every backend.
template <class Weight>
[[nodiscard]] status rmsnorm_linear_check(const rmsnorm_linear_args<Weight>& a) noexcept {
  RODIMUS_REQUIRE(a.x.data || a.x.numel() == 0, null_pointer, "x");
  RODIMUS_REQUIRE(a.w.data || a.w.numel() == 0, null_pointer, "w");
  RODIMUS_REQUIRE(a.y.data || a.y.numel() == 0, null_pointer, "y");
  RODIMUS_REQUIRE(a.norm_weight.data || a.norm_weight.numel() == 0, null_pointer, "norm_weight");
  RODIMUS_REQUIRE(a.x.shape[0] >= 0 && a.x.shape[1] > 0, bad_shape, "x");
  const index_t M = a.x.shape[0], K = a.x.shape[1];
  RODIMUS_REQUIRE(a.norm_weight.shape[0] == K, bad_shape, "norm_weight");
  RODIMUS_REQUIRE(!a.residual.data || has_shape(a.residual, {M, K}), bad_shape, "residual");
  RODIMUS_REQUIRE(!a.gate.data || has_shape(a.gate, {M, K}), bad_shape, "gate");
  RODIMUS_REQUIRE(!(a.residual.data && a.gate.data), bad_argument, "gate");
  RODIMUS_REQUIRE(!(a.gate.data && a.sum_out.data), bad_argument, "sum_out"); // no stream there
  RODIMUS_REQUIRE(!a.sum_out.data || has_shape(a.sum_out, {M, K}), bad_shape, "sum_out");
  RODIMUS_REQUIRE(!views_overlap(a.sum_out, a.x) && !views_overlap(a.sum_out, a.residual) &&
                      !views_overlap(a.sum_out, a.gate),
                  bad_argument, "sum_out");
  RODIMUS_REQUIRE(a.w.shape[0] >= 0 && a.w.shape[1] == K, bad_shape, "w");
  RODIMUS_REQUIRE(has_shape(a.y, {M, a.w.shape[0]}), bad_shape, "y");
  RODIMUS_REQUIRE(!views_overlap(a.y, a.x) && !views_overlap(a.y, a.residual) &&
                      !views_overlap(a.y, a.gate) && !views_overlap(a.y, a.sum_out),
                  bad_argument, "y");
  RODIMUS_REQUIRE(std::isfinite(a.eps) && a.eps >= 0.0f, bad_argument, "eps");
  return status::success();
}

/// The linear part of a call: n (M, K) . w^T -> y.
template <class Weight>
linear_args<float, Weight> rmsnorm_linear_product(const rmsnorm_linear_args<Weight>& a,
                                                  tensor_view<const float, 2> n) noexcept {
  return linear_args<float, Weight>{n, a.w, a.y, a.w_constant};
}

/// Workspace of rmsnorm_linear_composed: the normed rows n (M, K) f32, then linear's own.
template <class Backend, class Weight>
std::size_t rmsnorm_linear_composed_workspace_bytes(const Backend& be,
                                                    const rmsnorm_linear_args<Weight>& a) noexcept {
  if (!rmsnorm_linear_check(a).ok()) return 0;
  const std::size_t n = workspace::product(std::size_t(a.x.shape[0]), std::size_t(a.x.shape[1]));
  // linear's workspace depends on the shapes only; n's address is not known yet (any non-null).
  const auto lin = rmsnorm_linear_product(a, make_view(a.x.data, a.x.shape[0], a.x.shape[1]));
  return workspace::sum(workspace::alignment, workspace::bytes_for<float>(n > 0 ? n : 1),
                        linear_workspace_bytes(be, lin));
}

/// The two primitives one after the other: rmsnorm (or gated_rmsnorm) into the workspace, then
/// linear. The reference of every backend, and every backend's path where it has no fused one.
template <class Backend, class Weight>
[[nodiscard]] status rmsnorm_linear_composed(const Backend& be,
                                             const rmsnorm_linear_args<Weight>& a,
                                             workspace ws) noexcept {
  RODIMUS_TRY(rmsnorm_linear_check(a));
  const index_t M = a.x.shape[0], K = a.x.shape[1];
  if (M == 0) return status::success();
  float* n = ws.take<float>(std::size_t(M) * std::size_t(K));
  RODIMUS_REQUIRE(n != nullptr, workspace_too_small, "ws");
  if (a.gate.data) {
    gated_rmsnorm_args<float> ga;
    ga.x = a.x;
    ga.gate = a.gate;
    ga.weight = a.norm_weight;
    ga.y = make_view(n, M, K);
    ga.eps = a.eps;
    RODIMUS_TRY(gated_rmsnorm(be, ga));
  } else {
    rmsnorm_args<float, float> na;
    na.x = a.x;
    na.residual = a.residual;
    na.residual_out = a.sum_out;
    na.weight = a.norm_weight;
    na.y = make_view(n, M, K);
    na.eps = a.eps;
    RODIMUS_TRY(rmsnorm(be, na));
  }
  return linear(be, rmsnorm_linear_product(a, make_view(static_cast<const float*>(n), M, K)), ws);
}

/// Workspace of rmsnorm_linear on a backend without a fused path.
template <class Backend, class Weight>
std::size_t rmsnorm_linear_workspace_bytes(const Backend& be,
                                           const rmsnorm_linear_args<Weight>& a) noexcept {
  return rmsnorm_linear_composed_workspace_bytes(be, a);
}

/// y = rmsnorm(x [+ residual | * silu(gate)]) . w^T on a backend without a fused path.
template <class Backend, class Weight>
[[nodiscard]] status rmsnorm_linear(const Backend& be, const rmsnorm_linear_args<Weight>& a,
                                    workspace ws = {}) noexcept {
  return rmsnorm_linear_composed(be, a, ws);
}

} // namespace rodimus
