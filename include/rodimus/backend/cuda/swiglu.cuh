// SwiGLU on the CUDA backend (math and shapes in rodimus/primitives/swiglu.hpp):
//
//   y[m, f] = Act( silu(fc[m, F + f]) * fc[m, f] )      in f32
//
// One grid-stride loop over the M x F outputs (any strides); every pointer in device memory.
#pragma once

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/elementwise.hpp"
#include "rodimus/primitives/swiglu.hpp"

namespace rodimus {

namespace detail {

template <class Act> __global__ void swiglu_kernel(const swiglu_args<Act> a) {
  begin_after_prior_kernels();
  const index_t F = a.y.shape[1], n = a.y.shape[0] * F;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += index_t(gridDim.x) * blockDim.x) {
    const index_t m = i / F, f = i % F;
    const float v = load_as<float>(a.fc(m, f)), gate = load_as<float>(a.fc(m, F + f));
    a.y(m, f) = store_as<Act>(silu(gate) * v);
  }
}

} // namespace detail

template <int Sm, class Act>
[[nodiscard]] status swiglu(const cuda<Sm>& be, const swiglu_args<Act>& a) noexcept {
  RODIMUS_TRY(swiglu_check(a));
  const index_t n = a.y.numel();
  if (n == 0) return status::success();
  constexpr int threads = 256;
  RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be), detail::swiglu_kernel<Act>,
                                  detail::elements_grid(n, threads), threads, 0, a));
  return status::success();
}

} // namespace rodimus
