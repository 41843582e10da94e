// Gated RMSNorm on the CUDA backend (math and shapes in rodimus/primitives/gated_rmsnorm.hpp):
//
//   z = f32(x) * silu(f32(gate));  y = Act(z * (1 / sqrt(mean(z^2) + eps)) * weight)
//
// f32 throughout. Kernel: one row per thread group (backend/cuda/reduce.cuh: a warp per row up to
// 512 elements, a CTA of 256 threads above), two passes with the same element -> thread mapping:
// pass 1 sums z^2, the group reduces, pass 2 recomputes z and writes y. y may alias x or gate
// exactly: every element is read and then written by the same thread, after its pass-1 read, and
// no other thread touches it. Any strides. Both passes walk the row in chunks of row_unroll
// elements per thread, all loads of a chunk issued before its stores (one memory round trip per
// chunk: a decode row of 4096 is latency-bound).
#pragma once

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/backend/cuda/reduce.cuh"
#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/elementwise.hpp"
#include "rodimus/primitives/gated_rmsnorm.hpp"

namespace rodimus {

namespace detail {

template <class Rows, class Act>
__global__ void __launch_bounds__(Rows::threads)
    gated_rmsnorm_kernel(const gated_rmsnorm_args<Act> a) {
  begin_after_prior_kernels();
  __shared__ float scratch[32];
  constexpr int U = row_unroll;
  constexpr index_t step = index_t(U) * Rows::threads_per_row;
  const index_t M = a.x.shape[0], E = a.x.shape[1];
  const index_t lane = Rows::lane();
  for (index_t m = Rows::first_row(); m < M; m += Rows::row_stride()) {
    float ss = 0.0f;
    for (index_t e0 = lane; e0 < E; e0 += step) {
      float x[U], g[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const index_t e = e0 + index_t(u) * Rows::threads_per_row;
        x[u] = e < E ? load_as<float>(a.x(m, e)) : 0.0f;
        g[u] = e < E ? load_as<float>(a.gate(m, e)) : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const float z = x[u] * silu(g[u]);
        ss += z * z;
      }
    }
    ss = Rows::sum(ss, scratch);
    const float rstd = 1.0f / sqrtf(ss / float(E) + a.eps);
    for (index_t e0 = lane; e0 < E; e0 += step) {
      float x[U], g[U], w[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const index_t e = e0 + index_t(u) * Rows::threads_per_row;
        x[u] = e < E ? load_as<float>(a.x(m, e)) : 0.0f;
        g[u] = e < E ? load_as<float>(a.gate(m, e)) : 0.0f;
        w[u] = e < E ? a.weight(e) : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const index_t e = e0 + index_t(u) * Rows::threads_per_row;
        if (e < E) a.y(m, e) = store_as<Act>(x[u] * silu(g[u]) * rstd * w[u]);
      }
    }
  }
}

} // namespace detail

/// gated_rmsnorm on the tag's stream; every view in device memory.
template <int Sm, class Act>
[[nodiscard]] status gated_rmsnorm(const cuda<Sm>& be, const gated_rmsnorm_args<Act>& a) noexcept {
  RODIMUS_TRY(gated_rmsnorm_check(a));
  const index_t M = a.x.shape[0], E = a.x.shape[1];
  if (M == 0) return status::success();
  using P = detail::row_policy;
  if (E <= P::warp_row_max) {
    using R = P::warp_rows;
    RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be), detail::gated_rmsnorm_kernel<R, Act>,
                                    R::grid(M), R::threads, 0, a));
  } else {
    using R = P::cta_rows;
    RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be), detail::gated_rmsnorm_kernel<R, Act>,
                                    R::grid(M), R::threads, 0, a));
  }
  RODIMUS_CUDA_TRY(cudaGetLastError());
  return status::success();
}

} // namespace rodimus
