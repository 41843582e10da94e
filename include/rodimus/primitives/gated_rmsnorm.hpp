// Gated RMSNorm of the Rodimus mixer output (docs/MODEL.md §2.3 step 12, norm_before_gate = False,
// one group):
//
//   z = x * silu(gate)                       element-wise, f32 in the reference (double in scalar)
//   y = Act(z * rsqrt(mean_E(z^2) + eps) * weight)
//
// The gate is applied BEFORE normalising: norm(x * silu(g)), not norm(x) * silu(g).
// x, gate: (M, E) Act; weight: (E) f32; y: (M, E) Act (may alias x or gate exactly). eps = 1e-5.
#pragma once

#include <cmath>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus {

template <class Act> struct gated_rmsnorm_args {
  tensor_view<const Act, 2> x;        // (M, E)
  tensor_view<const Act, 2> gate;     // (M, E)
  tensor_view<const float, 1> weight; // (E)
  tensor_view<Act, 2> y;              // (M, E) written
  float eps = 1e-5f;
};

/// Validation shared by every backend.
template <class Act>
[[nodiscard]] status gated_rmsnorm_check(const gated_rmsnorm_args<Act>& a) noexcept {
  RODIMUS_REQUIRE(a.x.data || a.x.numel() == 0, null_pointer, "x");
  RODIMUS_REQUIRE(a.gate.data || a.gate.numel() == 0, null_pointer, "gate");
  RODIMUS_REQUIRE(a.y.data || a.y.numel() == 0, null_pointer, "y");
  RODIMUS_REQUIRE(a.weight.data || a.weight.numel() == 0, null_pointer, "weight");
  RODIMUS_REQUIRE(a.x.shape[0] >= 0 && a.x.shape[1] > 0, bad_shape, "x");
  const index_t M = a.x.shape[0], E = a.x.shape[1];
  RODIMUS_REQUIRE(has_shape(a.gate, {M, E}), bad_shape, "gate");
  RODIMUS_REQUIRE(a.weight.shape[0] == E, bad_shape, "weight");
  RODIMUS_REQUIRE(has_shape(a.y, {M, E}), bad_shape, "y");
  RODIMUS_REQUIRE(std::isfinite(a.eps) && a.eps >= 0.0f, bad_argument, "eps");
  return status::success();
}

} // namespace rodimus
