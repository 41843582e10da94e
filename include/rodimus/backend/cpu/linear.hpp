// linear() on the CPU backend (math and shapes in rodimus/primitives/linear.hpp):
//
//   y[m, n] = sum_k x[m, k] * w[n, k]        x: (M, K) Act, w: (N, K) Weight, y: (M, N) Act
//
// Weights (f32, bf16, f16) are used in place, e.g. straight from a mapped checkpoint; every product
// is accumulated in f32.
//   M <= 4   (decode): a matrix-vector kernel bound by the weight stream: 4 weight rows at a time,
//            every x row against them, bf16/f16 widened in registers. Threads split the N rows.
//   M > 4    (prefill): Eigen's GEMM. f32 operands are mapped in place; 16-bit operands are widened
//            tile by tile into stack buffers (tiles of kLinearTileM x kLinearTileK and
//            kLinearTileN x kLinearTileK floats, so nothing is allocated). Threads split N.
// Inner strides other than 1 fall back to the scalar reference.
#pragma once

#include <algorithm>
#include <cstddef>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/eigen.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/linear.hpp"

namespace rodimus {

namespace detail {

constexpr index_t kLinearTileM = 64;
constexpr index_t kLinearTileN = 128;
constexpr index_t kLinearTileK = 256;
constexpr index_t kLinearGemvMaxM = 4;

/// y[m, n0:n1] for MR rows of x (MR <= 4), 4 weight rows per pass.
template <class A, int MR, class Act, class Weight>
void linear_gemv_rows(const linear_args<Act, Weight>& a, index_t m0, index_t n0,
                      index_t n1) noexcept {
  using B = fbatch<A>;
  constexpr index_t W = index_t(lanes<A>);
  const index_t K = a.x.shape[1];
  const index_t kv = K / W * W;
  const Act* xr[MR];
  for (int m = 0; m < MR; ++m)
    xr[m] = a.x.data + (m0 + m) * a.x.stride[0];
  index_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    const Weight* wr[4];
    for (int r = 0; r < 4; ++r)
      wr[r] = a.w.data + (n + r) * a.w.stride[0];
    B acc[MR][4];
    for (int m = 0; m < MR; ++m)
      for (int r = 0; r < 4; ++r)
        acc[m][r] = B(0.0f);
    for (index_t k = 0; k < kv; k += W) {
      B wv[4];
      for (int r = 0; r < 4; ++r)
        wv[r] = load_f32<A>(wr[r] + k);
      for (int m = 0; m < MR; ++m) {
        const B xv = load_f32<A>(xr[m] + k);
        for (int r = 0; r < 4; ++r)
          acc[m][r] = xsimd::fma(xv, wv[r], acc[m][r]);
      }
    }
    if (kv < K) {
      B wv[4];
      for (int r = 0; r < 4; ++r)
        wv[r] = load_f32_partial<A>(wr[r] + kv, std::size_t(K - kv));
      for (int m = 0; m < MR; ++m) {
        const B xv = load_f32_partial<A>(xr[m] + kv, std::size_t(K - kv));
        for (int r = 0; r < 4; ++r)
          acc[m][r] = xsimd::fma(xv, wv[r], acc[m][r]);
      }
    }
    for (int m = 0; m < MR; ++m)
      for (int r = 0; r < 4; ++r)
        a.y(m0 + m, n + r) = store_as<Act>(xsimd::hadd(acc[m][r]));
  }
  for (; n < n1; ++n) {
    const Weight* wr = a.w.data + n * a.w.stride[0];
    B acc[MR];
    for (int m = 0; m < MR; ++m)
      acc[m] = B(0.0f);
    for (index_t k = 0; k < kv; k += W) {
      const B wv = load_f32<A>(wr + k);
      for (int m = 0; m < MR; ++m)
        acc[m] = xsimd::fma(load_f32<A>(xr[m] + k), wv, acc[m]);
    }
    if (kv < K) {
      const B wv = load_f32_partial<A>(wr + kv, std::size_t(K - kv));
      for (int m = 0; m < MR; ++m)
        acc[m] = xsimd::fma(load_f32_partial<A>(xr[m] + kv, std::size_t(K - kv)), wv, acc[m]);
    }
    for (int m = 0; m < MR; ++m)
      a.y(m0 + m, n) = store_as<Act>(xsimd::hadd(acc[m]));
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

/// linear() on cpu<Arch>: y = x W^T with f32 accumulation (see the top of this file).
template <class Arch, class Act, class Weight>
[[nodiscard]] status linear(const cpu<Arch>& be, const linear_args<Act, Weight>& a) noexcept {
  RODIMUS_TRY(linear_check(a));
  if constexpr (!detail::cpu_storage_type<Act> || !detail::cpu_storage_type<Weight>) {
    return linear(scalar{}, a);
  } else {
    const index_t M = a.x.shape[0], K = a.x.shape[1], N = a.w.shape[0];
    if (M == 0 || N == 0) return status::success();
    if (a.x.stride[1] != 1 || a.w.stride[1] != 1 || a.y.stride[1] != 1 || K == 0)
      return linear(scalar{}, a);
    if (M <= detail::kLinearGemvMaxM) {
      // About 16 KiB of weights per block: enough to amortise a task, small enough to balance.
      const index_t grain = std::max<index_t>(4, (16384 / index_t(sizeof(Weight))) / K / 4 * 4);
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
