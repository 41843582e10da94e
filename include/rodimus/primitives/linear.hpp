// Linear layer (matrix product with a weight stored row-major [out, in], as PyTorch's nn.Linear):
//
//   y[m, n] = sum_k x[m, k] * w[n, k]          y = x W^T, no bias
//
// x: (M, K) Act; w: (N, K) Weight (f32, bf16 or f16, e.g. mapped straight from a checkpoint);
// y: (M, N) Act. Accumulation is f64 in the scalar reference, f32 in the other backends.
#pragma once

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus {

template <class Act, class Weight> struct linear_args {
  tensor_view<const Act, 2> x;    // (M, K)
  tensor_view<const Weight, 2> w; // (N, K)
  tensor_view<Act, 2> y;          // (M, N) written
  /// A promise that no kernel writes w while this call may run (model weights, set once at load).
  /// The CUDA GEMV then loads its first weights before the kernel launched just before it has
  /// finished (cuda_launch::overlapped, backend/cuda/launch.cuh); the host backends ignore it.
  bool w_constant = false;
};

/// Whether `be` applies an input prologue (rmsnorm_linear's norm, swiglu_linear's gate) inside
/// its linear kernel for M rows, so that the pair is one kernel. False here (the host backends
/// compose the two primitives); the CUDA backend's overload says true for its GEMV's M. Callers
/// that would otherwise normalise once for several projections, or keep a composed call's
/// workspace small for long inputs, ask first.
template <class Backend> bool linear_fuses_input(const Backend&, index_t) noexcept { return false; }

/// Validation shared by every backend.
template <class Act, class Weight>
[[nodiscard]] status linear_check(const linear_args<Act, Weight>& a) noexcept {
  RODIMUS_REQUIRE(a.x.data || a.x.numel() == 0, null_pointer, "x");
  RODIMUS_REQUIRE(a.w.data || a.w.numel() == 0, null_pointer, "w");
  RODIMUS_REQUIRE(a.y.data || a.y.numel() == 0, null_pointer, "y");
  RODIMUS_REQUIRE(a.x.shape[0] >= 0 && a.x.shape[1] >= 0, bad_shape, "x");
  RODIMUS_REQUIRE(a.w.shape[0] >= 0 && a.w.shape[1] == a.x.shape[1], bad_shape, "w");
  RODIMUS_REQUIRE(a.y.shape[0] == a.x.shape[0] && a.y.shape[1] == a.w.shape[0], bad_shape, "y");
  return status::success();
}

} // namespace rodimus
