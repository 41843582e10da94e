// A bump allocator over caller-owned memory. Kernels report workspace_bytes() for their arguments
// and carve their temporaries out of a `workspace`; they never allocate.
//
// Sizing rule: workspace_bytes() = one `alignment` of slack (the base need not be aligned) plus
// bytes_for<T>(count) per take<T>(count), in the order they are taken. Sizes that do not fit a
// size_t saturate to SIZE_MAX (no buffer is that large), and take() then returns nullptr instead
// of wrapping around to a small, out-of-bounds block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>

#include "rodimus/core/macros.hpp"

namespace rodimus {

struct workspace {
  void* base = nullptr;
  std::size_t bytes = 0;
  std::size_t used = 0;

  /// Enough for any SIMD width and for cudaMalloc'd blocks.
  static constexpr std::size_t alignment = 256;

  /// n rounded up to a multiple of the alignment; SIZE_MAX when that does not fit.
  static constexpr std::size_t round_up(std::size_t n) noexcept {
    if (n > std::numeric_limits<std::size_t>::max() - (alignment - 1))
      return std::numeric_limits<std::size_t>::max();
    return (n + alignment - 1) / alignment * alignment;
  }
  /// a * b, or SIZE_MAX when the product does not fit (a count no workspace can hold).
  static constexpr std::size_t product(std::size_t a, std::size_t b) noexcept {
    if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a)
      return std::numeric_limits<std::size_t>::max();
    return a * b;
  }
  /// a + b + ..., or SIZE_MAX when the sum does not fit (to add up the terms of workspace_bytes).
  template <class... Rest> static constexpr std::size_t sum(std::size_t a, Rest... rest) noexcept {
    std::size_t total = a;
    for (const std::size_t b : {std::size_t(0), std::size_t(rest)...}) {
      if (b > std::numeric_limits<std::size_t>::max() - total)
        return std::numeric_limits<std::size_t>::max();
      total += b;
    }
    return total;
  }
  /// Bytes to reserve for `count` elements of T: rounded up to the alignment, SIZE_MAX on overflow.
  template <class T> static constexpr std::size_t bytes_for(std::size_t count) noexcept {
    if (count > std::numeric_limits<std::size_t>::max() / sizeof(T))
      return std::numeric_limits<std::size_t>::max();
    return round_up(count * sizeof(T));
  }

  /// `count` elements of T, aligned to `alignment`, or nullptr when the workspace is too small.
  template <class T> T* take(std::size_t count) noexcept {
    if (base == nullptr || used > bytes) return nullptr;
    if (count > std::numeric_limits<std::size_t>::max() / sizeof(T)) return nullptr;
    const std::uintptr_t start = reinterpret_cast<std::uintptr_t>(base) + used;
    const std::size_t pad = std::size_t((alignment - start % alignment) % alignment);
    const std::size_t room = bytes - used;
    if (pad > room || count * sizeof(T) > room - pad) return nullptr;
    used += pad + count * sizeof(T);
    return reinterpret_cast<T*>(start + pad);
  }
};

} // namespace rodimus
