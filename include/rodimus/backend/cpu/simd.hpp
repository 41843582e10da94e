// Loads and stores between storage dtypes (f32, bf16, f16) and xsimd f32 batches, for the CPU
// backend's kernels. xsimd 8.1 has no bf16 or f16 batch: bf16 widens with an integer shift (the
// bf16 bits are the high half of an f32), f16 with the F16C/AVX-512 conversion instructions; f32 ->
// bf16 rounds to nearest even with integer arithmetic, exactly as rodimus::bf16::from_float. Widths
// other than AVX-512 (16 lanes) and AVX2 (8 lanes) go through a small buffer, one lane at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rodimus/backend/cpu/xsimd.hpp"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/elementwise.hpp"

// g++ 12's AVX-512 intrinsics start from _mm512_undefined_*(), which it then reports as
// -Wmaybe-uninitialized once inlined; silenced for these helpers only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace rodimus::detail {

template <class A> using fbatch = xsimd::batch<float, A>;

template <class A> constexpr std::size_t lanes = fbatch<A>::size;

/// True when Arch is a 16-lane AVX-512 arch and the translation unit may use AVX-512 intrinsics.
template <class A>
constexpr bool use_avx512 =
#if defined(__AVX512F__) && defined(__AVX512BW__)
    lanes<A> == 16;
#else
    false;
#endif

template <class A>
constexpr bool use_avx2 =
#if defined(__AVX2__) && defined(__F16C__)
    lanes<A> == 8;
#else
    false;
#endif

/// `lanes<A>` values of T starting at p, as f32.
template <class A, class T> inline fbatch<A> load_f32(const T* p) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    return fbatch<A>::load_unaligned(p);
  } else if constexpr (std::is_same_v<T, bf16> && use_avx512<A>) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else if constexpr (std::is_same_v<T, bf16> && use_avx2<A>) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else if constexpr (std::is_same_v<T, f16> && use_avx512<A>) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  } else if constexpr (std::is_same_v<T, f16> && use_avx2<A>) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else {
    alignas(64) float tmp[lanes<A>];
    for (std::size_t i = 0; i < lanes<A>; ++i)
      tmp[i] = load_as<float>(p[i]);
    return fbatch<A>::load_aligned(tmp);
  }
}

/// The first n (< lanes) values at p as f32, the rest 0.
template <class A, class T> inline fbatch<A> load_f32_partial(const T* p, std::size_t n) noexcept {
  alignas(64) float tmp[lanes<A>] = {};
  for (std::size_t i = 0; i < n; ++i)
    tmp[i] = load_as<float>(p[i]);
  return fbatch<A>::load_aligned(tmp);
}

#if defined(__AVX512F__) && defined(__AVX512BW__)
inline __m256i bf16_round_avx512(__m512 x) noexcept {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r =
      _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan,
                            _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
  return _mm512_cvtepi32_epi16(r);
}
#endif
#if defined(__AVX2__)
inline __m128i bf16_round_avx2(__m256 x) noexcept {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r =
      _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  r = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(q), nan));
  const __m256i packed = _mm256_packus_epi32(r, r); // per 128-bit lane: r0..3 r0..3 | r4..7 r4..7
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(packed, 0x08));
}
#endif

/// Store `lanes<A>` f32 values to p as T (bf16/f16 rounded to nearest even).
template <class A, class T> inline void store_f32(T* p, const fbatch<A>& x) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    x.store_unaligned(p);
  } else if constexpr (std::is_same_v<T, bf16> && use_avx512<A>) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), bf16_round_avx512(x));
  } else if constexpr (std::is_same_v<T, bf16> && use_avx2<A>) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), bf16_round_avx2(x));
  } else if constexpr (std::is_same_v<T, f16> && use_avx512<A>) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                        _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  } else if constexpr (std::is_same_v<T, f16> && use_avx2<A>) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                     _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  } else {
    alignas(64) float tmp[lanes<A>];
    x.store_aligned(tmp);
    for (std::size_t i = 0; i < lanes<A>; ++i)
      p[i] = store_as<T>(tmp[i]);
  }
}

/// Store the first n (< lanes) values of x to p as T.
template <class A, class T>
inline void store_f32_partial(T* p, const fbatch<A>& x, std::size_t n) noexcept {
  alignas(64) float tmp[lanes<A>];
  x.store_aligned(tmp);
  for (std::size_t i = 0; i < n; ++i)
    p[i] = store_as<T>(tmp[i]);
}

/// Convert n values of T to f32 (dst may be a stack buffer).
template <class A, class T>
inline void convert_to_f32(float* dst, const T* src, std::size_t n) noexcept {
  constexpr std::size_t W = lanes<A>;
  std::size_t i = 0;
  for (; i + W <= n; i += W)
    load_f32<A>(src + i).store_unaligned(dst + i);
  for (; i < n; ++i)
    dst[i] = load_as<float>(src[i]);
}

/// Store n f32 values as T.
template <class A, class T>
inline void convert_from_f32(T* dst, const float* src, std::size_t n) noexcept {
  constexpr std::size_t W = lanes<A>;
  std::size_t i = 0;
  for (; i + W <= n; i += W)
    store_f32<A>(dst + i, fbatch<A>::load_unaligned(src + i));
  for (; i < n; ++i)
    dst[i] = store_as<T>(src[i]);
}

/// silu on a batch: primitives/elementwise.hpp's silu (exp(-x) = inf for very negative x gives -0,
/// as in f32). Kept for the callers not yet switched to `silu` itself.
template <class A> inline fbatch<A> silu_f32(const fbatch<A>& x) noexcept { return silu(x); }

/// Rows per task so that a task covers at least ~16K elements (threads only pay off above that).
inline std::int64_t rows_grain(std::int64_t row_elems) noexcept {
  const std::int64_t e = row_elems > 0 ? row_elems : 1;
  return (16384 + e - 1) / e;
}

/// Storage types the CPU kernels read and write natively.
template <class T>
constexpr bool cpu_storage_type =
    std::is_same_v<T, float> || std::is_same_v<T, bf16> || std::is_same_v<T, f16>;

} // namespace rodimus::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
