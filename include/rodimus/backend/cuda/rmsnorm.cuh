// RMSNorm with the fused residual add on the CUDA backend (math and shapes in
// rodimus/primitives/rmsnorm.hpp):
//
//   s = f32(x) + residual;  y = Act(s * (1 / sqrt(mean(s^2) + eps)) * weight);  residual_out = s
//
// Everything in f32 (Residual = f32 only; the f64 stream exists for the scalar reference tests).
// Kernel: one row per thread group (backend/cuda/reduce.cuh: a warp per row up to 512 elements,
// a CTA of 256 threads above). A row of at most row_unroll elements per thread (2048 with 256
// threads: the 1.6B model's width) is read once into registers with its weights, reduced, and
// written (one memory round trip before the reduction instead of two passes); longer rows take
// two passes over the row with the same element -> thread mapping:
// pass 1 forms s, writes residual_out (when kept) and sums s^2 (coalesced along D); the group
// reduces; pass 2 re-reads s (from residual_out when kept, since it may alias residual and hold s
// already; else recomputed from x and residual) and writes y. Each pass walks the row in chunks of
// row_unroll elements per thread whose loads are all issued before any store (a decode row is
// latency-bound: one round trip per chunk instead of one per element). Each element of
// residual/residual_out is read and written by one thread only, so the alias needs no
// synchronisation. Any strides.
#pragma once

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/backend/cuda/reduce.cuh"
#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/rmsnorm.hpp"

namespace rodimus {

namespace detail {

template <class Rows, class Act>
__global__ void __launch_bounds__(Rows::threads) rmsnorm_kernel(const rmsnorm_args<Act, float> a) {
  begin_after_prior_kernels();
  __shared__ float scratch[32];
  constexpr int U = row_unroll;
  constexpr index_t step = index_t(U) * Rows::threads_per_row;
  const index_t M = a.x.shape[0], D = a.x.shape[1];
  const bool has_residual = a.residual.data != nullptr, keep = a.residual_out.data != nullptr;
  const index_t lane = Rows::lane();
  if (D <= step) { // the row in one chunk (a model width up to 2048): one pass, s in registers
    for (index_t m = Rows::first_row(); m < M; m += Rows::row_stride()) {
      float s[U], w[U], ss = 0.0f;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const index_t d = lane + index_t(u) * Rows::threads_per_row;
        s[u] = w[u] = 0.0f;
        if (d < D) {
          s[u] = load_as<float>(a.x(m, d));
          if (has_residual) s[u] += a.residual(m, d);
          w[u] = a.weight(d);
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const index_t d = lane + index_t(u) * Rows::threads_per_row;
        if (keep && d < D) a.residual_out(m, d) = s[u];
        ss += s[u] * s[u];
      }
      ss = Rows::sum(ss, scratch);
      const float rstd = 1.0f / sqrtf(ss / float(D) + a.eps);
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const index_t d = lane + index_t(u) * Rows::threads_per_row;
        if (d < D) a.y(m, d) = store_as<Act>(s[u] * rstd * w[u]);
      }
    }
    return;
  }
  for (index_t m = Rows::first_row(); m < M; m += Rows::row_stride()) {
    float ss = 0.0f;
    for (index_t d0 = lane; d0 < D; d0 += step) {
      // All loads of the chunk before its stores: residual_out may alias residual, so a store
      // would otherwise order the next element's loads after it (one memory round trip each).
      float s[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const index_t d = d0 + index_t(u) * Rows::threads_per_row;
        s[u] = 0.0f;
        if (d < D) {
          s[u] = load_as<float>(a.x(m, d));
          if (has_residual) s[u] += a.residual(m, d);
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const index_t d = d0 + index_t(u) * Rows::threads_per_row;
        if (keep && d < D) a.residual_out(m, d) = s[u];
        ss += s[u] * s[u];
      }
    }
    ss = Rows::sum(ss, scratch);
    const float rstd = 1.0f / sqrtf(ss / float(D) + a.eps);
    for (index_t d0 = lane; d0 < D; d0 += step) {
      float s[U], w[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const index_t d = d0 + index_t(u) * Rows::threads_per_row;
        s[u] = w[u] = 0.0f;
        if (d < D) {
          if (keep) {
            s[u] = a.residual_out(m, d); // this thread's own pass-1 write
          } else {
            s[u] = load_as<float>(a.x(m, d));
            if (has_residual) s[u] += a.residual(m, d);
          }
          w[u] = a.weight(d);
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const index_t d = d0 + index_t(u) * Rows::threads_per_row;
        if (d < D) a.y(m, d) = store_as<Act>(s[u] * rstd * w[u]);
      }
    }
  }
}

} // namespace detail

/// rmsnorm on the tag's stream; every view in device memory (f32 residual stream).
template <int Sm, class Act>
[[nodiscard]] status rmsnorm(const cuda<Sm>& be, const rmsnorm_args<Act, float>& a) noexcept {
  RODIMUS_TRY(rmsnorm_check(a));
  const index_t M = a.x.shape[0], D = a.x.shape[1];
  if (M == 0) return status::success();
  using P = detail::row_policy;
  if (D <= P::warp_row_max) {
    using R = P::warp_rows;
    RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be), detail::rmsnorm_kernel<R, Act>,
                                    R::grid(M), R::threads, 0, a));
  } else {
    using R = P::cta_rows;
    RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be), detail::rmsnorm_kernel<R, Act>,
                                    R::grid(M), R::threads, 0, a));
  }
  RODIMUS_CUDA_TRY(cudaGetLastError());
  return status::success();
}

} // namespace rodimus
