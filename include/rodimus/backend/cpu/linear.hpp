// linear() on the CPU backend (math and shapes in rodimus/primitives/linear.hpp):
//
//   y[m, n] = sum_k x[m, k] * w[n, k]        x: (M, K) Act, w: (N, K) Weight, y: (M, N) Act
//
// Weights (f32, bf16, f16) are used in place, e.g. straight from a mapped checkpoint; every product
// is accumulated in f32.
//   M <= 4   (decode): a matrix-vector kernel bound by the weight stream: 4 weight rows at a time
//            sharing every x load, 2 vectors per row unrolled (independent accumulators), bf16
//            widened in registers (f16 with vcvtph2ps; bf16 a pair of vectors per load: even
//            columns by a shift, odd ones by a mask, against x rearranged once per call into
//            even/odd order), the next 4 rows prefetched. Threads split the N rows into one
//            contiguous block each.
//   M > 4    (prefill): Eigen's GEMM. f32 operands are mapped in place; 16-bit operands are widened
//            tile by tile into stack buffers (tiles of kLinearTileM x kLinearTileK and
//            kLinearTileN x kLinearTileK floats, so nothing is allocated). Threads split N.
// Inner strides other than 1 fall back to the scalar reference. No workspace is needed
// (linear_workspace_bytes is 0; the argument exists so every backend has the same entry points).
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/eigen.hpp"
#include "rodimus/backend/cpu/prefetch.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/backend/scalar/linear.hpp" // the fallback for what this backend does not cover
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/primitives/linear.hpp"

namespace rodimus {

namespace detail {

constexpr index_t kLinearTileM = 64;
constexpr index_t kLinearTileN = 128;
constexpr index_t kLinearTileK = 256;
constexpr index_t kLinearGemvMaxM = 4;
constexpr index_t kLinearPrefetchBytes = 256; // measured best of 0-16384 for one stream
constexpr index_t kLinearPairMaxX = 16384;    // floats of rearranged x on the stack (64 KiB)

/// acc[m][r] += x[m, k0:K] . w[r, k0:K] for the R rows wr and MR rows xr: whole vectors, then
/// the partial last one (the columns the unrolled main loops of the GEMV kernels leave).
template <class A, int MR, int R, class Act, class Weight>
inline void linear_gemv_tail(const Weight* const (&wr)[R], const Act* const* xr, index_t k0,
                             index_t K, fbatch<A> (&acc)[MR][R]) noexcept {
  using B = fbatch<A>;
  constexpr index_t W = index_t(lanes<A>);
  const index_t kv = k0 + (K - k0) / W * W;
  for (index_t k = k0; k < kv; k += W) {
    B wv[R];
    for (int r = 0; r < R; ++r)
      wv[r] = load_f32<A>(wr[r] + k);
    for (int m = 0; m < MR; ++m) {
      const B xv = load_f32<A>(xr[m] + k);
      for (int r = 0; r < R; ++r)
        acc[m][r] = xsimd::fma(xv, wv[r], acc[m][r]);
    }
  }
  if (kv < K) {
    const std::size_t rest = std::size_t(K - kv);
    B wv[R];
    for (int r = 0; r < R; ++r)
      wv[r] = load_f32_partial<A>(wr[r] + kv, rest);
    for (int m = 0; m < MR; ++m) {
      const B xv = load_f32_partial<A>(xr[m] + kv, rest);
      for (int r = 0; r < R; ++r)
        acc[m][r] = xsimd::fma(xv, wv[r], acc[m][r]);
    }
  }
}

/// y[m0:m0+MR, n] for the R weight rows n .. n+R-1: R rows share every load of x; U unrolled
/// steps of `lanes` keep R*MR*U independent accumulators; the same columns of the next R rows
/// are prefetched (the rows are one contiguous stream, and a bf16 row of K = 2048 is a single
/// 4 KiB page, so without this the hardware prefetcher restarts on every row).
template <class A, int MR, int R, int U, class Act, class Weight>
inline void linear_gemv_block(const linear_args<Act, Weight>& a, const Act* const* xr, index_t n,
                              index_t m0) noexcept {
  using B = fbatch<A>;
  constexpr index_t W = index_t(lanes<A>);
  constexpr index_t step = W * U;
  constexpr index_t line = index_t(64 / sizeof(Weight)); // weights per cache line
  const index_t K = a.x.shape[1];
  const index_t ks = K / step * step;
  const index_t ahead = R * a.w.stride[0]; // the next R rows, same column
  const Weight* wr[R];
  for (int r = 0; r < R; ++r)
    wr[r] = a.w.data + (n + r) * a.w.stride[0];
  B acc[U][MR][R];
  for (int u = 0; u < U; ++u)
    for (int m = 0; m < MR; ++m)
      for (int r = 0; r < R; ++r)
        acc[u][m][r] = B(0.0f);
  for (index_t k = 0; k < ks; k += step) {
    for (index_t j = 0; j < step; j += line)
      for (int r = 0; r < R; ++r)
        prefetch_line(wr[r] + ahead + k + j);
    for (int u = 0; u < U; ++u) {
      B wv[R];
      for (int r = 0; r < R; ++r)
        wv[r] = load_f32<A>(wr[r] + k + u * W);
      for (int m = 0; m < MR; ++m) {
        const B xv = load_f32<A>(xr[m] + k + u * W);
        for (int r = 0; r < R; ++r)
          acc[u][m][r] = xsimd::fma(xv, wv[r], acc[u][m][r]);
      }
    }
  }
  linear_gemv_tail<A>(wr, xr, ks, K, acc[0]);
  for (int m = 0; m < MR; ++m)
    for (int r = 0; r < R; ++r) {
      B s = acc[0][m][r];
      for (int u = 1; u < U; ++u)
        s += acc[u][m][r];
      a.y(m0 + m, n + r) = store_as<Act>(xsimd::hadd(s));
    }
}

/// y[m0:m0+MR, n0:n1] (MR <= 4): 4 weight rows per pass, then single rows.
template <class A, int MR, class Act, class Weight>
void linear_gemv_rows(const linear_args<Act, Weight>& a, index_t m0, index_t n0,
                      index_t n1) noexcept {
  // Accumulators: 4 rows x MR x U vectors; keep them (plus 4 weights and x) in registers.
  constexpr int U = (MR == 1 || (lanes<A> == 16 && MR == 2)) ? 2 : 1;
  const Act* xr[MR];
  for (int m = 0; m < MR; ++m)
    xr[m] = a.x.data + (m0 + m) * a.x.stride[0];
  index_t n = n0;
  for (; n + 4 <= n1; n += 4)
    linear_gemv_block<A, MR, 4, U>(a, xr, n, m0);
  for (; n < n1; ++n)
    linear_gemv_block<A, MR, 1, U>(a, xr, n, m0);
}

/// Whether bf16 weights take the paired path below on arch A.
template <class A> constexpr bool linear_bf16_pairs = use_avx512<A> || use_avx2<A>;

/// 2*lanes bf16 values at p: even = the values at even offsets, odd = those at odd offsets, as
/// f32 (read as u32 lanes, the even value is the low half: shift it up; the odd one is the high
/// half: mask the low half off). Only for linear_bf16_pairs<A>.
template <class A>
inline void load_bf16_pairs(const bf16* p, fbatch<A>& even, fbatch<A>& odd) noexcept {
#if defined(__AVX512F__) && defined(__AVX512BW__)
  if constexpr (use_avx512<A>) {
    const __m512i u = _mm512_loadu_si512(static_cast<const void*>(p));
    even = _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
    odd = _mm512_castsi512_ps(_mm512_and_si512(u, _mm512_set1_epi32(int(0xffff0000u))));
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (use_avx2<A>) {
    const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    even = _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
    odd = _mm256_castsi256_ps(_mm256_and_si256(u, _mm256_set1_epi32(int(0xffff0000u))));
    return;
  }
#endif
  (void)p;
  (void)even;
  (void)odd;
}

/// x rows rearranged for linear_gemv_bf16_block: per group of 2*lanes columns, the even columns
/// then the odd ones, as f32. (M, Kp) with Kp = K rounded down to a multiple of 2*lanes.
template <class A, class Act>
inline void linear_pair_x(float* xp, const tensor_view<const Act, 2>& x, index_t Kp) noexcept {
  constexpr index_t W = index_t(lanes<A>);
  for (index_t m = 0; m < x.shape[0]; ++m) {
    const Act* src = x.data + m * x.stride[0];
    float* dst = xp + m * Kp;
    for (index_t k = 0; k < Kp; k += 2 * W)
      for (index_t i = 0; i < W; ++i) {
        dst[k + i] = load_as<float>(src[k + 2 * i]);
        dst[k + W + i] = load_as<float>(src[k + 2 * i + 1]);
      }
  }
}

/// bf16 weights, 2*lanes per step and row: one load of 32 (AVX-512) bf16 values gives, read as
/// 16 u32 lanes, the even columns shifted left by 16 and the odd columns masked, each already the
/// f32 bit pattern of its value (1 integer op per 16 weights); xp holds x in the matching
/// even/odd order. The columns past Kp use the generic loads. Otherwise as linear_gemv_block.
template <class A, int MR, int R, class Act>
inline void linear_gemv_bf16_block(const linear_args<Act, bf16>& a, const float* xp, index_t Kp,
                                   const Act* const* xr, index_t n, index_t m0) noexcept {
  using B = fbatch<A>;
  constexpr index_t W = index_t(lanes<A>);
  const index_t K = a.x.shape[1];
  const index_t ahead = R * a.w.stride[0];
  const bf16* wr[R];
  for (int r = 0; r < R; ++r)
    wr[r] = a.w.data + (n + r) * a.w.stride[0];
  B acc_e[MR][R], acc_o[MR][R];
  for (int m = 0; m < MR; ++m)
    for (int r = 0; r < R; ++r) {
      acc_e[m][r] = B(0.0f);
      acc_o[m][r] = B(0.0f);
    }
  for (index_t k = 0; k < Kp; k += 2 * W) {
    B we[R], wo[R];
    for (int r = 0; r < R; ++r) {
      prefetch_line(wr[r] + ahead + k);
      load_bf16_pairs<A>(wr[r] + k, we[r], wo[r]);
    }
    for (int m = 0; m < MR; ++m) {
      const B xe = B::load_unaligned(xp + m * Kp + k);
      const B xo = B::load_unaligned(xp + m * Kp + k + W);
      for (int r = 0; r < R; ++r) {
        acc_e[m][r] = xsimd::fma(xe, we[r], acc_e[m][r]);
        acc_o[m][r] = xsimd::fma(xo, wo[r], acc_o[m][r]);
      }
    }
  }
  linear_gemv_tail<A>(wr, xr, Kp, K, acc_e);
  for (int m = 0; m < MR; ++m)
    for (int r = 0; r < R; ++r)
      a.y(m0 + m, n + r) = store_as<Act>(xsimd::hadd(acc_e[m][r] + acc_o[m][r]));
}

/// One x row, bf16 weights: rows one after another, so the weights are read as one sequential
/// stream (the rows of a block are contiguous), 4 vector pairs per step in independent
/// accumulators, and the stream prefetched kLinearPrefetchBytes ahead.
template <class A, class Act>
inline void linear_gemv_bf16_single(const linear_args<Act, bf16>& a, const float* xp, index_t Kp,
                                    index_t n0, index_t n1) noexcept {
  using B = fbatch<A>;
  constexpr index_t W = index_t(lanes<A>);
  constexpr index_t ahead = kLinearPrefetchBytes / index_t(sizeof(bf16));
  const index_t K = a.x.shape[1];
  const index_t kv = K / W * W, K4 = Kp / (4 * W) * (4 * W);
  const Act* x = a.x.data;
  for (index_t n = n0; n < n1; ++n) {
    const bf16* w = a.w.data + n * a.w.stride[0];
    B e0(0.0f), o0(0.0f), e1(0.0f), o1(0.0f);
    index_t k = 0;
    for (; k < K4; k += 4 * W) {
      prefetch_line(w + k + ahead);
      prefetch_line(w + k + ahead + 2 * W);
      B we, wo;
      load_bf16_pairs<A>(w + k, we, wo);
      e0 = xsimd::fma(B::load_unaligned(xp + k), we, e0);
      o0 = xsimd::fma(B::load_unaligned(xp + k + W), wo, o0);
      load_bf16_pairs<A>(w + k + 2 * W, we, wo);
      e1 = xsimd::fma(B::load_unaligned(xp + k + 2 * W), we, e1);
      o1 = xsimd::fma(B::load_unaligned(xp + k + 3 * W), wo, o1);
    }
    for (; k < Kp; k += 2 * W) {
      B we, wo;
      load_bf16_pairs<A>(w + k, we, wo);
      e0 = xsimd::fma(B::load_unaligned(xp + k), we, e0);
      o0 = xsimd::fma(B::load_unaligned(xp + k + W), wo, o0);
    }
    for (; k < kv; k += W)
      e1 = xsimd::fma(load_f32<A>(x + k), load_f32<A>(w + k), e1);
    if (kv < K) {
      const std::size_t rest = std::size_t(K - kv);
      o1 = xsimd::fma(load_f32_partial<A>(x + kv, rest), load_f32_partial<A>(w + kv, rest), o1);
    }
    a.y(0, n) = store_as<Act>(xsimd::hadd((e0 + o0) + (e1 + o1)));
  }
}

/// y[m0:m0+MR, n0:n1] for bf16 weights with x rearranged in xp (see linear_pair_x).
template <class A, int MR, class Act>
void linear_gemv_bf16_rows(const linear_args<Act, bf16>& a, const float* xp, index_t Kp, index_t n0,
                           index_t n1) noexcept {
  constexpr int R = MR <= 2 ? 4 : 2;
  const Act* xr[MR];
  for (int m = 0; m < MR; ++m)
    xr[m] = a.x.data + m * a.x.stride[0];
  index_t n = n0;
  for (; n + R <= n1; n += R)
    linear_gemv_bf16_block<A, MR, R>(a, xp, Kp, xr, n, 0);
  for (; n < n1; ++n)
    linear_gemv_bf16_block<A, MR, 1>(a, xp, Kp, xr, n, 0);
}

template <class A, class Act>
void linear_gemv_bf16(const linear_args<Act, bf16>& a, const float* xp, index_t Kp, index_t n0,
                      index_t n1) noexcept {
  switch (a.x.shape[0]) {
  case 1: linear_gemv_bf16_single<A>(a, xp, Kp, n0, n1); break;
  case 2: linear_gemv_bf16_rows<A, 2>(a, xp, Kp, n0, n1); break;
  case 3: linear_gemv_bf16_rows<A, 3>(a, xp, Kp, n0, n1); break;
  default: linear_gemv_bf16_rows<A, 4>(a, xp, Kp, n0, n1); break;
  }
}

template <class A, class Act, class Weight>
void linear_gemv(const linear_args<Act, Weight>& a, index_t n0, index_t n1) noexcept {
  const index_t M = a.x.shape[0];
  switch (M) {
  case 1: linear_gemv_rows<A, 1>(a, 0, n0, n1); break;
  case 2: linear_gemv_rows<A, 2>(a, 0, n0, n1); break;
  case 3: linear_gemv_rows<A, 3>(a, 0, n0, n1); break;
  default: linear_gemv_rows<A, 4>(a, 0, n0, n1); break;
  }
}

/// y[:, n0:n1] with Eigen; 16-bit operands widened tile by tile.
template <class A, class Act, class Weight>
void linear_gemm(const linear_args<Act, Weight>& a, index_t n0, index_t n1) noexcept {
  const index_t M = a.x.shape[0], K = a.x.shape[1];
  if constexpr (std::is_same_v<Act, float> && std::is_same_v<Weight, float>) {
    const_f32_map X(a.x.data, M, K, Eigen::OuterStride<>(a.x.stride[0]));
    const_f32_map Wt(a.w.data + n0 * a.w.stride[0], n1 - n0, K,
                     Eigen::OuterStride<>(a.w.stride[0]));
    f32_map Y(a.y.data + n0, M, n1 - n0, Eigen::OuterStride<>(a.y.stride[0]));
    Y.noalias() = X * Wt.transpose();
  } else {
    alignas(64) float xt[kLinearTileM * kLinearTileK]; // (Mt, Kt)
    alignas(64) float wt[kLinearTileN * kLinearTileK]; // (Nt, Kt)
    alignas(64) float yt[kLinearTileM * kLinearTileN]; // (Mt, Nt)
    for (index_t nb = n0; nb < n1; nb += kLinearTileN) {
      const index_t nt = std::min(kLinearTileN, n1 - nb);
      for (index_t mb = 0; mb < M; mb += kLinearTileM) {
        const index_t mt = std::min(kLinearTileM, M - mb);
        f32_map Y(yt, mt, nt, Eigen::OuterStride<>(nt));
        Y.setZero();
        for (index_t kb = 0; kb < K; kb += kLinearTileK) {
          const index_t kt = std::min(kLinearTileK, K - kb);
          for (index_t r = 0; r < mt; ++r)
            convert_to_f32<A>(xt + r * kt, a.x.data + (mb + r) * a.x.stride[0] + kb,
                              std::size_t(kt));
          for (index_t r = 0; r < nt; ++r)
            convert_to_f32<A>(wt + r * kt, a.w.data + (nb + r) * a.w.stride[0] + kb,
                              std::size_t(kt));
          const_f32_map X(xt, mt, kt, Eigen::OuterStride<>(kt));
          const_f32_map Wm(wt, nt, kt, Eigen::OuterStride<>(kt));
          Y.noalias() += X * Wm.transpose();
        }
        for (index_t r = 0; r < mt; ++r)
          convert_from_f32<A>(a.y.data + (mb + r) * a.y.stride[0] + nb, yt + r * nt,
                              std::size_t(nt));
      }
    }
  }
}

} // namespace detail

template <class Arch, class Act, class Weight>
constexpr std::size_t linear_workspace_bytes(const cpu<Arch>&,
                                             const linear_args<Act, Weight>&) noexcept {
  return 0;
}

/// Whether linear() on cpu<Arch> runs the scalar reference for `a` instead of its own kernel (Act
/// or Weight other than f32 / bf16 / f16, an inner stride other than 1, K = 0; an empty output (M
/// or N = 0) runs nothing). Benchmarks check it, so that they never time the fallback
/// (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch, class Act, class Weight>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&,
                                        const linear_args<Act, Weight>& a) noexcept {
  if constexpr (!detail::cpu_storage_type<Act> || !detail::cpu_storage_type<Weight>)
    return true;
  else
    return a.x.shape[0] != 0 && a.w.shape[0] != 0 &&
           (a.x.stride[1] != 1 || a.w.stride[1] != 1 || a.y.stride[1] != 1 || a.x.shape[1] == 0);
}

/// linear() on cpu<Arch>: y = x W^T with f32 accumulation (see the top of this file).
template <class Arch, class Act, class Weight>
[[nodiscard]] status linear(const cpu<Arch>& be, const linear_args<Act, Weight>& a,
                            workspace = {}) noexcept {
  RODIMUS_TRY(linear_check(a));
  if constexpr (!detail::cpu_storage_type<Act> || !detail::cpu_storage_type<Weight>) {
    return linear(scalar{}, a);
  } else {
    const index_t M = a.x.shape[0], K = a.x.shape[1], N = a.w.shape[0];
    if (falls_back_to_scalar(be, a)) return linear(scalar{}, a);
    if (M == 0 || N == 0) return status::success();
    if (M <= detail::kLinearGemvMaxM) {
      // At least 64 KiB of weights per thread (a few microseconds of streaming): below that the
      // wake-up of a worker costs more than it saves.
      const index_t grain = std::max<index_t>(4, (65536 / index_t(sizeof(Weight))) / K / 4 * 4);
      constexpr index_t pair = 2 * index_t(detail::lanes<Arch>);
      if constexpr (std::is_same_v<Weight, bf16> && detail::linear_bf16_pairs<Arch>) {
        const index_t Kp = K / pair * pair;
        if (Kp > 0 && M * Kp <= detail::kLinearPairMaxX) {
          alignas(64) float xp[detail::kLinearPairMaxX]; // (M, Kp) x in even/odd order
          detail::linear_pair_x<Arch>(xp, a.x, Kp);
          parallel_for(be.pool, 0, (N + 3) / 4, (grain + 3) / 4, [&](index_t lo, index_t hi) {
            detail::linear_gemv_bf16<Arch>(a, xp, Kp, lo * 4, std::min(N, hi * 4));
          });
          return status::success();
        }
      }
      parallel_for(be.pool, 0, (N + 3) / 4, (grain + 3) / 4, [&](index_t lo, index_t hi) {
        detail::linear_gemv<Arch>(a, lo * 4, std::min(N, hi * 4));
      });
    } else {
      parallel_for(be.pool, 0, (N + detail::kLinearTileN - 1) / detail::kLinearTileN, 1,
                   [&](index_t lo, index_t hi) {
                     detail::linear_gemm<Arch>(a, lo * detail::kLinearTileN,
                                               std::min(N, hi * detail::kLinearTileN));
                   });
    }
    return status::success();
  }
}

} // namespace rodimus
