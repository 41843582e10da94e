// A bump allocator over caller-owned memory. Kernels report workspace_bytes() for their arguments
// and carve their temporaries out of a `workspace`; they never allocate.
#pragma once

#include <cstddef>
#include <cstdint>

#include "rodimus/core/config.hpp"

namespace rodimus {

struct workspace {
  void* base = nullptr;
  std::size_t bytes = 0;
  std::size_t used = 0;

  static constexpr std::size_t alignment = 256;  // enough for any SIMD width and for cudaMalloc'd blocks

  static constexpr std::size_t round_up(std::size_t n) noexcept {
    return (n + alignment - 1) / alignment * alignment;
  }
  /// Bytes to reserve for `count` elements of T (rounded up to the alignment).
  template <class T>
  static constexpr std::size_t bytes_for(std::size_t count) noexcept {
    return round_up(count * sizeof(T));
  }

  /// `count` elements of T, or nullptr when the workspace is too small.
  template <class T>
  T* take(std::size_t count) noexcept {
    const std::uintptr_t start = reinterpret_cast<std::uintptr_t>(base) + used;
    const std::uintptr_t aligned = (start + alignment - 1) / alignment * alignment;
    const std::size_t pad = std::size_t(aligned - start);
    const std::size_t need = pad + count * sizeof(T);
    if (base == nullptr || used + need > bytes) return nullptr;
    used += need;
    return reinterpret_cast<T*>(aligned);
  }
};

}  // namespace rodimus
