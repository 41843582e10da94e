// Software prefetch hints for the CPU kernels. They never fault, so an address may lie past the
// data (the end of a row, of a buffer); on compilers without the builtin they do nothing.
//
// Used where the hardware prefetcher cannot follow: streams that jump a page per step (a column
// block of the GLA state read row after row in the decode step) and the next rows of a weight
// stream (linear).
#pragma once

namespace rodimus::detail {

/// The cache line holding p, into L1, for reading.
inline void prefetch_line(const void* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 3);
#else
  (void)p;
#endif
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
