// The Rodimus mixer's channel gate on the CUDA backend (math and shapes in
// rodimus/primitives/channel_gate.hpp), in f32:
//
//   u[m, e] = sigmoid(u[m, e] + bias[e]) * x[m, e]
//
// One grid-stride loop over the M x E elements (any strides; expf, not the fast intrinsic).
#pragma once

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/primitives/channel_gate.hpp"
#include "rodimus/primitives/elementwise.hpp"

namespace rodimus {

namespace detail {

/// Sm: only to make the kernel a template (one definition across translation units).
template <int Sm> __global__ void channel_gate_kernel(const channel_gate_args a) {
  begin_after_prior_kernels();
  const index_t E = a.u.shape[1], n = a.u.shape[0] * E;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += index_t(gridDim.x) * blockDim.x) {
    const index_t m = i / E, e = i - m * E;
    a.u(m, e) = channel_gate_value(a.u(m, e), a.bias(e), a.x(m, e));
  }
}

} // namespace detail

template <int Sm>
[[nodiscard]] status channel_gate(const cuda<Sm>& be, const channel_gate_args& a) noexcept {
  RODIMUS_TRY(channel_gate_check(a));
  const index_t n = a.u.numel();
  if (n == 0) return status::success();
  constexpr int threads = 256;
  RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be), detail::channel_gate_kernel<Sm>,
                                  detail::elements_grid(n, threads), threads, 0, a));
  return status::success();
}

} // namespace rodimus
