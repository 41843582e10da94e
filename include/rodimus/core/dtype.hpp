// Storage dtypes: f64 (reference), f32, bf16, f16 (16-bit storage, f32 compute), the integers
// i64 / i32 (token ids) and u8 (raw bytes: block-quantised weights in a file, docs/QUANT.md), and
// the round-to-nearest-even conversions between the floating-point ones. bf16 and f16 are plain
// 16-bit PODs so they can live in mapped checkpoint files and in device memory unchanged.
#pragma once

#include <cstdint>
#include <cstring>

#include "rodimus/core/macros.hpp"

namespace rodimus {

enum class dtype : std::uint8_t { f64, f32, bf16, f16, i64, i32, u8 };

constexpr const char* to_string(dtype t) noexcept {
  switch (t) {
  case dtype::f64: return "f64";
  case dtype::f32: return "f32";
  case dtype::bf16: return "bf16";
  case dtype::f16: return "f16";
  case dtype::i64: return "i64";
  case dtype::i32: return "i32";
  case dtype::u8: return "u8";
  }
  return "unknown";
}

constexpr std::size_t size_of(dtype t) noexcept {
  switch (t) {
  case dtype::f64:
  case dtype::i64: return 8;
  case dtype::f32:
  case dtype::i32: return 4;
  case dtype::bf16:
  case dtype::f16: return 2;
  case dtype::u8: return 1;
  }
  return 0;
}

namespace detail {
RODIMUS_HOST_DEVICE inline std::uint32_t float_bits(float f) noexcept {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
RODIMUS_HOST_DEVICE inline float bits_float(std::uint32_t u) noexcept {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
} // namespace detail

/// bfloat16 storage: the high 16 bits of an IEEE f32.
struct bf16 {
  std::uint16_t bits = 0;

  bf16() = default;
  RODIMUS_HOST_DEVICE explicit bf16(float f) noexcept : bits(from_float(f)) {}
  RODIMUS_HOST_DEVICE explicit operator float() const noexcept { return to_float(bits); }

  RODIMUS_HOST_DEVICE static bf16 from_bits(std::uint16_t b) noexcept {
    bf16 h;
    h.bits = b;
    return h;
  }
  RODIMUS_HOST_DEVICE static float to_float(std::uint16_t b) noexcept {
    return detail::bits_float(std::uint32_t(b) << 16);
  }
  /// Round to nearest, ties to even; NaN stays a (quiet) NaN.
  RODIMUS_HOST_DEVICE static std::uint16_t from_float(float f) noexcept {
    std::uint32_t u = detail::float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return std::uint16_t(u >> 16);
  }
};

/// IEEE binary16 storage.
struct f16 {
  std::uint16_t bits = 0;

  f16() = default;
  RODIMUS_HOST_DEVICE explicit f16(float f) noexcept : bits(from_float(f)) {}
  RODIMUS_HOST_DEVICE explicit operator float() const noexcept { return to_float(bits); }

  RODIMUS_HOST_DEVICE static f16 from_bits(std::uint16_t b) noexcept {
    f16 h;
    h.bits = b;
    return h;
  }
  RODIMUS_HOST_DEVICE static float to_float(std::uint16_t h) noexcept {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    std::uint32_t exp = (h >> 10) & 0x1fu;
    std::uint32_t man = h & 0x3ffu;
    std::uint32_t out;
    if (exp == 0x1f) {
      out = sign | 0x7f800000u | (man << 13); // inf or NaN
    } else if (exp != 0) {
      out = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
      out = sign;
    } else { // subnormal: normalise
      exp = 113;
      while ((man & 0x400u) == 0) {
        man <<= 1;
        --exp;
      }
      out = sign | (exp << 23) | ((man & 0x3ffu) << 13);
    }
    return detail::bits_float(out);
  }
  /// Round to nearest, ties to even, with overflow to inf and gradual underflow.
  RODIMUS_HOST_DEVICE static std::uint16_t from_float(float f) noexcept {
    const std::uint32_t u = detail::float_bits(f);
    const std::uint16_t sign = std::uint16_t((u >> 16) & 0x8000u);
    const std::uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return std::uint16_t(sign | 0x7e00u);  // NaN
    if (a >= 0x477ff000u) return std::uint16_t(sign | 0x7c00u); // rounds to >= 65520: inf
    if (a >= 0x38800000u) {                                     // normal in f16
      const std::uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - (112u << 23);
      return std::uint16_t(sign | (r >> 13));
    }
    if (a < 0x33000000u) return sign; // below half the smallest subnormal: zero
    // Subnormal: shift the full mantissa right and round to nearest even.
    const std::uint32_t exp = a >> 23;
    const std::uint32_t man = (a & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - exp; // 14 .. 24
    const std::uint32_t half = 1u << (shift - 1);
    const std::uint32_t rest = man & ((1u << shift) - 1u);
    std::uint32_t q = man >> shift;
    if (rest > half || (rest == half && (q & 1u))) ++q;
    return std::uint16_t(sign | q);
  }
};

/// The compile-time tag of a storage type.
template <class T> struct dtype_of;
template <> struct dtype_of<double> { static constexpr dtype value = dtype::f64; };
template <> struct dtype_of<float> { static constexpr dtype value = dtype::f32; };
template <> struct dtype_of<bf16> { static constexpr dtype value = dtype::bf16; };
template <> struct dtype_of<f16> { static constexpr dtype value = dtype::f16; };
template <> struct dtype_of<std::int64_t> { static constexpr dtype value = dtype::i64; };
template <> struct dtype_of<std::int32_t> { static constexpr dtype value = dtype::i32; };
template <class T> struct dtype_of<const T> : dtype_of<T> {};

/// Widen a stored value to the compute type `To` (float or double).
template <class To, class From> RODIMUS_HOST_DEVICE inline To load_as(From v) noexcept {
  return To(v);
}
template <> RODIMUS_HOST_DEVICE inline float load_as<float, bf16>(bf16 v) noexcept {
  return float(v);
}
template <> RODIMUS_HOST_DEVICE inline double load_as<double, bf16>(bf16 v) noexcept {
  return float(v);
}
template <> RODIMUS_HOST_DEVICE inline float load_as<float, f16>(f16 v) noexcept {
  return float(v);
}
template <> RODIMUS_HOST_DEVICE inline double load_as<double, f16>(f16 v) noexcept {
  return float(v);
}

/// Round a computed value to the storage type `To` (bf16/f16 go through f32, round to nearest
/// even).
template <class To, class From> RODIMUS_HOST_DEVICE inline To store_as(From v) noexcept {
  return To(v);
}
template <> RODIMUS_HOST_DEVICE inline bf16 store_as<bf16, float>(float v) noexcept {
  return bf16(v);
}
template <> RODIMUS_HOST_DEVICE inline bf16 store_as<bf16, double>(double v) noexcept {
  return bf16(float(v));
}
template <> RODIMUS_HOST_DEVICE inline f16 store_as<f16, float>(float v) noexcept { return f16(v); }
template <> RODIMUS_HOST_DEVICE inline f16 store_as<f16, double>(double v) noexcept {
  return f16(float(v));
}

} // namespace rodimus
