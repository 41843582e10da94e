// swiglu_linear() on the CUDA backend (math and shapes in rodimus/primitives/swiglu_linear.hpp):
// the GEMV kernel reading the value half of fc with the gate half through its input prologue
// (linear.cuh, linear_input_prologue: s = value * silu(gate), no norm), staged in shared memory, at
// 1 or 2 rows that allow 16-byte pieces; past the GEMV with 16-bit
// weights, the same prologue written straight as cuBLAS's operand (linear_operand.cuh) and the
// GEMM; else swiglu and linear one after the other (swiglu_linear_composed).
#pragma once

#include <cstddef>
#include <cstdint>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/backend/cuda/linear.cuh"
#include "rodimus/backend/cuda/linear_operand.cuh"
#include "rodimus/backend/cuda/swiglu.cuh"
#include "rodimus/primitives/swiglu_linear.hpp"

namespace rodimus {
namespace detail {

/// The value half of fc: (M, F) with fc's row stride.
template <class Weight>
tensor_view<const float, 2> swiglu_linear_values(const swiglu_linear_args<Weight>& a) noexcept {
  tensor_view<const float, 2> v = a.fc;
  v.shape[1] = a.fc.shape[1] / 2;
  return v;
}

/// Whether the call runs as one GEMV with the gate prologue staged in shared memory
/// (linear_gemv_stages: 1 or 2 rows), weights the kernel reads as 16-byte pieces with F a whole
/// number of them, fc 16-byte aligned with unit inner stride, both halves included (F % 4 == 0).
template <int Sm, class Weight>
bool swiglu_linear_fusable(const swiglu_linear_args<Weight>& a) noexcept {
  const index_t M = a.fc.shape[0], F = a.fc.shape[1] / 2;
  constexpr index_t vec = 16 / index_t(sizeof(Weight));
  if (!linear_gemv_stages<Sm>(M, F) || a.w.shape[0] < 1 || F % vec != 0 || F % 4 != 0) return false;
  if (reinterpret_cast<std::uintptr_t>(a.fc.data) % 16 != 0 || a.fc.stride[1] != 1 ||
      (M > 1 && a.fc.stride[0] % 4 != 0))
    return false;
  return linear_gemv_vec(swiglu_linear_product(a, swiglu_linear_values(a)));
}

/// The prologue of the value half: s = value * silu(gate), no norm.
template <class Weight>
linear_input_prologue swiglu_linear_prologue(const swiglu_linear_args<Weight>& a) noexcept {
  linear_input_prologue np;
  np.gate = a.fc.data + a.fc.shape[1] / 2 * a.fc.stride[1];
  np.gate_stride = a.fc.stride[0];
  return np;
}

/// The call's path (swiglu_linear and its workspace query read the same choice).
template <int Sm, class Weight>
fused_input_path swiglu_linear_path(const swiglu_linear_args<Weight>& a) noexcept {
  if (swiglu_linear_fusable<Sm>(a)) return fused_input_path::gemv;
  if (linear_operand_path<Sm>(swiglu_linear_product(a, swiglu_linear_values(a)),
                              swiglu_linear_prologue(a)))
    return fused_input_path::operand;
  return fused_input_path::composed;
}

} // namespace detail

template <int Sm, class Weight>
std::size_t swiglu_linear_workspace_bytes(const cuda<Sm>& be,
                                          const swiglu_linear_args<Weight>& a) noexcept {
  if (!swiglu_linear_check(a).ok()) return 0;
  switch (detail::swiglu_linear_path<Sm>(a)) {
  case detail::fused_input_path::gemv: return 0;
  case detail::fused_input_path::operand:
    return linear_workspace_bytes(be, swiglu_linear_product(a, detail::swiglu_linear_values(a)));
  default: return swiglu_linear_composed_workspace_bytes(be, a);
  }
}

/// y = swiglu(fc) . w^T on the GPU. Enqueues on be.stream.
template <int Sm, class Weight>
[[nodiscard]] status swiglu_linear(const cuda<Sm>& be, const swiglu_linear_args<Weight>& a,
                                   workspace ws = {}) noexcept {
  RODIMUS_TRY(swiglu_linear_check(a));
  const auto product = swiglu_linear_product(a, detail::swiglu_linear_values(a));
  const auto np = detail::swiglu_linear_prologue(a);
  switch (detail::swiglu_linear_path<Sm>(a)) {
  case detail::fused_input_path::gemv:
    return detail::linear_gemv<Sm, true>(product, detail::launch_on(be), np, be.tuning.gemv);
  case detail::fused_input_path::operand: return detail::linear_operand_gemm(be, product, np, ws);
  default: return swiglu_linear_composed(be, a, ws);
  }
}

} // namespace rodimus
