// argmax_rows on the CUDA backend (math and shapes in rodimus/primitives/argmax_rows.hpp):
//
//   out[m] = index of the largest in[m, :] (first among ties; NaN lowest), by argmax_key
//
// One cluster of Cluster CTAs of 512 threads per row (rows beyond the grid looped; sm_90 and newer,
// Cluster = 8; one CTA per row before): CTA r of the cluster and thread t take the entries
// i = (r * 512 + t) + j * 512 * Cluster (loads 4 apart unrolled, so a thread has several loads in
// flight: a decode step's 126 464 logits are about 31 per thread), and each thread keeps the
// largest key; then a warp butterfly on the 64-bit keys, one across the warps, and CTA 0 takes the
// largest of the cluster's CTAs from their shared memory (distributed shared memory). One CTA alone
// read a row of the LM head's logits in 24.6 us on an H100 (ncu, batch-1 decode): one SM's share of
// the bandwidth. The keys are a total order, so the result does not depend on the reduction order:
// bit-identical to the scalar reference.
#pragma once

#include <cstdint>

#include "rodimus/backend/cuda/cluster.cuh"
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

template <int Threads, int Cluster>
__global__ void __launch_bounds__(Threads) argmax_rows_kernel(const argmax_rows_args a) {
  static_assert(Cluster >= 1 && Cluster <= 32, "CTA 0's first warp reads one CTA per lane");
  begin_after_prior_kernels();
  __shared__ std::uint64_t partial[Threads / 32];
  __shared__ std::uint64_t cta_best; // read by CTA 0 of the cluster
  const index_t M = a.in.shape[0], V = a.in.shape[1], s = a.in.stride[1];
  const int tid = int(threadIdx.x);
  const unsigned rank = Cluster > 1 ? cluster_rank() : 0u;
  constexpr index_t stride = index_t(Threads) * Cluster; // between a thread's entries
  // Every CTA of a cluster takes the same rows (grid.x is a multiple of Cluster), so the cluster
  // barriers below are reached by all of them the same number of times.
  for (index_t m = blockIdx.x / Cluster; m < M; m += gridDim.x / Cluster) {
    const float* row = a.in.data + m * a.in.stride[0];
    std::uint64_t best = 0; // below every key
    index_t i = index_t(rank) * Threads + tid;
    for (; i + 3 * stride < V; i += 4 * stride) {
      float v[4];
#pragma unroll
      for (int u = 0; u < 4; ++u)
        v[u] = __ldg(row + (i + u * stride) * s);
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const std::uint64_t k = argmax_key(v[u], i + u * stride);
        best = k > best ? k : best;
      }
    }
    for (; i < V; i += stride) {
      const std::uint64_t k = argmax_key(__ldg(row + i * s), i);
      best = k > best ? k : best;
    }
    best = warp_max_key(best);
    if ((tid & 31) == 0) partial[tid / 32] = best;
    __syncthreads();
    if (tid < 32) {
      std::uint64_t k = tid < Threads / 32 ? partial[tid] : 0;
      k = warp_max_key(k);
      if (tid == 0) cta_best = k;
    }
    if constexpr (Cluster > 1) // every CTA's cta_best is written
      cluster_sync();
    else
      __syncthreads();
    if (rank == 0 && tid < 32) {
      std::uint64_t k = 0;
      if constexpr (Cluster > 1)
        k = tid < Cluster ? cluster_load(&cta_best, unsigned(tid)) : 0;
      else
        k = tid == 0 ? cta_best : 0;
      k = warp_max_key(k);
      if (tid == 0) a.out[m] = argmax_index(k);
    }
    // CTA 0 has read them (a CTA's shared memory must outlive the reads; partial and cta_best are
    // free for the next row).
    if constexpr (Cluster > 1)
      cluster_sync();
    else
      __syncthreads();
  }
}

/// CTAs per row: a cluster of 8 on sm_90 and newer (the portable cluster size), else 1.
template <int Sm> constexpr int argmax_rows_cluster = Sm >= 90 ? 8 : 1;

} // namespace detail

/// argmax_rows on the tag's stream; in and out in device memory.
template <int Sm>
[[nodiscard]] status argmax_rows(const cuda<Sm>& be, const argmax_rows_args& a) noexcept {
  RODIMUS_TRY(argmax_rows_check(a));
  const index_t M = a.in.shape[0];
  if (M == 0) return status::success();
  constexpr int threads = 512, cluster = detail::argmax_rows_cluster<Sm>;
  const index_t rows = M < detail::cuda_max_grid / cluster ? M : detail::cuda_max_grid / cluster;
  RODIMUS_CUDA_TRY(detail::launch_clustered(detail::launch_on(be), unsigned(cluster),
                                            detail::argmax_rows_kernel<threads, cluster>,
                                            unsigned(rows * cluster), threads, 0, a));
  return status::success();
}

} // namespace rodimus
