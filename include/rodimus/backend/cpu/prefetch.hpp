// Software prefetch hints for the CPU kernels. They never fault, so an address may lie past the
// data (the end of a row, of a buffer); on compilers without the builtin they do nothing.
//
// Used where the hardware prefetcher cannot follow: streams that jump a page per step (a column
// block of the GLA state read row after row in the decode step) and the next rows of a weight
// stream (linear).
#pragma once

#include <cstddef>

namespace rodimus::detail {

/// The cache line holding p, into L1, for reading.
inline void prefetch_line(const void* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 3);
#else
  (void)p;
#endif
}

/// The cache line holding p, into L2 (and the caches beyond it), not L1, for reading
/// (prefetcht1). For a stream prefetched far ahead: measured, the quantised GEMV's weight stream
/// came from memory 2.1-2.4x faster per thread this way than with prefetch_line at any distance
/// (bench/results/2026-12-07-cpu-quant-overhead; a likely reason: a prefetch into L1 holds one of
/// the core's few L1 miss buffers until its line arrives, while L2 keeps many more in flight).
inline void prefetch_line_l2(const void* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 2);
#else
  (void)p;
#endif
}

/// The first `bytes` of a stream that a kernel then prefetches a fixed distance ahead of where it
/// reads, into L2: without this the lines before that distance are left to the hardware
/// prefetcher, once per chunk of rows a thread claims.
inline void prime_stream_l2(const void* p, std::ptrdiff_t bytes) noexcept {
  const auto* c = static_cast<const unsigned char*>(p);
  for (std::ptrdiff_t o = 0; o < bytes; o += 64)
    prefetch_line_l2(c + o);
}

/// The cache line holding p, for writing (fetched in a state that can be written).
inline void prefetch_for_write(const void* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 1, 3);
#else
  (void)p;
#endif
}

} // namespace rodimus::detail
