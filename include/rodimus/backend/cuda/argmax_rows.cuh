// argmax_rows on the CUDA backend (math and shapes in rodimus/primitives/argmax_rows.hpp):
//
//   out[m] = index of the largest in[m, :] (first among ties; NaN lowest), by argmax_key
//
// One CTA of 512 threads per row (rows beyond the grid looped): each thread keeps the largest key
// of its strided entries (loads 4 apart unrolled, so a thread has several loads in flight: a
// decode step's 126 464 logits are about 62 per thread), then a warp butterfly on the 64-bit keys
// and one across the warps. The keys are a total order, so the result does not depend on the
// reduction order: bit-identical to the scalar reference.
#pragma once

#include <cstdint>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/primitives/argmax_rows.hpp"

namespace rodimus {

namespace detail {

__device__ inline std::uint64_t warp_max_key(std::uint64_t k) noexcept {
  for (int o = 16; o > 0; o /= 2) {
    const std::uint64_t other = __shfl_xor_sync(0xffffffffu, k, o);
    k = other > k ? other : k;
  }
  return k;
}

template <int Threads>
__global__ void __launch_bounds__(Threads) argmax_rows_kernel(const argmax_rows_args a) {
  begin_after_prior_kernels();
  __shared__ std::uint64_t partial[Threads / 32];
  const index_t M = a.in.shape[0], V = a.in.shape[1], s = a.in.stride[1];
  const int tid = int(threadIdx.x);
  for (index_t m = blockIdx.x; m < M; m += gridDim.x) {
    const float* row = a.in.data + m * a.in.stride[0];
    std::uint64_t best = 0;
    index_t i = tid;
    for (; i + 3 * Threads < V; i += 4 * Threads) {
      float v[4];
#pragma unroll
      for (int u = 0; u < 4; ++u)
        v[u] = __ldg(row + (i + u * Threads) * s);
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const std::uint64_t k = argmax_key(v[u], i + u * Threads);
        best = k > best ? k : best;
      }
    }
    for (; i < V; i += Threads) {
      const std::uint64_t k = argmax_key(__ldg(row + i * s), i);
      best = k > best ? k : best;
    }
    best = warp_max_key(best);
    if ((tid & 31) == 0) partial[tid / 32] = best;
    __syncthreads();
    if (tid < 32) {
      std::uint64_t k = tid < Threads / 32 ? partial[tid] : 0;
      k = warp_max_key(k);
      if (tid == 0) a.out[m] = argmax_index(k);
    }
    __syncthreads(); // partial is free for the next row
  }
}

} // namespace detail

/// argmax_rows on the tag's stream; in and out in device memory.
template <int Sm>
[[nodiscard]] status argmax_rows(const cuda<Sm>& be, const argmax_rows_args& a) noexcept {
  RODIMUS_TRY(argmax_rows_check(a));
  const index_t M = a.in.shape[0];
  if (M == 0) return status::success();
  constexpr int threads = 512;
  RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be), detail::argmax_rows_kernel<threads>,
                                  detail::rows_grid(M), threads, 0, a));
  return status::success();
}

} // namespace rodimus
