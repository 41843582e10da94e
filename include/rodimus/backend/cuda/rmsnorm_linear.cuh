// rmsnorm_linear() on the CUDA backend (math and shapes in rodimus/primitives/rmsnorm_linear.hpp):
// the GEMV kernel with its RMSNorm prologue staged in shared memory (linear.cuh,
// linear_input_prologue) at 1 or 2 rows that allow 16-byte pieces; past the GEMV with
// 16-bit weights, the prologue written straight as cuBLAS's operand (linear_operand.cuh) and the
// GEMM; else rmsnorm (or gated_rmsnorm) and linear one after the other (rmsnorm_linear_composed),
// with the workspace that rmsnorm_linear_workspace_bytes reports.
#pragma once

#include <cstddef>
#include <cstdint>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/gated_rmsnorm.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/backend/cuda/linear.cuh"
#include "rodimus/backend/cuda/linear_operand.cuh"
#include "rodimus/backend/cuda/rmsnorm.cuh"
#include "rodimus/primitives/rmsnorm_linear.hpp"

namespace rodimus {
namespace detail {

/// Whether every view the prologue reads or writes has unit inner stride (linear_input_prologue
/// carries row strides only).
template <class Weight>
bool rmsnorm_linear_unit_inner(const rmsnorm_linear_args<Weight>& a) noexcept {
  auto unit = [](const auto& v) { return !v.data || v.stride[1] == 1; };
  return unit(a.x) && unit(a.residual) && unit(a.gate) && unit(a.sum_out) &&
         a.norm_weight.stride[0] == 1;
}

/// Whether the call runs as one GEMV with the prologue staged in shared memory
/// (linear_gemv_stages: 1 or 2 rows of at most 32 KiB), weights the kernel reads as 16-byte
/// pieces with K a whole number of them, and every f32 row (x, residual, gate, sum_out,
/// norm_weight) 16-byte aligned with unit inner stride. More rows take the operand path (or the
/// norm and the plain GEMV): the prologue inside the GEMV's loop would be recomputed for every
/// row group (linear.cuh).
template <int Sm, class Weight>
bool rmsnorm_linear_fusable(const rmsnorm_linear_args<Weight>& a) noexcept {
  const index_t M = a.x.shape[0], K = a.x.shape[1];
  constexpr index_t vec = 16 / index_t(sizeof(Weight));
  if (!linear_gemv_stages<Sm>(M, K) || a.w.shape[0] < 1 || K % vec != 0) return false;
  if (!linear_gemv_vec(rmsnorm_linear_product(a, a.x))) return false;
  auto rows_ok = [M](const auto& v) {
    return !v.data ||
           (reinterpret_cast<std::uintptr_t>(v.data) % 16 == 0 && (M == 1 || v.stride[0] % 4 == 0));
  };
  return rows_ok(a.x) && rows_ok(a.residual) && rows_ok(a.gate) && rows_ok(a.sum_out) &&
         rmsnorm_linear_unit_inner(a) &&
         reinterpret_cast<std::uintptr_t>(a.norm_weight.data) % 16 == 0;
}

template <class Weight>
linear_input_prologue rmsnorm_linear_prologue(const rmsnorm_linear_args<Weight>& a) noexcept {
  linear_input_prologue np;
  np.residual = a.residual.data;
  np.residual_stride = a.residual.stride[0];
  np.gate = a.gate.data;
  np.gate_stride = a.gate.stride[0];
  np.sum_out = a.sum_out.data;
  np.sum_stride = a.sum_out.stride[0];
  np.weight = a.norm_weight.data;
  np.eps = a.eps;
  return np;
}

/// The call's path (rmsnorm_linear and its workspace query read the same choice).
template <int Sm, class Weight>
fused_input_path rmsnorm_linear_path(const rmsnorm_linear_args<Weight>& a) noexcept {
  if (rmsnorm_linear_fusable<Sm>(a)) return fused_input_path::gemv;
  if (rmsnorm_linear_unit_inner(a) &&
      linear_operand_path<Sm>(rmsnorm_linear_product(a, a.x), rmsnorm_linear_prologue(a)))
    return fused_input_path::operand;
  return fused_input_path::composed;
}

} // namespace detail

template <int Sm, class Weight>
std::size_t rmsnorm_linear_workspace_bytes(const cuda<Sm>& be,
                                           const rmsnorm_linear_args<Weight>& a) noexcept {
  if (!rmsnorm_linear_check(a).ok()) return 0;
  switch (detail::rmsnorm_linear_path<Sm>(a)) {
  case detail::fused_input_path::gemv: return 0;
  case detail::fused_input_path::operand:
    return linear_workspace_bytes(be, rmsnorm_linear_product(a, a.x));
  default: return rmsnorm_linear_composed_workspace_bytes(be, a);
  }
}

/// y = rmsnorm(x [+ residual | * silu(gate)]) . w^T on the GPU. Enqueues on be.stream.
template <int Sm, class Weight>
[[nodiscard]] status rmsnorm_linear(const cuda<Sm>& be, const rmsnorm_linear_args<Weight>& a,
                                    workspace ws = {}) noexcept {
  RODIMUS_TRY(rmsnorm_linear_check(a));
  const auto product = rmsnorm_linear_product(a, a.x);
  const auto np = detail::rmsnorm_linear_prologue(a);
  switch (detail::rmsnorm_linear_path<Sm>(a)) {
  case detail::fused_input_path::gemv:
    return detail::linear_gemv<Sm, true>(product, detail::launch_on(be), np, be.tuning.gemv);
  case detail::fused_input_path::operand: return detail::linear_operand_gemm(be, product, np, ws);
  default: return rmsnorm_linear_composed(be, a, ws);
  }
}

} // namespace rodimus
