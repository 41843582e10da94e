// Finding NaN and infinity in stored floating-point data (weights, saved states) without converting
// it: a value is not finite exactly when all its exponent bits are set, in every IEEE format. The
// check reads the raw bits of each element (memcpy: the data may be unaligned) and ORs the results
// over blocks, a loop compilers vectorise; only a block that has a bad value is searched again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rodimus/core/dtype.hpp"

namespace rodimus {

namespace detail {

/// Index of the first element of `count` (at `bytes`) whose bits & mask == mask, or `count`.
template <class Bits>
std::size_t first_all_ones(const unsigned char* bytes, std::size_t count, Bits mask) noexcept {
  constexpr std::size_t block = 1024;
  for (std::size_t start = 0; start < count; start += block) {
    const std::size_t n = count - start < block ? count - start : block;
    const unsigned char* p = bytes + start * sizeof(Bits);
    bool any = false;
    for (std::size_t i = 0; i < n; ++i) {
      Bits v;
      std::memcpy(&v, p + i * sizeof(Bits), sizeof(Bits));
      any |= (v & mask) == mask;
    }
    if (!any) continue;
    for (std::size_t i = 0; i < n; ++i) {
      Bits v;
      std::memcpy(&v, p + i * sizeof(Bits), sizeof(Bits));
      if ((v & mask) == mask) return start + i;
    }
  }
  return count;
}

} // namespace detail

/// Index of the first NaN or infinity among `count` elements of floating-point type `type` stored
/// at `bytes`, or `count` when all are finite (and for the integer types).
inline std::size_t first_non_finite(dtype type, const void* bytes, std::size_t count) noexcept {
  const auto* p = static_cast<const unsigned char*>(bytes);
  switch (type) {
  case dtype::f64: return detail::first_all_ones<std::uint64_t>(p, count, 0x7FF0000000000000ull);
  case dtype::f32: return detail::first_all_ones<std::uint32_t>(p, count, 0x7F800000u);
  case dtype::bf16: return detail::first_all_ones<std::uint16_t>(p, count, 0x7F80u);
  case dtype::f16: return detail::first_all_ones<std::uint16_t>(p, count, 0x7C00u);
  case dtype::i64:
  case dtype::i32:
  case dtype::u8: return count;
  }
  return count;
}

/// "NaN", "+inf" or "-inf": what the non-finite element `i` of `bytes` (type `type`) is.
inline const char* non_finite_kind(dtype type, const void* bytes, std::size_t i) noexcept {
  const auto* p = static_cast<const unsigned char*>(bytes);
  double v = 0;
  if (type == dtype::f64) {
    std::memcpy(&v, p + 8 * i, 8);
  } else if (type == dtype::f32) {
    float f;
    std::memcpy(&f, p + 4 * i, 4);
    v = f;
  } else if (type == dtype::bf16 || type == dtype::f16) {
    std::uint16_t u;
    std::memcpy(&u, p + 2 * i, 2);
    v = type == dtype::bf16 ? bf16::to_float(u) : f16::to_float(u);
  }
  return v != v ? "NaN" : v > 0 ? "+inf" : "-inf";
}

} // namespace rodimus
