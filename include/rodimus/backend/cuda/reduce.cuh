// Row-wise reductions shared by the CUDA kernels that normalise rows (rmsnorm, gated_rmsnorm,
// ddts):
//
//   warp_sum(v)                  the sum of v over the 32 lanes of a warp, in every lane
//   block_sum<Threads>(v, s)     the sum over the Threads threads of a 1-D CTA, in every thread
//   row_groups<TPR, R>           how a kernel maps rows to threads: R groups of TPR threads per
//   CTA,
//                                one row per group at a time (TPR == 32: a warp per row, R rows
//                                per CTA; else the whole CTA per row, R == 1), rows beyond the
//                                grid looped (grid-stride); sum() is the group's reduction
//
// Sums are in f32 by a fixed tree (xor butterflies), so every thread of a group gets bit-identical
// totals and a row's result does not depend on which group ran it. block_sum holds two
// __syncthreads: every thread of the CTA must call it (row loops are uniform over the CTA).
#pragma once

#include <cuda_runtime.h>

#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus::detail {

constexpr int cuda_warp_size = 32;

/// The sum of v over the warp's 32 lanes (all active), returned in every lane.
__device__ inline float warp_sum(float v) noexcept {
  for (int o = cuda_warp_size / 2; o > 0; o /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/// The sum of v over the Threads threads of a 1-D CTA (Threads a multiple of 32, at most 1024),
/// returned in every thread. `scratch`: __shared__ float[32], free again when this returns.
template <int Threads> __device__ inline float block_sum(float v, float* scratch) noexcept {
  static_assert(Threads % cuda_warp_size == 0 && Threads <= 1024, "whole warps, at most 1024");
  constexpr int warps = Threads / cuda_warp_size;
  v = warp_sum(v);
  if constexpr (warps == 1) {
    return v;
  } else {
    const int lane = int(threadIdx.x) % cuda_warp_size, warp = int(threadIdx.x) / cuda_warp_size;
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = warp_sum(lane < warps ? scratch[lane] : 0.0f); // every warp reduces the same partials
    __syncthreads();                                   // before scratch is written again
    return v;
  }
}

/// Rows to thread groups: RowsPerCta groups of ThreadsPerRow threads in a 1-D CTA. A group owns
/// one row at a time; its threads take the row's elements lane, lane + ThreadsPerRow, ... (the
/// same elements in every pass over the row, so a pass may read what the thread itself wrote in
/// an earlier one).
template <int ThreadsPerRow, int RowsPerCta> struct row_groups {
  static_assert(ThreadsPerRow == cuda_warp_size || RowsPerCta == 1,
                "a row is a warp's (several rows per CTA) or the whole CTA's");
  static_assert(ThreadsPerRow % cuda_warp_size == 0 && ThreadsPerRow * RowsPerCta <= 1024,
                "whole warps, at most 1024 threads");
  static constexpr int threads_per_row = ThreadsPerRow;
  static constexpr int threads = ThreadsPerRow * RowsPerCta;

  /// CTAs for `rows` rows (capped at cuda_max_grid; the kernel loops over the rest).
  static unsigned grid(index_t rows) noexcept {
    return rows_grid((rows + RowsPerCta - 1) / RowsPerCta);
  }
  __device__ static index_t lane() noexcept { return index_t(threadIdx.x) % ThreadsPerRow; }
  __device__ static index_t first_row() noexcept {
    return index_t(blockIdx.x) * RowsPerCta + index_t(threadIdx.x) / ThreadsPerRow;
  }
  __device__ static index_t row_stride() noexcept { return index_t(gridDim.x) * RowsPerCta; }
  /// The sum of v over the group (every thread of the group must call it; `scratch`:
  /// __shared__ float[32], used only when the group is the whole CTA).
  __device__ static float sum(float v, float* scratch) noexcept {
    if constexpr (ThreadsPerRow == cuda_warp_size) {
      (void)scratch;
      return warp_sum(v);
    } else {
      return block_sum<ThreadsPerRow>(v, scratch);
    }
  }
};

/// The row groups of the row-wise kernels: a warp per row for short rows (8 rows per CTA), a CTA
/// of 256 threads per row above `warp_row_max` elements. Measured later (tuning issue); these are
/// the usual choices: a warp per row keeps rows of up to 512 elements at <= 16 per thread without
/// any __syncthreads, a CTA spreads the model-width rows (1024-4096) over 256 threads.
/// Elements per thread that a row kernel loads before it uses any of them (its chunk): 8 keeps a
/// 2048-wide row at one chunk per pass with 256 threads, in registers.
constexpr int row_unroll = 8;

struct row_policy {
  static constexpr index_t warp_row_max = 512;
  using warp_rows = row_groups<32, 8>;
  using cta_rows = row_groups<256, 1>;
};

} // namespace rodimus::detail
