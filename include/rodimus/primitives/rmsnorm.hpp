// RMSNorm with the fused residual add of every Rodimus pre-norm (docs/MODEL.md §1.2):
//
//   s    = Residual(x) + residual          (residual absent at the first layer: s = Residual(x))
//   rstd = 1 / sqrt(mean_D(s^2) + eps)
//   y    = Act(s * rstd * weight)
//   residual_out = s                       (the stream, kept in Residual = f32; optional)
//
// x: (M, D) Act (the branch output, or the input when there is no residual); residual and
// residual_out: (M, D) Residual (f32 by default; f64 only in reference tests); weight: (D) f32;
// y: (M, D) Act. residual_out may alias residual (same pointer and strides); y must not alias x.
// s is rounded to Residual before the norm (the reference adds in f32). eps = 1e-5 in every
// release.
#pragma once

#include <cmath>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus {

template <class Act, class Residual = float> struct rmsnorm_args {
  tensor_view<const Act, 2> x;             // (M, D)
  tensor_view<const Residual, 2> residual; // (M, D) stream in; data == nullptr at the first layer
  tensor_view<Residual, 2> residual_out; // (M, D) s; data == nullptr: not kept; may alias residual
  tensor_view<const float, 1> weight;    // (D)
  tensor_view<Act, 2> y;                 // (M, D) written
  float eps = 1e-5f;
};

/// Validation shared by every backend.
template <class Act, class Residual>
[[nodiscard]] status rmsnorm_check(const rmsnorm_args<Act, Residual>& a) noexcept {
  RODIMUS_REQUIRE(a.x.data || a.x.numel() == 0, null_pointer, "x");
  RODIMUS_REQUIRE(a.y.data || a.y.numel() == 0, null_pointer, "y");
  RODIMUS_REQUIRE(a.weight.data || a.weight.numel() == 0, null_pointer, "weight");
  RODIMUS_REQUIRE(a.x.shape[0] >= 0 && a.x.shape[1] > 0, bad_shape, "x");
  const index_t M = a.x.shape[0], D = a.x.shape[1];
  RODIMUS_REQUIRE(a.weight.shape[0] == D, bad_shape, "weight");
  RODIMUS_REQUIRE(has_shape(a.y, {M, D}), bad_shape, "y");
  RODIMUS_REQUIRE(!a.residual.data || has_shape(a.residual, {M, D}), bad_shape, "residual");
  RODIMUS_REQUIRE(!a.residual_out.data || has_shape(a.residual_out, {M, D}), bad_shape,
                  "residual_out");
  RODIMUS_REQUIRE(std::isfinite(a.eps) && a.eps >= 0.0f, bad_argument, "eps");
  return status::success();
}

} // namespace rodimus
