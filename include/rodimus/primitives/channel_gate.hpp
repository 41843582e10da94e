// The Rodimus mixer's channel (input) gate, after its two low-rank projections (docs/MODEL.md §2.3
// step 6, blocks/mixer.hpp step 6), in place on the up-projection's output u:
//
//   u[m, e] = sigmoid(u[m, e] + bias[e]) * x[m, e]          f32 (double in the scalar reference)
//
// u: (M, E) f32, in: the pre-activation, out: the gated value; bias: (E) f32; x: (M, E) f32, the
// pre-conv data path (must not overlap u). sigmoid as in primitives/elementwise.hpp.
#pragma once

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/primitives/elementwise.hpp"

namespace rodimus {

/// The gate of one element, on the value type (double in the scalar reference, float on CUDA and in
/// the CPU tails, SIMD batches in the CPU body): sigmoid(u + bias) * x.
template <class T> RODIMUS_HOST_DEVICE inline T channel_gate_value(T u, T bias, T x) noexcept {
  return sigmoid(u + bias) * x;
}

struct channel_gate_args {
  tensor_view<float, 2> u;          // (M, E) in: pre-activation, out: gated
  tensor_view<const float, 1> bias; // (E)
  tensor_view<const float, 2> x;    // (M, E)
};

/// Validation shared by every backend.
[[nodiscard]] inline status channel_gate_check(const channel_gate_args& a) noexcept {
  RODIMUS_REQUIRE(a.u.data || a.u.numel() == 0, null_pointer, "u");
  RODIMUS_REQUIRE(a.x.data || a.x.numel() == 0, null_pointer, "x");
  RODIMUS_REQUIRE(a.bias.data || a.bias.numel() == 0, null_pointer, "bias");
  RODIMUS_REQUIRE(a.u.shape[0] >= 0 && a.u.shape[1] >= 0, bad_shape, "u");
  RODIMUS_REQUIRE(a.bias.shape[0] == a.u.shape[1], bad_shape, "bias");
  RODIMUS_REQUIRE(has_shape(a.x, {a.u.shape[0], a.u.shape[1]}), bad_shape, "x");
  return status::success();
}

} // namespace rodimus
