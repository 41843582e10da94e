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
//   q4_0: m = the element of largest magnitude, with its sign. The plain rule is d = -m / 8:
//         n[j] = clamp(round(x[j] / d') + 8, 0, 15), m on level -8, the end of [-8, 7] that only
//         an asymmetric choice uses (16 levels of step |m| / 8 where a symmetric d = |m| / 7 has 15
//         of step |m| / 7). But with 16 levels and one scale per 32 weights, that step is rarely
//         the best one for the other 31 elements: a slightly smaller step that clips m, or one
//         that puts m on +7 instead, often lowers their error by more than it costs m. So the
//         scale is searched (quant_q4_0_scale below): 16 candidates d = m / c (c = -8 first: the
//         plain rule; then m on levels -7 .. -9.5 and +6 .. +7.5), each rounded to f16 as it will
//         be stored, and for each of them once more the least-squares scale of the levels it gave,
//         sum(x q) / sum(q q) (q = n - 8), rounded to f16; each of these 32 scales quantises the
//         block as above, and the one whose sum of squared errors sum_j (x[j] - d' q[j])^2 (with
//         d' as stored, summed in f64) is smallest is kept, the first on a tie. On tiny-coder's
//         weights this lowers the squared error by 11% (docs/QUANT.md).
//         What holds: with SSE_plain the block's squared error under the plain rule (d = -m / 8,
//         rounded to f16), the block's squared error is at most SSE_plain (the plain rule is the
//         first candidate; up to the f32 rounding of each difference x[j] - d' q[j] the search
//         sums, well under 1e-6 relative), so every element's error is at most sqrt(SSE_plain).
//         The plain rule's per-element bound (max(d' / 2, 8 e), d' + 8 e for an element clamped at
//         7) does not hold for a searched scale: one that clips m may leave it 1.5 steps away.
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

/// d rounded to f16, as f32 (what a block stores).
inline float f16_rounded(float d) noexcept { return f16::to_float(f16(d).bits); }

/// q4_0's level of x for the scale d' whose reciprocal is `inverse`: round(x / d') clamped to
/// [-8, 7] (so n = level + 8 is in [0, 15]; NaN gives -8, n = 0).
inline float q4_0_level(float x, float inverse) noexcept {
  const float q = std::nearbyint(x * inverse);
  return q > -8.0f ? (q < 7.0f ? q : 7.0f) : -8.0f;
}

/// The candidate scales of q4_0's search, as divisors c of the block's largest element m
/// (signed): d = m / c. First c = -8, the plain rule (m on level -8; it wins every tie, so the
/// search is never worse than it); then m on level -7 .. -7.75 (a coarser step, m inside the
/// range) and -8.25 .. -9.5 (a finer step, m clipped to -8); then m on +6 .. +7.5 (the spare
/// level -8 on the side opposite m, for blocks with a large element of the other sign).
/// Measured on tiny-coder's weights and Gaussian blocks (2026-12-07): a finer grid (22 or 32
/// divisors) lowers the squared error by under 0.1% more, at up to twice the time.
constexpr int kQ4Candidates = 16;
constexpr float kQ4Divisors[kQ4Candidates] = {-8.0f, -7.0f,  -7.25f, -7.5f, -7.75f, -8.25f,
                                              -8.5f, -8.75f, -9.0f,  -9.5f, 6.0f,   6.5f,
                                              6.75f, 7.0f,   7.25f,  7.5f};

/// For each of the kQ4Candidates scales d[i] (f16 values as f32; 0 allowed), the block x
/// quantised with it (levels q = q4_0_level): the sum of squared errors (x - d q)^2 in f64, and
/// sum(x q) and sum(q q) (for the least-squares scale). The scales are the inner loop so that a
/// compiler can vectorise it across them (no reduction across lanes).
inline void q4_0_errors(const float* x, const float* d, double* sse, float* sxq,
                        float* sqq) noexcept {
  float inv[kQ4Candidates], xq[kQ4Candidates], qq[kQ4Candidates];
  double err[kQ4Candidates];
  for (int i = 0; i < kQ4Candidates; ++i) {
    inv[i] = d[i] != 0.0f ? 1.0f / d[i] : 0.0f;
    xq[i] = qq[i] = 0.0f;
    err[i] = 0.0;
  }
  for (int j = 0; j < 32; ++j) {
    const float xj = x[j];
    for (int i = 0; i < kQ4Candidates; ++i) {
      const float q = q4_0_level(xj, inv[i]);
      const float e = xj - d[i] * q; // d q is exact in f32 (11-bit d, 4-bit q)
      err[i] += double(e) * double(e);
      xq[i] += xj * q;
      qq[i] += q * q;
    }
  }
  for (int i = 0; i < kQ4Candidates; ++i) {
    sse[i] = err[i];
    sxq[i] = xq[i];
    sqq[i] = qq[i];
  }
}

/// q4_0's scale for the block x with largest element m != 0 (see the top of this file): the
/// candidate with the smallest squared error, as f32 (an f16 value). `plain` is the plain rule's
/// f16 scale, -m / 8 rounded (the caller has checked that it fits f16); a candidate past the f16
/// range is replaced by it.
inline float quant_q4_0_scale(const float* x, float m, float plain) noexcept {
  // Round 0: the divisors; round 1: each one's least-squares refinement. Each round's scales in
  // candidate order, round 0 first, so that "the first on a tie" is well defined.
  float d[2][kQ4Candidates], sxq[2][kQ4Candidates], sqq[2][kQ4Candidates];
  double sse[2][kQ4Candidates];
  for (int i = 0; i < kQ4Candidates; ++i) {
    const float c = f16_rounded(m / kQ4Divisors[i]);
    d[0][i] = i == 0 ? plain : std::isfinite(c) ? c : plain;
  }
  q4_0_errors(x, d[0], sse[0], sxq[0], sqq[0]);
  for (int i = 0; i < kQ4Candidates; ++i) {
    // The scale that minimises sum (x - d q)^2 for the levels q that candidate i chose.
    const float c = sqq[0][i] > 0.0f ? f16_rounded(sxq[0][i] / sqq[0][i]) : plain;
    d[1][i] = std::isfinite(c) ? c : plain;
  }
  q4_0_errors(x, d[1], sse[1], sxq[1], sqq[1]); // (round 1's sums are not used)
  float best = plain;
  double best_sse = sse[0][0];
  for (int r = 0; r < 2; ++r)
    for (int i = 0; i < kQ4Candidates; ++i)
      if (sse[r][i] < best_sse) {
        best = d[r][i];
        best_sse = sse[r][i];
      }
  return best;
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
  // The plain rule's scale must fit f16 (a candidate's need not: it is replaced by the plain one).
  float inv = 0.0f;
  RODIMUS_TRY(detail::quant_scale(m / -8.0f, out.scale, inv));
  if (m != 0.0f) {
    out.scale = f16(detail::quant_q4_0_scale(x, m, f16::to_float(out.scale.bits)));
    const float d = f16::to_float(out.scale.bits);
    inv = d != 0.0f ? 1.0f / d : 0.0f;
  }
  int n[32];
  for (int j = 0; j < 32; ++j)
    n[j] = int(detail::q4_0_level(x[j], inv)) + 8;
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
