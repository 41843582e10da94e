// The scaled add (the Rodimus mixer's internal skip) on the CUDA backend (math and shapes in
// rodimus/primitives/scale_add.hpp), in f32:
//
//   o[m, e] += c[m, e] * w[e]            one fmaf per element
//
// One grid-stride loop over the M x E elements (any strides).
#pragma once

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/primitives/scale_add.hpp"

namespace rodimus {

namespace detail {

/// Sm: only to make the kernel a template (one definition across translation units).
template <int Sm> __global__ void scale_add_kernel(const scale_add_args a) {
  begin_after_prior_kernels();
  const index_t E = a.o.shape[1], n = a.o.shape[0] * E;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += index_t(gridDim.x) * blockDim.x) {
    const index_t m = i / E, e = i - m * E;
    a.o(m, e) = fmaf(a.c(m, e), a.w(e), a.o(m, e));
  }
}

} // namespace detail

template <int Sm>
[[nodiscard]] status scale_add(const cuda<Sm>& be, const scale_add_args& a) noexcept {
  RODIMUS_TRY(scale_add_check(a));
  const index_t n = a.o.numel();
  if (n == 0) return status::success();
  constexpr int threads = 256;
  RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be), detail::scale_add_kernel<Sm>,
                                  detail::elements_grid(n, threads), threads, 0, a));
  return status::success();
}

} // namespace rodimus
