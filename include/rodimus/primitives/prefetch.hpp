// prefetch(be, ranges, n): a hint that the bytes of these ranges (weights) are read soon, in this
// order; a decode step gives it where small kernels run ahead of the projections that read them
// (the memory then idles).
//
// It never changes a result. The host backends do nothing (their threads stream the weights
// themselves). The CUDA backend brings up to cuda<Sm>::prefetch_bytes of them, in order, into the
// GPU's L2 cache while the small kernels run (backend/cuda/l2_prefetch.cuh).
#pragma once

#include <cstddef>

#include "rodimus/core/status.hpp"

namespace rodimus {

/// Bytes [data, data + bytes) of device or host memory that no kernel writes (weights).
struct byte_range {
  const void* data = nullptr;
  std::size_t bytes = 0;
};

/// Nothing on this backend; the CUDA backend's overload prefetches.
template <class Backend>
[[nodiscard]] status prefetch(const Backend&, const byte_range*, std::size_t) noexcept {
  return status::success();
}

} // namespace rodimus
