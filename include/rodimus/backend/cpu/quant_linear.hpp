// quant_linear() on the CPU backend (maths and shapes in rodimus/primitives/quant_linear.hpp; block
// layouts in rodimus/primitives/quant_format.hpp):
//
//   y[m, n] = sum_k x[m, k] * deq(w)[n, k]     x: (M, K) Act, w: (N, ceil(K / 32)) blocks,
//                                              y: (M, N) Act
//
// Outside the integer decode path activations stay f32 (bf16 and f16 are widened on load). Per
// block, its 32 integers are widened to f32 in registers (q8_0: sign extension; q4_0: mask and
// shift of the 16 nibble bytes, minus 8), multiplied with x and summed in f32, and the block sum
// joins the row's accumulator scaled by the block's d (one FMA per vector of it).
//   M <= 4   (decode) on AVX-512 or AVX2 (+ FMA, F16C), M * K <= kQuantInt8MaxX: x quantised
//            once per call, per block of 32, to int8 with an f32 scale (quant_linear_rounds_x
//            says when: the result then carries that rounding of x, bounded in
//            tests/cases/quant_linear_cases.hpp); each weight block is one exact integer dot
//            product on 256 bits (vpdpbusd with AVX-512 VNNI; vpmaddubsw + vpmaddwd otherwise)
//            scaled by dw * dx: no int-to-float widening of the weights, which bound the f32
//            kernel below by instructions (bench/results/2026-12-05-cpu-quant and -cpu-quant2).
//            Rows in the decode layout (a.layout == quant_layout::groups16, what the model loader
//            makes; rodimus/primitives/quant_layout.hpp) go through the group kernels: 16 blocks
//            a step, one block per 32-bit lane, two rows sharing x's loads (quant_gemv_groups;
//            2.4x (q4_0) and 1.7x (q8_0) the blocks' rate per thread,
//            bench/results/2026-12-07-cpu-quant-pack), the stream prefetched into L2 about
//            kQuantGroupPrefetchBytes ahead (2.1-2.4x the rate from memory of a prefetch into
//            L1, bench/results/2026-12-07-cpu-quant-overhead), each chunk's first rows and the
//            rows' blocks past the whole groups too (2026-12-08-cpu-quant-prime); those blocks
//            take the block kernels.
//   M <= 4   (decode), otherwise: a matrix-vector kernel over the weight stream: each block is
//            widened once and used for every x row; two blocks per step in separate
//            accumulators keep the FMA chains independent; the stream is prefetched
//            kQuantPrefetchBytes ahead. Both decode kernels: threads claim contiguous chunks of
//            the N rows from the pool (a few per thread).
//   M > 4    (prefill): tiles of the weights dequantised into a stack buffer of f32 (x widened
//            likewise) and multiplied with Eigen's GEMM, as linear()'s 16-bit path does.
// The f32 decode kernel and the GEMM read rows in the decode layout block by block
// (quant_block_at; the f32 decode kernel pays 8-13% for it, docs/QUANT.md "Decode layout"). AVX-512
// and AVX2 widen with intrinsics; other instruction sets go through a small f32 buffer. Inner
// strides other than 1 fall back to the scalar reference. No workspace is needed.
//
// K % 32 != 0 (a partial last block in every weight row): no kernel reads x past K. The integer
// path quantises the tail of each x row from a zero-padded copy (its int8 copy of x is then
// quant_blocks(K) whole blocks, and kQuantInt8MaxX bounds that padded length); the f32 decode
// kernel multiplies the last block with a zero-padded f32 copy of each row's tail, made once per
// call; the GEMM's last K tile dequantises whole blocks into rows of a stride rounded up to 32 and
// multiplies only the tile's K columns. The loops over whole blocks are those of K % 32 == 0.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/eigen.hpp"
#include "rodimus/backend/cpu/prefetch.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/backend/scalar/quant_linear.hpp" // the fallback for what this backend does not cover
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/primitives/quant_layout.hpp"
#include "rodimus/primitives/quant_linear.hpp"

namespace rodimus {

namespace detail {

constexpr index_t kQuantGemvMaxM = 4;
constexpr index_t kQuantPrefetchBytes = 512; // ahead in the weight stream of one thread
// The group kernels' prefetch distance (into L2): at least this far ahead, in whole steps of rows.
constexpr index_t kQuantGroupPrefetchBytes = 8192;
constexpr index_t kQuantTileM = 64;
constexpr index_t kQuantTileN = 128;
constexpr index_t kQuantTileK = 256; // a multiple of 32

/// Vectors of f32 per block of 32.
template <class A> constexpr int quant_vectors = int(32 / lanes<A>);

/// A block's scale d as f32.
inline float quant_scale_f32(f16 d) noexcept {
#if defined(__F16C__)
  return _cvtsh_ss(d.bits);
#else
  return f16::to_float(d.bits);
#endif
}

/// The 32 integers of a q8_0 block (without its scale) as quant_vectors<A> f32 vectors.
template <class A> inline void quant_block_values(const q8_0_block& b, fbatch<A>* v) noexcept {
#if defined(__AVX512F__) && defined(__AVX512BW__)
  if constexpr (use_avx512<A>) {
    const __m128i* p = reinterpret_cast<const __m128i*>(b.q);
    v[0] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p)));
    v[1] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p + 1)));
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (use_avx2<A>) {
    for (int i = 0; i < 4; ++i)
      v[i] = _mm256_cvtepi32_ps(
          _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.q + 8 * i))));
    return;
  }
#endif
  alignas(64) float tmp[32];
  for (int j = 0; j < 32; ++j)
    tmp[j] = float(b.q[j]);
  for (int i = 0; i < quant_vectors<A>; ++i)
    v[i] = fbatch<A>::load_aligned(tmp + i * int(lanes<A>));
}

/// The 32 values n - 8 of a q4_0 block (elements 0..15 from the low nibbles, 16..31 from the
/// high ones) as quant_vectors<A> f32 vectors.
template <class A> inline void quant_block_values(const q4_0_block& b, fbatch<A>* v) noexcept {
#if defined(__AVX2__)
  if constexpr (use_avx512<A> || use_avx2<A>) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.nibbles));
    const __m128i mask = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, mask), eight);
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), mask), eight);
#if defined(__AVX512F__) && defined(__AVX512BW__)
    if constexpr (use_avx512<A>) {
      v[0] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo));
      v[1] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi));
      return;
    }
#endif
    if constexpr (use_avx2<A>) {
      v[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
      v[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
      v[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
      v[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
      return;
    }
  }
#endif
  alignas(64) float tmp[32];
  for (int j = 0; j < 16; ++j) {
    tmp[j] = float(int(b.nibbles[j] & 0x0f) - 8);
    tmp[j + 16] = float(int(b.nibbles[j] >> 4) - 8);
  }
  for (int i = 0; i < quant_vectors<A>; ++i)
    v[i] = fbatch<A>::load_aligned(tmp + i * int(lanes<A>));
}

/// acc[m] += d * sum_j x[m, k + j] * q[j] over the block at w (its 32 integers widened once for
/// all MR x rows).
template <class A, int MR, class Act, class Block>
inline void quant_gemv_block(const Block& w, const Act* const* xr, index_t k,
                             fbatch<A> (&acc)[MR]) noexcept {
  using B = fbatch<A>;
  constexpr int V = quant_vectors<A>;
  constexpr index_t W = index_t(lanes<A>);
  B wv[V];
  quant_block_values<A>(w, wv);
  const B d(quant_scale_f32(w.scale));
  for (int m = 0; m < MR; ++m) {
    B s = load_f32<A>(xr[m] + k) * wv[0];
    for (int i = 1; i < V; ++i)
      s = xsimd::fma(load_f32<A>(xr[m] + k + i * W), wv[i], s);
    acc[m] = xsimd::fma(s, d, acc[m]);
  }
}

/// y[0:MR, n0:n1] (MR = M <= 4): rows one after another (one sequential weight stream); two
/// blocks per step into separate accumulators (named, so they stay in registers) keep the FMA
/// chains of consecutive blocks independent.
/// A partial last block (K % 32 != 0) goes last, against the rows' tails copied to f32 and padded
/// with zeros (once per call), so no load reads x past K.
template <class A, int MR, class Act, class Block>
void quant_gemv_rows(const quant_linear_args<Act, Block>& a, index_t n0, index_t n1) noexcept {
  using B = fbatch<A>;
  const index_t K = a.x.shape[1], nb = K / kQuantGroup, tail = K % kQuantGroup;
  const index_t row_blocks = a.w.shape[1];
  const Act* xr[MR];
  alignas(64) float xt[MR][32]; // the tails: x[m, nb * 32 ..] then zeros
  const float* xtr[MR];
  for (int m = 0; m < MR; ++m) {
    xr[m] = a.x.data + m * a.x.stride[0];
    load_padded_block(xr[m] + nb * kQuantGroup, tail, xt[m]);
    xtr[m] = xt[m];
  }
  for (index_t n = n0; n < n1; ++n) {
    const Block* w = a.w.data + n * a.w.stride[0];
    const auto block = [&](index_t b) { return quant_block_at(w, row_blocks, b, a.layout); };
    B acc0[MR], acc1[MR];
    for (int m = 0; m < MR; ++m) {
      acc0[m] = B(0.0f);
      acc1[m] = B(0.0f);
    }
    index_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      prefetch_line(reinterpret_cast<const unsigned char*>(w + b) + kQuantPrefetchBytes);
      prefetch_line(reinterpret_cast<const unsigned char*>(w + b + 1) + kQuantPrefetchBytes);
      quant_gemv_block<A, MR>(block(b), xr, b * kQuantGroup, acc0);
      quant_gemv_block<A, MR>(block(b + 1), xr, (b + 1) * kQuantGroup, acc1);
    }
    if (b < nb) quant_gemv_block<A, MR>(block(b), xr, b * kQuantGroup, acc0);
    if (tail) quant_gemv_block<A, MR>(block(nb), xtr, 0, acc1);
    for (int m = 0; m < MR; ++m)
      a.y(m, n) = store_as<Act>(xsimd::hadd(acc0[m] + acc1[m]));
  }
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) &&                      \
    defined(__AVX512VNNI__)
#define RODIMUS_QUANT_VNNI 1
#endif
#if defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
#define RODIMUS_QUANT_INT8 1
#endif

/// Whether the decode kernel on arch A takes x quantised per block to int8 and multiplies with
/// integer dot products (AVX-512 and AVX2 archs: vpdpbusd with AVX-512 VNNI, else vpmaddubsw +
/// vpmaddwd): kQuantInt8MaxX bounds M * quant_blocks(K) * 32, x's length padded to whole blocks
/// (the int8 copy of x lives in a thread_local buffer).
constexpr index_t kQuantInt8MaxX = 16384;
template <class A>
constexpr bool quant_int8 =
#if defined(RODIMUS_QUANT_INT8)
    use_avx512<A> || use_avx2<A>;
#else
    false;
#endif

#if defined(RODIMUS_QUANT_INT8)
/// x rows quantised per block of 32 like q8_0 but with an f32 scale: xq = round(x / dx),
/// dx = max|x| / 127; ax = |xq| (for q8_0 weights only) and, per block, bias = 8 * (the 4-byte
/// partial sums of xq) for q4_0's offset (sum_j (n_j - 8) xq_j = dot(n, xq) - dot(8, xq)), and
/// offset = -c * sum_j xq_j for the group kernels, whose weights enter the dot product as n_j
/// (q4_0, c = 8) or q_j + 128 (q8_0 on vpdpbusd, c = 128; elsewhere c = 0: quant_group_offset). Row
/// m's block b is block m * quant_blocks(K) + b, its 32 values at 32 times that in xq and ax: in
/// order, or, for a block of a whole group of the weights' decode layout (quant_groups),
/// interleaved like the weights' words (value 4 w + t of the group's block i at (16 w + i) * 4 + t
/// from the group's start; rodimus/primitives/quant_layout.hpp). A partial last block is padded
/// with zeros (xq = 0 there).
struct quant_x_blocks {
  alignas(64) std::int8_t xq[kQuantInt8MaxX];
  alignas(64) std::int8_t ax[kQuantInt8MaxX];
  alignas(64) std::int32_t bias[kQuantInt8MaxX / 4];
  alignas(64) std::int32_t offset[kQuantInt8MaxX / 32];
  float dx[kQuantInt8MaxX / 32];
};

/// 8 int32 sums of 4 consecutive products u[j] * s[j] (u unsigned bytes, s signed bytes): the
/// layout of vpdpbusd. Without VNNI, vpmaddubsw forms pairs in int16 (saturating): every caller
/// keeps a pair within |u| <= 127, |s| <= 127 (2 * 127 * 127 < 2^15), so no pair saturates.
template <class A> inline __m256i quant_dot_u8s8(__m256i u, __m256i s) noexcept {
#if defined(RODIMUS_QUANT_VNNI)
  if constexpr (use_avx512<A>) return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#endif
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/// The 32 values at src (Act or f32) quantised into block `block` of q; `group_lane` is the
/// block's place in its group of the weights' decode layout, or -1 for a block stored in order;
/// offset_scale is c of quant_x_blocks::offset (0: written as 0, not summed); ax is written only
/// with WithAbs (q8_0's kernels read it, q4_0's do not).
template <bool WithAbs, class T>
inline void quant_x_block(quant_x_blocks& q, const T* src, index_t block, int group_lane,
                          int offset_scale) noexcept {
  using A8 = xsimd::avx2;
  const __m256i eight = _mm256_set1_epi8(8);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  __m256 v[4];
  for (int i = 0; i < 4; ++i)
    v[i] = load_f32<A8>(src + 8 * i);
  const __m256 a =
      _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                    _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  const float d = _mm_cvtss_f32(h) / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m256 vid = _mm256_set1_ps(id);
  // cvtps2dq rounds to nearest even (the default rounding mode); |x / d| <= 127 after it, and
  // the saturating packs keep any overshoot in int8. The packs interleave the 128-bit halves;
  // the permutation puts the 4-byte groups back in element order.
  __m256i qi[4];
  for (int i = 0; i < 4; ++i)
    qi[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], vid));
  const __m256i xq = _mm256_permutevar8x32_epi32(
      _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3])),
      order);
  const index_t at = block * kQuantGroup;
  const __m256i bias = quant_dot_u8s8<A8>(eight, xq);
  // In order, or word w to (16 w + lane) * 4 from the group's start (block - lane).
  const auto store = [&](std::int8_t* dst, __m256i v) {
    if (group_lane < 0) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + at), v);
      return;
    }
    alignas(32) std::int32_t words[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(words), v);
    std::int32_t* group = reinterpret_cast<std::int32_t*>(dst + (block - group_lane) * kQuantGroup);
    for (int w = 0; w < 8; ++w)
      group[w * kQuantLayoutGroup + group_lane] = words[w];
  };
  store(q.xq, xq);
  if constexpr (WithAbs) store(q.ax, _mm256_abs_epi8(xq));
  _mm256_store_si256(reinterpret_cast<__m256i*>(q.bias + at / 4), bias);
  // bias sums to 8 sum(xq): offset = -c sum(xq) = -(c / 8) sum(bias) (c is 0, 8 or 128).
  if (offset_scale != 0) {
    __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(bias), _mm256_extracti128_si256(bias, 1));
    sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0x4e));
    sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0xb1));
    q.offset[block] = -(offset_scale / 8) * _mm_cvtsi128_si32(sum);
  } else {
    q.offset[block] = 0;
  }
  q.dx[block] = d;
}

/// Every row of x quantised into q (M * quant_blocks(K) blocks) for weights in `layout` (its whole
/// groups interleaved like theirs) with offset scale c (quant_x_blocks); reads x[m, k] for k < K
/// only: a partial last block is quantised from a zero-padded f32 copy of the row's tail. ax is
/// made for q8_0 weights only (Block).
template <class Block, class Act>
inline void quant_x_rows(quant_x_blocks& q, const tensor_view<const Act, 2>& x, quant_layout layout,
                         int offset_scale) noexcept {
  constexpr bool with_abs = std::is_same_v<Block, q8_0_block>;
  const index_t M = x.shape[0], K = x.shape[1], nb = quant_blocks(K), full = K / kQuantGroup;
  const index_t tail = K % kQuantGroup, grouped = quant_groups(nb, layout) * kQuantLayoutGroup;
  const auto lane = [&](index_t b) { return b < grouped ? int(b % kQuantLayoutGroup) : -1; };
  for (index_t m = 0; m < M; ++m) {
    const Act* row = x.data + m * x.stride[0];
    for (index_t b = 0; b < full; ++b)
      quant_x_block<with_abs>(q, row + b * kQuantGroup, m * nb + b, lane(b), offset_scale);
    if (tail) {
      alignas(32) float pad[32];
      load_padded_block(row + full * kQuantGroup, tail, pad);
      quant_x_block<with_abs>(q, pad, m * nb + full, lane(full), offset_scale);
    }
  }
}

/// A weight block's 32 integers as one vector, elements in order: q8_0 its int8 values; q4_0 its
/// nibbles n (0..15, unsigned; the offset 8 is x's bias): the 16 bytes in both halves, the upper
/// half shifted right by 4, both masked.
inline __m256i quant_block_ints(const q8_0_block& w) noexcept {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.q));
}
inline __m256i quant_block_ints(const q4_0_block& w) noexcept {
  const __m256i raw =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.nibbles)));
  return _mm256_and_si256(_mm256_srlv_epi64(raw, _mm256_set_epi64x(4, 4, 0, 0)),
                          _mm256_set1_epi8(0x0f));
}

/// The 8 int32 partial dot products of one weight block (its ints wi) with x block `at`.
template <class A>
inline __m256i quant_block_dot(const q8_0_block&, __m256i wi, const quant_x_blocks& q,
                               index_t at) noexcept {
  const __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(q.xq + at));
  const __m256i ax = _mm256_load_si256(reinterpret_cast<const __m256i*>(q.ax + at));
  // Unsigned times signed bytes: |x| times w with x's sign moved onto w.
  return quant_dot_u8s8<A>(ax, _mm256_sign_epi8(wi, xq));
}
template <class A>
inline __m256i quant_block_dot(const q4_0_block&, __m256i wi, const quant_x_blocks& q,
                               index_t at) noexcept {
  const __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(q.xq + at));
  const __m256i bias = _mm256_load_si256(reinterpret_cast<const __m256i*>(q.bias + at / 4));
  return _mm256_sub_epi32(quant_dot_u8s8<A>(wi, xq), bias);
}

#if defined(__AVX512F__) && defined(__AVX512BW__)
/// Two blocks at a time on 512 bits (AVX-512 archs): the per-block work (unpacking, the integer
/// dot product, its conversion, the scale and the FMA) bounds these kernels, not the bytes (q4_0
/// and q8_0 stream the same blocks per second, bench/results/2026-12-05-cpu-quant2), so one
/// instruction does two blocks' worth of each.
///
/// 16 int32 sums of 4 consecutive products u[j] * s[j] (vpdpbusd's layout; without VNNI,
/// vpmaddubsw + vpmaddwd, each pair kept within int16 as in quant_dot_u8s8).
inline __m512i quant_dot_u8s8_512(__m512i u, __m512i s) noexcept {
#if defined(RODIMUS_QUANT_VNNI)
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
#else
  return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
#endif
}

/// Weight blocks w[0], w[1] as one vector of their 64 integers, in the order of x's two blocks
/// (which lie back to back): q8_0 the int8 values (quant_block_ints of each); q4_0 the nibbles,
/// unpacked for both blocks by one shift and one mask (quant_block_ints' steps on 512 bits).
inline __m512i quant_block_pair_ints(const q8_0_block* w) noexcept {
  return _mm512_inserti64x4(_mm512_castsi256_si512(quant_block_ints(w[0])), quant_block_ints(w[1]),
                            1);
}
inline __m512i quant_block_pair_ints(const q4_0_block* w) noexcept {
  const __m512i raw = _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_broadcastsi128_si256(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[0].nibbles)))),
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[1].nibbles))),
      1);
  return _mm512_and_si512(_mm512_srlv_epi64(raw, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0)),
                          _mm512_set1_epi8(0x0f));
}

/// The 16 int32 partial dot products of two weight blocks (their ints wi) with x blocks at, at
/// + 32.
inline __m512i quant_block_pair_dot(const q8_0_block*, __m512i wi, const quant_x_blocks& q,
                                    index_t at) noexcept {
  const __m512i xq = _mm512_loadu_si512(q.xq + at);
  const __m512i ax = _mm512_loadu_si512(q.ax + at);
  // |x| times w with x's sign moved onto w (no vpsignb on 512 bits: negate where x < 0; |w| <=
  // 127, so the negation never overflows).
  const __m512i sw = _mm512_mask_sub_epi8(wi, _mm512_movepi8_mask(xq), _mm512_setzero_si512(), wi);
  return quant_dot_u8s8_512(ax, sw);
}
inline __m512i quant_block_pair_dot(const q4_0_block*, __m512i wi, const quant_x_blocks& q,
                                    index_t at) noexcept {
  const __m512i xq = _mm512_loadu_si512(q.xq + at);
  const __m512i bias = _mm512_loadu_si512(q.bias + at / 4);
  return _mm512_sub_epi32(quant_dot_u8s8_512(wi, xq), bias);
}

/// The two 256-bit halves of v added (lane j + lane j + 8), once per row. Through memory: g++ 12
/// warns of an uninitialised operand inside the extracting intrinsics (even
/// _mm512_castps512_ps256) when they are inlined here.
inline __m256 quant_fold_halves(__m512 v) noexcept {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  return _mm256_add_ps(_mm256_load_ps(t), _mm256_load_ps(t + 8));
}

/// The scales of two weight blocks, d0 and d1 (f16), times x's block scales dx[0], dx[1], spread
/// over the 8 lanes of each block's sums: [d0 dx0 x 8 | d1 dx1 x 8].
inline __m512 quant_pair_scale(__m128 dw, const float* dx) noexcept {
  const __m128 s =
      _mm_mul_ps(dw, _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(dx))));
  return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                               _mm512_castps128_ps512(s));
}
#endif

/// The group kernels (weights in quant_layout::groups16): per group of 16 blocks, one exact integer
/// dot product per block in one 32-bit lane per block, accumulated over the group's words (x in
/// the same interleaved order, quant_x_rows) from the start value quant_x_blocks::offset (the
/// weights' unsigned offset taken off once per block, not per instruction), converted to f32 and
/// scaled by the 16 products dw dx in one multiply. On AVX-512 with VNNI the group is one 512-bit
/// step (16 blocks: q4_0 4 loads, each giving 2 vectors of nibbles by one mask and one shift and
/// mask, q8_0 8 loads, each flipped to q + 128 by one xor; 8 vpdpbusd per x row); elsewhere two
/// 256-bit halves of 8 blocks (q8_0 with x's sign moved onto the weights, as quant_block_dot,
/// since vpmaddubsw pairs of q + 128 could saturate int16).
#if defined(RODIMUS_QUANT_VNNI)
template <class A> constexpr bool quant_groups_512 = use_avx512<A>;
#else
template <class A> constexpr bool quant_groups_512 = false;
#endif
/// c of quant_x_blocks::offset for the group kernel of arch A: what the weights' integers carry
/// above their signed value there.
template <class A, class Block>
constexpr int quant_group_offset = std::is_same_v<Block, q4_0_block>
                                       ? 8
                                       : (quant_groups_512<A> ? 128 : 0);

#if defined(RODIMUS_QUANT_VNNI)
/// The 8 vectors of a group's integers on 512 bits, v[w] holding word w of its 16 blocks in x's
/// order as unsigned bytes, words 4..7 times 2^quant_group_high_shift: q4_0 load L gives word L
/// (its low nibbles, one mask) and word L + 4 (its high nibbles left in place, 16 n: one mask,
/// no shift; the dot product of those is divided by 16 once per group, exactly); q8_0 load w is
/// word w flipped to q + 128 by one xor.
template <class Block>
constexpr int quant_group_high_shift = std::is_same_v<Block, q4_0_block> ? 4 : 0;
inline void quant_group_ints(const q4_0_block*, const unsigned char* ints,
                             __m512i (&v)[8]) noexcept {
  const __m512i mask = _mm512_set1_epi8(0x0f);
  for (int l = 0; l < 4; ++l) {
    const __m512i raw = _mm512_loadu_si512(ints + 64 * l);
    v[l] = _mm512_and_si512(raw, mask);
    v[l + 4] = _mm512_andnot_si512(mask, raw);
  }
}
inline void quant_group_ints(const q8_0_block*, const unsigned char* ints,
                             __m512i (&v)[8]) noexcept {
  const __m512i flip = _mm512_set1_epi8(char(0x80)); // q + 128: unsigned, for vpdpbusd
  for (int w = 0; w < 8; ++w)
    v[w] = _mm512_xor_si512(_mm512_loadu_si512(ints + 64 * w), flip);
}
#endif

/// The 8 int32 block sums of half h (blocks 8 h .. 8 h + 7) of a group whose integers are at
/// `ints`, against x's group at xq / ax (interleaved), started from offset: 256 bits.
inline __m256i quant_group_half_dot(const q4_0_block*, const unsigned char* ints,
                                    const std::int8_t* xq, const std::int8_t*,
                                    __m256i sum) noexcept {
  const __m256i mask = _mm256_set1_epi8(0x0f);
  for (int l = 0; l < 4; ++l) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ints + 64 * l));
    const __m256i lo = _mm256_and_si256(raw, mask);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), mask);
    sum = _mm256_add_epi32(
        sum, quant_dot_u8s8<xsimd::avx2>(
                 lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 64 * l))));
    sum = _mm256_add_epi32(
        sum, quant_dot_u8s8<xsimd::avx2>(
                 hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 64 * (l + 4)))));
  }
  return sum;
}
inline __m256i quant_group_half_dot(const q8_0_block*, const unsigned char* ints,
                                    const std::int8_t* xq, const std::int8_t* ax,
                                    __m256i sum) noexcept {
  for (int w = 0; w < 8; ++w) {
    const __m256i wi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ints + 64 * w));
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 64 * w));
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ax + 64 * w));
    sum = _mm256_add_epi32(sum, quant_dot_u8s8<xsimd::avx2>(a, _mm256_sign_epi8(wi, x)));
  }
  return sum;
}

/// Rows a group kernel step reads at once: x's vectors of a group are loaded once for both (on
/// 512 bits a group step is bound by its loads, and x's 8 vectors per x row outnumber the weights'
/// 4 (q4_0) or 8 (q8_0)).
constexpr int kQuantGroupRows = 2;

/// How far ahead the group kernels prefetch a weight stream whose rows are row_stride blocks
/// apart: at least kQuantGroupPrefetchBytes, in whole steps of R rows (so that a prefetch lands on
/// the same place of a row further on).
template <int R, class Block> constexpr index_t quant_group_prefetch_ahead(index_t row_stride) {
  const index_t step_bytes = std::max<index_t>(1, R * row_stride * index_t(sizeof(Block)));
  return std::max<index_t>(1, (kQuantGroupPrefetchBytes + step_bytes - 1) / step_bytes) *
         step_bytes;
}

/// acc[r][m] (8 f32 lanes, summed later) += the whole groups of weight row w[r] (nb blocks in
/// `layout`, rows row_stride blocks apart) times x row m, for R rows; returns the first block after
/// the groups (0 in quant_layout::blocks).
template <class A, int MR, int R, class Block>
inline index_t quant_gemv_groups(const Block* const* w, index_t nb, index_t row_stride,
                                 quant_layout layout, const quant_x_blocks& q,
                                 __m256 (*acc)[MR]) noexcept {
  const index_t groups = quant_groups(nb, layout);
  constexpr index_t group_bytes = kQuantLayoutGroup * index_t(sizeof(Block));
  const auto group = [&](int r, index_t g) {
    return reinterpret_cast<const unsigned char*>(w[r]) + g * group_bytes;
  };
  // The same group of a row at least kQuantGroupPrefetchBytes further on (whole steps of R rows;
  // rows are one contiguous stream), into L2. Measured on the build machine, one thread streaming
  // from memory (bench/results/2026-12-07-cpu-quant-overhead): q4_0 11 -> 23-27 GB/s, q8_0 11.6 ->
  // 22-23 GB/s (bf16's linear() 23-24). The same group R rows ahead into L1, as before, kept too
  // few lines in flight, whatever the distance (1, 4 or 16 steps of R rows: the same 11 GB/s).
  // (The blocks past a row's whole groups are prefetched by the caller, quant_gemv_int8_rows: with
  // a prefetch of them in this lambda, g++ 12 dropped every prefetch of the loop.)
  const index_t ahead = quant_group_prefetch_ahead<R, Block>(row_stride);
  const auto prefetch_group = [&](const unsigned char* at) {
    for (index_t o = 0; o < group_bytes; o += 64)
      prefetch_line_l2(at + ahead + o);
  };
#if defined(RODIMUS_QUANT_VNNI)
  if constexpr (quant_groups_512<A>) {
    __m512 wide[R][MR];
    for (int r = 0; r < R; ++r)
      for (int m = 0; m < MR; ++m)
        wide[r][m] = _mm512_setzero_ps();
    for (index_t g = 0; g < groups; ++g) {
      __m512 dw[R];
      __m512i v[R][8];
      for (int r = 0; r < R; ++r) {
        const unsigned char* at = group(r, g);
        prefetch_group(at);
        dw[r] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at)));
        quant_group_ints(w[r], at + 2 * kQuantLayoutGroup, v[r]);
      }
      for (int m = 0; m < MR; ++m) {
        const index_t i = m * nb + g * kQuantLayoutGroup; // x's first block of the group
        const std::int8_t* x = q.xq + i * kQuantGroup;
        const __m512i start = _mm512_loadu_si512(q.offset + i);
        const __m512 dx = _mm512_loadu_ps(q.dx + i);
        __m512i s0[R], s1[R];
        for (int r = 0; r < R; ++r) {
          s0[r] = start;
          s1[r] = _mm512_setzero_si512();
        }
        for (int k = 0; k < 4; ++k) { // two chains a row: words 0..3 and the scaled words 4..7
          const __m512i x0 = _mm512_loadu_si512(x + 64 * k);
          const __m512i x1 = _mm512_loadu_si512(x + 64 * (k + 4));
          for (int r = 0; r < R; ++r) {
            s0[r] = _mm512_dpbusd_epi32(s0[r], v[r][k], x0);
            s1[r] = _mm512_dpbusd_epi32(s1[r], v[r][k + 4], x1);
          }
        }
        for (int r = 0; r < R; ++r) {
          if constexpr (quant_group_high_shift < Block >> 0)
            s1[r] = _mm512_srai_epi32(s1[r], quant_group_high_shift<Block>);
          const __m512 dot = _mm512_cvtepi32_ps(_mm512_add_epi32(s0[r], s1[r]));
          wide[r][m] = _mm512_fmadd_ps(dot, _mm512_mul_ps(dw[r], dx), wide[r][m]);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int m = 0; m < MR; ++m)
        acc[r][m] = _mm256_add_ps(acc[r][m], quant_fold_halves(wide[r][m]));
    return groups * kQuantLayoutGroup;
  }
#endif
  for (int r = 0; r < R; ++r)
    for (index_t g = 0; g < groups; ++g) {
      const unsigned char* at = group(r, g);
      prefetch_group(at);
      for (int h = 0; h < 2; ++h) {
        const __m256 dw =
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 16 * h)));
        for (int m = 0; m < MR; ++m) {
          const index_t i = m * nb + g * kQuantLayoutGroup; // x's first block of the group
          const __m256i start =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q.offset + i + 8 * h));
          const __m256i s = quant_group_half_dot(w[r], at + 2 * kQuantLayoutGroup + 32 * h,
                                                 q.xq + i * kQuantGroup + 32 * h,
                                                 q.ax + i * kQuantGroup + 32 * h, start);
          acc[r][m] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(s),
                              _mm256_mul_ps(dw, _mm256_loadu_ps(q.dx + i + 8 * h)), acc[r][m]);
        }
      }
    }
  return groups * kQuantLayoutGroup;
}

/// y[0:MR, n0:n1] from x quantised in q: per block an exact integer dot product, converted to f32
/// (|dot| <= 32 * 127 * 127 < 2^24: exact) and added scaled by dw * dx; two blocks per step (four,
/// two per 512-bit vector, on AVX-512), an odd block last on 256 bits. The weight block is unpacked
/// once for all MR rows of x. nb = quant_blocks(K): a partial last block multiplies q's
/// zero-padded x block, so its padding adds 0 (q8_0: |x| = 0; q4_0: dot(n, 0) - bias(0) = 0).
template <class A, int MR, class Act, class Block>
void quant_gemv_int8_rows(const quant_linear_args<Act, Block>& a, const quant_x_blocks& q,
                          index_t n0, index_t n1) noexcept {
  const index_t nb = a.w.shape[1];
  // Row n's blocks from b on (those past the whole groups), its sums so far in acc1; writes y.
  const auto finish_row = [&](index_t n, index_t b, __m256(&acc1)[MR]) {
    const Block* w = a.w.data + n * a.w.stride[0];
    __m256 acc0[MR];
    for (int m = 0; m < MR; ++m)
      acc0[m] = _mm256_setzero_ps();
    const auto step = [&](index_t b, __m256(&acc)[MR]) {
      const float dw = quant_scale_f32(w[b].scale);
      const __m256i wi = quant_block_ints(w[b]);
      for (int m = 0; m < MR; ++m) {
        const index_t i = m * nb + b;
        const __m256 dot = _mm256_cvtepi32_ps(quant_block_dot<A>(w[b], wi, q, i * kQuantGroup));
        acc[m] = _mm256_fmadd_ps(dot, _mm256_set1_ps(dw * q.dx[i]), acc[m]);
      }
    };
#if defined(__AVX512F__) && defined(__AVX512BW__)
    if (use_avx512<A> && b + 2 <= nb) { // (a row that ends in whole groups skips the set-up)
      __m512 wide0[MR], wide1[MR];
      for (int m = 0; m < MR; ++m) {
        wide0[m] = _mm512_setzero_ps();
        wide1[m] = _mm512_setzero_ps();
      }
      const auto pair = [&](index_t b2, __m512(&acc)[MR]) {
        const __m128 dw = _mm_cvtph_ps(
            _mm_cvtsi32_si128(int(w[b2].scale.bits) | (int(w[b2 + 1].scale.bits) << 16)));
        const __m512i wi = quant_block_pair_ints(w + b2);
        for (int m = 0; m < MR; ++m) {
          const index_t i = m * nb + b2;
          const __m512 dot = _mm512_cvtepi32_ps(quant_block_pair_dot(w, wi, q, i * kQuantGroup));
          acc[m] = _mm512_fmadd_ps(dot, quant_pair_scale(dw, q.dx + i), acc[m]);
        }
      };
      for (; b + 4 <= nb; b += 4) {
        prefetch_line(reinterpret_cast<const unsigned char*>(w + b) + kQuantPrefetchBytes);
        prefetch_line(reinterpret_cast<const unsigned char*>(w + b + 3) + kQuantPrefetchBytes);
        pair(b, wide0);
        pair(b + 2, wide1);
      }
      if (b + 2 <= nb) {
        pair(b, wide0);
        b += 2;
      }
      for (int m = 0; m < MR; ++m) { // into acc0: the 256-bit tail below adds to it
        acc0[m] = quant_fold_halves(_mm512_add_ps(wide0[m], wide1[m]));
      }
    }
#endif
    for (; b + 2 <= nb; b += 2) {
      prefetch_line(reinterpret_cast<const unsigned char*>(w + b) + kQuantPrefetchBytes);
      prefetch_line(reinterpret_cast<const unsigned char*>(w + b + 1) + kQuantPrefetchBytes);
      step(b, acc0);
      step(b + 1, acc1);
    }
    if (b < nb) step(b, acc0);
    for (int m = 0; m < MR; ++m) {
      const __m256 s = _mm256_add_ps(acc0[m], acc1[m]);
      __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
      h = _mm_add_ps(h, _mm_movehl_ps(h, h));
      h = _mm_add_ss(h, _mm_movehdup_ps(h));
      a.y(m, n) = store_as<Act>(_mm_cvtss_f32(h));
    }
  };
  constexpr int R = kQuantGroupRows;
  // The rows from n0 to n1 (the chunk this thread claimed from the pool) are one stream, read
  // with a prefetch the groups' distance ahead: its first rows are prefetched here, so that a
  // chunk does not start with a distance's worth of rows left to the hardware prefetcher. (The
  // prefetch ahead of a chunk's last rows reaches into the next chunk, perhaps another core's;
  // stopping it there measured no different, bench/results/2026-12-08-cpu-quant-prime.)
  const index_t ahead = quant_group_prefetch_ahead<R, Block>(a.w.stride[0]);
  prime_stream_l2(a.w.data + n0 * a.w.stride[0],
                  std::min<index_t>(ahead, (n1 - n0) * a.w.stride[0] * index_t(sizeof(Block))));
  for (index_t n = n0; n < n1; n += R) {
    const index_t rows = std::min<index_t>(R, n1 - n);
    const Block* w[R] = {}; // only rows that exist: a pointer past the last row is never formed
    __m256 acc[R][MR];
    for (int r = 0; r < R; ++r) {
      if (r < rows) w[r] = a.w.data + (n + r) * a.w.stride[0];
      for (int m = 0; m < MR; ++m)
        acc[r][m] = _mm256_setzero_ps();
    }
    const index_t stride = a.w.stride[0];
    const index_t b = rows == R ? quant_gemv_groups<A, MR, R>(w, nb, stride, a.layout, q, acc)
                                : quant_gemv_groups<A, MR, 1>(w, nb, stride, a.layout, q, acc);
    // The blocks past the whole groups (K = 2736: 6 of 86), the same distance ahead as the groups'
    // prefetch: left to the hardware prefetcher they streamed at 0.53-0.68 of the read bandwidth.
    // (b == 0: the blocks layout, or rows shorter than a group; finish_row prefetches those.)
    if (b > 0 && b < nb)
      for (index_t r = 0; r < rows; ++r)
        prime_stream_l2(reinterpret_cast<const unsigned char*>(w[r] + b) + ahead,
                        (nb - b) * index_t(sizeof(Block)));
    for (index_t r = 0; r < rows; ++r)
      finish_row(n + r, b, acc[r]);
  }
}

template <class A, class Act, class Block>
void quant_gemv_int8(const quant_linear_args<Act, Block>& a, const quant_x_blocks& q, index_t n0,
                     index_t n1) noexcept {
  switch (a.x.shape[0]) {
  case 1: quant_gemv_int8_rows<A, 1>(a, q, n0, n1); break;
  case 2: quant_gemv_int8_rows<A, 2>(a, q, n0, n1); break;
  case 3: quant_gemv_int8_rows<A, 3>(a, q, n0, n1); break;
  default: quant_gemv_int8_rows<A, 4>(a, q, n0, n1); break;
  }
}
#endif

template <class A, class Act, class Block>
void quant_gemv(const quant_linear_args<Act, Block>& a, index_t n0, index_t n1) noexcept {
  switch (a.x.shape[0]) {
  case 1: quant_gemv_rows<A, 1>(a, n0, n1); break;
  case 2: quant_gemv_rows<A, 2>(a, n0, n1); break;
  case 3: quant_gemv_rows<A, 3>(a, n0, n1); break;
  default: quant_gemv_rows<A, 4>(a, n0, n1); break;
  }
}

/// Blocks b0 .. b0 + count - 1 of a weight row (nb blocks in `layout`) dequantised into dst
/// (count * 32 floats, a partial last block's padding included).
template <class A, class Block>
inline void quant_dequantise_blocks(float* dst, const Block* row, index_t nb, quant_layout layout,
                                    index_t b0, index_t count) noexcept {
  using B = fbatch<A>;
  constexpr int V = quant_vectors<A>;
  constexpr index_t W = index_t(lanes<A>);
  for (index_t b = 0; b < count; ++b) {
    const Block w = quant_block_at(row, nb, b0 + b, layout);
    B wv[V];
    quant_block_values<A>(w, wv);
    const B d(quant_scale_f32(w.scale));
    for (int i = 0; i < V; ++i)
      (wv[i] * d).store_unaligned(dst + b * kQuantGroup + i * W);
  }
}

/// y[:, n0:n1] with Eigen over f32 tiles (weights dequantised, x widened, tile by tile). A tile's
/// rows have stride ktp = kt rounded up to 32 (kt itself but in the last tile when K % 32 != 0):
/// the weights are dequantised in whole blocks, x widened over its kt columns only, and the GEMM
/// multiplies the kt columns (the padding of wt is never read).
template <class A, class Act, class Block>
void quant_gemm(const quant_linear_args<Act, Block>& a, index_t n0, index_t n1) noexcept {
  const index_t M = a.x.shape[0], K = a.x.shape[1];
  alignas(64) float xt[kQuantTileM * kQuantTileK]; // (Mt, Kt)
  alignas(64) float wt[kQuantTileN * kQuantTileK]; // (Nt, Kt)
  alignas(64) float yt[kQuantTileM * kQuantTileN]; // (Mt, Nt)
  for (index_t nb = n0; nb < n1; nb += kQuantTileN) {
    const index_t nt = std::min(kQuantTileN, n1 - nb);
    for (index_t mb = 0; mb < M; mb += kQuantTileM) {
      const index_t mt = std::min(kQuantTileM, M - mb);
      f32_map Y(yt, mt, nt, Eigen::OuterStride<>(nt));
      Y.setZero();
      for (index_t kb = 0; kb < K; kb += kQuantTileK) {
        const index_t kt = std::min(kQuantTileK, K - kb), kbt = quant_blocks(kt);
        const index_t ktp = kbt * kQuantGroup; // <= kQuantTileK (a multiple of 32)
        for (index_t r = 0; r < mt; ++r)
          convert_to_f32<A>(xt + r * ktp, a.x.data + (mb + r) * a.x.stride[0] + kb,
                            std::size_t(kt));
        for (index_t r = 0; r < nt; ++r)
          quant_dequantise_blocks<A>(wt + r * ktp, a.w.data + (nb + r) * a.w.stride[0],
                                     a.w.shape[1], a.layout, kb / kQuantGroup, kbt);
        const_f32_map X(xt, mt, kt, Eigen::OuterStride<>(ktp));
        const_f32_map Wm(wt, nt, kt, Eigen::OuterStride<>(ktp));
        Y.noalias() += X * Wm.transpose();
      }
      for (index_t r = 0; r < mt; ++r)
        convert_from_f32<A>(a.y.data + (mb + r) * a.y.stride[0] + nb, yt + r * nt, std::size_t(nt));
    }
  }
}

} // namespace detail

template <class Arch, class Act, class Block>
constexpr std::size_t quant_linear_workspace_bytes(const cpu<Arch>&,
                                                   const quant_linear_args<Act, Block>&) noexcept {
  return 0;
}

/// Whether quant_linear(be, a) multiplies x quantised per block of 32 to int8 (scale max|x| / 127
/// in f32, round to nearest) instead of x itself: the decode kernel on AVX-512 and AVX2 (M <= 4,
/// M * quant_blocks(K) * 32 <= kQuantInt8MaxX: x's rows padded to whole blocks fit its int8 copy;
/// unit inner strides). Each output then differs from the exact product by at most sum over blocks
/// of dx / 2 * sum |w| (tests/cases/quant_linear_cases.hpp; a padded element is 0, exact).
template <class Arch, class Act, class Block>
bool quant_linear_rounds_x(const cpu<Arch>&, const quant_linear_args<Act, Block>& a) noexcept {
  if constexpr (!detail::quant_int8<Arch> || !detail::cpu_storage_type<Act>) {
    (void)a;
    return false;
  } else {
    const index_t M = a.x.shape[0], K = a.x.shape[1];
    return M >= 1 && M <= detail::kQuantGemvMaxM && K > 0 &&
           M * quant_blocks(K) <= detail::kQuantInt8MaxX / kQuantGroup && a.x.stride[1] == 1 &&
           a.w.stride[1] == 1 && a.y.stride[1] == 1 && a.w.shape[0] > 0;
  }
}

/// Whether quant_linear() on cpu<Arch> runs the scalar reference for `a` instead of its own kernel
/// (Act other than f32 / bf16 / f16, an inner stride other than 1, K = 0; an empty output (M or N =
/// 0) runs nothing). Benchmarks check it, so that they never time the fallback
/// (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch, class Act, class Block>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&,
                                        const quant_linear_args<Act, Block>& a) noexcept {
  if constexpr (!detail::cpu_storage_type<Act>)
    return true;
  else
    return a.x.shape[0] != 0 && a.w.shape[0] != 0 &&
           (a.x.stride[1] != 1 || a.w.stride[1] != 1 || a.y.stride[1] != 1 || a.x.shape[1] == 0);
}

/// quant_linear() on cpu<Arch> (see the top of this file).
template <class Arch, class Act, class Block>
[[nodiscard]] status quant_linear(const cpu<Arch>& be, const quant_linear_args<Act, Block>& a,
                                  workspace = {}) noexcept {
  RODIMUS_TRY(quant_linear_check(a));
  if constexpr (!detail::cpu_storage_type<Act>) {
    return quant_linear(scalar{}, a);
  } else {
    const index_t M = a.x.shape[0], K = a.x.shape[1], N = a.w.shape[0];
    if (falls_back_to_scalar(be, a)) return quant_linear(scalar{}, a);
    if (M == 0 || N == 0) return status::success();
    if (M <= detail::kQuantGemvMaxM) {
      // At least 64 KiB of weights per thread: below that waking a worker costs more than it saves.
      const index_t row_bytes = quant_blocks(K) * index_t(sizeof(Block));
      const index_t grain = std::max<index_t>(4, 65536 / row_bytes);
#if defined(RODIMUS_QUANT_INT8)
      if constexpr (detail::quant_int8<Arch>) {
        if (quant_linear_rounds_x(be, a)) {
          // 52 KiB, kept off the caller's stack; the workers read the caller's copy through xq
          // (naming the thread_local in the lambda would read each worker's own).
          static thread_local detail::quant_x_blocks q;
          const detail::quant_x_blocks* xq = &q;
          detail::quant_x_rows<Block>(q, a.x, a.layout, detail::quant_group_offset<Arch, Block>);
          parallel_for(be.pool, 0, N, grain, [&](index_t lo, index_t hi) {
            detail::quant_gemv_int8<Arch>(a, *xq, lo, hi);
          });
          return status::success();
        }
      }
#endif
      parallel_for(be.pool, 0, N, grain,
                   [&](index_t lo, index_t hi) { detail::quant_gemv<Arch>(a, lo, hi); });
    } else {
      parallel_for(be.pool, 0, (N + detail::kQuantTileN - 1) / detail::kQuantTileN, 1,
                   [&](index_t lo, index_t hi) {
                     detail::quant_gemm<Arch>(a, lo * detail::kQuantTileN,
                                              std::min(N, hi * detail::kQuantTileN));
                   });
    }
    return status::success();
  }
}

} // namespace rodimus
