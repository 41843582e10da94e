// Block-quantised weight formats (8-bit and 4-bit), backend-neutral: the layout, and quantisation
// and dequantisation of one row. A matrix (N, K) is stored row by row; each row is
// quant_blocks(K) = ceil(K / 32) blocks, each block holding 32 consecutive elements of the row (the
// inner dimension K, the one a linear layer sums over) with one scale:
//
//   q8_0 (34 bytes): f16 d, int8 q[32]            w[j] = d * q[j]           q in [-127, 127]
//   q4_0 (18 bytes): f16 d, uint8 nibbles[16]     w[j] = d * (n[j] - 8)     n in [0, 15]
//                    element j (0..15) is the low nibble of nibbles[j], element j + 16 its high
//                    nibble (so one byte load and a mask / shift give elements 0..15 and 16..31).
//
// Quantising a block x[0..31] (round to nearest, ties to even), d the scale before its rounding to
// f16, d' after, e = |d - d'| (relative 2^-11 for a normal f16, up to 2^-25 absolute where d'
// is subnormal: below 2^-14, blocks whose largest |x| is under about 0.008 for q8_0):
//   q8_0: d = max|x| / 127; q[j] = round(x[j] / d'). Every |x[j] - d' q[j]| <= max(d' / 2, 127 e)
//         (the second term: the largest element clamped at 127 when d' < d).
//   q4_0: m = the element of largest magnitude, with its sign; d = -m / 8;
//         n[j] = clamp(round(x[j] / d') + 8, 0, 15). m maps to -8, the end of [-8, 7] that only
//         this asymmetric choice uses, so a block has 16 levels of step |m| / 8 where a symmetric
//         d = |m| / 7 has 15 of step |m| / 7. Every error is within max(d' / 2, 8 e) except for
//         an element of the other sign from 7.5 d' on: it clamps to 7 and is off by up to d' + 8 e.
//   A block of zeros has d = 0 and dequantises to zeros. A scale past the f16 range (max|x| above
//   about 65504 * 127 for q8_0, 65504 * 8 for q4_0) is refused: no trained weight is near it.
// The formats follow the block layout of llama.cpp's Q8_0 and Q4_0 (the facts of its layout, not
// its code), so the sizes compare directly: 8.5 and 4.5 bits per weight.
//
// Shape rule: any K >= 0 (quant_row_check). When K % 32 != 0 the row's last block holds its last
// K % 32 values followed by zeros, quantised like any block (the zeros then store q8_0 q = 0, q4_0
// n = 8: each dequantises to exactly 0, and they never set the block's scale); dequantise_row
// writes exactly K values, and a linear layer sums over the K real elements only.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rodimus/core/dtype.hpp"
#include "rodimus/core/macros.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus {

/// How a weight matrix is held: in the checkpoint's dtype, or block-quantised.
enum class weight_format : std::uint8_t {
  stored, ///< the checkpoint's f32 / bf16 / f16
  q8_0,   ///< 8-bit, blocks of 32 with an f16 scale
  q4_0,   ///< 4-bit, blocks of 32 with an f16 scale
};

constexpr const char* to_string(weight_format f) noexcept {
  switch (f) {
  case weight_format::stored: return "stored";
  case weight_format::q8_0: return "q8_0";
  case weight_format::q4_0: return "q4_0";
  }
  return "unknown";
}

/// Elements per block (along a row).
constexpr index_t kQuantGroup = 32;

struct q8_0_block {
  f16 scale;
  std::int8_t q[32];
};

struct q4_0_block {
  f16 scale;
  std::uint8_t nibbles[16];
};

static_assert(sizeof(q8_0_block) == 34, "q8_0 block layout");
static_assert(sizeof(q4_0_block) == 18, "q4_0 block layout");

/// Bytes of one block of `f` (0 for stored).
constexpr std::size_t quant_block_bytes(weight_format f) noexcept {
  return f == weight_format::q8_0   ? sizeof(q8_0_block)
         : f == weight_format::q4_0 ? sizeof(q4_0_block)
                                    : 0;
}

/// The format a block type stands for.
template <class Block> constexpr weight_format format_of() noexcept {
  return std::is_same_v<Block, q8_0_block> ? weight_format::q8_0 : weight_format::q4_0;
}

/// Blocks of one row of K (>= 0) elements: ceil(K / 32), the last one zero-padded when K % 32 != 0.
constexpr index_t quant_blocks(index_t K) noexcept {
  return K / kQuantGroup + (K % kQuantGroup != 0 ? 1 : 0);
}

/// The `count` (<= 32) values at src as f32, then zeros: one block's worth (the zero-padded last
/// block of a row whose K is not a multiple of 32). Reads exactly `count` values.
template <class T> inline void load_padded_block(const T* src, index_t count, float* out) noexcept {
  for (index_t j = 0; j < kQuantGroup; ++j)
    out[j] = j < count ? load_as<float>(src[j]) : 0.0f;
}

/// A row of K elements can be quantised: K >= 0 (any length; see the shape rule at the top).
[[nodiscard]] inline status quant_row_check(index_t K) noexcept {
  RODIMUS_REQUIRE(K >= 0, bad_shape, "K (negative)");
  return status::success();
}

/// Element j of a block as f32 (exact: d times a small integer, one f32 rounding).
RODIMUS_HOST_DEVICE inline float dequantise(const q8_0_block& b, int j) noexcept {
  return f16::to_float(b.scale.bits) * float(b.q[j]);
}
RODIMUS_HOST_DEVICE inline float dequantise(const q4_0_block& b, int j) noexcept {
  const int n = j < 16 ? (b.nibbles[j] & 0x0f) : (b.nibbles[j - 16] >> 4);
  return f16::to_float(b.scale.bits) * float(n - 8);
}

namespace detail {

/// d rounded to f16 and the reciprocal used to quantise (0 for d == 0); fails past f16's range.
[[nodiscard]] inline status quant_scale(float d, f16& stored, float& inverse) noexcept {
  stored = f16(d);
  const float ds = f16::to_float(stored.bits);
  RODIMUS_REQUIRE(std::isfinite(ds), bad_argument, "w (a block's scale exceeds the f16 range)");
  inverse = ds != 0.0f ? 1.0f / ds : 0.0f;
  return status::success();
}

} // namespace detail

/// Quantise the 32 values x[0..31] into one block (see the top of this file).
[[nodiscard]] inline status quantise_block(const float* x, q8_0_block& out) noexcept {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j)
    amax = std::fmax(amax, std::fabs(x[j]));
  float inv = 0.0f;
  RODIMUS_TRY(detail::quant_scale(amax / 127.0f, out.scale, inv));
  for (int j = 0; j < 32; ++j) {
    const float q = std::nearbyint(x[j] * inv);
    out.q[j] = std::int8_t(std::fmin(127.0f, std::fmax(-127.0f, q)));
  }
  return status::success();
}

[[nodiscard]] inline status quantise_block(const float* x, q4_0_block& out) noexcept {
  float m = 0.0f; // the element of largest magnitude, signed (the first one on a tie)
  for (int j = 0; j < 32; ++j)
    if (std::fabs(x[j]) > std::fabs(m)) m = x[j];
  float inv = 0.0f;
  RODIMUS_TRY(detail::quant_scale(m / -8.0f, out.scale, inv));
  int n[32];
  for (int j = 0; j < 32; ++j)
    n[j] = int(std::fmin(15.0f, std::fmax(0.0f, std::nearbyint(x[j] * inv) + 8.0f)));
  for (int j = 0; j < 16; ++j)
    out.nibbles[j] = std::uint8_t(n[j] | (n[j + 16] << 4));
  return status::success();
}

/// Quantise a row of K values (f32, bf16 or f16) into quant_blocks(K) blocks (reads exactly K
/// values; the last block's elements past K are zeros).
template <class T, class Block>
[[nodiscard]] status quantise_row(const T* src, index_t K, Block* dst) noexcept {
  RODIMUS_TRY(quant_row_check(K));
  RODIMUS_REQUIRE(src || K == 0, null_pointer, "src");
  RODIMUS_REQUIRE(dst || K == 0, null_pointer, "dst");
  float tmp[32];
  for (index_t b = 0; b < quant_blocks(K); ++b) {
    const index_t k0 = b * kQuantGroup;
    load_padded_block(src + k0, K - k0 < kQuantGroup ? K - k0 : kQuantGroup, tmp);
    RODIMUS_TRY(quantise_block(tmp, dst[b]));
  }
  return status::success();
}

/// Dequantise quant_blocks(K) blocks into exactly K values of dtype T (f32: exact; 16-bit: one
/// rounding); the padding of a partial last block is not written.
template <class Block, class T>
[[nodiscard]] status dequantise_row(const Block* src, index_t K, T* dst) noexcept {
  RODIMUS_TRY(quant_row_check(K));
  RODIMUS_REQUIRE(src || K == 0, null_pointer, "src");
  RODIMUS_REQUIRE(dst || K == 0, null_pointer, "dst");
  for (index_t k = 0; k < K; ++k)
    dst[k] = store_as<T>(dequantise(src[k / kQuantGroup], int(k % kQuantGroup)));
  return status::success();
}

} // namespace rodimus
