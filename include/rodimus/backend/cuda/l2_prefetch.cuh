// The CUDA backend's prefetch (primitives/prefetch.hpp): one small kernel that asks the GPU to
// bring byte ranges into its L2 cache, so that a later kernel reads them from L2 instead of HBM.
//
//   prefetch(be, ranges, n)          the ranges in order, up to be.prefetch_bytes in all (0: none)
//   l2_prefetch(be, ranges, n, chunk)  the kernel's launch, without the budget (benchmarks, tests)
//
// What it is for: a batch-1 decode step streams every weight once and is bound by HBM, but between
// its GEMVs run small kernels (the conv step, the mixer's recurrent step, the attention's window)
// during which HBM idles. A prefetch launched at the start of such a stretch fills that idle time
// with the next GEMVs' weights; they then read them from L2.
//
// The kernel issues Hopper's bulk L2 prefetch (cp.async.bulk.prefetch.L2: fire and forget, no
// registers or shared memory held while the bytes arrive) in chunks spread over its threads, all
// before its overlapped wait: the ranges must be memory that no kernel writes (weights), since the
// kernel before it may still be running. Then it lets the next kernel start and waits (launch.cuh's
// rule that every kernel waits, so completion stays in stream order). The next kernel can
// therefore be scheduled at once: the prefetch adds no wait to the chain. Where to put it: right
// after the first small kernel of a stretch (its successor is scheduled once that kernel has passed
// its own wait, i.e. once the projection before it has finished streaming).
//
// A hint only: results never depend on it. Before sm_90 (no bulk prefetch) nothing is launched.
// Each range's start is rounded up to 16 bytes and its length down to a multiple of 16 (what the
// instruction takes); the few bytes outside are simply not prefetched.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/core/status.hpp"
#include "rodimus/primitives/prefetch.hpp"

namespace rodimus {

/// The prefetch kernel's shape: bytes per bulk prefetch instruction, threads, CTAs at most, ranges
/// per launch at most (more are prefetched by further launches).
struct l2_prefetch_policy {
  static constexpr std::size_t chunk_bytes = 64 * 1024;
  static constexpr int threads = 128;
  static constexpr unsigned max_ctas = 8;
  static constexpr int max_ranges = 4;
};

namespace detail {

/// Up to l2_prefetch_policy::max_ranges ranges, 16-byte aligned, lengths multiples of 16.
struct l2_prefetch_ranges {
  const unsigned char* data[l2_prefetch_policy::max_ranges] = {};
  std::size_t bytes[l2_prefetch_policy::max_ranges] = {};
  int count = 0;
};

__global__ void l2_prefetch_kernel(const l2_prefetch_ranges r, std::size_t chunk) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const std::size_t first = (std::size_t(blockIdx.x) * blockDim.x + threadIdx.x) * chunk;
  const std::size_t step = std::size_t(gridDim.x) * blockDim.x * chunk;
  for (int i = 0; i < r.count; ++i)
    for (std::size_t at = first; at < r.bytes[i]; at += step) {
      const std::size_t n = r.bytes[i] - at < chunk ? r.bytes[i] - at : chunk; // a multiple of 16
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(r.data[i] + at),
                   "r"(unsigned(n))
                   : "memory");
    }
#endif
  let_next_kernel_start();
  wait_for_prior_kernels();
}

} // namespace detail

/// Enqueues the prefetch of `n` ranges into L2 on be.stream, `chunk` bytes per instruction (see the
/// top of the file); ok, or device_error when a launch fails. Empty ranges are skipped; nothing is
/// launched below sm_90.
template <int Sm>
[[nodiscard]] status l2_prefetch(const cuda<Sm>& be, const byte_range* ranges, std::size_t n,
                                 std::size_t chunk = l2_prefetch_policy::chunk_bytes) noexcept {
  if constexpr (Sm < 90) {
    return status::success();
  } else {
    chunk = chunk < 16 ? 16 : chunk & ~std::size_t(15);
    detail::l2_prefetch_ranges r;
    std::size_t pieces = 0;
    const auto flush = [&]() -> status {
      if (r.count == 0) return status::success();
      const std::size_t ctas =
          (pieces + l2_prefetch_policy::threads - 1) / l2_prefetch_policy::threads;
      const unsigned grid =
          unsigned(ctas < l2_prefetch_policy::max_ctas ? ctas : l2_prefetch_policy::max_ctas);
      (void)detail::launch(detail::launch_on(be), detail::l2_prefetch_kernel, grid,
                           l2_prefetch_policy::threads, 0, r, chunk);
      RODIMUS_CUDA_TRY(cudaGetLastError());
      r = {};
      pieces = 0;
      return status::success();
    };
    for (std::size_t i = 0; i < n; ++i) {
      const auto p = reinterpret_cast<std::uintptr_t>(ranges[i].data);
      const auto first = (p + 15) & ~std::uintptr_t(15),
                 last = (p + ranges[i].bytes) & ~std::uintptr_t(15);
      if (p == 0 || last <= first) continue;
      if (r.count == l2_prefetch_policy::max_ranges) RODIMUS_TRY(flush());
      r.data[r.count] = reinterpret_cast<const unsigned char*>(first);
      r.bytes[r.count++] = last - first;
      const std::size_t own = (last - first + chunk - 1) / chunk;
      pieces = own > pieces ? own : pieces; // every range is spread over all the threads
    }
    return flush();
  }
}

/// prefetch (primitives/prefetch.hpp) on this backend: the ranges in order, cut where their sum
/// reaches be.prefetch_bytes.
template <int Sm>
[[nodiscard]] status prefetch(const cuda<Sm>& be, const byte_range* ranges,
                              std::size_t count) noexcept {
  constexpr std::size_t most = 2 * l2_prefetch_policy::max_ranges; // two launches at most
  byte_range within[most];
  std::size_t n = 0, left = be.prefetch_bytes;
  for (std::size_t i = 0; i < count && left > 0 && n < most; ++i) {
    if (ranges[i].data == nullptr || ranges[i].bytes == 0) continue;
    within[n] = {ranges[i].data, ranges[i].bytes < left ? ranges[i].bytes : left};
    left -= within[n++].bytes;
  }
  return l2_prefetch(be, within, n);
}

} // namespace rodimus
