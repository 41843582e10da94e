// The machine's streaming read bandwidth, measured with the CPU backend's thread pool: the limit
// that memory-bound work (batch-1 decode streams every weight once per token) is judged against.
// Used by the benchmark binaries (bench/limits.hpp) and `rodimus bench`, so both report ratios
// to the same measurement.
//
//   rodimus::read_probe probe(512 << 20);     // a buffer far beyond the last-level cache
//   double bytes_per_s = probe.best(&pool, 5); // best of 5 passes
//
// One pass sums every f32 of the buffer with 4 independent vector accumulators per participant
// (the adds never limit the rate), prefetching 1 KiB ahead (faster than the
// hardware prefetcher alone on the build machine: 55-59 against 49-52 GB/s). The buffer is
// anonymous memory on huge pages, like the weights model_weights copies into memory, and is written
// once so every page is committed before timing.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>

#include "rodimus/backend/cpu/huge_page_buffer.hpp"
#include "rodimus/backend/cpu/prefetch.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/backend/cpu/thread_pool.hpp"

namespace rodimus {

template <class Arch = xsimd::default_arch> class read_probe {
public:
  explicit read_probe(std::size_t bytes) : buffer_(bytes, "read_probe") {
    std::memset(buffer_.data(), 0, buffer_.size());
  }

  std::size_t bytes() const noexcept { return groups() * kGroupBytes; }

  /// Seconds of one streaming read pass over the buffer on `pool` (nullptr: the calling thread).
  double pass_seconds(thread_pool* pool) {
    using B = xsimd::batch<float, Arch>;
    constexpr std::size_t W = B::size;
    const float* x = reinterpret_cast<const float*>(buffer_.data());
    const index_t n = index_t(groups());
    std::atomic<float> total{0.0f};
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(pool, 0, n, 1024, [&](index_t lo, index_t hi) {
      B a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
      for (index_t i = lo; i < hi; ++i) {
        const float* q = x + std::size_t(i) * 4 * W;
        detail::prefetch_line(q + kPrefetchFloats);
        a0 += B::load_aligned(q);
        a1 += B::load_aligned(q + W);
        a2 += B::load_aligned(q + 2 * W);
        a3 += B::load_aligned(q + 3 * W);
      }
      const float part = xsimd::hadd(a0 + a1 + a2 + a3);
      float seen = total.load(std::memory_order_relaxed);
      while (!total.compare_exchange_weak(seen, seen + part, std::memory_order_relaxed)) {
      }
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink_ = sink_ + total.load(); // keeps the sums (and so the loads) alive
    return s;
  }

  /// Bytes per second of one pass.
  double pass(thread_pool* pool) { return double(bytes()) / pass_seconds(pool); }

  /// Bytes per second of the fastest of `passes` passes.
  double best(thread_pool* pool, int passes) {
    double bw = 0;
    for (int i = 0; i < passes; ++i)
      bw = std::max(bw, pass(pool));
    return bw;
  }

private:
  static constexpr std::size_t kPrefetchFloats = 1024 / sizeof(float); // 1 KiB ahead
  static constexpr std::size_t kGroupBytes = 4 * xsimd::batch<float, Arch>::size * sizeof(float);
  std::size_t groups() const noexcept { return buffer_.size() / kGroupBytes; }

  huge_page_buffer buffer_;
  volatile float sink_ = 0;
};

} // namespace rodimus
